"""The coordinate path: each entry measured, judged against its own noise, looked at again where it must be.

Every entry gets one look at its first step. It passes when it agrees within
its tolerance and that tolerance resolves what the verdict claims
(`NoiseModel.claim`); a right gradient costs about 2n calls of J. Entries
that disagree, or agree only within too loose a tolerance, or whose
one-sided slopes differ (a possible kink), get second looks on a ladder of
steps `REFINE_RATIO` apart: a larger step where rounding dominates the
tolerance, a smaller one where truncation does. Each pair of neighbouring
looks bounds the truncation error (`NoiseModel.truncation`), and the look
with the smallest tolerance is kept. An entry ends OK, WRONG (its estimates
settled away from grad's value), at a KINK or a jump of J, or UNRESOLVED
(no step resolved it: the verdict is then inconclusive).

`EntryTable` holds the per-entry findings and is filled in place, like
numpy's ``out=`` arrays: an interrupted check keeps everything measured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ._differences import (
    DOMAIN_RETRIES,
    KINK_PERSISTS,
    REFINE_LEVELS,
    REFINE_RATIO,
    STENCILS,
    PartialDifferences,
    Stencil,
    default_steps,
    differences,
    one_sided,
    representable_steps,
    smaller_steps,
    spread,
)
from ._evaluate import Evaluator
from ._noise import SATURATED_REACH, NoiseModel, measure_noise
from ._options import InputError, counted
from ._params import Layout
from ._progress import Progress
from ._verdict import Status, among, classic_agrees, judge, within

__all__ = ["EntryTable", "Target", "check_entries", "linear_blocks"]

MAX_CHUNK = 1 << 16
"""Entries in one chunk of the first look, at most (chunks are the unit of progress and of interrupts)."""

KINK_SPREAD = 1e-2
"""An agreeing entry is a kink candidate when its one-sided slopes differ by more than this share of its scale."""

JUMP_GROWS = 2.0
"""Where J jumps, the one-sided slopes are the jump over h: at a 4x smaller step the spread grows about 4x."""

SLOPES_SETTLE = 0.25
"""At a kink each one-sided slope settles: between two looks it moves by less than this share of the spread."""

KINK_CROSSED = 16.0
"""A spread that falls more than this factor at the next step came from a kink crossed by the larger step."""

GROWTH_LIMIT = 0.25
"""A step never grows beyond this share of the entry's scale (max(|theta_i|, its block's)): J stays local."""

STEP_ULPS = 4096.0
"""Where J computes in a coarser precision than theta's (it casts theta to float32), no step goes below this many
units of that precision's rounding of theta_i.

Notes
-----
J then sees theta_i rounded to its precision: a step is off by up to half
an ulp at each end, a relative error of ``1 / STEP_ULPS`` at most in a
central difference (2.4e-4, far below float32's claim), and J(theta) is off
by as much, which smaller steps would take for a jump or a kink.
"""


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
        of `NoiseModel.floor` and of the claimed resolution).
    point_scale : ndarray
        Per entry, the scale of theta there (how far a step may grow).
    tol : float or None
        The classic rule's threshold, when given.
    eps_given : bool
        The first steps are the user's ``eps``, used as given.
    """

    evaluator: Evaluator
    method: str
    point: np.ndarray
    analytic: np.ndarray
    block_scale: np.ndarray
    point_scale: np.ndarray
    tol: float | None
    eps_given: bool = False

    @property
    def stencil(self) -> Stencil | None:
        """The scheme's stencil (None for the complex step)."""
        return STENCILS.get(self.method)

    def claim_scale(self, positions: np.ndarray) -> np.ndarray:
        """What each entry's resolution is measured against: the larger of |a_i| and its block's RMS."""
        return np.maximum(np.abs(self.analytic[positions]), self.block_scale[positions])


@dataclass
class EntryTable:
    """Per-entry findings, filled in place as the check runs.

    Attributes
    ----------
    numeric, tolerance, steps : ndarray
        Each entry's best estimate, its tolerance and the step it was taken at.
    status : ndarray
        Each entry's `Status`.
    values : ndarray
        J's values on the stencil of each entry's best estimate (one row each).
    reduced, kink_near, jumps, at_input_rounding : list of ndarray
        Entries whose step was made smaller at a domain edge, agreeing
        entries with a kink within one step, entries where J jumps, and
        entries where J did not move and grad is within its rounding of theta.
    one_sided : dict
        Entry at a kink or jump -> (left slope, right slope).
    phase : str
        What the path is doing, for an interrupt's message.
    pending : ndarray of bool
        Entries a first look found wrong whose second looks have not decided
        them yet (they may sit at a kink or a tie).
    """

    numeric: np.ndarray
    tolerance: np.ndarray
    steps: np.ndarray
    status: np.ndarray
    values: np.ndarray
    pending: np.ndarray
    reduced: list[np.ndarray] = field(default_factory=list)
    kink_near: list[np.ndarray] = field(default_factory=list)
    jumps: list[np.ndarray] = field(default_factory=list)
    at_input_rounding: list[np.ndarray] = field(default_factory=list)
    one_sided: dict[int, tuple[float, float]] = field(default_factory=dict)
    phase: str = ""

    @classmethod
    def start(cls, steps: np.ndarray, method: str, stencil_values: bool = True) -> EntryTable:
        """A table with nothing measured yet, each entry's first step given.

        Without ``stencil_values`` (a directional check, which measures no entry
        by itself) ``values`` has no columns.
        """
        size = steps.size
        stencil = STENCILS.get(method)
        width = (len(stencil.offsets) if stencil else 1) if stencil_values else 0
        return cls(np.full(size, np.nan), np.full(size, np.nan), steps.copy(),
                   np.full(size, int(Status.UNCHECKED), dtype=np.int8), np.full((size, width), np.nan),
                   np.zeros(size, bool))


def check_entries(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray,
                  look_again: bool, rng: np.random.Generator, progress: Progress) -> NoiseModel:
    """Measure and judge ``positions``; look again at those that need it.

    Parameters
    ----------
    target : Target
    noise : NoiseModel
    table : EntryTable
        Filled in place.
    positions : ndarray
        The entries to check.
    look_again : bool
        Whether entries get second looks (not under the classic rule, nor for
        the complex step, nor when J is random).
    rng : Generator
        For the direction of the noise measurement (made once: first for a
        coarse J, else when an entry first needs a second look).
    progress : Progress

    Returns
    -------
    NoiseModel
        ``noise``, with J's measured noise if it was measured.
    """
    try:
        if look_again and noise.coarse and noise.measured == 0:  # float32: J's rounding is well below u * |J|
            noise = measure_noise(target.evaluator, target.point, noise, rng)
        table.phase = f"the first look at {positions.size} entries"
        _first_look(target, noise, table, positions, progress)
        if not look_again:
            return noise
        suspects = _suspects(target, table)
        stayed = _stayed_put(target, noise, table, positions)
        if (suspects.size or stayed.size == positions.size > 0) and noise.measured == 0:
            noise = measure_noise(target.evaluator, target.point, noise, rng,
                                  not target.analytic[np.union1d(suspects, stayed)].any())
            _judge(target, noise, table, positions)  # the measured noise may be smaller than the model's
            suspects = _suspects(target, table)
            if suspects.size and noise.computed_unit > noise.unit and not target.eps_given:
                # J computes in a coarser precision than it returns: its suspects' first steps were made for the
                # finer one. One look at the steps made for J's real precision replaces climbing the ladder to them.
                table.steps[suspects] = representable_steps(target.point[suspects], default_steps(
                    target.method, target.point_scale[suspects], noise.computed_unit))
                _first_look(target, noise, table, suspects, progress)
                suspects = _suspects(target, table)
        again = np.union1d(suspects, _kink_candidates(target, noise, table))
        if again.size:
            table.phase = f"the second looks at {counted(again.size, 'entry')}"
            progress.phase(again.size, "second looks")
            _second_looks(target, noise, table, again, progress)
        _flat_at_rounding(target, noise, table)
        unresolved = np.flatnonzero(table.status == Status.UNRESOLVED)
        if unresolved.size and noise.coarse and target.method == "central" and not target.eps_given:
            noise = _fourth_order_looks(target, noise, table, unresolved, rng, progress)
    except KeyboardInterrupt:  # what a first look found wrong may be a kink its second looks would have named
        _unconfirmed(target, noise, table)
        raise
    return noise


def _unconfirmed(target: Target, noise: NoiseModel, table: EntryTable) -> None:
    """Entries left wrong by a first look alone become unresolved where grad lies between J's one-sided slopes.

    A central difference at a kink or a tie gives the mean of the one-sided slopes, and grad's value between
    them may be a valid subgradient: only the second looks, which the interrupt stopped, can tell.
    """
    stencil = target.stencil
    if stencil is None or stencil.sides is None:
        return
    wrong = np.flatnonzero(table.pending & (table.status == Status.WRONG))
    left, right = one_sided(stencil, table.values[wrong], table.steps[wrong], noise.cost)
    between = within(target.analytic[wrong], left, right, table.tolerance[wrong])
    table.status[wrong[between]] = Status.UNRESOLVED


def linear_blocks(layout: Layout, table: EntryTable, noise: NoiseModel, method: str) -> tuple[str, ...]:
    """The blocks along which J is linear at every measured entry: its one-sided slopes agree to rounding."""
    stencil = STENCILS.get(method)
    if stencil is None or stencil.sides is None or not table.values.shape[1]:
        return ()
    measured = np.isfinite(table.values).all(axis=1)
    with np.errstate(invalid="ignore"):
        bend = np.abs(spread(stencil, table.values, table.steps, noise.cost))
        straight = bend <= 2 * noise.rounding(table.values, table.steps, stencil)
    return tuple(b.name for b in layout.blocks
                 if measured[b.slice].any() and straight[b.slice][measured[b.slice]].all())


def _flat_at_rounding(target: Target, noise: NoiseModel, table: EntryTable) -> None:
    """Wrong entries where J did not move, and grad's value could not have moved it, become unresolved.

    grad's value could not have moved J where it is within grad's own rounding
    of theta_i (`NoiseModel.input_rounding`), or where J is exactly 0 around
    theta (its rounding unknown) and the value is below `SATURATED_REACH`.
    J, flat bit for bit at every step, cannot tell such a value from 0, nor
    a bug that small from it: the entry is unresolved, not wrong.
    """
    wrong = np.flatnonzero(table.status == Status.WRONG)
    flat = _stayed_put(target, noise, table, wrong[np.isfinite(target.analytic[wrong])])
    rounding = noise.input_rounding(target.point[flat], target.analytic)
    if noise.cost == 0:
        rounding = np.maximum(rounding, SATURATED_REACH / target.point_scale[flat])
    within = np.abs(target.analytic[flat]) <= rounding
    table.tolerance[flat[within]] = np.maximum(table.tolerance[flat[within]], rounding[within])
    table.status[flat[within]] = Status.UNRESOLVED
    table.at_input_rounding.append(flat[within])


def _stayed_put(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray) -> np.ndarray:
    """The entries whose every stencil value is J(theta) itself, bit for bit: J did not move at their steps."""
    if target.stencil is None or not positions.size:
        return positions[:0]
    return positions[np.all(table.values[positions] == noise.cost, axis=1)]


def _fourth_order_looks(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray,
                        rng: np.random.Generator, progress: Progress) -> NoiseModel:
    """Entries a central difference left unresolved in a coarse precision, looked at with Richardson's scheme.

    In float32 a central difference's best step is a compromise between a
    rounding error that grows like 1/h and a truncation that grows like h**2,
    and a few entries end just short of the claim. The fourth-order scheme's
    truncation grows like h**4, so its steps can be larger and its rounding
    smaller: it settles them at 4 calls a look instead of 2. Entries it
    decides (OK or WRONG) take its estimate, tolerance and step; the others
    stay unresolved.
    """
    fourth = replace(target, method="richardson")
    steps = np.zeros(table.steps.size)
    steps[positions] = representable_steps(target.point[positions], default_steps(
        fourth.method, target.point_scale[positions], noise.computed_unit))
    looks = EntryTable.start(steps, fourth.method)
    table.phase = f"the fourth-order looks at {counted(positions.size, 'entry')}"
    noise = check_entries(fourth, noise, looks, positions, True, rng, progress)
    decided = positions[among(looks.status[positions], (Status.OK, Status.WRONG))]
    for name in ("numeric", "tolerance", "steps", "status"):
        getattr(table, name)[decided] = getattr(looks, name)[decided]
    return noise


def _first_look(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray,
                progress: Progress) -> None:
    """One look at every entry, in chunks sized to take a fraction of a second each."""
    evaluator = target.evaluator
    size, done = evaluator.first_chunk, 0
    progress.phase(positions.size, "first look")
    while done < positions.size:
        chunk = positions[done:done + size]
        chunk_start = time.perf_counter()
        estimates, values, steps = _measure(target, noise, table, chunk, table.steps[chunk])
        table.numeric[chunk], table.values[chunk], table.steps[chunk] = estimates, values, steps
        table.status[chunk[~np.isfinite(estimates)]] = Status.SKIPPED
        _judge(target, noise, table, chunk[table.status[chunk] == Status.UNCHECKED])
        done += chunk.size
        table.phase = f"the first look, after {done} of {positions.size} entries"
        progress.update(chunk.size)
        per_entry = (time.perf_counter() - chunk_start) / chunk.size
        size = int(np.clip(evaluator.chunk_seconds / max(per_entry, 1e-9), 8, MAX_CHUNK))


def _measure(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray,
             steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimates along each entry, with smaller steps where J returns NaN or inf: (estimates, values, steps)."""
    estimates, values = _differences(target, noise, table, positions, steps)
    for _ in range(DOMAIN_RETRIES):
        bad = ~np.isfinite(estimates)
        if not bad.any():
            break
        table.reduced.append(positions[bad])
        steps = steps.copy()
        steps[bad] = smaller_steps(target.point[positions[bad]], steps[bad])
        estimates[bad], values[bad] = _differences(target, noise, table, positions[bad], steps[bad])
    return estimates, values, steps


def _differences(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray,
                 steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`differences`, keeping (and judging) the complete entries of a first look when interrupted."""
    try:
        estimates, values = differences(target.evaluator, target.method, positions, steps, noise.cost)
    except PartialDifferences as partial:
        done = positions[:partial.count]
        first = done[table.status[done] == Status.UNCHECKED]  # second looks keep their best so far instead
        kept = np.isin(done, first)
        table.numeric[first], table.values[first] = partial.estimates[kept], partial.values[kept]
        table.steps[first] = steps[:partial.count][kept]
        _judge(target, noise, table, first)
        raise
    if target.stencil is None and not np.any(values) and np.any(target.analytic[positions]):
        raise InputError(
            "method='complex' needs a J that computes with complex numbers, but "
            "J(theta + 1e-20j * e_i) came back real (abs, np.real, float() or a real-typed "
            "array drops the imaginary part); use method='central'")
    return estimates, values


def _judge(target: Target, noise: NoiseModel, table: EntryTable, positions: np.ndarray) -> None:
    """First-look verdict: OK (agrees, resolved), UNRESOLVED (agrees, tolerance too loose), or WRONG."""
    positions = positions[np.isfinite(table.numeric[positions])]
    estimates = table.numeric[positions]
    analytic = target.analytic[positions]
    gap = np.abs(analytic - estimates)
    rounding = noise.rounding(table.values[positions], table.steps[positions], target.stencil)
    look = judge(gap, rounding, noise.floor(analytic, estimates, target.block_scale[positions]))
    table.tolerance[positions] = look.tolerance
    if target.tol is not None:  # the classic rule, entry by entry; what it resolves is judged as a whole
        agree, resolved = classic_agrees(gap, analytic, estimates, target.tol), np.ones(positions.size, bool)
    else:
        agree, resolved = look.agree, _resolved(target, noise, positions, look.tolerance)
    status = np.where(agree, np.where(resolved, Status.OK, Status.UNRESOLVED), Status.WRONG)
    table.status[positions] = np.where(np.isfinite(analytic), status, Status.WRONG)
    table.pending[positions] = table.status[positions] == Status.WRONG


def _resolved(target: Target, noise: NoiseModel, positions: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """Whether each tolerance is within the resolution the verdict claims (a zero gradient: always)."""
    return noise.resolves(tolerance, target.claim_scale(positions))


def _suspects(target: Target, table: EntryTable) -> np.ndarray:
    """Entries that need second looks: those that disagree or are unresolved (grad's NaN or inf is just wrong)."""
    return np.flatnonzero(among(table.status, (Status.WRONG, Status.UNRESOLVED)) & np.isfinite(table.numeric)
                          & np.isfinite(target.analytic))


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


@dataclass
class _Look:
    """One look per active entry: its step, estimate, rounding error and stencil values."""

    step: np.ndarray
    estimate: np.ndarray
    rounding: np.ndarray
    values: np.ndarray

    def take(self, keep: np.ndarray) -> _Look:
        return _Look(self.step[keep], self.estimate[keep], self.rounding[keep], self.values[keep])

    def put(self, where: np.ndarray, other: _Look) -> None:
        self.step[where], self.estimate[where] = other.step[where], other.estimate[where]
        self.rounding[where], self.values[where] = other.rounding[where], other.values[where]


def _second_looks(target: Target, noise: NoiseModel, table: EntryTable, suspects: np.ndarray,
                  progress: Progress) -> None:
    """Walk each suspect's ladder of steps until it is decided (see the module's docstring)."""
    stencil = STENCILS[target.method]
    active = suspects
    first = _Look(table.steps[active].copy(), table.numeric[active].copy(),
                  noise.rounding(table.values[active], table.steps[active], stencil), table.values[active].copy())
    small, large = first, _Look(*(a.copy() for a in (first.step, first.estimate, first.rounding, first.values)))
    truncation = np.full(active.size, np.nan)  # of the best look; NaN until a pair bounds it
    best = np.full(active.size, np.inf)  # the best look's tolerance: the first look's has no truncation bound yet
    for _ in range(REFINE_LEVELS):
        best_rounding = noise.rounding(table.values[active], table.steps[active], stencil)
        unresolved = ~_resolved(target, noise, active, table.tolerance[active])
        grow = np.where(np.isnan(truncation), unresolved & (best_rounding > 0.5 * table.tolerance[active]),
                        best_rounding > truncation)
        grow &= large.step * REFINE_RATIO <= GROWTH_LIMIT * target.point_scale[active]
        steps = np.where(grow, large.step * REFINE_RATIO, small.step / REFINE_RATIO)
        steps = representable_steps(target.point[active], steps)
        ended = ~grow & (steps < _smallest_steps(target, noise, active))
        if ended.any():  # a smaller step would see J's rounding of theta, not J: these entries end here
            _end_ladder(target, table, active[ended])
            progress.update(int(ended.sum()))
            keep = ~ended
            active, small, large, steps, grow = active[keep], small.take(keep), large.take(keep), steps[keep], \
                grow[keep]
            truncation, best = truncation[keep], best[keep]
            if not active.size:
                return
        estimates, values, steps = _measure(target, noise, table, active, steps)
        new = _Look(steps, estimates, noise.rounding(values, steps, stencil), values)
        live = np.isfinite(estimates)
        beside = large if grow.all() else small if not grow.any() else _Look(
            np.where(grow, large.step, small.step), np.where(grow, large.estimate, small.estimate),
            np.where(grow, large.rounding, small.rounding), np.where(grow[:, None], large.values, small.values))
        change = np.abs(new.estimate - beside.estimate)
        pair_noise = new.rounding + beside.rounding
        pair_truncation = noise.truncation(change, stencil.order, pair_noise)
        # The smaller step of the pair has the truncation bound; the larger one REFINE_RATIO**order times it.
        larger = REFINE_RATIO ** stencil.order * pair_truncation
        analytic = target.analytic[active]
        floor = noise.floor(analytic, estimates, target.block_scale[active])
        look = judge(np.abs(analytic - estimates), new.rounding, floor, np.where(grow, larger, pair_truncation))
        settled = change <= pair_noise + floor  # two looks agree with each other: a third would not move them
        for candidate, tolerance, own in (
                (beside, beside.rounding + floor + np.where(grow, pair_truncation, larger),
                 np.where(grow, pair_truncation, larger)),
                (new, look.tolerance, np.where(grow, larger, pair_truncation))):
            better = live & (tolerance < best)
            _keep(table, active[better], candidate.take(better), tolerance[better])
            best[better], truncation[better] = tolerance[better], own[better]
        kink, jump = _kinks(target, noise, table, active, small, new, live & ~grow, look.agree)
        small.put(live & ~grow, new)
        large.put(live & grow, new)
        decided = _decide(target, noise, table, active, live, settled, kink | jump)
        progress.update(int(decided.sum()))
        keep = ~decided
        active, small, large = active[keep], small.take(keep), large.take(keep)
        truncation, best = truncation[keep], best[keep]
        if not active.size:
            return
    _end_ladder(target, table, active)


def _end_ladder(target: Target, table: EntryTable, active: np.ndarray) -> None:
    """Entries no further look can decide: UNRESOLVED if their best look agrees, else WRONG."""
    agree = np.abs(target.analytic[active] - table.numeric[active]) <= table.tolerance[active]
    table.status[active] = np.where(agree, Status.UNRESOLVED, Status.WRONG)
    table.pending[active] = False


def _smallest_steps(target: Target, noise: NoiseModel, positions: np.ndarray) -> np.ndarray | float:
    """The smallest step J can see at each entry: `STEP_ULPS` of its own rounding of theta, if coarser than theta's."""
    if noise.computed_unit == noise.unit:
        return 0.0
    return STEP_ULPS * noise.computed_unit * np.abs(target.point[positions])


def _keep(table: EntryTable, positions: np.ndarray, look: _Look, tolerance: np.ndarray) -> None:
    """Make ``look`` the best estimate of ``positions``."""
    table.numeric[positions], table.values[positions] = look.estimate, look.values
    table.steps[positions], table.tolerance[positions] = look.step, tolerance


def _decide(target: Target, noise: NoiseModel, table: EntryTable, active: np.ndarray, live: np.ndarray,
            settled: np.ndarray, at_kink: np.ndarray) -> np.ndarray:
    """Set the status of the entries the last look decided; returns which of ``active`` they are."""
    gap = np.abs(target.analytic[active] - table.numeric[active])
    agree = gap <= table.tolerance[active]
    resolved = _resolved(target, noise, active, table.tolerance[active])
    ok = live & agree & resolved & ~at_kink
    wrong = live & ~agree & settled & ~at_kink
    table.status[active[ok]] = Status.OK
    table.status[active[wrong]] = Status.WRONG
    decided = ok | wrong | at_kink
    table.pending[active[decided]] = False
    return decided


def _kinks(target: Target, noise: NoiseModel, table: EntryTable, active: np.ndarray, previous: _Look,
           new: _Look, shrunk: np.ndarray, agree: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kinks and jumps of J that a smaller step shows; sets their status. Returns (kink, jump) masks.

    A kink: the spread between the one-sided slopes persists at the smaller
    step, beyond rounding, and each slope settles to its own limit. A jump:
    the spread grows like 1/h. Only a pair of looks from a step to a
    smaller one says either.
    """
    stencil = STENCILS[target.method]
    none = np.zeros(active.size, bool)
    if stencil.sides is None:
        return none, none
    old_left, old_right = one_sided(stencil, previous.values, previous.step, noise.cost)
    left, right = one_sided(stencil, new.values, new.step, noise.cost)
    old_spread, new_spread = np.abs(old_right - old_left), np.abs(right - left)
    floor = noise.floor(target.analytic[active], new.estimate, target.block_scale[active])
    # The one-sided limits must differ beyond what their own tolerances allow, not only beyond rounding.
    significant = shrunk & (new_spread > 2 * (new.rounding + floor)) & (new_spread >= KINK_PERSISTS * old_spread)
    jump = significant & (new_spread > JUMP_GROWS * old_spread)
    settle = (np.abs(left - old_left) <= SLOPES_SETTLE * new_spread) & (np.abs(right - old_right)
                                                                       <= SLOPES_SETTLE * new_spread)
    kink = significant & ~jump & settle
    # The old spread must stand far above the new step's rounding too: noise can make a new spread small by chance.
    crossed = shrunk & agree & ~kink & ~jump & (old_spread > KINK_CROSSED * np.maximum(new_spread, new.rounding))
    table.kink_near.append(active[crossed])
    table.jumps.append(active[jump])
    tolerance = new.rounding + floor
    between = within(target.analytic[active], left, right, tolerance)
    table.status[active[kink]] = np.where(between[kink], Status.KINK, Status.WRONG)
    table.status[active[jump]] = Status.KINK  # where J jumps, any gradient is a convention
    for i in np.flatnonzero(kink | jump).tolist():
        table.one_sided[int(active[i])] = (float(left[i]), float(right[i]))
    return kink, jump
