"""The instructor's reference: its answers to each problem at each check point.

The reference is trusted: it is imported in the grader's own process, never
in a worker. At each check point it gets the problem's arguments (fresh
copies for each call); for a layer or a VJP the point's generator then draws
the upstream gradient ``dout`` in the shape of the reference's output. A
handout carries no reference file, only its answers at the public points
(`save_answers`), so that students can check themselves.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .._options import InputError
from ._derivatives import float_array, read_derivatives
from ._points import check_points
from ._problems import Problem
from ._spec import Spec, SpecError

__all__ = ["PointAnswer", "ProblemAnswers", "load_answers", "problem_answers", "reference_function",
           "reference_module", "save_answers"]


@dataclass(frozen=True)
class PointAnswer:
    """The reference at one check point: the arguments, dout (or v), the value and each derivative block.

    ``seconds`` are its value function's and its derivative function's
    (NaN: not timed, as in a handout's saved answers).
    """

    arguments: list[Any]
    cotangent: np.ndarray | None
    value: np.ndarray
    derivatives: tuple[np.ndarray, ...]
    seconds: tuple[float, float] = (np.nan, np.nan)


@dataclass(frozen=True)
class ProblemAnswers:
    """One problem's reference answers at every check point."""

    problem: Problem
    points: tuple[PointAnswer, ...]

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype the reference computes its derivatives in (it sets the default tolerances)."""
        return np.result_type(*(d for p in self.points for d in p.derivatives)) if self.points \
            else np.dtype(np.float64)

    @property
    def pace(self) -> float:
        """How many times longer the reference's derivative function takes than its value function (NaN: unknown)."""
        times = np.array([p.seconds for p in self.points]).reshape(-1, 2)
        if not len(times) or not np.isfinite(times).all():
            return np.nan
        return float(times[:, 1].min() / max(float(times[:, 0].min()), 1e-9))  # fastest calls: the least noise


def reference_module(spec: Spec) -> ModuleType:
    """The instructor's reference file, imported (in the trusted grader's process only)."""
    if spec.reference_file is None:
        raise SpecError(f"{spec.path.name}: [reference] has answers at the public points only; grading at "
                        "hidden points (and validate) need [reference] file")
    file = spec.reference_file
    name = "gradwidget_reference_" + hashlib.sha256(str(file).encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(name, file)
    if module_spec is None or module_spec.loader is None:
        raise SpecError(f"{spec.path.name}: [reference] file = {file.name!r} cannot be imported")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(file.parent))  # the reference may import helpers beside it
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(file.parent))
    return module


def reference_function(spec: Spec, module: ModuleType, problem: Problem, which: int) -> Any:
    """The reference's value function (``which`` 0) or derivative function (1) of a problem, or None."""
    wanted = problem.reference[which]
    function = getattr(module, wanted, None) if wanted else None
    if wanted and not callable(function):
        role = (problem.roles.value, problem.roles.derivative)[which]
        key = f"[[problems]] {problem.name!r} {role}" if problem.name else f"[reference] {role}"
        raise SpecError(f"{spec.path.name}: {key} = {wanted!r}: {Path(module.__file__ or '').name} defines no "
                        f"function {wanted!r}")
    return function


def problem_answers(spec: Spec, seed: int, count: int) -> list[ProblemAnswers]:
    """Every problem's reference answers at ``count`` check points drawn from ``seed``."""
    module = reference_module(spec)
    found = []
    for index, problem in enumerate(spec.problems):
        first, second = (reference_function(spec, module, problem, which) for which in (0, 1))
        points = tuple(_evaluate(problem, first, second, arguments, rng)
                       for arguments, rng in check_points(problem, index, seed, count))
        found.append(ProblemAnswers(problem, points))
    return found


def _evaluate(problem: Problem, first: Callable[..., Any], second: Callable[..., Any] | None, arguments: list[Any],
              rng: np.random.Generator) -> PointAnswer:
    """The reference's value and derivatives at one point (each call on fresh copies of the arguments)."""
    def fresh() -> list[Any]:
        return [a.passed(value) for a, value in zip(problem.arguments, arguments)]

    where = f"the reference's {problem.functions[0]}" + (f" (problem {problem.name!r})" if problem.name else "")
    cotangent = None
    start = time.perf_counter()
    answer = first(*fresh())
    seconds = [time.perf_counter() - start, np.nan]
    if problem.link in ("cache", "pair"):
        if not (isinstance(answer, tuple) and len(answer) == 2):
            pair = "out, cache" if problem.link == "cache" else "value, gradients"
            raise SpecError(f"{where} must return a pair ({pair})")
        answer, derivatives = answer
    try:
        value = float_array(answer, where)
    except InputError as exc:
        raise SpecError(str(exc)) from None
    if problem.kind == "gradient":
        if value.size != 1:
            raise SpecError(f"{where} must return one number; it returned shape {value.shape}")
        value = value.reshape(())
    start = time.perf_counter()
    if problem.link == "cache":
        cotangent = rng.normal(size=value.shape)
        assert second is not None
        derivatives = second(cotangent.copy(), derivatives)
    elif problem.link == "cotangent":
        cotangent = rng.normal(size=value.shape)
        assert second is not None
        derivatives = second(*fresh(), cotangent.copy())
    elif problem.link == "same":
        assert second is not None
        derivatives = second(*fresh())
    seconds[1] = time.perf_counter() - start
    where = problem.heading
    try:
        read = read_derivatives(problem, arguments, derivatives, f"the reference's {problem.describe()}"
                                if problem.name else "the reference's gradient")
    except InputError as exc:
        raise SpecError(f"{where}{exc}") from None
    if read.transposed:
        raise SpecError(f"{where}the reference's gradient comes back transposed for {', '.join(read.transposed)}")
    if read.faults:
        raise SpecError(f"{where}{next(iter(read.faults.values()))[1]}")
    if read.mismatched:
        m = next(iter(read.mismatched.values()))
        raise SpecError(f"{where}the reference's {problem.describe()} returned shape {m.returned} for {m.block}, "
                        f"which has shape {m.expected}")
    return PointAnswer(arguments, cotangent, value, tuple(read.arrays), (seconds[0], seconds[1]))


def save_answers(answers: list[ProblemAnswers], path: Path) -> None:
    """The answers as an .npz of plain arrays (a handout's ``[reference] answers``)."""
    arrays: dict[str, np.ndarray] = {}
    for j, problem in enumerate(answers):
        for k, point in enumerate(problem.points):
            arrays[f"q{j}_p{k}_value"] = point.value
            arrays.update({f"q{j}_p{k}_d{i}": d for i, d in enumerate(point.derivatives)})
            arrays.update({f"q{j}_p{k}_a{i}": a for i, a in enumerate(point.arguments) if isinstance(a, np.ndarray)})
            if point.cotangent is not None:
                arrays[f"q{j}_p{k}_cotangent"] = point.cotangent
    np.savez(path, **arrays)  # type: ignore[arg-type]


def load_answers(spec: Spec, seed: int, count: int) -> list[ProblemAnswers]:
    """Read ``[reference] answers``, checking that they are for this spec's public points."""
    assert spec.answers_file is not None
    found = []
    with np.load(spec.answers_file, allow_pickle=False) as saved:
        for j, problem in enumerate(spec.problems):
            points = []
            for k, (arguments, _) in enumerate(check_points(problem, j, seed, count)):
                try:
                    same = all(np.array_equal(saved[f"q{j}_p{k}_a{i}"], a) for i, a in enumerate(arguments)
                               if isinstance(a, np.ndarray))
                    point = PointAnswer(arguments, saved[f"q{j}_p{k}_cotangent"] if problem.link in (
                        "cache", "cotangent") else None, saved[f"q{j}_p{k}_value"], tuple(
                        saved[f"q{j}_p{k}_d{i}"] for i in range(len(problem.blocks))))
                except KeyError:
                    same = False
                if not same:
                    raise SpecError(f"{spec.path.name}: [reference] answers = {spec.answers_file.name!r} are not "
                                    "for this spec's public points (was the spec changed after the handout was "
                                    "made?)")
                points.append(point)
            found.append(ProblemAnswers(problem, tuple(points)))
    return found
