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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._differences import DOMAIN_RETRIES, DOMAIN_SHRINK, REFINE_LEVELS, REFINE_RATIO, STENCILS
from ._evaluate import Evaluator
from ._evidence import DirectionalFindings, Probes
from ._noise import NoiseModel, measure_noise
from ._params import Layout
from ._progress import Progress
from ._verdict import judge

__all__ = ["DirectionalSearch", "Directions", "Prober"]

MAX_FOUND = 5
"""Wrong entries to name before the search stops."""

SEARCH_RETRIES = 2
"""A failing group whose parts all agree is probed again along this many fresh directions: a kink or a tie, or
errors of opposite signs, make a probe agree or not by the signs it draws."""

RATIO_AGREEMENT = 0.05
"""Directions whose A/D agree within this share of |A/D - 1| are taken to share one factor (scale, sign)."""

CENTRAL = STENCILS["central"]

Group = tuple[int, int]
"""A run of flat positions ``start:stop`` (the support of a probe)."""


@dataclass(frozen=True)
class Directions:
    """Moves of theta along random sign directions, made one at a time from their seeds, never all at once.

    Move k changes the entries of ``groups[k]`` (every entry when None) by
    ``factors[k] * s_i * steps[i]`` with signs ``s_i = +-1`` drawn from
    ``seeds[k]``. A move costs memory only while J is evaluated at it, so
    the memory of a directional check does not grow with the number of
    directions; and the moves pickle small, for an executor's workers.
    """

    steps: np.ndarray
    seeds: np.ndarray
    groups: tuple[Group | None, ...]
    factors: np.ndarray

    @classmethod
    def random(cls, steps: np.ndarray, groups: list[Group | None], rng: np.random.Generator) -> Directions:
        """One direction per group, each with its own seed drawn from ``rng``."""
        return cls(steps, rng.integers(2 ** 63, size=len(groups)), tuple(groups), np.ones(len(groups)))

    def __len__(self) -> int:
        return self.seeds.size

    def __getitem__(self, k: int) -> np.ndarray:
        """Move k as a full vector."""
        group = self.groups[k]
        if group is None:
            row = self._signs(k) * self.steps
        else:
            row = np.zeros(self.steps.size)
            row[group[0]:group[1]] = self._signs(k) * self.steps[group[0]:group[1]]
        row *= self.factors[k]
        return row

    def entry(self, k: int, position: int) -> float:
        """Move k's change of one entry of its group."""
        group = self.groups[k]
        start = 0 if group is None else group[0]
        return float(self._signs(k)[position - start] * self.steps[position] * self.factors[k])

    def part(self, which: np.ndarray | slice) -> Directions:
        """The moves ``which`` (an index array or a slice)."""
        rows = np.arange(len(self))[which]
        return Directions(self.steps, self.seeds[rows], tuple(self.groups[k] for k in rows.tolist()),
                          self.factors[rows])

    def scaled(self, factors: np.ndarray) -> Directions:
        """The same moves, each multiplied by its factor."""
        return Directions(self.steps, self.seeds, self.groups, self.factors * factors)

    def _signs(self, k: int) -> np.ndarray:
        group = self.groups[k]
        size = self.steps.size if group is None else group[1] - group[0]
        bits = np.random.default_rng(int(self.seeds[k])).integers(0, 2, size, dtype=np.int8)
        return bits * np.int8(2) - np.int8(1)


class Prober:
    """Judges J along ``theta +- d`` for each move d against the noise model, with smaller moves where it disagrees.

    Each probe keeps its own scale of the move: a quarter of it for a second
    look, a sixteenth where J left its domain. The first probe that
    disagrees beyond rounding has J's noise measured, for every later one.
    A probe is resolved when its tolerance makes an error above the claimed
    resolution of ``||v * a||`` (the size ``v . a`` has along random signs)
    sure to show (`NoiseModel.resolves`).

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
        self.step_factor = 1.0  # grows once J is seen to compute in a coarser precision than its steps were made for

    def __call__(self, moves: Directions) -> Probes:
        count = len(moves)
        analytic, scale_of_gradient, size = self._sizes(moves)
        numeric, tolerance = np.full(count, np.nan), np.full(count, np.inf)
        agree = np.zeros(count, bool)
        scale, previous, previous_rounding = np.full(count, self.step_factor), np.full(count, np.nan), np.zeros(count)
        levels, retries = np.zeros(count, int), np.zeros(count, int)
        active = np.arange(count)
        while active.size:
            both = moves.part(np.concatenate([active, active])).scaled(np.concatenate([scale[active],
                                                                                        -scale[active]]))
            costs = self.evaluator.shifted(both, np.empty(2 * active.size))
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
                self.noise = measure_noise(self.evaluator, self.point, self.noise, self.rng)
                if self.noise.computed_unit > self.noise.unit:  # steps for J's real precision, then look again
                    self.step_factor = (self.noise.computed_unit / self.noise.unit) ** CENTRAL.step_exponent
                    scale[active] *= self.step_factor
                    continue
            rounding = self._rounding(values, scale[active])
            change = np.where(first, np.inf, np.abs(previous[active] - estimate))
            truncation = np.where(first, 0.0, self.noise.truncation(change, CENTRAL.order,
                                                                    rounding + previous_rounding[active]))
            look = judge(gap, rounding, self.noise.floor(analytic[active], estimate, scale_of_gradient[active]),
                         truncation, change)
            ok = finite & look.agree
            numeric[active[finite]] = estimate[finite]
            tolerance[active[finite]] = look.tolerance[finite]
            agree[active[ok]] = True
            again = finite & ~ok & ~look.settled & (levels[active] < REFINE_LEVELS)
            levels[active[again]] += 1
            previous[active[again]], previous_rounding[active[again]] = estimate[again], rounding[again]
            scale[active[again]] /= REFINE_RATIO
            active = active[again | lost]
        resolved = self.noise.resolves(tolerance, size)
        return Probes(analytic, numeric, tolerance, agree, resolved)

    @property
    def moves_at_once(self) -> int:
        """Moves worth probing together (see `Evaluator.moves_at_once`)."""
        return self.evaluator.moves_at_once

    def _sizes(self, moves: Directions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per move v: ``v . a``, ``|v| . |a|`` and ``||v * a||``, one move in memory at a time."""
        sizes = np.zeros((3, len(moves)))
        for k in range(len(moves)):
            product = moves[k]
            np.multiply(product, self.analytic, out=product)
            sizes[0, k] = product.sum()
            np.abs(product, out=product)
            sizes[1, k] = product.sum()
            sizes[2, k] = np.sqrt(product @ product)
        return sizes[0], sizes[1], sizes[2]

    def _rounding(self, values: np.ndarray, scale: np.ndarray) -> np.ndarray:
        return self.noise.rounding(values, scale, CENTRAL)


class DirectionalSearch:
    """Probe random directions; when one disagrees, find and name the wrong entries.

    ``found`` holds what was found so far (also when the search is
    interrupted), ``phase`` what the search is doing.

    Parameters
    ----------
    prober : Prober
        Judges J along moves of theta.
    layout : Layout
    steps : ndarray
        Per-entry steps: the size of a move along each coordinate.
    count : int
        Random directions.
    rng : Generator
    progress : Progress
    at_kink : callable
        ``at_kink(position)``: J's one-sided slopes where a named entry sits
        at a kink with grad between them (not wrong), else None.
    """

    def __init__(self, prober: Prober, layout: Layout, steps: np.ndarray, count: int, rng: np.random.Generator,
                 progress: Progress, at_kink: Callable[[int], tuple[float, float] | None]) -> None:
        self.prober, self.layout, self.steps, self.count, self.rng = prober, layout, steps, count, rng
        self.progress, self.at_kink = progress, at_kink
        self.found: DirectionalFindings | None = None
        self.phase = f"the {count} random directions"

    def run(self) -> DirectionalFindings:
        directions = Directions.random(self.steps, [None] * self.count, self.rng)
        found = self.found = DirectionalFindings(Probes.none())
        self.progress.phase(self.count, "random directions")
        chunk = self.prober.moves_at_once
        for start in range(0, self.count, chunk):
            part = directions.part(slice(start, start + chunk))
            found.directions = found.directions.joined(self.prober(part))
            found.probes += len(part)
            self.phase = f"the {self.count} random directions, after {found.probes} of them"
            self.progress.update(len(part))
        factor = _shared_factor(found.directions)
        if factor is not None:
            found.factor = factor
            found.failed_blocks = [b.name for b in self.layout.blocks]
        elif not found.directions.agree.all():
            self._localize(found)
        found.reduced = self.prober.reduced
        return found

    def _localize(self, found: DirectionalFindings) -> None:
        groups: list[Group] = [(b.start, b.stop) for b in self.layout.blocks if b.size]
        self.phase = "the search for wrong entries"
        self.progress.phase(len(groups) + 2 * sum(int(np.ceil(np.log2(max(stop - start, 2))))
                                                  for start, stop in groups), "search for wrong entries")
        failing = self._failing_parts(groups, found)
        searches = [[part] for part in failing]  # one depth-first search per failing block
        # Name one entry in every failing block first, then more, up to MAX_FOUND wrong ones.
        while any(searches) and len(found.wrong) < MAX_FOUND:
            for stack in searches:
                if stack and len(found.wrong) < MAX_FOUND:
                    self._descend(stack, found)
        left = {self.layout.block_of(group[0]).name for stack in searches for group, _ in stack}
        named = {self.layout.block_of(position).name for position in found.wrong}
        found.failed_blocks = [b.name for b in self.layout.blocks if b.name in named | left]

    def _descend(self, stack: list[tuple[Group, tuple[float, float]]], found: DirectionalFindings) -> None:
        """Split failing groups depth-first until one wrong entry is named (or none is left).

        An entry alone that disagrees may sit at a kink with grad between J's one-sided slopes: it is then
        recorded as a kink, not as wrong, and the search goes on.
        """
        while stack:
            (start, stop), measured = stack.pop()
            if stop - start == 1:
                sides = self.at_kink(start)
                if sides is None:
                    found.wrong[start] = measured
                    return
                found.kinks[start] = sides
                continue
            middle = (start + stop) // 2
            stack.extend(reversed(self._failing_parts([(start, middle), (middle, stop)], found)))

    def _failing_parts(self, groups: list[Group], found: DirectionalFindings
                       ) -> list[tuple[Group, tuple[float, float]]]:
        """The groups whose probe disagrees, probed again where none does (see `SEARCH_RETRIES`).

        When every part of a failing whole agrees, even after the retries, the whole's disagreement has no
        place the search can name: ``found.unexplained`` says so.
        """
        for _ in range(SEARCH_RETRIES + 1):
            failing = [(group, measured) for group, (ok, measured) in zip(groups, self._probe_groups(groups, found))
                       if not ok]
            if failing:
                return failing
        found.unexplained = True
        return []

    def _probe_groups(self, groups: list[Group], found: DirectionalFindings) -> list[tuple[bool, tuple[float, float]]]:
        """Probe one random direction supported on each group.

        Returns, per group, whether it agrees and, for a single entry, its
        numeric derivative and that value's tolerance.
        """
        moves = Directions.random(self.steps, list(groups), self.rng)
        result = self.prober(moves)
        found.probes += len(groups)
        self.progress.update(len(groups))
        out = []
        for k, ((start, stop), ok, numeric, tolerance) in enumerate(zip(groups, result.agree, result.numeric,
                                                                         result.tolerance)):
            step = moves.entry(k, start) if stop - start == 1 else np.nan
            out.append((bool(ok), (float(numeric / step), float(tolerance / abs(step)))))
        return out


def _shared_factor(directions: Probes) -> float | None:
    """The factor c with A = c * D along every direction, when no direction agrees and all share one."""
    if directions.agree.size < 2 or directions.agree.any():
        return None
    ratios = directions.analytic / np.where(directions.numeric != 0, directions.numeric, np.nan)
    middle = np.median(ratios)
    return float(middle) if np.all(np.abs(ratios - middle) <= RATIO_AGREEMENT * abs(middle - 1)) else None
