"""The reference's answers to each problem of a many-problem spec, at each check point.

A check point of a problem is its arguments, drawn from the point's own
generator (``[seed, problem, point]``), and, for a layer or a VJP, the
upstream gradient ``dout`` drawn in the shape of the reference's output. The
reference is trusted and runs here, in the grader's process; a handout holds
its answers at the public points instead (`save_problem_answers`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._options import InputError
from .._params import ShapeMismatch
from .._shapes import ReturnedGradients
from .._verdict import TRANSPOSE
from ._problems import Problem, draw_arguments
from ._reference import reference_function, reference_module
from ._spec import Spec, SpecError

__all__ = ["PointAnswer", "ProblemAnswers", "derivative_arrays", "load_problem_answers", "point_arguments",
           "problem_answers", "save_problem_answers"]


@dataclass(frozen=True)
class PointAnswer:
    """The reference at one check point: the arguments, dout (or v), the value and each derivative item."""

    arguments: list[Any]
    cotangent: np.ndarray | None
    value: np.ndarray
    derivatives: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class ProblemAnswers:
    """One problem's reference answers at every check point, and the dtype the reference computes in."""

    problem: Problem
    points: tuple[PointAnswer, ...]

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.result_type(*(a for p in self.points for a in (p.value, *p.derivatives))) if self.points \
            else np.dtype(np.float64)


def point_arguments(seed: int, index: int, problem: Problem, point: int) -> tuple[list[Any], np.random.Generator]:
    """The problem's arguments at a check point, and the generator that goes on to draw its dout."""
    rng = np.random.default_rng([seed, index, point])
    return draw_arguments(problem, rng), rng


def problem_answers(spec: Spec, seed: int, count: int) -> list[ProblemAnswers]:
    """Every problem's reference answers at ``count`` check points drawn from ``seed``."""
    module = reference_module(spec)
    found = []
    for index, problem in enumerate(spec.problems):
        roles = problem.roles
        first = reference_function(spec, module, f"[[problems]] {problem.name!r} {roles.value}",
                                   problem.reference[0])
        second = reference_function(spec, module, f"[[problems]] {problem.name!r} {roles.derivative}",
                                    problem.reference[1])
        points = []
        for k in range(count):
            arguments, rng = point_arguments(seed, index, problem, k)
            points.append(_evaluate(problem, first, second, arguments, rng))
        found.append(ProblemAnswers(problem, tuple(points)))
    return found


def _evaluate(problem: Problem, first: Callable[..., Any], second: Callable[..., Any] | None, arguments: list[Any],
              rng: np.random.Generator) -> PointAnswer:
    """The reference's value and derivatives at one point (each call on fresh copies of the arguments)."""
    def fresh() -> list[Any]:
        return [a.copy() if isinstance(a, np.ndarray) else a for a in arguments]

    where = f"the reference's {problem.functions[0]} (problem {problem.name!r})"
    cotangent = None
    answer = first(*fresh())
    if problem.link in ("cache", "pair"):
        if not (isinstance(answer, tuple) and len(answer) == 2):
            pair = "out, cache" if problem.link == "cache" else "value, gradients"
            raise SpecError(f"{where} must return a pair ({pair})")
        answer, derivatives = answer
    value = _float_array(answer, where)
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
    try:
        arrays, findings, mismatched = derivative_arrays(problem, arguments, derivatives,
                                                         f"the reference's {problem.describe()}")
    except InputError as exc:
        raise SpecError(f"problem {problem.name!r}: {exc}") from None
    if findings:
        raise SpecError(f"problem {problem.name!r}: {next(iter(findings.values()))[1]}")
    if mismatched:
        m = next(iter(mismatched.values()))
        raise SpecError(f"problem {problem.name!r}: the reference's {problem.describe()} returned shape "
                        f"{m.returned} for {m.block}, which has shape {m.expected}")
    return PointAnswer(arguments, cotangent, value, tuple(arrays))


def _float_array(value: Any, where: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise SpecError(f"{where} returned {type(value).__name__}, not numbers")
    return array.astype(np.result_type(array.dtype, np.float32))


def derivative_arrays(problem: Problem, arguments: Sequence[Any], answer: Any, who: str, strict: bool = True
                      ) -> tuple[list[np.ndarray], dict[str, tuple[str, str]], dict[str, ShapeMismatch]]:
    """The derivative items' arrays from what a backward (or gradient...) returned, and what had to be adapted.

    Per-argument derivatives go through `ReturnedGradients` (a dict keyed by
    the arguments' names, or ``d`` and the name, is taken in ``wrt`` order);
    a 2-D gradient returned transposed is turned back and named in the
    findings (code ``transpose``). A Jacobian, VJP or Hessian is one array.
    Raises `InputError` when nothing can be matched; with ``strict`` False,
    a gradient in a shape that cannot be matched is left as returned. The
    third part says which gradients came back in another shape.
    """
    if not problem.roles.per_argument:
        return [_float_array(answer, who)], {}, {}
    shapes = {a.name: np.shape(v) for a, v in zip(problem.arguments, arguments)}
    if isinstance(answer, dict):
        keys = [name if name in answer else f"d{name}" for name in problem.wrt]
        missing = [key for key in keys if key not in answer]
        if missing:
            raise InputError(f"{who} returned a dict without the key {missing[0]!r} (keys: "
                             f"{', '.join(map(str, answer))})")
        answer = tuple(answer[key] for key in keys)
    returned = ReturnedGradients(list(problem.wrt), [shapes[n] for n in problem.wrt], list(problem.floating), who,
                                 problem.functions[0], strict)
    arrays = returned.adapt(answer)
    findings = dict(returned.findings)
    for k, (name, array) in enumerate(zip(problem.wrt, arrays)):
        if array.shape != shapes[name] and array.shape == shapes[name][::-1]:  # a 2-D gradient returned transposed
            arrays[k] = array.T
            findings.setdefault(name, (TRANSPOSE, f"d{name} is the transpose of the reference's: return it in "
                                       f"{name}'s shape {shapes[name]}."))
    return [a.astype(np.result_type(a.dtype, np.float32)) for a in arrays], findings, dict(returned.mismatched)


def save_problem_answers(answers: list[ProblemAnswers], path: Path) -> None:
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


def load_problem_answers(spec: Spec, seed: int, count: int) -> list[ProblemAnswers]:
    """Read ``[reference] answers``, checking that they are for this spec's public points."""
    assert spec.answers_file is not None
    found = []
    with np.load(spec.answers_file, allow_pickle=False) as saved:
        for j, problem in enumerate(spec.problems):
            points = []
            for k in range(count):
                arguments, _ = point_arguments(seed, j, problem, k)
                try:
                    same = all(np.array_equal(saved[f"q{j}_p{k}_a{i}"], a) for i, a in enumerate(arguments)
                               if isinstance(a, np.ndarray))
                    point = PointAnswer(arguments, saved[f"q{j}_p{k}_cotangent"] if problem.link in (
                        "cache", "cotangent") else None, saved[f"q{j}_p{k}_value"], tuple(
                        saved[f"q{j}_p{k}_d{i}"] for i in range(len(problem.derivative_items))))
                except KeyError:
                    same = False
                if not same:
                    raise SpecError(f"{spec.path.name}: [reference] answers = {spec.answers_file.name!r} are not "
                                    "for this spec's public points (was the spec changed after the handout was "
                                    "made?)")
                points.append(point)
            found.append(ProblemAnswers(problem, tuple(points)))
    return found
