"""Directional checks: a few random directions, then find the wrong entries.

Along a direction v, the two-sided difference of J gives ``v . grad J`` in 2
calls, whatever n is. With random signs, every wrong entry moves every
direction's discrepancy, so k directions that all agree make a right
gradient likely at 2k calls. When one disagrees, the wrong entries are found
by group testing: probe each block with a direction supported on it, split
the failing groups in halves, and recurse. One wrong entry among n is named
in about 2 log2(n) probes.

A probe is judged like an entry of the coordinate path: against the same
noise model and by the same rule, with smaller moves where it disagrees.
"""

from __future__ import annotations

import numpy as np

from ._differences import DOMAIN_RETRIES, DOMAIN_SHRINK, REFINE_LEVELS, REFINE_RATIO, STENCILS
from ._evaluate import Evaluator
from ._evidence import DirectionalFindings, Probes
from ._noise import NoiseModel, measure_noise
from ._params import Layout
from ._verdict import judge

__all__ = ["Prober", "check_directions"]

MAX_FOUND = 5
"""Wrong entries to name before the search stops."""

RATIO_AGREEMENT = 0.05
"""Directions whose A/D agree within this share of |A/D - 1| are taken to share one factor (scale, sign)."""

CENTRAL = STENCILS["central"]


class Prober:
    """Judges J along ``theta +- shifts[k]`` against the noise model, with smaller moves where it disagrees.

    Each probe keeps its own scale of the move: a quarter of it for a second
    look, a sixteenth where J left its domain. The first probe that
    disagrees beyond rounding has J's noise measured, for every later one.

    Attributes
    ----------
    noise : NoiseModel
        The model, with J's measured noise once it was needed.
    reduced : bool
        Some probe left J's domain and moved closer to theta.
    """

    def __init__(self, evaluator: Evaluator, point: np.ndarray, analytic: np.ndarray, noise: NoiseModel,
                 rng: np.random.Generator) -> None:
        self.evaluator, self.point, self.analytic, self.rng = evaluator, point, analytic, rng
        self.noise = noise
        self.reduced = False

    def __call__(self, shifts: np.ndarray) -> Probes:
        count = len(shifts)
        analytic = shifts @ self.analytic
        scale_of_gradient = np.abs(shifts) @ np.abs(self.analytic)
        numeric, tolerance = np.full(count, np.nan), np.full(count, np.inf)
        agree = np.zeros(count, bool)
        scale, previous = np.ones(count), np.full(count, np.nan)
        levels, retries = np.zeros(count, int), np.zeros(count, int)
        active = np.arange(count)
        while active.size:
            rows = shifts[active] * scale[active, None]
            costs = self.evaluator.shifted(np.concatenate([rows, -rows]), np.empty(2 * active.size))
            values = np.column_stack([costs[: active.size], costs[active.size:]])
            estimate = (values[:, 0] - values[:, 1]) / (2 * scale[active])
            finite = np.isfinite(estimate)
            lost = ~finite & (retries[active] < DOMAIN_RETRIES)
            self.reduced |= bool(lost.any())
            retries[active[lost]] += 1
            scale[active[lost]] /= DOMAIN_SHRINK
            first = np.isnan(previous[active])
            gap = np.abs(analytic[active] - estimate)
            if self.noise.measured == 0 and np.any(finite & first & (
                    gap > self._rounding(values, scale[active]) + self.noise.absolute_floor(
                        scale_of_gradient[active]))):
                self.noise = self.noise.with_measured(measure_noise(self.evaluator, self.point, self.noise, self.rng))
            change = np.where(first, np.inf, np.abs(previous[active] - estimate))
            truncation = np.where(first, 0.0, self.noise.truncation(change, CENTRAL.order))
            look = judge(gap, self._rounding(values, scale[active]),
                         self.noise.floor(analytic[active], estimate, scale_of_gradient[active]), truncation, change)
            ok = finite & look.agree
            numeric[active[finite]] = estimate[finite]
            tolerance[active[finite]] = look.tolerance[finite]
            agree[active[ok]] = True
            again = finite & ~ok & ~look.settled & (levels[active] < REFINE_LEVELS)
            levels[active[again]] += 1
            previous[active[again]] = estimate[again]
            scale[active[again]] /= REFINE_RATIO
            active = active[again | lost]
        return Probes(analytic, numeric, tolerance, agree)

    def _rounding(self, values: np.ndarray, scale: np.ndarray) -> np.ndarray:
        return self.noise.rounding(values, scale, CENTRAL)


def check_directions(probe: Prober, layout: Layout, steps: np.ndarray, count: int,
                     rng: np.random.Generator) -> DirectionalFindings:
    """Probe ``count`` random directions; localize the wrong entries if one disagrees.

    Parameters
    ----------
    probe : Prober
        Judges the moves ``theta +- shifts[k]`` for each row of ``shifts``.
    layout : Layout
    steps : ndarray
        Per-entry steps: the size of a move along each coordinate.
    count : int
        Random directions.
    rng : Generator
    """
    shifts = rng.choice([-1.0, 1.0], (count, layout.size)) * steps
    found = DirectionalFindings(probe(shifts), probes=count)
    factor = _shared_factor(found.directions)
    if factor is not None:
        found.factor = factor
        found.failed_blocks = [b.name for b in layout.blocks]
    elif not found.directions.agree.all():
        _localize(probe, layout, steps, rng, found)
    found.reduced = probe.reduced
    return found


def _shared_factor(directions: Probes) -> float | None:
    """The factor c with A = c * D along every direction, when no direction agrees and all share one."""
    if directions.agree.size < 2 or directions.agree.any():
        return None
    ratios = directions.analytic / np.where(directions.numeric != 0, directions.numeric, np.nan)
    middle = np.median(ratios)
    return float(middle) if np.all(np.abs(ratios - middle) <= RATIO_AGREEMENT * abs(middle - 1)) else None


def _localize(probe: Prober, layout: Layout, steps: np.ndarray, rng: np.random.Generator,
              found: DirectionalFindings) -> None:
    groups = [np.arange(b.start, b.stop) for b in layout.blocks]
    verdicts = _probe_groups(probe, groups, steps, rng, found)
    searches = []  # one depth-first search per failing block
    for block, group, (ok, _) in zip(layout.blocks, groups, verdicts):
        if not ok:
            found.failed_blocks.append(block.name)
            searches.append([(group, (float("nan"), float("nan")))])
    # Name one entry in every failing block first, then more, up to MAX_FOUND.
    while any(searches) and len(found.wrong) < MAX_FOUND:
        for stack in searches:
            if stack and len(found.wrong) < MAX_FOUND:
                _descend(probe, stack, steps, rng, found)


def _descend(probe: Prober, stack: list[tuple[np.ndarray, tuple[float, float]]], steps: np.ndarray,
             rng: np.random.Generator, found: DirectionalFindings) -> None:
    """Split failing groups depth-first until one wrong entry is named (or none is left)."""
    while stack:
        group, measured = stack.pop()
        if group.size == 1:
            found.wrong[int(group[0])] = measured
            return
        halves = [group[: group.size // 2], group[group.size // 2:]]
        for half, (ok, measured) in reversed(list(zip(halves, _probe_groups(probe, halves, steps, rng, found)))):
            if not ok:
                stack.append((half, measured))


def _probe_groups(probe: Prober, groups: list[np.ndarray], steps: np.ndarray,
                  rng: np.random.Generator, found: DirectionalFindings) -> list[tuple[bool, tuple[float, float]]]:
    """Probe one random direction supported on each group.

    Returns, per group, whether it agrees and, for a single entry, its
    numeric derivative and that value's tolerance.
    """
    shifts = np.zeros((len(groups), steps.size))
    for row, group in zip(shifts, groups):
        row[group] = rng.choice([-1.0, 1.0], group.size) * steps[group]
    result = probe(shifts)
    found.probes += len(groups)
    out = []
    for row, group, ok, numeric, tolerance in zip(shifts, groups, result.agree, result.numeric, result.tolerance):
        step = row[group[0]] if group.size == 1 else np.nan
        out.append((bool(ok), (float(numeric / step), float(tolerance / abs(step)))))
    return out
