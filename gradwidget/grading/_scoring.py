"""Scores, feedback and integrity flags: a worker's numbers against the reference's.

The cost and each gradient block earn their points times the share of check
points where they agree with the reference. Where the gradient disagrees,
the checker's own diagnoses explain how, worded against the reference
("your gradient is 0.025 x the reference's"). Flags are for the instructor
to review; they never change a score.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._diagnose import diagnose
from .._evidence import Evidence
from .._noise import NoiseModel
from .._options import InputError
from .._result import CheckResult
from .._verdict import Diagnosis, Status
from . import _worker as w
from ._isolation import Run
from ._outcome import Outcome
from ._problem_answers import ProblemAnswers
from ._problem_scoring import Part, call_notes, score_problem
from ._reference import Answers
from ._spec import Spec, layout_of

__all__ = ["Graded", "Item", "score", "tolerances"]

DEFAULT_TOLERANCES = {8: (1e-8, 1e-6), 4: (1e-4, 1e-3), 2: (1e-2, 5e-2)}  # bytes of the reference's float: cost, grad
ANALYTIC_LEVEL = 1e3
"""Two analytic gradients of the same function agree to within this many ulps of the gradient's size.

Notes
-----
Summing the same terms in another order changes a float64 result by about
``sqrt(k) * u`` relative for k terms; the backward passes of a course
(thousands of terms) stay far below 1e3 ulps. A finite-difference gradient
cannot get there: its truncation and rounding leave about ``u**(2/3)``
relative (1e-11 in float64) at the best central step, usually far more.
"""
SLOW_FLOOR = 0.002  # seconds: a gradient faster than this is never flagged slow (below it, timer noise)


@dataclass(frozen=True)
class Item:
    """One scored item: the cost or a gradient block."""

    name: str
    max_points: float
    agreed: int
    checked: int

    @property
    def points(self) -> float:
        return self.max_points * self.agreed / self.checked if self.checked else 0.0


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
    notes : tuple of str
        For the student: cells that failed, functions that failed or were
        missing, a gradient of the wrong shape.
    diagnoses : tuple of Diagnosis
        How the gradient differs from the reference's (where it does).
    comparison : CheckResult or None
        The gradient against the reference at one check point (its heatmaps).
    flags : tuple of str
        For the instructor: ``numerical-gradient``, ``forbidden-import:NAME``,
        ``ignores-input``, ``slow-gradient`` (``numerical-gradient:PROBLEM``
        in a spec of problems).
    seconds : float
    isolation : str
    parts : tuple of Part
        In a spec of problems, each problem's notes, diagnoses and
        comparison (``notes`` then holds the cells' only).
    """

    id: str
    status: str
    reason: str
    items: tuple[Item, ...]
    notes: tuple[str, ...] = ()
    diagnoses: tuple[Diagnosis, ...] = ()
    comparison: CheckResult | None = None
    flags: tuple[str, ...] = ()
    seconds: float = 0.0
    isolation: str = ""
    parts: tuple[Part, ...] = ()

    @property
    def score(self) -> float:
        return sum(item.points for item in self.items)

    @property
    def max_score(self) -> float:
        return sum(item.max_points for item in self.items)


def tolerances(spec: Spec, answers: Answers | ProblemAnswers) -> tuple[float, float]:
    """The value's (cost's) and the derivatives' relative tolerances: the spec's, or by the reference's dtype."""
    value, derivative = DEFAULT_TOLERANCES.get(answers.dtype.itemsize, DEFAULT_TOLERANCES[8])
    if isinstance(answers, ProblemAnswers):
        given = answers.problem.tolerances
        return given["value"] or value, given["derivative"] or derivative
    return spec.cost_tolerance or value, spec.gradient_tolerance or derivative


def unscored(spec: Spec, identifier: str, status: str, reason: str, **fields: Any) -> Graded:
    """A grade of zero for a submission that could not be run at all."""
    items = tuple(Item(name, points, 0, 0) for name, points in _points(spec))
    return Graded(identifier, status, reason, items, **fields)


def score(spec: Spec, answers: Answers | list[ProblemAnswers], outcome: Outcome, run: Run, identifier: str,
          static_imports: set[str], isolation: str) -> Graded:
    """Grade one worker's outcome against the reference's answers."""
    status, reason = _status(run, outcome)
    if isinstance(answers, list):
        return _score_problems(spec, answers, outcome, (identifier, status, reason, run.seconds, isolation),
                               static_imports)
    cost_tolerance, gradient_tolerance = tolerances(spec, answers)
    count = len(answers.points)
    cost_ok = _costs_agree(outcome, answers, cost_tolerance)
    gradients, notes = _flat_gradients(spec, outcome)
    block_ok, comparisons = _blocks_agree(spec, answers, gradients, gradient_tolerance)
    items = (Item("cost", spec.cost_points, int(cost_ok.sum()), count),
             *(Item(name, spec.block_points[name], int(block_ok[:, b].sum()), count)
               for b, name in enumerate(spec.names)))
    comparison = _comparison(spec, answers, comparisons, block_ok)
    return Graded(identifier, status, reason, items, tuple(_cell_notes(outcome) + call_notes(
        (spec.cost, spec.gradient), outcome.calls, outcome.call_errors) + notes),
                  tuple(comparison.diagnoses) if comparison is not None else (), comparison,
                  _flags(spec, answers, outcome, gradients, block_ok, static_imports), run.seconds, isolation)


def _score_problems(spec: Spec, answers: list[ProblemAnswers], outcome: Outcome,
                    graded: tuple[str, str, str, float, str], static_imports: set[str]) -> Graded:
    """Each problem's items and feedback; flags for the whole submission."""
    items, parts = [], []
    flags = _forbidden(spec, static_imports | set(outcome.imports))
    for problem, expected, found in zip(spec.problems, answers, outcome.problems):
        problem_items, part, agreement = score_problem(problem, expected, found, tolerances(spec, expected))
        items += [Item(*item) for item in problem_items]
        parts.append(part)
        if agreement is not None and agreement > ANALYTIC_LEVEL * np.finfo(expected.dtype).eps:
            flags.append(f"numerical-gradient:{problem.name}")
    identifier, status, reason, seconds, isolation = graded
    return Graded(identifier, status, reason, tuple(items), tuple(_cell_notes(outcome)), flags=tuple(flags),
                  seconds=seconds, isolation=isolation, parts=tuple(parts))


def _points(spec: Spec) -> list[tuple[str, float]]:
    if spec.problems:
        return [(f"{problem.name}.{item}", points) for problem in spec.problems
                for item, points in problem.points.items()]
    return [("cost", spec.cost_points), *((name, spec.block_points[name]) for name in spec.names)]


def _costs_agree(outcome: Outcome, answers: Answers, tolerance: float) -> np.ndarray:
    costs, reference = outcome.costs, answers.costs
    with np.errstate(invalid="ignore"):
        agree = np.abs(costs - reference) <= tolerance * np.maximum(np.abs(reference), 1e-6)
    return agree & (outcome.calls[:, 0] == w.OK) & np.isfinite(costs)


def _flat_gradients(spec: Spec, outcome: Outcome) -> tuple[list[tuple[np.ndarray, list[str]] | None], list[str]]:
    """Each point's gradient as one flat vector (and the blocks that came back transposed), or None."""
    layout = layout_of(spec)
    which = 0 if spec.gradient is None else 1
    flats: list[tuple[np.ndarray, list[str]] | None] = []
    problems: list[str] = []
    for k, tree in enumerate(outcome.gradients):
        if tree is None or outcome.calls[k, which] != w.OK:
            flats.append(None)
            continue
        try:
            flats.append(layout.flatten_like(tree, "your gradient"))
        except InputError as exc:
            flats.append(None)
            if str(exc) not in problems:
                problems.append(str(exc))
    return flats, problems


def _blocks_agree(spec: Spec, answers: Answers, gradients: list[tuple[np.ndarray, list[str]] | None],
                  tolerance: float) -> tuple[np.ndarray, list[Evidence | None]]:
    """Per point and block, whether the gradient agrees; and the evidence of each comparison."""
    layout = layout_of(spec)
    agree = np.zeros((len(gradients), len(spec.names)), bool)
    evidence: list[Evidence | None] = []
    for k, found in enumerate(gradients):
        if found is None:
            evidence.append(None)
            continue
        student, transposed = found
        reference = answers.gradients[k]
        scale = np.concatenate([np.full(b.size, np.sqrt(np.mean(reference[b.slice] ** 2))) for b in layout.blocks])
        entry_tolerance = tolerance * (np.abs(reference) + scale)
        with np.errstate(invalid="ignore"):
            ok = np.abs(student - reference) <= entry_tolerance
        for b, block in enumerate(layout.blocks):
            agree[k, b] = bool(ok[block.slice].all()) and block.name not in transposed
        status = np.where(ok, int(Status.OK), int(Status.WRONG)).astype(np.int8)
        evidence.append(Evidence(layout, answers.points[k], "reference", student, reference,
                                 np.full(layout.size, np.nan), entry_tolerance, status,
                                 NoiseModel(float(np.finfo(float).eps), float(answers.costs[k])),
                                 transposed=transposed, against="reference"))
    return agree, evidence


def _comparison(spec: Spec, answers: Answers, evidence: list[Evidence | None],
                block_ok: np.ndarray) -> CheckResult | None:
    """The comparison at the first point where the gradient disagrees (else the first one measured)."""
    measured = [k for k, ev in enumerate(evidence) if ev is not None]
    if not measured:
        return None
    failing = [k for k in measured if not block_ok[k].all()]
    chosen = evidence[(failing or measured)[0]]
    assert chosen is not None
    return CheckResult(chosen, diagnose(chosen))


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
    done = int(np.sum(outcome.calls != w.CALL_NOT_RUN))
    return "while its functions were called" if done else "after its cells ran"


def _cell_notes(outcome: Outcome) -> list[str]:
    describe = {w.RAISED: "raised", w.TIMEOUT: "stopped:", w.CELL_SYNTAX: "has a syntax error:"}
    return [f"cell {k + 1} {describe[int(code)]} {outcome.cell_errors[k]}" for k, code in enumerate(outcome.cells)
            if int(code) in describe]


def _forbidden(spec: Spec, imported: set[str]) -> list[str]:
    return [f"forbidden-import:{module}" for module in spec.forbidden
            if any(name == module or name.startswith(module + ".") for name in imported)]


def _flags(spec: Spec, answers: Answers, outcome: Outcome, gradients: list[tuple[np.ndarray, list[str]] | None],
           block_ok: np.ndarray, static_imports: set[str]) -> tuple[str, ...]:
    flags = _forbidden(spec, static_imports | set(outcome.imports))
    measured = [k for k, g in enumerate(gradients) if g is not None]
    if measured and block_ok[measured].all():
        errors = [np.linalg.norm(gradients[k][0] - answers.gradients[k]) /  # type: ignore[index]
                  max(np.linalg.norm(answers.gradients[k]), np.finfo(float).tiny) for k in measured]
        if np.median(errors) > ANALYTIC_LEVEL * np.finfo(answers.dtype).eps:
            flags.append("numerical-gradient")
    if len(measured) >= 2:
        first = gradients[measured[0]][0]  # type: ignore[index]
        same = all(np.array_equal(gradients[k][0], first) for k in measured[1:])  # type: ignore[index]
        if same and not all(np.array_equal(answers.gradients[k], answers.gradients[measured[0]]) for k in measured):
            flags.append("ignores-input")
    if spec.gradient is not None:
        times = outcome.call_seconds[(outcome.calls == w.OK).all(axis=1)]
        if len(times) and np.median(times[:, 1]) > max(spec.slow_factor * np.median(times[:, 0]), SLOW_FLOOR):
            flags.append("slow-gradient")
    return tuple(flags)
