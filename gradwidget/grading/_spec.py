"""The assignment spec: one TOML file an instructor writes once.

`load_spec` reads it into a frozen `Spec`; every mistake is a `SpecError`
that names the file, the table and the key at fault and says what the key
accepts. `SPEC_KEYS` documents every key (the README and the docs list it).
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._problems import DISTRIBUTIONS, LAYOUTS, PROBLEM_KEYS, Argument, Problem, parse_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["PARAMETERS", "SPEC_KEYS", "Limits", "Spec", "SpecError", "load_spec"]

PARAMETERS = "[parameters]"  # the parameter vector's argument: a name no [data] entry can have
DEFAULT_FORBIDDEN = ("torch", "jax", "autograd", "tensorflow", "numdifftools")
SIZE_UNITS = {"": 1, "B": 1, "KB": 10 ** 3, "MB": 10 ** 6, "GB": 10 ** 9, "KIB": 2 ** 10, "MIB": 2 ** 20,
              "GIB": 2 ** 30}

SPEC_KEYS: dict[str, str] = {
    "assignment.name": "required; a short name, part of how every check point is drawn",
    "assignment.title": "shown in feedback (default: the name)",
    "functions.cost": "required; the name of the student's cost function, called as cost(theta, *arguments)",
    "functions.gradient": "the name of the student's gradient function; leave it out when the cost function "
                          "returns (cost, gradient)",
    "functions.arguments": "names of [data] entries passed after theta, in order (default: none)",
    "reference.file": "the instructor's implementation (a .py file, never shown to student code)",
    "reference.cost": "its cost function (default: functions.cost)",
    "reference.gradient": "its gradient function (default: functions.gradient)",
    "reference.answers": "instead of file: the reference's values at the public points (a handout's .npz)",
    "parameters.shapes": "required; one shape per parameter block, e.g. [[10, 11], [10, 11], [1, 11]]",
    "parameters.names": "the blocks' names (default theta[0], theta[1], ...)",
    "parameters.layout": f"how theta reaches the student's functions: one of {', '.join(LAYOUTS)} "
                         "(default unrolled: one flat vector, row-major per block)",
    "data.<name>": "an argument: a .npy file (relative to the spec) or a literal number or list",
    "points.hidden": "check points per submission, drawn from the course secret (default 5)",
    "points.public": "check points for self-checks, the same for everyone (default 2)",
    "points.distribution": "uniform in [-scale, scale] or normal with sd scale (default uniform)",
    "points.scale": "default 0.12, the classic symmetry-breaking initialization",
    "points.secret": "env:NAME (an environment variable) or file:PATH (default env:GRADWIDGET_SECRET)",
    "tolerance.cost": "relative tolerance of the cost (default from the reference's dtype: 1e-8 for float64)",
    "tolerance.gradient": "relative tolerance of each gradient block, against its size (default 1e-6 for "
                          "float64)",
    "scoring.cost": "points for the cost (default 1)",
    "scoring.gradient": "points for the gradient, split equally among blocks, or a table of points per block "
                        "(default 1 per block)",
    "limits.wall": "seconds for the whole submission (default 120)",
    "limits.cell": "seconds per code cell (default 30)",
    "limits.call": "seconds per call of a student function (default 30)",
    "limits.cpu": "CPU seconds (default: limits.wall)",
    "limits.memory": "address space, e.g. \"2 GiB\" (default 4 GiB)",
    "limits.processes": "processes and threads (default 64)",
    "limits.files": "open files (default 256)",
    "limits.output": "what the worker may write: its folder's size and the largest file (default 64 MiB)",
    "integrity.forbidden": f"modules whose import is flagged (default {list(DEFAULT_FORBIDDEN)})",
    "integrity.slow_factor": "flag a derivative this many times slower, next to its value function, than the "
                             "reference's is (a gradient next to its cost; default 20)",
    "files.template": "the notebook students start from (handouts; validate expects it to score 0)",
    "files.solution": "a right submission (validate expects full marks)",
    **PROBLEM_KEYS,
}
ONE_PROBLEM_TABLES = ("functions", "parameters", "data", "tolerance", "scoring")


class SpecError(ValueError):
    """The assignment spec has a mistake; the message names the file and the key."""


@dataclass(frozen=True)
class Limits:
    """What one submission's worker may use."""

    wall: float = 120.0
    cell: float = 30.0
    call: float = 30.0
    cpu: float | None = None
    memory: int = 4 * 2 ** 30
    processes: int = 64
    files: int = 256
    output: int = 64 * 2 ** 20

    @property
    def cpu_seconds(self) -> int:
        return math.ceil(self.cpu if self.cpu is not None else self.wall)


@dataclass(frozen=True)
class Spec:
    """A loaded assignment spec (paths resolved against the spec's folder).

    Attributes
    ----------
    problems : tuple of Problem
        What is graded: named problems, or the one unnamed problem of a spec
        of ``[functions]`` and ``[parameters]``.
    other_data : tuple of Argument
        ``[data]`` files no function is called with: placed beside the
        notebook all the same.
    """

    path: Path
    name: str
    title: str
    reference_file: Path | None
    answers_file: Path | None
    hidden: int
    public: int
    secret: str
    limits: Limits
    forbidden: tuple[str, ...]
    slow_factor: float
    template: Path | None
    solution: Path | None
    problems: tuple[Problem, ...]
    other_data: tuple[Argument, ...] = ()

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def named(self) -> bool:
        """A spec of ``[[problems]]`` (feedback and columns name each problem)."""
        return any(problem.name for problem in self.problems)

    @property
    def data_files(self) -> dict[str, Argument]:
        """Every data file the notebook may load (relative to the spec) and the argument that holds it."""
        arguments = [*(a for problem in self.problems for a in problem.arguments), *self.other_data]
        return {a.file: a for a in arguments if a.kind == "data" and a.file}

    @property
    def items(self) -> tuple[str, ...]:
        """What is scored: each problem's items (``affine.dx``; ``cost`` and each block's name unnamed)."""
        return tuple(item for problem in self.problems for item in problem.items)

    @property
    def max_score(self) -> float:
        return sum(sum(problem.points.values()) for problem in self.problems)


class _Table:
    """One table of the TOML file, handing out its keys with checks that name them."""

    def __init__(self, path: Path, name: str, values: Any, label: str | None = None) -> None:
        self.label = label or f"[{name}]"  # how messages name the table
        if not isinstance(values, dict):
            raise SpecError(f"{path.name}: {self.label} must be a table")
        self.path, self.name, self.values = path, name, values
        self.used: set[str] = set()

    def error(self, key: str, accepts: str, value: Any = None) -> SpecError:
        got = "" if value is None else f", got {value!r}"
        return SpecError(f"{self.path.name}: {self.label} {key} must be {accepts}{got}")

    def get(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.values:
            if required:
                raise SpecError(f"{self.path.name}: {self.label} needs the key {key!r} "
                                f"({SPEC_KEYS.get(f'{self.name}.{key}', '')})")
            return default
        return self.values[key]

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self.get(key, default, required=required)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self.error(key, "a non-empty string", value)
        return value

    def identifier(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self.text(key, default, required=required)
        if value is not None and not value.isidentifier():
            raise self.error(key, "a Python name", value)
        return value

    def number(self, key: str, default: float | None, *, low: float = 0.0, whole: bool = False,
               required: bool = False) -> Any:
        value = self.get(key, default, required=required)
        if value is None:
            return None
        kind = int if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or value < low:
            raise self.error(key, f"a {'whole ' if whole else ''}number >= {low:g}", value)
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.get(key, default)
        if value not in choices:
            raise self.error(key, f"one of {', '.join(choices)}", value)
        return str(value)

    def file(self, key: str, *, required: bool = False, must_exist: bool = True) -> Path | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        found = (self.path.parent / value).resolve()
        if must_exist and not found.is_file():
            raise SpecError(f"{self.path.name}: {self.label} {key} = {value!r}: no such file ({found})")
        return found

    def close(self) -> None:
        unknown = sorted(set(self.values) - self.used)
        if unknown:
            known = sorted(k.split(".", 1)[1] for k in SPEC_KEYS if k.startswith(f"{self.name}."))
            raise SpecError(f"{self.path.name}: {self.label} has an unknown key {unknown[0]!r}; "
                            f"it takes {', '.join(known)}")


def load_spec(path: str | Path) -> Spec:
    """Read and check an assignment spec.

    Raises
    ------
    SpecError
        Naming the file, table and key at fault.
    """
    path = Path(path).resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read the spec {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path.name} is not valid TOML: {exc}") from None
    known = {key.split(".")[0] for key in SPEC_KEYS}
    for table in raw:
        if table not in known:
            raise SpecError(f"{path.name}: unknown table [{table}]; the tables are {', '.join(sorted(known))}")
    other_data: tuple[Argument, ...]
    if "problems" in raw:
        mixed = [name for name in ONE_PROBLEM_TABLES if name in raw]
        if mixed:
            raise SpecError(f"{path.name}: [{mixed[0]}] belongs to a one-problem spec; with [[problems]], each "
                            "problem has its own functions, arguments, tolerance and scoring")
        t = {name: _Table(path, name, raw.get(name, {})) for name in sorted(known - {"problems",
                                                                                 *ONE_PROBLEM_TABLES})}
        problems, other_data = _named_problems(path, raw["problems"]), ()
        _draw_of(t["points"])  # a parameter vector's; no [[problems]] argument uses them
    else:
        t = {name: _Table(path, name, raw.get(name, {})) for name in sorted(known - {"problems"})}
        problem, other_data = _one_problem(t)
        problems = (problem,)
    assignment, reference, points = t["assignment"], t["reference"], t["points"]
    name = assignment.text("name", required=True)
    reference_file, answers = reference.file("file"), reference.file("answers")
    if reference_file is None and answers is None:
        raise SpecError(f"{path.name}: [reference] needs the key 'file' (the instructor's implementation) or "
                        "'answers' (its values at the public points)")
    spec = Spec(
        path=path, name=name, title=assignment.text("title", name), reference_file=reference_file,
        answers_file=answers, hidden=points.number("hidden", 5, low=1, whole=True),
        public=points.number("public", 2, low=0, whole=True), secret=_secret(points), limits=_limits(t["limits"]),
        forbidden=_forbidden(t["integrity"]), slow_factor=_positive(t["integrity"], "slow_factor", 20.0),
        template=t["files"].file("template", must_exist=False),  # needed by validate and handout only
        solution=t["files"].file("solution", must_exist=False), problems=problems, other_data=other_data)
    for table in t.values():
        table.close()
    return spec


def _one_problem(t: dict[str, _Table]) -> tuple[Problem, tuple[Argument, ...]]:
    """A spec of ``[functions]`` and ``[parameters]`` as one unnamed problem of kind gradient; the data not passed."""
    functions, parameters, reference = t["functions"], t["parameters"], t["reference"]
    cost = functions.identifier("cost", required=True)
    gradient = functions.identifier("gradient")
    shapes = _shapes(parameters)
    names = _names(parameters, len(shapes))
    layout = parameters.choice("layout", "unrolled", LAYOUTS)
    if layout == "array" and len(shapes) != 1:
        raise parameters.error("layout", "unrolled, list or dict for more than one block", layout)
    distribution, scale = _draw_of(t["points"])
    theta = Argument(PARAMETERS, "parameters", distribution=distribution, scale=scale,
                     blocks=tuple(zip(names, shapes)), layout=layout)
    data = _data(t["data"])
    passed = _arguments(functions, data)
    tolerance = t["tolerance"]
    problem = Problem(
        name="", kind="gradient", functions=(cost, gradient),
        reference=(reference.identifier("cost", cost), reference.identifier("gradient", gradient)),
        arguments=(theta, *(data[name] for name in passed)), wrt=(PARAMETERS,),
        points={"cost": t["scoring"].number("cost", 1.0), **_block_points(t["scoring"], names)},
        tolerances={"value": _optional_positive(tolerance, "cost"),
                    "derivative": _optional_positive(tolerance, "gradient")}, call_seconds=None)
    return problem, tuple(argument for name, argument in data.items() if name not in passed)


def _named_problems(path: Path, entries: Any) -> tuple[Problem, ...]:
    """Each ``[[problems]]`` entry, read and checked."""
    if not isinstance(entries, list) or not entries:
        raise SpecError(f"{path.name}: problems must be an array of tables ([[problems]]), one per problem")
    problems: list[Problem] = []
    for index, entry in enumerate(entries):
        table = _Table(path, "problems", entry, f"[[problems]] number {index + 1}")
        name = table.values.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str):
            table.label = f"[[problems]] {name!r}"
        problem = parse_problem(table, functools.partial(_load_array, table))
        if problem.name in {p.name for p in problems}:
            raise table.error("name", "different from every other problem's name", problem.name)
        table.close()
        problems.append(problem)
    return tuple(problems)


def _draw_of(points: _Table) -> tuple[str, float]:
    """How a parameter vector is drawn: ``[points] distribution`` and ``scale``."""
    return points.choice("distribution", "uniform", DISTRIBUTIONS), _positive(points, "scale", 0.12)


def _positive(table: _Table, key: str, default: float) -> float:
    value = table.number(key, default)
    if value <= 0:
        raise table.error(key, "a number > 0", value)
    return float(value)


def _optional_positive(table: _Table, key: str) -> float | None:
    return None if table.get(key) is None else _positive(table, key, 1.0)


def _shapes(table: _Table) -> tuple[tuple[int, ...], ...]:
    value = table.get("shapes", required=True)
    accepts = "a non-empty list of shapes such as [[10, 11], [1, 11]] (whole numbers >= 1)"
    if not isinstance(value, list) or not value:
        raise table.error("shapes", accepts, value)
    shapes = []
    for shape in value:
        dims = [shape] if isinstance(shape, int) else shape
        if (not isinstance(dims, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                                   for d in dims)):
            raise table.error("shapes", accepts, value)
        shapes.append(tuple(dims))
    return tuple(shapes)


def _names(table: _Table, count: int) -> tuple[str, ...]:
    value = table.get("names", [f"theta[{i}]" for i in range(count)])
    if (not isinstance(value, list) or len(value) != count or len(set(value)) != count
            or not all(isinstance(n, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\[\]]*", n) for n in value)):
        raise table.error("names", f"a list of {count} distinct names (letters, digits, _)", value)
    return tuple(value)


def _data(table: _Table) -> dict[str, Argument]:
    data = {}
    for key in list(table.values):
        table.used.add(key)
        value = table.values[key]
        if not key.isidentifier():
            raise table.error(key, "named with a Python name")
        if isinstance(value, str):
            data[key] = Argument(key, "data", value=_load_array(table, key, value), file=value)
        else:
            array = np.asarray(value)
            if array.dtype.kind not in "biuf" or isinstance(value, bool):
                raise table.error(key, "a .npy file name, a number, or a list of numbers", value)
            data[key] = Argument(key, "data", value=array)
    return data


def _load_array(table: _Table, key: str, value: str) -> np.ndarray:
    """A .npy file named in the spec (relative to it), read without pickles."""
    try:
        return np.load((table.path.parent / value).resolve(), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SpecError(f"{table.path.name}: {table.label} {key} = {value!r}: cannot load it as .npy ({exc})") \
            from None


def _arguments(table: _Table, data: Mapping[str, Argument]) -> tuple[str, ...]:
    value = table.get("arguments", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise table.error("arguments", "a list of names of [data] entries", value)
    missing = [v for v in value if v not in data]
    if missing:
        raise table.error("arguments", f"names of [data] entries; there is no [data] {missing[0]!r}", value)
    return tuple(value)


def _secret(table: _Table) -> str:
    value = table.text("secret", "env:GRADWIDGET_SECRET")
    if not re.fullmatch(r"(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)", value):
        raise table.error("secret", "env:NAME or file:PATH", value)
    return str(value)


def _block_points(table: _Table, names: tuple[str, ...]) -> dict[str, float]:
    value = table.get("gradient", float(len(names)))
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        missing = [n for n in names if n not in value]
        if unknown or missing or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                                         for v in value.values()):
            raise table.error("gradient", f"a number or a table of points >= 0 for each of {', '.join(names)}",
                              value)
        return {n: float(value[n]) for n in names}
    total = table.number("gradient", float(len(names)))
    return {n: float(total) / len(names) for n in names}


def _limits(table: _Table) -> Limits:
    defaults = Limits()
    return Limits(
        wall=_positive(table, "wall", defaults.wall), cell=_positive(table, "cell", defaults.cell),
        call=_positive(table, "call", defaults.call), cpu=_optional_positive(table, "cpu"),
        memory=_size(table, "memory", defaults.memory),
        processes=table.number("processes", defaults.processes, low=1, whole=True),
        files=table.number("files", defaults.files, low=16, whole=True),
        output=_size(table, "output", defaults.output))


def _size(table: _Table, key: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMG]i?B|B)?\s*", str(value), re.IGNORECASE)
    if not isinstance(value, str) or match is None:
        raise table.error(key, 'a size such as "2 GiB", "512 MiB" or a number of bytes', value)
    return int(float(match.group(1)) * SIZE_UNITS[(match.group(2) or "").upper()])


def _forbidden(table: _Table) -> tuple[str, ...]:
    value = table.get("forbidden", list(DEFAULT_FORBIDDEN))
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise table.error("forbidden", "a list of module names", value)
    return tuple(value)
