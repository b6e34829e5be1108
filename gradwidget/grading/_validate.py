"""``gradwidget validate``: prove that a spec works before a class is graded with it.

It runs the reference against itself (the same answers twice), checks the
reference's own gradient with `gradwidget.check` at the check points, sees
where its tolerance sits between an analytic gradient and a finite-difference
one, and grades the spec's solution (full marks expected) and template (none
expected). Every problem comes with what to fix.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._array_checks import check_hessian, check_jacobian, check_vjp
from .._check import check
from .._layer import check_layer, check_loss
from .._result import CheckResult
from ._derivatives import read_derivatives
from ._grade import grade
from ._points import hidden_seed, public_seed, read_secret
from ._problems import Problem
from ._reference import PointAnswer, ProblemAnswers, problem_answers, reference_function, reference_module
from ._scoring import ANALYTIC_LEVEL, tolerances
from ._spec import Spec, SpecError, load_spec

__all__ = ["Validation", "validate"]


@dataclass
class Validation:
    """What validate found: report lines, and the problems the instructor must fix."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        verdict = ["", "spec OK" if self.ok else f"{len(self.problems)} problem(s) to fix:"]
        return "\n".join(self.lines + verdict + [f"  - {p}" for p in self.problems])


def validate(spec_path: str | Path, isolation: str = "auto") -> Validation:
    """Check a spec and its reference; grade its solution and template (see the module's docstring)."""
    found = Validation()
    spec = load_spec(spec_path)
    if spec.named:
        what = f"{len(spec.problems)} problems"
    else:
        layout = spec.problems[0].differentiated[0].parameters
        what = f"{len(layout.blocks)} blocks, {layout.size} parameters"
    found.lines.append(f"{spec.path.name}: {spec.title}; {what}, {spec.hidden} hidden and {spec.public} public "
                       f"points, {spec.max_score:g} points")
    if spec.reference_file is None:
        found.problems.append("[reference] file is missing: validate (and grading at hidden points) needs it")
        return found
    try:
        secret: bytes | None = read_secret(spec)
    except SpecError as exc:
        secret = None
        found.lines.append(f"no secret ({exc}): checked at the public points only")
    seeds = [(public_seed(spec), spec.public), *([(hidden_seed(spec, "validate", secret), spec.hidden)]
                                                 if secret else [])]
    try:
        _references(spec, seeds, found)
    except Exception as exc:  # the instructor's own code: say where it broke
        found.problems.append(f"the reference raised {type(exc).__name__}: {exc}")
    for role, path, expect_full in (("solution", spec.solution, True), ("template", spec.template, False)):
        if path is not None and not path.is_file():
            found.problems.append(f"[files] {role} = {path.name!r}: no such file ({path})")
        elif path is not None:
            _grade_file(spec, role, path, expect_full, secret is None, isolation, found)
    return found


def _references(spec: Spec, seeds: list[tuple[int, int]], found: Validation) -> None:
    """Each problem's reference: the same answers twice, and its derivative passing gradwidget's own check.

    Then where its tolerance sits, between an analytic derivative and a
    finite-difference one.
    """
    module = reference_module(spec)
    answers = [problem_answers(spec, seed, count) for seed, count in seeds]
    again = [problem_answers(spec, seed, count) for seed, count in seeds]
    for index, problem in enumerate(spec.problems):
        said = problem.heading
        expected = [run[index] for run in answers]
        if not all(_same(first, second) for first, second in zip(expected, (run[index] for run in again))):
            found.problems.append(f"{said}the reference gives different answers for the same point (is it random? "
                                  "seed it)")
        functions = [reference_function(spec, module, problem, which) for which in (0, 1)]
        points = [point for run in expected for point in run.points]
        failed, finite_difference = False, []
        for k, point in enumerate(points):
            result = _checked(problem, functions, point, k)
            if not result.passed:
                failed = True
                reasons = "; ".join(d.message for d in result.diagnoses) or "see gradwidget.check's report"
                whose = f"{problem.describe()}" if problem.name else "gradient"
                found.problems.append(f"{said}the reference's {whose} fails gradwidget's check at point {k + 1}: "
                                      f"{reasons}")
            a, n = result.evidence.analytic, result.evidence.numeric
            finite_difference.append(float(np.linalg.norm(n - a) / max(np.linalg.norm(a), np.finfo(float).tiny)))
        if problem.name:
            found.lines.append(f"problem {problem.name!r} ({problem.kind}: {problem.describe()}): the reference "
                               f"{'was checked' if failed else 'passes gradwidget' + chr(39) + 's check'} at "
                               f"{len(points)} points; items {', '.join(problem.items)}")
        else:
            found.lines.append(f"the reference's gradient passes gradwidget's check at {len(points)} points"
                               if not failed else "the reference's gradient was checked")
        _tolerance(said, expected[0], float(np.median(finite_difference)), found)


def _same(first: ProblemAnswers, second: ProblemAnswers) -> bool:
    return all(np.array_equal(a, b) for p, q in zip(first.points, second.points)
               for a, b in zip((p.value, *p.derivatives), (q.value, *q.derivatives)))


def _checked(problem: Problem, functions: list[Any], point: PointAnswer, k: int) -> CheckResult:
    """The reference's derivative at one point, checked by the entry point of its kind."""
    first, second = functions
    args = [a.passed(value) for a, value in zip(problem.arguments, point.arguments)]
    names = [a.name for a in problem.arguments]
    wrt = [names.index(name) for name in problem.wrt]
    (differentiated, *_) = problem.differentiated
    if differentiated.kind == "parameters":
        at = wrt[0]
        layout = differentiated.parameters
        options = {"shapes": [b.shape for b in layout.blocks], "names": [b.name for b in layout.blocks]} \
            if layout.kind == "unrolled" else {}
        return check(lambda t: first(*args[:at], t, *args[at + 1:]),
                     None if second is None else lambda t: second(*args[:at], t, *args[at + 1:]),
                     args[at], seed=k, **options)
    if problem.kind == "layer":
        return check_layer(first, second, *args, wrt=wrt, dout=point.cotangent, seed=k)
    if problem.kind == "gradient":
        @functools.wraps(first)
        def loss(*given: Any) -> tuple[Any, tuple[np.ndarray, ...]]:
            value, gradients = first(*given) if second is None else (first(*given), second(*given))
            return value, tuple(read_derivatives(problem, given, gradients, problem.describe()).arrays)

        return check_loss(loss, *args, wrt=wrt, seed=k)
    at = wrt[0]

    def bound(function: Any, *extra: Any) -> Any:
        return lambda x, *more: function(*args[:at], x, *args[at + 1:], *more, *extra)

    x = args[at]
    if problem.kind == "jacobian":
        return check_jacobian(bound(first), bound(second), x, seed=k)
    if problem.kind == "vjp":
        return check_vjp(bound(first), bound(second), x, cotangent=point.cotangent, seed=k)
    return check_hessian(bound(first), bound(second), x, seed=k)


def _tolerance(said: str, answers: ProblemAnswers, fd: float, found: Validation) -> None:
    analytic = ANALYTIC_LEVEL * float(np.finfo(answers.dtype).eps)
    key = f"tolerance.{answers.problem.roles.derivative_key}"
    gradient = tolerances(answers)[1]
    found.lines.append(f"{said}{answers.problem.roles.derivative_key} agreement: analytic ones to about "
                       f"{analytic:.0e}, a finite-difference one to {fd:.0e}; {key} = {gradient:.0e}")
    if gradient <= 10 * analytic:
        found.problems.append(f"{said}{key} = {gradient:.0e} is too tight: a right derivative that sums in "
                              f"another order could fail; set it to at least {10 * analytic:.0e}")
    if fd <= 10 * analytic:
        found.problems.append(f"{said}a finite-difference derivative is as accurate as an analytic one here (a "
                              "linear or tiny problem?): the numerical-gradient flag cannot work; use a richer "
                              "problem")
    elif gradient >= fd:
        found.lines.append(f"{said}note: a finite-difference derivative passes {key} (it is flagged "
                           f"numerical-gradient for review); to give it no points, set it below {fd / 10:.0e}")
    else:
        found.lines.append(f"{said}a finite-difference derivative fails {key}")


def _grade_file(spec: Spec, role: str, path: Path, expect_full: bool, public: bool, isolation: str,
                found: Validation) -> None:
    with tempfile.TemporaryDirectory() as out:
        (graded,) = grade(spec.path, [path], out, public=public, isolation=isolation, progress=False)
    found.lines.append(f"{role} {path.name}: {graded.score:g} of {graded.max_score:g} ({graded.status}"
                       f"{'; flags ' + ', '.join(graded.flags) if graded.flags else ''})")
    if expect_full and graded.score < graded.max_score:
        found.problems.append(f"the solution {path.name} gets {graded.score:g} of {graded.max_score:g}: "
                              + ("; ".join(graded.notes + tuple(d.message for d in graded.diagnoses))
                                 or graded.reason or "see its feedback"))
    if not expect_full and graded.score > 0:
        found.problems.append(f"the template {path.name} already gets {graded.score:g} points: its functions "
                              "should not be right before students write them")
