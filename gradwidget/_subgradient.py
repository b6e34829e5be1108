"""At a kink: whether grad is consistent with any subgradient, along a direction where J is smooth.

One entry at a time, a kink only says that grad's value lies between the
one-sided slopes. Entries at a kink together can say more: at a tie of a
max (two equal inputs of a max-pooling window), moving the tied entries
together keeps the tie, so J is smooth along that direction and its slope
there is the directional derivative every subgradient ``g`` must give:
``left <= g . d <= right`` for the one-sided slopes along ``d`` ([1]; with
``left == right`` where J is smooth along ``d``). A backward that gives the
whole upstream gradient to every tied maximum gives twice that slope. Per
block, the entries at a kink move together, each by its own step.

References
----------
.. [1] F. H. Clarke, *Optimization and Nonsmooth Analysis*, SIAM, 1990,
   sec. 2.1 (the generalized directional derivative bounds ``g . d`` for
   every generalized gradient ``g``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ._differences import STENCILS, default_steps, point_scales
from ._evaluate import Evaluator
from ._evidence import NotSubgradient
from ._noise import NoiseModel
from ._params import Layout

__all__ = ["MAX_PARTNERS", "kink_alone", "not_subgradients", "tie_partners"]

MAX_PARTNERS = 64
"""Entries tied with a kink's entry (equal values in its block) looked at beside it, at most, per entry."""

SIDE_STEPS = (1.0, 0.25)
"""The one-sided slopes along the direction are measured at these multiples of the entries' steps."""

SIDES_SETTLE = 0.25
"""A one-sided slope has settled when its two steps agree within rounding and this share of its size."""

FORWARD = STENCILS["forward"]


@dataclass(frozen=True)
class _Sides:
    """Moves ``factors[k] * direction`` (see `Moves`)."""

    direction: np.ndarray
    factors: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.factors)

    def __getitem__(self, k: int) -> np.ndarray:
        return self.factors[k] * self.direction

    def part(self, which: slice) -> _Sides:
        return replace(self, factors=self.factors[which])


def not_subgradients(evaluator: Evaluator, layout: Layout, point: np.ndarray, analytic: np.ndarray,
                     at_kink: np.ndarray, noise: NoiseModel) -> dict[str, NotSubgradient]:
    """The blocks whose entries at a kink, moved together, show grad outside J's one-sided slopes.

    Parameters
    ----------
    evaluator : Evaluator
    layout : Layout
    point, analytic : ndarray
        Flat theta and grad's answer there.
    at_kink : ndarray
        Flat positions of the entries at a kink of J (jumps excluded).
    noise : NoiseModel

    Returns
    -------
    dict
        Block name -> `NotSubgradient`, for the blocks found inconsistent.
        Blocks with fewer than two entries at a kink are not looked at: one
        entry alone is what the coordinate check already judged.
    """
    found = {}
    steps = default_steps("central", point_scales(point, [b.slice for b in layout.blocks]), noise.computed_unit)
    for block in layout.blocks:
        positions = at_kink[(at_kink >= block.start) & (at_kink < block.stop)]
        if positions.size < 2:
            continue
        direction = np.zeros(point.size)
        direction[positions] = steps[positions]  # tied entries have equal values, so equal steps: a tie stays one
        sides = _Sides(direction, tuple(f for t in SIDE_STEPS for f in (t, -t)))
        values = evaluator.shifted(sides, np.empty(len(sides))).reshape(len(SIDE_STEPS), 2)
        slopes = _one_sided(values, noise)
        if slopes is None:
            continue
        left, right, tolerance = slopes
        claimed = float(direction @ analytic)
        if not (min(left, right) - tolerance <= claimed <= max(left, right) + tolerance):
            unit = float(direction.max())
            found[block.name] = NotSubgradient(positions, claimed / unit, left / unit, right / unit)
    return found


def kink_alone(evaluator: Evaluator, point: np.ndarray, analytic: np.ndarray, position: int, step: float,
               noise: NoiseModel) -> tuple[float, float] | None:
    """J's one-sided slopes at one entry, when it sits at a kink there and grad's value lies between them; else None.

    A random direction, or a group of entries moved together, that crosses
    a kink or a tie disagrees with grad although grad gives a valid
    subgradient: the entry is then judged as the coordinate path judges it,
    from the one-sided slopes at two steps.
    """
    direction = np.zeros(point.size)
    direction[position] = step
    sides = _Sides(direction, tuple(f for t in SIDE_STEPS for f in (t, -t)))
    slopes = _one_sided(evaluator.shifted(sides, np.empty(len(sides))).reshape(len(SIDE_STEPS), 2), noise)
    if slopes is None:
        return None
    left, right, tolerance = (value / step for value in slopes)
    kink = abs(right - left) > 2 * tolerance
    between = min(left, right) - tolerance <= analytic[position] <= max(left, right) + tolerance
    return (left, right) if kink and between else None


def tie_partners(point: np.ndarray, layout: Layout, positions: np.ndarray) -> np.ndarray:
    """The entries tied with ``positions``: of equal value in the same block (at most `MAX_PARTNERS` each).

    A tie of a max (a pooling window's two equal maxima) is a kink of J that
    only the tied entries moved together can judge (`not_subgradients`); a
    sample or a search that found one of them needs the others too.
    """
    found = []
    for position in positions.tolist():
        block = layout.block_of(position)
        same = np.flatnonzero(point[block.slice] == point[position]) + block.start
        found.append(same[same != position][:MAX_PARTNERS])
    partners = np.unique(np.concatenate(found)) if found else np.zeros(0, int)
    return np.setdiff1d(partners, positions)


def _one_sided(values: np.ndarray, noise: NoiseModel) -> tuple[float, float, float] | None:
    """J's slopes from the left and from the right at the smaller step, and their tolerance.

    ``values`` holds J at ``+-t`` (one row per t of `SIDE_STEPS`). None where
    a value is not finite or a slope has not settled between the two steps
    (`SIDES_SETTLE`). The truncation left at the smaller step is bounded from
    the change between the two, as for any pair of looks.
    """
    centre = noise.cost
    steps = np.array(SIDE_STEPS)
    right = (values[:, 0] - centre) / steps
    left = (centre - values[:, 1]) / steps
    rounding = noise.rounding(values, steps, FORWARD)
    if not (np.isfinite(right).all() and np.isfinite(left).all() and np.isfinite(rounding).all()):
        return None
    change = max(abs(float(right[0] - right[1])), abs(float(left[0] - left[1])))
    scale = max(abs(float(right[1])), abs(float(left[1])))
    if change > rounding.sum() + SIDES_SETTLE * scale:  # a slope still moving: a jump, or another kink near
        return None
    truncation = float(noise.truncation(np.array(change), FORWARD.order, rounding.sum()))
    floor = float(noise.floor(np.array([scale]), np.array([scale]), np.array([scale]))[0])
    return float(left[1]), float(right[1]), float(rounding[1]) + truncation + floor
