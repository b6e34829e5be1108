"""The second point: whether grad follows its argument.

At theta, grad and J agree entry by entry; a gradient computed from a
global copy of a parameter (the notebook's ``W2`` from an earlier cell) or
a stale buffer agrees there too, since the global equals the parameter. So
grad is called again at a point moved from theta, and J's slope there is
measured along one random direction per block, over the entries that were
right at theta, each at two steps. Only when a slope settles (the two steps
agree, so no jump of J was crossed; the one-sided slopes close in as the
step shrinks, so no kink is there) and grad's directional derivative
differs from it beyond tolerance is the block's gradient wrong there: right
at theta, wrong nearby, so part of it does not follow theta. A linear,
piecewise-constant or kinked J gives no such evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._differences import KINK_PERSISTS, STENCILS, default_steps, point_scales
from ._evaluate import Evaluator, call_with_copy
from ._noise import NoiseModel
from ._options import InputError
from ._params import Layout

__all__ = ["MAX_GROUPS", "SECOND_POINT_SPREAD", "wrong_elsewhere"]

SECOND_POINT_SPREAD = 0.05
"""The second point moves each entry by up to 5% of max(|theta_i|, 0.1 x its scale (`point_scales`)): far enough to
change any real gradient, near enough to keep theta's scale (a parameter of 1e-6 moves by 5e-8, not 5e-3)."""

SLOPE_STEPS = (1.0, 0.25)
"""The slope along the direction is measured at these multiples of each entry's step."""

SLOPE_SETTLES = 0.1
"""A slope has settled when its two steps agree within rounding and this share of its size (a jump makes them
differ by about the jump itself)."""

MAX_GROUPS = 8
"""At most this many directions (4 calls each): one per block, or per run of neighbouring blocks when there are more."""

CENTRAL = STENCILS["central"]


@dataclass(frozen=True)
class _Probes:
    """Moves from the second point along each group's direction (see `Moves`).

    Move k is ``offset + factors[k] * direction`` restricted to the entries
    of group ``groups[k]`` (``group_of`` gives each entry's group, -1 for
    none, where ``direction`` is 0); ``groups[k] == -1`` is the second point
    itself.
    """

    offset: np.ndarray
    direction: np.ndarray
    group_of: np.ndarray
    factors: tuple[float, ...]
    groups: tuple[int, ...]
    several: bool  # more than one group: a move keeps only its own group's entries

    def __len__(self) -> int:
        return len(self.factors)

    def __getitem__(self, k: int) -> np.ndarray:
        move = self.factors[k] * self.direction
        if self.several:
            move[self.group_of != self.groups[k]] = 0.0
        move += self.offset
        return move

    def part(self, which: slice) -> _Probes:
        return replace(self, factors=self.factors[which], groups=self.groups[which])


def wrong_elsewhere(evaluator: Evaluator, grad: Callable[[Any], Any] | None, layout: Layout, point: np.ndarray,
                    right: np.ndarray, noise: NoiseModel, rng: np.random.Generator) -> list[str]:
    """The blocks whose gradient, right at theta, disagrees with J's slope at a second point nearby.

    Parameters
    ----------
    evaluator : Evaluator
    grad : callable or None
        None when J returns ``(cost, grad)``.
    layout : Layout
    point : ndarray
        Flat theta.
    right : ndarray of bool
        The entries whose gradient agreed with J at theta: only they are moved.
    noise : NoiseModel
    rng : Generator
        For the second point and the directions.

    Returns
    -------
    list of str
        Names of the blocks found wrong there (empty when none, or when the
        slopes could not settle).
    """
    group_of = _groups(layout, right)
    count = int(group_of.max()) + 1
    if count == 0:
        return []
    # Theta-sized arrays are made in place and let go as soon as they are used: a directional check of 1e7
    # entries holds only a few of them. Each direction's size along an entry is its central step (whatever eps
    # or scheme the check used); it is 0 where the entry was not right at theta.
    blocks = [b.slice for b in layout.blocks]
    direction = default_steps("central", point_scales(point, blocks), noise.computed_unit)
    direction[rng.integers(0, 2, point.size, dtype=np.int8) == 0] *= -1
    direction[group_of < 0] = 0.0
    moved = _second_point(point, blocks, rng)
    gradient = evaluator.at(moved)[0][0][1] if grad is None else call_with_copy(grad, layout, moved, "grad")[0]
    try:
        there, _ = layout.flatten_like(gradient)
    except InputError:
        return []
    del gradient
    claimed, size = np.zeros(count), np.zeros(count)
    with np.errstate(all="ignore"):
        for block in layout.blocks:
            g = int(group_of[block.slice].max(initial=-1))
            if g >= 0:
                along, part = direction[block.slice], there[block.slice]
                claimed[g] += along @ part
                size[g] += np.abs(along) @ np.abs(part)
    del there
    offset = moved if moved.dtype == np.float64 else moved.astype(np.float64)
    offset -= point
    factors = tuple(f for t in SLOPE_STEPS for f in (t, -t))
    groups = (*(g for g in range(count) for _ in factors), -1)
    probes = _Probes(offset, direction, group_of, (*factors * count, 0.0), groups, count > 1)
    costs = evaluator.shifted(probes, np.empty(len(probes)))  # one batch, for a vectorized J
    wrong = []
    for g in range(count):
        slope = _slope(costs[g * len(factors):(g + 1) * len(factors)], costs[-1], noise, float(size[g]))
        if slope is not None and np.isfinite(claimed[g]) and abs(claimed[g] - slope[0]) > slope[1]:
            wrong += [b.name for b in layout.blocks if (group_of[b.slice] == g).any()]
    return wrong


def _second_point(point: np.ndarray, blocks: list[slice], rng: np.random.Generator) -> np.ndarray:
    """The check point moved by up to `SECOND_POINT_SPREAD` of each entry's scale, in theta's dtype."""
    moved = np.abs(point, dtype=np.float64)
    scale = point_scales(point, blocks)
    scale *= 0.1
    np.maximum(moved, scale, out=moved)
    del scale
    moved *= rng.uniform(-1, 1, point.size)
    moved *= SECOND_POINT_SPREAD
    moved += point
    return moved.astype(point.dtype, copy=False)


def _groups(layout: Layout, right: np.ndarray) -> np.ndarray:
    """Each entry's group (-1 if it is not moved): its block's, blocks split into at most `MAX_GROUPS` runs."""
    blocks = [b for b in layout.blocks if right[b.slice].any()]
    group_of = np.full(layout.size, -1, dtype=np.int16)
    for k, block in enumerate(blocks):
        group_of[block.slice] = k * min(MAX_GROUPS, len(blocks)) // len(blocks)
    group_of[~right] = -1
    return group_of


def _slope(costs: np.ndarray, centre: float, noise: NoiseModel, size: float) -> tuple[float, float] | None:
    """J's slope along the direction from its values at ``+-t`` for each t of `SLOPE_STEPS`, with its tolerance.

    ``centre`` is J at the point itself. None when the two steps do not
    settle on one slope (J jumps, or leaves its domain, in between), the
    one-sided slopes do not close in (J has a kink there), or J is exactly 0
    at every one of them (saturated or cancelled: its rounding is unknown).
    """
    values = costs.reshape(len(SLOPE_STEPS), 2)
    if centre == 0 and not values.any():  # J exactly 0 around the point: its rounding, so its slope, is unknown
        return None
    steps = np.array(SLOPE_STEPS)
    estimates = (values[:, 0] - values[:, 1]) / (2 * steps)
    rounding = noise.rounding(values, steps, CENTRAL)
    if not (np.isfinite(estimates).all() and np.isfinite(rounding).all() and np.isfinite(centre)):
        return None
    change = abs(float(estimates[0] - estimates[1]))
    if change > rounding.sum() + SLOPE_SETTLES * abs(float(estimates[1])):
        return None
    spread = np.abs(values[:, 0] - 2 * centre + values[:, 1]) / steps  # right slope minus left slope
    if spread[1] > 4 * rounding[1] and spread[1] >= KINK_PERSISTS * spread[0]:
        return None
    # What of the change between the two steps is truncation, and what is rounding, is not known: J's rounding
    # was not measured, and a J made of large terms that cancel rounds far above u * |J|. The smaller step's
    # error is within the change either way (its rounding is the larger of the two).
    truncation = float(noise.truncation(np.array(change), CENTRAL.order, rounding.sum()))
    floor = noise.floor(estimates[1:], estimates[1:], np.array([size]))  # as close as two right answers come
    return float(estimates[1]), float(rounding[1]) + max(truncation, change) + float(floor[0])
