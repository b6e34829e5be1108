"""Scores, feedback and integrity flags: a worker's numbers against the reference's, problem by problem.

At each check point a problem's value (a cost, a forward's output) and each
derivative item (a gradient block, ``dx``, a Jacobian) agree with the
reference's or not, entry by entry within the tolerance; each item earns its
points times the share of check points where it agrees. Where a derivative
disagrees, the checker's own diagnoses explain how, worded against the
reference ("your gradient is 0.025 x the reference's"). Flags are for the
instructor to review; they never change a score.
"""

from __future__ import annotations

import hashlib
import signal
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._options import InputError
from .._params import ShapeMismatch
from .._result import CheckResult
from .._verdict import Diagnosis
from ._comparison import comparison, entry_tolerance, summed_elsewhere
from ._copies import NAMED_CAUSES
from ._derivatives import Derivatives, read_derivatives
from ._problems import Problem
from ._reference import ProblemAnswers
from ._spec import Spec
from .sandbox import Outcome, ProblemOutcome, Run
from .sandbox import _worker as w

__all__ = ["Graded", "Item", "Part", "score", "tolerances", "unscored"]

DEFAULT_TOLERANCES = {8: (1e-8, 1e-6), 4: (1e-4, 1e-3), 2: (1e-2, 5e-2)}  # reference's float's bytes: value, derivative
ANALYTIC_LEVEL = 1e3
"""Two analytic derivatives of the same function agree to within this many ulps of the derivative's size.

Notes
-----
Summing the same terms in another order changes a float64 result by about
``sqrt(k) * u`` relative for k terms; the backward passes of a course
(thousands of terms) stay far below 1e3 ulps. A finite-difference derivative
cannot get there: its truncation and rounding leave about ``u**(2/3)``
relative (1e-11 in float64) at the best central step, usually far more.
"""
SLOW_FLOOR = 0.002  # seconds: a derivative faster than this is never flagged slow (below it, timer noise)


@dataclass(frozen=True)
class Item:
    """One scored item: a value or a derivative block of a problem."""

    name: str
    max_points: float
    agreed: int
    checked: int

    @property
    def points(self) -> float:
        return self.max_points * self.agreed / self.checked if self.checked else 0.0


@dataclass(frozen=True)
class Part:
    """One problem's feedback: what went wrong with its calls, how it differs from the reference, and where.

    Attributes
    ----------
    problem : str
        The problem's name (empty for the one problem of a spec of
        ``[functions]`` and ``[parameters]``).
    functions : str
        The student's functions (``affine_forward and affine_backward``).
    notes : tuple of str
        Calls that failed, raised or returned what cannot be used.
    diagnoses : tuple of Diagnosis
    comparison : CheckResult or None
        The derivatives against the reference's at one check point (heatmaps).
    value_note : str
        How often the value (a forward's output, a cost) differs from the
        reference's, when it does.
    """

    problem: str
    functions: str
    notes: tuple[str, ...]
    diagnoses: tuple[Diagnosis, ...]
    comparison: CheckResult | None
    value_note: str = ""


@dataclass(frozen=True)
class Graded:
    """One submission's grade, feedback and flags.

    Attributes
    ----------
    id : str
    status : str
        ``graded``, ``timeout``, ``crashed``, ``invalid`` or ``error`` (the
        grader could not start the worker).
    reason : str
        One line when the status is not ``graded``.
    items : tuple of Item
    cell_notes : tuple of str
        For the student: cells that failed.
    flags : tuple of str
        For the instructor: ``forbidden-import:NAME``, and per problem
        ``numerical-gradient``, ``ignores-input``, ``slow-gradient``
        (``numerical-gradient:PROBLEM`` in a spec of named problems).
    seconds : float
    isolation : str
    parts : tuple of Part
        Each problem's notes, diagnoses and comparison.
    summary : str
        grades.csv's reason for a grade read back from an earlier run's
        record (its parts are not kept); empty for a grade just computed.
    reused : bool
        Read back from an earlier run (``incremental=True``), not regraded.
    shared_answers : tuple of str
        Per problem, a digest of its derivatives at the class's shared point
        when they are wrong there and no common cause explains them (else
        empty): copies agree on it.
    """

    id: str
    status: str
    reason: str
    items: tuple[Item, ...]
    cell_notes: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    seconds: float = 0.0
    isolation: str = ""
    parts: tuple[Part, ...] = ()
    summary: str = ""
    reused: bool = False
    shared_answers: tuple[str, ...] = ()

    @property
    def score(self) -> float:
        return sum(item.points for item in self.items)

    @property
    def max_score(self) -> float:
        return sum(item.max_points for item in self.items)

    @property
    def notes(self) -> tuple[str, ...]:
        """For the student: cells that failed, then (for an unnamed problem) its calls' and answers' notes."""
        return self.cell_notes + tuple(note for part in self.parts if not part.problem for note in part.notes)

    @property
    def diagnoses(self) -> tuple[Diagnosis, ...]:
        """How an unnamed problem's gradient differs from the reference's (a named one's are in its part)."""
        return tuple(d for part in self.parts if not part.problem for d in part.diagnoses)

    @property
    def comparison(self) -> CheckResult | None:
        """An unnamed problem's gradient against the reference's at one check point (its heatmaps)."""
        return next((part.comparison for part in self.parts if not part.problem), None)


def tolerances(answers: ProblemAnswers) -> tuple[float, float]:
    """The value's and the derivatives' relative tolerances: the problem's, or by the reference's dtype."""
    value, derivative = DEFAULT_TOLERANCES.get(answers.dtype.itemsize, DEFAULT_TOLERANCES[8])
    given = answers.problem.tolerances
    return given["value"] or value, given["derivative"] or derivative


def unscored(spec: Spec, identifier: str, status: str, reason: str, **fields: Any) -> Graded:
    """A grade of zero for a submission that could not be run at all."""
    items = tuple(Item(problem.item(item), points, 0, 0) for problem in spec.problems
                  for item, points in problem.points.items())
    return Graded(identifier, status, reason, items, **fields)


def score(spec: Spec, answers: list[ProblemAnswers], outcome: Outcome, run: Run, identifier: str,
          static_imports: set[str], isolation: str) -> Graded:
    """Grade one worker's outcome against the reference's answers: each problem's items; flags for review."""
    status, reason = _status(run, outcome)
    items: list[Item] = []
    parts: list[Part] = []
    flags = _forbidden(spec, static_imports | set(outcome.imports))
    for expected, found in zip(answers, outcome.problems):
        problem_items, part, problem_flags = _score_problem(expected, found, spec.slow_factor)
        items += problem_items
        parts.append(part)
        flags += problem_flags
    return Graded(identifier, status, reason, tuple(items), tuple(_cell_notes(outcome)), tuple(flags), run.seconds,
                  isolation, tuple(parts))


@dataclass(frozen=True)
class _Point:
    """One check point's comparison: agreement per item, and what the derivatives came back as."""

    value_ok: bool
    value_differs: bool  # it came back, in the reference's shape, with other values
    derivative_ok: np.ndarray
    derivatives: Derivatives | None
    shape_diagnoses: tuple[Diagnosis, ...] = ()

    @property
    def flat(self) -> np.ndarray:
        assert self.derivatives is not None
        return np.concatenate([a.astype(np.float64).ravel() for a in self.derivatives.arrays])


def _score_problem(answers: ProblemAnswers, outcome: ProblemOutcome, slow_factor: float
                   ) -> tuple[list[Item], Part, list[str]]:
    """A problem's items, its feedback and its flags."""
    problem, count = answers.problem, len(answers.points)
    notes = call_notes(problem.functions, outcome.calls, outcome.call_errors)
    if outcome.gave_up:
        notes.append(f"{outcome.gave_up.replace(' (over time)', '')} went on past its time limit: the problem's "
                     "other calls were not made")
    elif outcome.ended:
        notes.append(f"the process calling {problem.describe()} ended: {outcome.ended}; its calls after that "
                     "were not made")
    value_tolerance, derivative_tolerance = tolerances(answers)
    points = [_compare(problem, answers.points[k], outcome, k, (value_tolerance, derivative_tolerance), notes)
              for k in range(count)]
    derivative_agreed = np.sum([p.derivative_ok for p in points], axis=0) if points else np.zeros(0)
    items = [Item(problem.item(problem.value_item), problem.points[problem.value_item],
                  sum(p.value_ok for p in points), count)]
    items += [Item(problem.item(item), problem.points[item], int(derivative_agreed[i]), count)
              for i, item in enumerate(problem.derivative_items)]
    measured = [k for k, p in enumerate(points) if p.derivatives is not None]
    at = next((k for k in measured if not points[k].derivative_ok.all()), measured[0]) if measured else None
    found = None if at is None else points[at].derivatives
    compared = None if at is None or found is None else comparison(
        problem, answers.points[at], found, outcome.probe, derivative_tolerance, first=at == 0)
    diagnoses = tuple(compared.diagnoses) if compared is not None else ()
    diagnoses += tuple(dict.fromkeys(d for p in points for d in p.shape_diagnoses if d not in diagnoses))
    differs = sum(p.value_differs for p in points)
    what = "output" if problem.value_item == "forward" else problem.value_item
    value_note = (f"{problem.functions[0]}'s {what} differs from the reference's at {differs} of {count} check "
                  "points") if differs else ""
    part = Part(problem.name, problem.describe(), tuple(notes), diagnoses, compared, value_note)
    return items, part, _flags(answers, outcome, points, measured, slow_factor)


def shared_answers(shared: list[ProblemAnswers], outcome: Outcome, graded: Graded, at: int) -> tuple[str, ...]:
    """Per problem, a digest of its derivatives at the shared point (number ``at``) if wrong in a way of its own.

    Empty where they agree with the reference, did not come back, come back
    in another shape (a slip anyone makes, and what a bug elsewhere in a
    composed problem gives), are zeros or not finite, or where the problem's
    diagnoses name a common cause.
    """
    found = []
    for expected, result, part in zip(shared, outcome.problems, graded.parts):
        point = _compare(expected.problem, expected.points[0], result, at, tolerances(expected), [])
        arrays = point.derivatives.arrays if point.derivatives is not None else []
        if (not arrays or point.derivative_ok.all() or {d.code for d in part.diagnoses} & NAMED_CAUSES
                or [a.shape for a in arrays] != [r.shape for r in expected.points[0].derivatives]
                or not all(np.isfinite(a).all() for a in arrays) or not any(np.any(a) for a in arrays)):
            found.append("")
            continue
        digest = hashlib.sha256()
        for array in arrays:
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        found.append(digest.hexdigest())
    return tuple(found)


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


def _close(found: Any, reference: np.ndarray, tolerance: float) -> np.ndarray:
    """Entry by entry, within its tolerance of the reference."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.abs(found - reference) <= entry_tolerance(reference, tolerance)


def _compare(problem: Problem, reference: Any, outcome: ProblemOutcome, k: int, tolerances: tuple[float, float],
             notes: list[str]) -> _Point:
    value = outcome.values[k] if outcome.calls[k, 0] == w.OK else None
    same_shape = value is not None and value.shape == reference.value.shape
    value_ok = same_shape and bool(_close(value, reference.value, tolerances[0]).all())
    if value is not None and not same_shape:
        _note(notes, f"{problem.functions[0]} returned shape {value.shape}; the reference's has shape "
                     f"{reference.value.shape}")
    derivative_ok = np.zeros(len(problem.derivative_items), bool)
    answer = outcome.derivatives[k] if outcome.calls[k, 1] == w.OK else None
    if answer is None:
        return _Point(value_ok, same_shape and not value_ok, derivative_ok, None)
    parameters = problem.differentiated[0].kind == "parameters"
    who = "your gradient" if parameters else problem.functions[1] or problem.functions[0]
    try:
        found = read_derivatives(problem, reference.arguments, answer, who, strict=False)
    except InputError as exc:
        _note(notes, str(exc))
        return _Point(value_ok, same_shape and not value_ok, derivative_ok, None)
    shape_diagnoses = []
    for i, (name, array, expected) in enumerate(zip(problem.blocks, found.arrays, reference.derivatives)):
        if array.shape != expected.shape:
            summed = summed_elsewhere(name, array, expected, reference.cotangent)
            if summed is not None:
                shape_diagnoses.append(summed)
            else:
                _note(notes, f"{problem.derivative_items[i]} has shape {array.shape}; the reference's has shape "
                             f"{expected.shape}")
            continue
        shape_ok = _usable(found.mismatched.get(name))  # right values in another shape: a warning
        derivative_ok[i] = (bool(_close(array, expected, tolerances[1]).all()) and shape_ok
                            and name not in found.faults and name not in found.transposed)
    return _Point(value_ok, same_shape and not value_ok, derivative_ok, found, tuple(shape_diagnoses))


def _usable(mismatch: ShapeMismatch | None) -> bool:
    return mismatch is None or mismatch.reshaped


def _note(notes: list[str], note: str) -> None:
    if note not in notes:
        notes.append(note)


def _flags(answers: ProblemAnswers, outcome: ProblemOutcome, points: list[_Point], measured: list[int],
           slow_factor: float) -> list[str]:
    """For review: a derivative no closer than finite differences get, one that ignores its input, a slow one."""
    problem, flags = answers.problem, []
    expected = [np.concatenate([d.astype(np.float64).ravel() for d in p.derivatives]) for p in answers.points]
    if measured and all(points[k].derivative_ok.all() for k in measured):
        errors = [np.linalg.norm(points[k].flat - expected[k]) / max(np.linalg.norm(expected[k]), np.finfo(float).tiny)
                  for k in measured]
        if np.median(errors) > ANALYTIC_LEVEL * np.finfo(answers.dtype).eps:
            flags.append(problem.flag("numerical-gradient"))
    if len(measured) >= 2:
        first = points[measured[0]].flat
        if all(np.array_equal(points[k].flat, first) for k in measured[1:]) and not all(
                np.array_equal(expected[k], expected[measured[0]]) for k in measured):
            flags.append(problem.flag("ignores-input"))
    if problem.link != "pair":  # the reference's own pace allowed for (a loop over windows is slow for everyone)
        times = outcome.call_seconds[(outcome.calls == w.OK).all(axis=1)]
        allowed = slow_factor * max(answers.pace if np.isfinite(answers.pace) else 1.0, 1.0)
        # the fastest call of each: what a function costs, with what a busy machine adds left out
        if len(times) and times[:, 1].min() > max(allowed * times[:, 0].min(), SLOW_FLOOR):
            flags.append(problem.flag("slow-gradient"))
    return flags


def _status(run: Run, outcome: Outcome) -> tuple[str, str]:
    if run.launcher_error:
        return "error", f"the grader could not start the worker: {run.launcher_error.splitlines()[-1]}"
    if outcome.gave_up:
        return "timeout", f"{outcome.gave_up.replace(' (over time)', '')} went on past its time limit"
    if run.finished:
        return "graded", ""
    if run.timed_out:
        return "timeout", f"the submission took longer than its {run.seconds:.0f} s"
    if outcome.error:
        return "crashed", f"the submission broke the grading worker ({outcome.error})"
    where = _where(outcome)
    if run.exit_code is not None and run.exit_code < 0:
        name = signal.Signals(-run.exit_code).name if -run.exit_code in signal.valid_signals() else -run.exit_code
        return "crashed", f"the worker was killed ({name}) {where}: a limit (memory, CPU, file size) was reached?"
    return "crashed", f"the submission ended the worker (exit code {run.exit_code}) {where}"


def _where(outcome: Outcome) -> str:
    ran = np.flatnonzero(outcome.cells != w.CELL_NOT_RUN)
    if ran.size < outcome.cells.size:
        return f"during cell {ran.size + 1}"
    return "while its functions were called" if outcome.calls_made else "after its cells ran"


def _cell_notes(outcome: Outcome) -> list[str]:
    describe = {w.RAISED: "raised", w.TIMEOUT: "stopped:", w.CELL_SYNTAX: "has a syntax error:"}
    return [f"cell {k + 1} {describe[int(code)]} {outcome.cell_errors[k]}" for k, code in enumerate(outcome.cells)
            if int(code) in describe]


def _forbidden(spec: Spec, imported: set[str]) -> list[str]:
    return [f"forbidden-import:{module}" for module in spec.forbidden
            if any(name == module or name.startswith(module + ".") for name in imported)]
