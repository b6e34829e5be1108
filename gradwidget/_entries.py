"""The coordinate path: each entry measured, judged against its own noise, looked at again where it disagrees.

A right gradient's discrepancy shrinks with the step like ``h**order``
until rounding takes over; a wrong one stays put. So every entry gets one
look at its first step; entries that disagree (and agreeing entries whose
one-sided slopes differ, a possible kink) get second looks at steps
`REFINE_RATIO` times smaller until each agrees, settles wrong, or shows a
kink. A right gradient costs about 2n calls of J.

`EntryTable` holds the per-entry findings and is filled in place, chunk by
chunk, like numpy's ``out=`` arrays: an interrupted check keeps everything
measured before the interrupt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ._differences import (
    DOMAIN_RETRIES,
    REFINE_LEVELS,
    REFINE_RATIO,
    STENCILS,
    PartialDifferences,
    Stencil,
    differences,
    one_sided,
    representable_steps,
    smaller_steps,
    spread,
)
from ._evaluate import Evaluator
from ._noise import NoiseModel, measure_noise
from ._options import InputError
from ._progress import Progress
from ._verdict import Status, classic_agrees, judge, within

__all__ = ["EntryTable", "Target", "check_entries"]

MAX_CHUNK = 1 << 16
"""Entries in one chunk of the first look, at most (chunks are the unit of progress and of interrupts)."""

KINK_SPREAD = 1e-2
"""An agreeing entry is a kink candidate when its one-sided slopes differ by more than this share of its scale."""

KINK_PERSISTS = 0.5
"""At a kink the one-sided spread stays: at a 4x smaller step it keeps at least this share (smooth J: 1/4)."""

KINK_CROSSED = 16.0
"""A spread that falls more than this factor at the next step came from a kink crossed by the larger step."""


@dataclass(frozen=True)
class Target:
    """What stays fixed while entries are measured: J's evaluator, the scheme, theta and grad's answer.

    Attributes
    ----------
    evaluator : Evaluator
    method : str
    point, analytic : ndarray
        Flat theta and grad's answer.
    block_scale : ndarray
        Per entry, the RMS of the analytic gradient over its block (the scale
        of `NoiseModel.floor`).
    tol : float or None
        The classic rule's threshold, when given.
    """

    evaluator: Evaluator
    method: str
    point: np.ndarray
    analytic: np.ndarray
    block_scale: np.ndarray
    tol: float | None

    @property
    def stencil(self) -> Stencil | None:
        """The scheme's stencil (None for the complex step)."""
        return STENCILS.get(self.method)


@dataclass
class EntryTable:
    """Per-entry findings, filled in place as the check runs.

    Attributes
    ----------
    numeric, tolerance, steps : ndarray
        Each entry's estimate, its tolerance and the step it was taken at.
    status : ndarray
        Each entry's `Status`.
    values : ndarray
        J's values on each entry's stencil (one row per entry).
    reduced, kink_near : list of ndarray
        Entries whose step was made smaller at a domain edge, and agreeing
        entries with a kink within one step.
    one_sided : dict
        Entry at a kink -> (left slope, right slope).
    """

    numeric: np.ndarray
    tolerance: np.ndarray
    steps: np.ndarray
    status: np.ndarray
    values: np.ndarray
    reduced: list[np.ndarray] = field(default_factory=list)
    kink_near: list[np.ndarray] = field(default_factory=list)
    one_sided: dict[int, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def start(cls, steps: np.ndarray, method: str) -> EntryTable:
        """A table with nothing measured yet, each entry's first step given."""
        size = steps.size
        stencil = STENCILS.get(method)
        width = len(stencil.offsets) if stencil else 1
        return cls(np.full(size, np.nan), np.full(size, np.nan), steps.copy(),
                   np.full(size, int(Status.UNCHECKED), dtype=np.int8), np.full((size, width), np.nan))


def check_entries(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray,
                  look_again: bool, rng: np.random.Generator, progress: Progress) -> NoiseModel:
    """Measure and judge ``positions``; look again at those that disagree.

    Parameters
    ----------
    target : Target
    noise : NoiseModel
    table : EntryTable
        Filled in place.
    positions : ndarray
        The entries to check.
    look_again : bool
        Whether entries that disagree get second looks (not under the
        classic rule, nor for the complex step, nor when J is random).
    rng : Generator
        For the direction of the noise measurement (made once, when an
        entry first disagrees).
    progress : Progress

    Returns
    -------
    NoiseModel
        ``noise``, with J's measured noise if it was measured.
    """
    _first_look(target, noise, table, positions, progress)
    if not look_again:
        return noise
    suspects = _suspects(target, table)
    if suspects.size and noise.measured == 0:
        noise = noise.with_measured(measure_noise(target.evaluator, target.point, noise, rng))
        _judge(target, noise, table, suspects)
        suspects = _suspects(target, table)
    again = np.union1d(suspects, _kink_candidates(target, noise, table))
    if again.size:
        _refine(target, noise, table, again)
    return noise


def _first_look(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray,
                progress: Progress) -> None:
    """One look at every entry, in chunks sized to take a fraction of a second each."""
    evaluator = target.evaluator
    size, done = evaluator.first_chunk, 0
    start = time.perf_counter()
    while done < positions.size:
        chunk = positions[done:done + size]
        chunk_start = time.perf_counter()
        _measure(target, noise, table, chunk, table.steps[chunk])
        _judge(target, noise, table, chunk[table.status[chunk] == Status.UNCHECKED])
        done += chunk.size
        progress.update(chunk.size, time.perf_counter() - start)
        per_entry = (time.perf_counter() - chunk_start) / chunk.size
        size = int(np.clip(evaluator.chunk_seconds / max(per_entry, 1e-9), 8, MAX_CHUNK))


def _measure(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray,
             steps: np.ndarray) -> np.ndarray:
    """Estimate the derivative along each entry, with smaller steps where J returns NaN or inf.

    Fills ``numeric``, ``values`` and ``steps``; entries where no step gives
    finite values are SKIPPED. Returns the estimates.
    """
    estimates, values = _differences(target, noise, table, positions, steps)
    for _ in range(DOMAIN_RETRIES):
        bad = ~np.isfinite(estimates)
        if not bad.any():
            break
        table.reduced.append(positions[bad])
        steps = steps.copy()
        steps[bad] = smaller_steps(target.point[positions[bad]], steps[bad])
        estimates[bad], values[bad] = _differences(target, noise, table, positions[bad], steps[bad])
    table.status[positions[~np.isfinite(estimates)]] = Status.SKIPPED
    table.numeric[positions], table.values[positions], table.steps[positions] = estimates, values, steps
    return estimates


def _differences(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray,
                 steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`differences`, keeping (and judging) the complete entries when interrupted."""
    try:
        estimates, values = differences(target.evaluator, target.method, positions, steps, noise.cost)
    except PartialDifferences as partial:
        done = positions[:partial.count]
        table.numeric[done], table.values[done], table.steps[done] = partial.estimates, partial.values, steps[
            :partial.count]
        _judge(target, noise, table, done[table.status[done] == Status.UNCHECKED])
        raise
    if target.stencil is None and not np.any(values) and np.any(target.analytic[positions]):
        raise InputError(
            "method='complex' needs a J that computes with complex numbers, but "
            "J(theta + 1e-20j * e_i) came back real (abs, np.real, float() or a real-typed "
            "array drops the imaginary part); use method='central'")
    return estimates, values


def _judge(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray) -> None:
    """First-look verdict: agree within rounding noise, or suspect."""
    positions = positions[table.status[positions] != Status.SKIPPED]
    estimates = table.numeric[positions]
    analytic = target.analytic[positions]
    gap = np.abs(analytic - estimates)
    look = judge(gap, noise.rounding(table.values[positions], table.steps[positions], target.stencil),
                 noise.floor(analytic, estimates, target.block_scale[positions]))
    table.tolerance[positions] = look.tolerance
    agree = look.agree if target.tol is None else classic_agrees(gap, analytic, estimates, target.tol)
    table.status[positions] = np.where(agree, Status.OK, Status.WRONG)


def _suspects(target: Target, table: EntryTable) -> np.ndarray:
    return np.flatnonzero((table.status == Status.WRONG) & np.isfinite(target.analytic))


def _kink_candidates(target: Target, noise: NoiseModel, table: EntryTable) -> np.ndarray:
    """Agreeing entries whose one-sided slopes differ a lot: J may have a corner there.

    The central difference at a symmetric corner (|w| at 0) lands on the
    midpoint and can agree with grad by luck; the spread between the
    one-sided differences, free from the first look, gives it away.
    """
    stencil = target.stencil
    if stencil is None or stencil.sides is None:
        return np.zeros(0, int)
    agreeing = np.flatnonzero(table.status == Status.OK)
    values, steps = table.values[agreeing], table.steps[agreeing]
    gap = np.abs(spread(stencil, values, steps, noise.cost))
    rounding = 2 * noise.rounding(values, steps, stencil)
    scale = np.abs(target.analytic[agreeing]) + np.abs(table.numeric[agreeing]) + target.block_scale[agreeing]
    return agreeing[(gap > rounding) & (gap > KINK_SPREAD * scale)]


def _refine(target: Target, noise: NoiseModel, table: EntryTable, suspects: np.ndarray) -> None:
    """Look again at smaller steps until each entry agrees, settles, or shows a kink."""
    stencil = STENCILS[target.method]  # second looks are for stencils, not the complex step
    has_sides = stencil.sides is not None
    previous = table.numeric[suspects].copy()
    last_spread = spread(stencil, table.values[suspects], table.steps[suspects], noise.cost) if has_sides else None
    active = suspects
    for _ in range(REFINE_LEVELS):
        steps = representable_steps(target.point[active], table.steps[active] / REFINE_RATIO)
        estimates = _measure(target, noise, table, active, steps)
        live = np.isfinite(estimates)
        change = np.abs(previous - estimates)
        values, steps = table.values[active], table.steps[active]
        rounding = noise.rounding(values, steps, stencil)
        look = judge(np.abs(target.analytic[active] - estimates), rounding,
                     noise.floor(target.analytic[active], estimates, target.block_scale[active]),
                     noise.truncation(change, stencil.order), change)
        table.tolerance[active] = look.tolerance
        agree = live & look.agree
        kink = np.zeros(active.size, bool)
        if last_spread is not None:
            # Smooth: the spread is h * J'' and shrinks 4x with h. At a corner it stays.
            new_spread = np.abs(spread(stencil, values, steps, noise.cost))
            kink = live & (new_spread > 2 * rounding) & (new_spread >= KINK_PERSISTS * np.abs(last_spread))
            crossed = (agree & ~kink & (np.abs(last_spread) > KINK_CROSSED * new_spread)
                       & (np.abs(last_spread) > 2 * rounding))
            table.kink_near.append(active[crossed])
            _resolve_kinks(target, noise, table, active[kink], look.tolerance[kink])
            last_spread = new_spread
        settled = live & look.settled & ~kink
        table.status[active[agree & ~kink]] = Status.OK
        table.status[active[settled]] = Status.WRONG
        keep = live & ~agree & ~kink & ~settled
        active, previous = active[keep], estimates[keep]
        if last_spread is not None:
            last_spread = last_spread[keep]
        if not active.size:
            break


def _resolve_kinks(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray,
                   tolerance: np.ndarray) -> None:
    """At a kink, grad is right when its value lies between the one-sided slopes."""
    stencil = STENCILS[target.method]
    left, right = one_sided(stencil, table.values[positions], table.steps[positions], noise.cost)
    between = within(target.analytic[positions], left, right, tolerance)
    table.status[positions] = np.where(between, Status.KINK, Status.WRONG)
    for i, lo, hi in zip(positions.tolist(), left.tolist(), right.tolist()):
        table.one_sided[i] = (lo, hi)
