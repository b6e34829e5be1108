"""``gradwidget handout``: what students get, so that they can check themselves as they will be graded.

The handout holds the template notebook, the data, and a spec whose
reference is replaced by its answers at the public points: no reference
code, no secret, no solution. ``gradwidget grade SPEC mine.ipynb --public``
then works on a student's own machine.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ._points import public_points, public_seed
from ._problem_answers import problem_answers, save_problem_answers
from ._problems import Problem
from ._reference import reference_answers, save_answers
from ._spec import Spec, SpecError, load_spec

__all__ = ["make_handout", "public_spec"]

ANSWERS = "public-answers.npz"


def make_handout(spec_path: str | Path, out: str | Path) -> list[Path]:
    """Write the handout into ``out``; returns the files written."""
    spec = load_spec(spec_path)
    if spec.public < 1:
        raise SpecError(f"{spec.path.name}: [points] public = 0: a handout needs public points to check at")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / spec.path.name, out / ANSWERS]
    if spec.problems:
        save_problem_answers(problem_answers(spec, public_seed(spec), spec.public), out / ANSWERS)
    else:
        save_answers(reference_answers(spec, public_points(spec)), out / ANSWERS)
    (out / spec.path.name).write_text(public_spec(spec), encoding="utf-8")
    for relative in spec.data_files.values():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(spec.folder / relative, target)
        written.append(target)
    if spec.template is not None:
        if not spec.template.is_file():
            raise SpecError(f"{spec.path.name}: [files] template = {spec.template.name!r}: no such file")
        shutil.copyfile(spec.template, out / spec.template.name)
        written.append(out / spec.template.name)
    return written


def public_spec(spec: Spec) -> str:
    """The spec as TOML for a handout: answers instead of the reference, and no secret or solution."""
    one_problem: dict[str, dict[str, Any]] = {
        "functions": {"cost": spec.cost, "gradient": spec.gradient, "arguments": list(spec.arguments)},
        "parameters": {"shapes": [list(s) for s in spec.shapes], "names": list(spec.names), "layout": spec.layout},
        "data": {name: spec.data_files.get(name, spec.data[name].tolist()) for name in spec.data},
        "tolerance": {"cost": spec.cost_tolerance, "gradient": spec.gradient_tolerance},
        "scoring": {"cost": spec.cost_points, "gradient": dict(spec.block_points)},
    }
    tables: dict[str, dict[str, Any]] = {
        "assignment": {"name": spec.name, "title": spec.title},
        "reference": {"answers": ANSWERS},
        **({} if spec.problems else one_problem),
        "points": {"hidden": spec.hidden, "public": spec.public, "distribution": spec.distribution,
                   "scale": spec.scale},
        "limits": {"wall": spec.limits.wall, "cell": spec.limits.cell, "call": spec.limits.call,
                   "memory": spec.limits.memory, "processes": spec.limits.processes, "files": spec.limits.files,
                   "output": spec.limits.output},
        "integrity": {"forbidden": list(spec.forbidden), "slow_factor": spec.slow_factor},
        "files": {"template": spec.template.name if spec.template else None},
    }
    lines = [f"# The handout's spec for {spec.title}: check yourself with", f"#   gradwidget grade "
             f"{spec.path.name} YOUR-NOTEBOOK.ipynb --public --out check/"]
    for table, values in tables.items():
        lines += ["", f"[{table}]"]
        lines += [f"{key} = {_toml(value)}" for key, value in values.items() if value is not None]
    for problem in spec.problems:
        lines += ["", "[[problems]]"]
        lines += [f"{key} = {_toml(value)}" for key, value in _problem_table(problem).items() if value is not None]
    return "\n".join(lines) + "\n"


def _problem_table(problem: Problem) -> dict[str, Any]:
    """A problem as its ``[[problems]]`` entry."""
    roles = problem.roles
    derivative: Any = (sum(problem.points[item] for item in problem.derivative_items) if not roles.per_argument
                       else {name: problem.points[f"d{name}"] for name in problem.wrt})
    tolerance = {key: problem.tolerances[which] for key, which in ((roles.value_item, "value"),
                                                                   (roles.derivative_key, "derivative"))
                 if problem.tolerances[which] is not None}
    return {"name": problem.name, "kind": problem.kind, roles.value: problem.functions[0],
            roles.derivative: problem.functions[1],
            "reference": {roles.value: problem.reference[0], **({roles.derivative: problem.reference[1]}
                                                                if problem.reference[1] else {})},
            "arguments": {a.name: a.toml() for a in problem.arguments}, "wrt": list(problem.wrt),
            "scoring": {roles.value_item: problem.points[problem.value_item], roles.derivative_key: derivative},
            "tolerance": tolerance or None,
            "limits": {"call": problem.call_seconds} if problem.call_seconds else None}


def _toml(value: Any) -> str:
    """A TOML value: strings, numbers and booleans, and lists and tables of them (all a spec holds)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
