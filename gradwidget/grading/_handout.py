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

import numpy as np

from ._points import public_seed
from ._problems import Problem
from ._reference import problem_answers, save_answers
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
    save_answers(problem_answers(spec, public_seed(spec), spec.public), out / ANSWERS)
    (out / spec.path.name).write_text(public_spec(spec), encoding="utf-8")
    for relative in spec.data_files:
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
    tables: dict[str, dict[str, Any]] = {
        "assignment": {"name": spec.name, "title": spec.title},
        "reference": {"answers": ANSWERS},
        **({} if spec.named else _one_problem_tables(spec)),
        "points": {"hidden": spec.hidden, "public": spec.public, **_draw(spec)},
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
    for problem in spec.problems if spec.named else ():
        lines += ["", "[[problems]]"]
        lines += [f"{key} = {_toml(value)}" for key, value in _problem_table(problem).items() if value is not None]
    return "\n".join(lines) + "\n"


def _one_problem_tables(spec: Spec) -> dict[str, dict[str, Any]]:
    """The one problem of a spec of [functions] and [parameters], as those tables."""
    (problem,) = spec.problems
    theta, *passed = problem.arguments
    data = [*passed, *spec.other_data]
    return {
        "functions": {"cost": problem.functions[0], "gradient": problem.functions[1],
                      "arguments": [a.name for a in passed]},
        "parameters": {"shapes": [list(shape) for _, shape in theta.blocks], "names": [n for n, _ in theta.blocks],
                       "layout": theta.layout},
        "data": {a.name: a.file or np.asarray(a.value).tolist() for a in data},
        "tolerance": {"cost": problem.tolerances["value"], "gradient": problem.tolerances["derivative"]},
        "scoring": {"cost": problem.points["cost"], "gradient": {n: problem.points[n] for n, _ in theta.blocks}},
    }


def _draw(spec: Spec) -> dict[str, Any]:
    """How a parameter vector is drawn (a spec of named problems draws each argument its own way)."""
    theta = spec.problems[0].arguments[0]
    return {} if spec.named else {"distribution": theta.distribution, "scale": theta.scale}


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
