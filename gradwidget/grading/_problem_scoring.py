"""Scoring one problem of a many-problem spec: the student's value and derivatives against the reference's.

At each check point the value (a forward's output, a cost) and each
derivative item (``dx``, ``dw``, a Jacobian) agree with the reference's or
not, entry by entry within the tolerance. Each item earns its points times
the share of points where it agrees. Where a derivative disagrees, the
checker's own diagnoses explain how, worded against the reference: the
shapes a backward returned (a broadcast not summed, a transpose, gradients
swapped), whether it is linear in dout (from one more backward call at twice
dout), and the patterns of layer bugs (a wrong axis, a missing path, the
gradient from the next time step dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._array_checks import output_layout
from .._diagnose import diagnose
from .._evidence import Contract, Evidence, Subject
from .._noise import NoiseModel
from .._options import InputError
from .._params import Layout, ShapeMismatch, flatten
from .._result import CheckResult
from .._verdict import BROADCAST, Diagnosis, Status
from . import _worker as w
from ._outcome import ProblemOutcome
from ._problem_answers import ProblemAnswers, derivative_arrays
from ._problems import Problem

__all__ = ["LINEARITY", "Part", "score_problem"]

LINEARITY = 1e-6
"""A backward whose answer at 2 dout differs from twice its answer at dout by more than this (relative) is not linear.

Notes
-----
The two answers round differently, by about ``sqrt(k) * u`` relative for k
terms in a sum; 1e-6 leaves that far below, and a backward that squares,
clips or ignores dout far above.
"""


@dataclass(frozen=True)
class Part:
    """One problem's feedback: what went wrong with its calls, how it differs from the reference, and where.

    Attributes
    ----------
    problem : str
        The problem's name.
    functions : str
        The student's functions (``affine_forward and affine_backward``).
    notes : tuple of str
        Calls that failed, raised or returned what cannot be used.
    diagnoses : tuple of Diagnosis
    comparison : CheckResult or None
        The derivatives against the reference's at one check point (heatmaps).
    """

    problem: str
    functions: str
    notes: tuple[str, ...]
    diagnoses: tuple[Diagnosis, ...]
    comparison: CheckResult | None


@dataclass(frozen=True)
class _Point:
    """One check point's comparison: agreement per item, and what the derivatives came back as."""

    value_ok: bool
    value_differs: bool  # it came back, in the reference's shape, with other values
    derivative_ok: np.ndarray
    derivatives: list[np.ndarray] | None
    findings: dict[str, tuple[str, str]]
    shape_diagnoses: tuple[Diagnosis, ...] = ()
    mismatched: dict[str, ShapeMismatch] = field(default_factory=dict)


def score_problem(problem: Problem, answers: ProblemAnswers, outcome: ProblemOutcome, tolerances: tuple[float, float]
                  ) -> tuple[list[tuple[str, float, int, int]], Part, float | None]:
    """Items (name, points, agreed, checked), the feedback, and how closely right derivatives agree.

    The last is the median relative error of the derivatives when every one
    agrees at every point (None otherwise): far above rounding, it suggests
    finite differences.
    """
    count = len(answers.points)
    notes = call_notes(problem.functions, outcome.calls, outcome.call_errors)
    if outcome.gave_up:
        notes.append(f"{outcome.gave_up.replace(' (over time)', '')} went on past its time limit: the problem's "
                     "other calls were not made")
    elif outcome.ended:
        notes.append(f"the process calling {problem.describe()} ended: {outcome.ended}; its calls after that "
                     "were not made")
    points = [_compare(problem, answers, outcome, k, tolerances, notes) for k in range(count)]
    value_agreed = sum(p.value_ok for p in points)
    differs = sum(p.value_differs for p in points)
    if differs:
        what = "output" if problem.value_item == "forward" else problem.value_item
        notes.append(f"{problem.functions[0]}'s {what} differs from the reference's at {differs} of {count} check "
                     "points")
    derivative_agreed = np.sum([p.derivative_ok for p in points], axis=0) if points else np.zeros(0)
    items = [(f"{problem.name}.{problem.value_item}", problem.points[problem.value_item], int(value_agreed), count)]
    items += [(f"{problem.name}.{item}", problem.points[item], int(derivative_agreed[i]), count)
              for i, item in enumerate(problem.derivative_items)]
    comparison = _comparison(problem, answers, outcome, points, tolerances[1])
    diagnoses = tuple(comparison.diagnoses) if comparison is not None else ()
    diagnoses += tuple(dict.fromkeys(d for p in points for d in p.shape_diagnoses if d not in diagnoses))
    return items, Part(problem.name, problem.describe(), tuple(notes), diagnoses, comparison), \
        _agreement(answers, points)


def call_notes(names: tuple[str | None, ...], calls: np.ndarray, errors: np.ndarray) -> list[str]:
    """What went wrong with each named function's calls, once per kind of failure."""
    notes = []
    for which, name in enumerate(names):
        if name is None:
            continue
        codes, messages = calls[:, which], errors[:, which]
        if codes.size and np.all(codes == w.CALL_MISSING):
            notes.append(f"{messages[0]}: define it in the notebook (did the cell that defines it run?)")
            continue
        for code, verb in ((w.RAISED, "raised"), (w.TIMEOUT, "was stopped:"), (w.CALL_BAD_VALUE, "returned"),
                           (w.CALL_SKIPPED, "was not called:")):
            failing = np.flatnonzero(codes == code)
            if failing.size:
                notes.append(f"{name} {verb} {messages[failing[0]]} (at {failing.size} of {codes.size} check "
                             "points)")
    return notes


def _entry_tolerance(reference: np.ndarray, tolerance: float) -> np.ndarray:
    """Each entry's tolerance: ``tolerance`` relative to the entry plus the array's RMS."""
    scale = max(float(np.sqrt(np.mean(reference.astype(np.float64) ** 2))) if reference.size else 0.0, 1e-12)
    return tolerance * (np.abs(reference.astype(np.float64)) + scale)


def _close(found: Any, reference: np.ndarray, tolerance: float) -> np.ndarray:
    """Entry by entry, within its tolerance of the reference."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.abs(found - reference) <= _entry_tolerance(reference, tolerance)


def _compare(problem: Problem, answers: ProblemAnswers, outcome: ProblemOutcome, k: int,
             tolerances: tuple[float, float], notes: list[str]) -> _Point:
    reference = answers.points[k]
    value = outcome.values[k] if outcome.calls[k, 0] == w.OK else None
    same_shape = value is not None and value.shape == reference.value.shape
    value_ok = same_shape and bool(_close(value, reference.value, tolerances[0]).all())
    if value is not None and value.shape != reference.value.shape:
        _note(notes, f"{problem.functions[0]} returned shape {value.shape}; the reference's has shape "
                     f"{reference.value.shape}")
    derivative_ok = np.zeros(len(problem.derivative_items), bool)
    parts = outcome.derivatives[k] if outcome.calls[k, 1] == w.OK else None
    if parts is None:
        return _Point(value_ok, same_shape and not value_ok, derivative_ok, None, {})
    try:
        arrays, findings, mismatched = derivative_arrays(problem, reference.arguments, parts,
                                                         problem.functions[1] or problem.functions[0], strict=False)
    except InputError as exc:
        _note(notes, str(exc))
        return _Point(value_ok, same_shape and not value_ok, derivative_ok, None, {})
    shape_diagnoses = []
    for i, (name, array, expected) in enumerate(zip(problem.wrt, arrays, reference.derivatives)):
        if array.shape != expected.shape:
            summed = _summed_elsewhere(name, array, expected, reference.cotangent)
            if summed is not None:
                shape_diagnoses.append(summed)
            else:
                _note(notes, f"{problem.derivative_items[i]} has shape {array.shape}; the reference's has shape "
                             f"{expected.shape}")
            continue
        shape_ok = name not in mismatched or mismatched[name].reshaped  # right values in another shape: a warning
        derivative_ok[i] = bool(_close(array, expected, tolerances[1]).all()) and name not in findings and shape_ok
    return _Point(value_ok, same_shape and not value_ok, derivative_ok, arrays, findings, tuple(shape_diagnoses),
                  mismatched)


def _summed_elsewhere(name: str, found: np.ndarray, expected: np.ndarray, dout: np.ndarray | None
                      ) -> Diagnosis | None:
    """A bias gradient that is dout summed over other axes than the reference's (so of another length)."""
    if dout is None or found.ndim != 1 or expected.ndim != 1 or dout.ndim < 2:
        return None

    def axes_summed(array: np.ndarray) -> tuple[int, ...] | None:
        for keep in range(dout.ndim):
            kept = np.moveaxis(dout, keep, 0).reshape(dout.shape[keep], -1).sum(axis=1)
            if kept.shape == array.shape and np.allclose(kept, array, rtol=1e-6, atol=1e-12):
                return tuple(k for k in range(dout.ndim) if k != keep)
        return None

    theirs, ours = axes_summed(found), axes_summed(expected)
    if theirs is None or ours is None:
        return None
    said = [axes[0] if len(axes) == 1 else axes for axes in (theirs, ours)]
    return Diagnosis(BROADCAST, f"d{name} is dout summed over axis {said[0]}; the reference sums over axis "
                     f"{said[1]} (`dout.sum(axis={said[1]})`: {name} is broadcast along that axis).", name)


def _note(notes: list[str], note: str) -> None:
    if note not in notes:
        notes.append(note)


def _comparison(problem: Problem, answers: ProblemAnswers, outcome: ProblemOutcome, points: list[_Point],
                tolerance: float) -> CheckResult | None:
    """The derivatives against the reference's at the first point where they disagree (else the first one)."""
    measured = [k for k, p in enumerate(points) if p.derivatives is not None]
    if not measured:
        return None
    k = next((k for k in measured if not points[k].derivative_ok.all()), measured[0])
    reference, found = answers.points[k], points[k]
    assert found.derivatives is not None
    names = problem.wrt if problem.roles.per_argument else problem.derivative_items
    by_name = {a.name: v for a, v in zip(problem.arguments, reference.arguments)}
    kept = [i for i, (a, d) in enumerate(zip(found.derivatives, reference.derivatives)) if a.shape == d.shape]
    if not kept:  # every derivative in another shape: the notes say which
        return None
    layout = flatten({names[i]: np.zeros(reference.derivatives[i].shape) for i in kept})[0]
    student = np.concatenate([found.derivatives[i].astype(np.float64).ravel() for i in kept])
    expected = np.concatenate([reference.derivatives[i].astype(np.float64).ravel() for i in kept])
    entry_tolerance = np.concatenate([_entry_tolerance(reference.derivatives[i], tolerance).ravel() for i in kept])
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.abs(student - expected) <= entry_tolerance
    point = (np.concatenate([np.asarray(by_name[names[i]], np.float64).ravel() for i in kept])
             if problem.roles.per_argument else np.zeros(layout.size))
    evidence = Evidence(layout, point, "reference", student, expected, np.full(layout.size, np.nan), entry_tolerance,
                        np.where(ok, int(Status.OK), int(Status.WRONG)).astype(np.int8),
                        NoiseModel(float(np.finfo(np.float64).eps), 1.0), against="reference",
                        subject=_subject(problem, reference.value, reference.cotangent),
                        contract=_contract(problem, found, outcome.probe, reference.arguments, [names[i] for i in kept],
                                           first=k == 0),
                        mismatched={n: m for n, m in found.mismatched.items() if n in [names[i] for i in kept]})
    return CheckResult(evidence, diagnose(evidence))


def _subject(problem: Problem, value: np.ndarray, cotangent: np.ndarray | None) -> Subject:
    first, second = problem.functions
    outputs: Layout | None = output_layout(np.zeros(value.shape), first) if value.ndim else None
    return Subject("loss" if problem.kind == "gradient" else problem.kind, first, second or first, "the arguments",
                   f"{problem.name}: {problem.describe()} against the reference", outputs=outputs,
                   cotangent=None if cotangent is None else cotangent.astype(np.float64).ravel())


def _contract(problem: Problem, found: _Point, probe: Any, arguments: list[Any], compared: list[str],
              first: bool) -> Contract:
    """The shapes' findings for the blocks compared, and, at the first point, linearity in dout.

    Linearity comes from the backward's answer at twice the first point's dout.
    """
    contract = Contract(faults={name: fault for name, fault in found.findings.items() if name in compared})
    if not first or probe is None or found.derivatives is None or problem.link != "cache":
        return contract
    try:
        doubled, *_ = derivative_arrays(problem, arguments, probe, problem.functions[1] or "")
    except InputError:
        return contract
    for name, once, twice in zip(problem.wrt, found.derivatives, doubled):
        if name not in compared or once.shape != twice.shape or not np.isfinite(once).all() or not np.any(once):
            continue
        if np.array_equal(once, twice):
            contract.constant_in_dout.append(name)
            contract.ignores_dout[name] = 0.5
            continue
        miss = float(np.linalg.norm(twice - 2 * once) / np.linalg.norm(2 * once))
        if miss > LINEARITY:
            contract.ignores_dout[name] = miss
    return contract


def _agreement(answers: ProblemAnswers, points: list[_Point]) -> float | None:
    """The median relative error of the derivatives, when every one agrees at every point."""
    measured = [(p, a) for p, a in zip(points, answers.points) if p.derivatives is not None]
    if len(measured) < len(points) or not measured or not all(p.derivative_ok.all() for p, _ in measured):
        return None
    return float(np.median([np.linalg.norm(found - expected) / max(float(np.linalg.norm(expected)),
                                                                   np.finfo(float).tiny)
                            for p, a in measured for found, expected in zip(p.derivatives or [], a.derivatives)]))
