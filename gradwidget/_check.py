"""The gradient check: measure, judge each entry against its noise, explain.

The verdict does not rest on one threshold. Each entry's finite difference
comes with an estimate of its own error (`_noise`): rounding (the noise of J
divided by the step) and, when that is not enough, truncation measured by
looking again at smaller steps (`_coordinates`). Along random directions the
same model and rule judge each probe (`_directions`). This module decides
what runs in which order and packs what was measured into a `CheckResult`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._coordinates import EntryTable, Target, check_entries, linear_blocks
from ._diagnose import diagnose
from ._differences import default_steps, point_scales, representable_steps
from ._directions import DirectionalSearch, Prober
from ._evaluate import Evaluator, call_with_copy, make_evaluator
from ._evidence import DirectionalFindings, Evidence, NotSubgradient
from ._follows_theta import wrong_elsewhere
from ._noise import NoiseModel, block_scales, gradient_precision, observed_precision, returned_precision
from ._options import OPTIONS, CheckOptions, InputError, OptionError, options_docstring, parse_options
from ._params import Layout, ShapeMismatch, flatten, read_gradient
from ._precision import promotion
from ._progress import Progress
from ._result import CheckCall, CheckResult
from ._subgradient import kink_alone, not_subgradients, tie_partners
from ._verdict import Status, Verdict, among

__all__ = ["GradientCheckError", "assert_gradient", "check", "run_check"]

class GradientCheckError(AssertionError):
    """A gradient check failed; the message says where and why.

    Attributes
    ----------
    result : CheckResult
        The full result, for a closer look.
    """

    def __init__(self, message: str, result: CheckResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class AtPoint:
    """J and grad at theta, twice each: the cost, the gradient, their precision, what they did to their input."""

    costs: tuple[float, ...]
    analytic: np.ndarray
    transposed: list[str]
    mismatched: dict[str, ShapeMismatch]
    mutated: dict[str, np.ndarray]
    unit: float
    grad_unit: float
    grad_changes: bool


def check(J: Callable[[Any], Any], grad: Callable[[Any], Any] | None, theta: Any, **options: Any) -> CheckResult:
    return run_check(J, grad, theta, parse_options(options))


def run_check(J: Callable[[Any], Any], grad: Callable[[Any], Any] | None, theta: Any, opts: CheckOptions,
              evaluator_for: Callable[..., Evaluator] = make_evaluator) -> CheckResult:
    """`check` with validated options; ``evaluator_for`` makes the evaluator (as `make_evaluator` does)."""
    _require_callables(J, grad)
    layout, point = flatten(theta, opts.shapes, opts.names)
    if opts.precision == "auto" and not opts.vectorized and opts.method != "complex":
        promoted = promotion(J, grad, layout, point)
        if promoted is not None:  # the formula in float64; the float32 gradient against its float64 value
            wide = layout.views(point.astype(np.float64))
            result = run_check(J, grad, wide, replace(opts, precision="as-given"), evaluator_for)
            evidence = replace(result.evidence, promotion=promoted)
            return CheckResult(evidence, diagnose(evidence), CheckCall(J, grad, theta, opts))
    rng = np.random.default_rng(opts.seed)
    evaluator = evaluator_for(J, layout, point, pair=grad is None, vectorized=opts.vectorized,
                              executor=opts.executor, dtype=np.complex128 if opts.method == "complex" else None)
    sampled = _positions_to_check(layout, opts.sample, rng) if opts.sample else None
    start = _at_point(evaluator, grad, layout, point)
    noise = NoiseModel(start.unit, start.costs[0], grad_unit=start.grad_unit)
    costs = start.costs
    blocks = [b.slice for b in layout.blocks]
    table = EntryTable.start(_first_steps(opts, point, point_scales(point, blocks), noise.unit), opts.method,
                             not opts.directions)
    search: DirectionalSearch | None = None
    ignores_input: list[str] = []
    inconsistent: dict[str, NotSubgradient] = {}
    interrupted, finishing = None, False
    with Progress(opts.progress) as progress:
        try:
            if _repeatable(noise, costs) and opts.directions:
                analytic, steps = _comparable(start, layout, table.steps)
                prober = Prober(evaluator, point, analytic, noise, rng)
                search = DirectionalSearch(prober, layout, steps, opts.directions, rng, progress,
                                           lambda k: kink_alone(evaluator, point, analytic, k, steps[k], prober.noise))
                search.run()
                noise = search.prober.noise
                inconsistent = _at_ties(evaluator, layout, point, start.analytic, table, search.found, noise)
            elif _repeatable(noise, costs):
                # made again: no n-sized array outlives its use
                target = Target(evaluator, opts.method, point, start.analytic, block_scales(blocks, start.analytic),
                                point_scales(point, blocks), opts.tol, opts.eps is not None)
                look_again = opts.tol is None and opts.method != "complex"
                positions = np.arange(layout.size) if sampled is None else sampled
                noise = check_entries(target, noise, table, positions, look_again, rng, progress)
                if sampled is not None and look_again:  # a tie in the sample: its partners too (see `tie_partners`)
                    partners = tie_partners(point, layout, np.flatnonzero(table.status == Status.KINK))
                    partners = partners[table.status[partners] == Status.UNCHECKED]
                    if partners.size:
                        noise = check_entries(target, noise, table, partners, look_again, rng, progress)
                at_kink = np.setdiff1d(np.flatnonzero(table.status == Status.KINK), _joined(table.jumps))
                inconsistent = not_subgradients(evaluator, layout, point, start.analytic, at_kink, noise)
            finishing = True
            costs = (*costs, evaluator.cost_again(point))  # a J whose state or noise shows only later
            if _repeatable(noise, costs) and not start.grad_changes:
                with np.errstate(all="ignore"):
                    right = _right_at_theta(table, layout, search, opts.tol is not None)
                    ignores_input = wrong_elsewhere(evaluator, grad, layout, point, right, noise, rng)
        except KeyboardInterrupt as stop:
            where = ("the last calls, at theta and at a second point" if finishing else search.phase
                     if search is not None else table.phase or "the first calls at theta")
            reason = getattr(stop, "reason", None)  # a worker died, rather than Ctrl-C or Cancel
            interrupted = f"interrupted during {where}" + (f": {reason}" if reason else "")
    found = search.found if search is not None else None
    if found is not None:
        for position, (derivative, tolerance) in found.wrong.items():
            table.numeric[position], table.tolerance[position] = derivative, tolerance
            table.status[position] = Status.WRONG
    evidence = Evidence(
        layout, point, opts.method, start.analytic, table.numeric, table.steps, table.tolerance, table.status,
        noise, tol=opts.tol, calls=evaluator.calls, costs_at_point=costs,
        nondeterministic=not _repeatable(noise, costs), grad_keeps_state=start.grad_changes,
        mutated=_with_drift(start.mutated, evaluator), transposed=start.transposed, mismatched=start.mismatched,
        linear=linear_blocks(layout, table, noise, opts.method),
        step_reduced=_joined(table.reduced), kink_near=_joined(table.kink_near), jumps=_joined(table.jumps),
        one_sided=table.one_sided, ignores_input=ignores_input, not_subgradient=inconsistent, interrupted=interrupted,
        sampled=None if sampled is None else sampled.size, directional=found, eps=opts.eps,
        vectorized=opts.vectorized)
    return CheckResult(evidence, diagnose(evidence), CheckCall(J, grad, theta, opts))


check.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in ("J", "grad", "theta")]
    + [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default) for o in OPTIONS],
    return_annotation=CheckResult)
check.__doc__ = f"""Check an analytic gradient against finite differences of the cost.

Parameters
----------
J : callable
    The cost: ``J(theta)`` returns a scalar (a float, numpy scalar, 0-d or
    1-element array), or ``(cost, grad)`` when ``grad`` is None.
grad : callable or None
    ``grad(theta)`` returns the gradient in ``theta``'s structure or as a
    flat vector of the same size.
theta : ndarray, dict or list/tuple of arrays, or flat vector
    The point to check at; never modified. Check at a random point
    (:func:`random_init`), not a symmetric one.
{options_docstring()}

Returns
-------
CheckResult
    ``verdict``, ``passed``, ``error``, per-block reports, diagnoses and the
    gradients. Interrupting the check (Ctrl-C) returns what was measured so far.

Raises
------
OptionError
    An option has a value it does not accept.
InputError
    theta, or what J or grad returned, cannot be used (the message names
    the block, shape or value at fault).

Examples
--------
>>> import numpy as np, gradwidget as gw
>>> X = np.arange(6.0).reshape(3, 2); y = np.array([1.0, 2.0, 2.0])
>>> J = lambda b: 0.5 * np.sum((X @ b - y) ** 2)
>>> grad = lambda b: X.T @ (X @ b - y)
>>> gw.check(J, grad, np.array([0.3, -0.2])).verdict
'passed'
>>> gw.check(J, lambda b: 2 * grad(b), np.array([0.3, -0.2])).diagnoses[0].code
'scale'
"""


def assert_gradient(J: Callable[[Any], Any], grad: Callable[[Any], Any] | None, theta: Any, *,
                    allow_inconclusive: bool = False, **options: Any) -> CheckResult:
    """Check the gradient and raise `GradientCheckError` unless it passes.

    For test cells (nbgrader, otter-grader) and pytest: the error is an
    explicit `AssertionError` subclass (not a bare ``assert``, which
    ``python -O`` removes) whose message is the report. Takes the options of
    :func:`check`.

    Parameters
    ----------
    allow_inconclusive : bool, default False
        Accept an inconclusive verdict (the check could not resolve the
        gradient to the accuracy it claims, or was interrupted with every
        judged entry agreeing) as well as a pass.

    Returns
    -------
    CheckResult
        When the check passes (or is inconclusive and that is allowed).

    Raises
    ------
    GradientCheckError
        When it fails, or is inconclusive and that is not allowed.
    """
    if not isinstance(allow_inconclusive, (bool, np.bool_)):
        raise OptionError("allow_inconclusive", f"allow_inconclusive={allow_inconclusive!r} is not accepted: "
                                                f"allow_inconclusive must be True or False")
    result = check(J, grad, theta, **options)
    if not (result.passed or (allow_inconclusive and result.verdict == Verdict.INCONCLUSIVE.label)):
        raise GradientCheckError(str(result), result)
    return result


def _require_callables(J: Any, grad: Any) -> None:
    if not callable(J):
        raise InputError(f"J must be callable, got a {type(J).__name__}")
    if grad is not None and not callable(grad):
        raise InputError(f"grad must be callable or None (when J returns (cost, grad)), "
                         f"got a {type(grad).__name__}")


def _positions_to_check(layout: Layout, sample: int, rng: np.random.Generator) -> np.ndarray:
    """``sample`` entries of each block chosen at random."""
    return np.concatenate([np.sort(rng.choice(np.arange(b.start, b.stop), min(sample, b.size), replace=False))
                           for b in layout.blocks])


def _first_steps(opts: CheckOptions, point: np.ndarray, scale: np.ndarray, unit: float) -> np.ndarray:
    if opts.eps is not None:  # a user's step is used as given
        return np.full(point.size, opts.eps)
    steps = default_steps(opts.method, scale, unit)
    return steps if opts.method == "complex" else representable_steps(point, steps)


def _repeatable(noise: NoiseModel, costs: tuple[float, ...]) -> bool:
    """Whether every value of J seen at theta is the first one, to rounding."""
    return all(noise.repeatable(costs[0], other) for other in costs[1:])


def _at_point(evaluator: Evaluator, grad: Callable[[Any], Any] | None, layout: Layout, point: np.ndarray) -> AtPoint:
    """J and grad at theta, twice each: cost, gradient, their precision, mutation, state."""
    values, changed = evaluator.at(point, 2)  # in one call when J is vectorized
    cost, second_cost = (float(np.real(evaluator.cost(value))) for value in values)
    if not np.isfinite(cost):
        raise InputError(f"J(theta) is {cost}: the check point must be inside J's domain")
    mutated = {"J": changed} if changed.size else {}
    if changed.size:
        evaluator.fresh_copies = True
    if grad is None:
        gradients = [value[1] for value in values]
    else:  # a grad that keeps state (a buffer never zeroed) gives another answer the second time
        gradients = []
        for _ in range(2):
            gradient, changed = call_with_copy(grad, layout, point, "grad")
            gradients.append(gradient)
            if changed.size:
                mutated["grad"] = changed
    source = "grad" if grad is not None else "J's second output (grad=None)"
    read = read_gradient(layout, gradients[0], source)
    analytic = read.flat
    again = read_gradient(layout, gradients[1], source).flat
    unit = max(float(np.finfo(point.dtype).eps), returned_precision(values[0]),
               observed_precision(np.array([cost, second_cost])))
    grad_unit = max(gradient_precision(gradients[0]), observed_precision(analytic))
    changes = not np.allclose(again, analytic, rtol=4 * max(unit, grad_unit), atol=0, equal_nan=True)
    return AtPoint((cost, second_cost), analytic, read.transposed, read.mismatched, mutated, unit, grad_unit, changes)


def _at_ties(evaluator: Evaluator, layout: Layout, point: np.ndarray, analytic: np.ndarray, table: EntryTable,
             found: DirectionalFindings | None, noise: NoiseModel) -> dict[str, NotSubgradient]:
    """The kinks a directional search named, recorded, and judged together with their tied partners."""
    if found is None or not found.kinks:
        return {}
    kinks = np.array(sorted(found.kinks))
    table.status[kinks] = Status.KINK
    table.one_sided.update(found.kinks)
    moved = np.union1d(kinks, tie_partners(point, layout, kinks))
    return not_subgradients(evaluator, layout, point, analytic, moved, noise)


def _comparable(start: AtPoint, layout: Layout, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grad's answer and the steps for random directions: blocks of another number of entries left still.

    Their entries are NaN in the answer; moved with the rest, they would make every direction disagree.
    """
    unusable = [b.slice for b in layout.blocks if b.name in start.mismatched and start.mismatched[b.name].unusable]
    if not unusable:
        return start.analytic, steps
    analytic, steps = start.analytic.copy(), steps.copy()
    for part in unusable:
        analytic[part], steps[part] = 0.0, 0.0
    return analytic, steps


def _right_at_theta(table: EntryTable, layout: Layout, search: DirectionalSearch | None,
                    classic: bool) -> np.ndarray:
    """The entries that agreed with J at theta, in blocks that did: judged so, or all when every direction agreed.

    A block with a wrong entry is not moved: its gradient is wrong at theta already, and the second point would
    contradict that ("right at theta, wrong nearby"). Under the classic rule a block is judged as a whole, and an
    entry outside ``tol`` does not make it wrong. A direction that disagreed, even where the search named no
    entry, may hide an error that the second point would then blame on a global. Entries left at grad's rounding
    of theta (`EntryTable.at_input_rounding`) are not moved: the second point would show that rounding again.
    """
    status = table.status
    if search is None:
        right = among(status, (Status.OK, Status.UNRESOLVED))
        right[_joined(table.at_input_rounding)] = False
        for block in layout.blocks:
            if not classic and (status[block.slice] == Status.WRONG).any():
                right[block.slice] = False
        return right
    probes = search.found.directions if search.found is not None else None
    return np.full(layout.size, probes is not None and bool(probes.agree.all()))


def _with_drift(mutated: dict[str, np.ndarray], evaluator: Evaluator) -> dict[str, np.ndarray]:
    """``mutated`` with the entries J changed for good during the check."""
    drift = evaluator.drifted()
    if not drift.size:
        return mutated
    return {**mutated, "J": np.union1d(mutated.get("J", drift[:0]), drift)}


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, int)
