"""The second point: whether grad uses its argument at all.

grad is called again at a point moved from theta. That it returns exactly
the same gradient there proves nothing by itself: a linear J has the same
gradient everywhere, and a piecewise-constant J (floor, round) a zero one.
So J's slope is measured along one random direction at both points, each at
two steps. Only when both measurements settle (the two steps agree, so no
jump of J was crossed; the one-sided slopes close in as the step shrinks, so
no kink is there) and the two slopes differ beyond their tolerances
has J's gradient changed while grad's answer did not: grad ignores its
input (it reads a global, or returns a stale buffer).
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

__all__ = ["SECOND_POINT_SPREAD", "ignores_input"]

SECOND_POINT_SPREAD = 0.05
"""The second point moves each entry by up to 5% of max(|theta_i|, 0.1): far enough to change any real gradient."""

SLOPE_STEPS = (1.0, 0.25)
"""The slope along the direction is measured at these multiples of each entry's step."""

SLOPE_SETTLES = 0.1
"""A slope has settled when its two steps agree within rounding and this share of its size (a jump makes them
differ by about the jump itself)."""

CENTRAL = STENCILS["central"]


@dataclass(frozen=True)
class _Probes:
    """Moves of theta along ``direction``, each from theta or from the second point (see `Moves`).

    Move k is ``factors[k] * direction``, plus ``offset`` (the second point's
    move) where ``moved[k]``.
    """

    offset: np.ndarray
    direction: np.ndarray
    factors: tuple[float, ...]
    moved: tuple[bool, ...]

    def __len__(self) -> int:
        return len(self.factors)

    def __getitem__(self, k: int) -> np.ndarray:
        move = self.factors[k] * self.direction
        if self.moved[k]:
            move += self.offset
        return move

    def part(self, which: slice) -> _Probes:
        return replace(self, factors=self.factors[which], moved=self.moved[which])


def ignores_input(evaluator: Evaluator, grad: Callable[[Any], Any] | None, layout: Layout, point: np.ndarray,
                  analytic: np.ndarray, noise: NoiseModel, rng: np.random.Generator) -> bool:
    """Whether grad gives exactly the same answer at a second point where J's slope is measurably different.

    Parameters
    ----------
    evaluator : Evaluator
    grad : callable or None
        None when J returns ``(cost, grad)``.
    layout : Layout
    point, analytic : ndarray
        Flat theta and grad's answer there.
    noise : NoiseModel
    rng : Generator
        For the second point and the direction.
    """
    shift = rng.uniform(-1, 1, point.size)  # made in place: one theta-sized array beside the moved point
    shift *= np.maximum(np.abs(point), 0.1)
    shift *= SECOND_POINT_SPREAD
    shift += point
    moved = shift.astype(point.dtype, copy=False)
    del shift
    gradient = evaluator.at(moved)[0][0][1] if grad is None else call_with_copy(grad, layout, moved, "grad")[0]
    try:
        other, _ = layout.flatten_like(gradient)
    except InputError:
        return False
    if not np.array_equal(other, analytic):
        return False
    # The direction's size along each entry: the central step (whatever eps or scheme the check used).
    direction = default_steps("central", point_scales(point, [b.slice for b in layout.blocks]), noise.unit)
    direction[rng.integers(0, 2, point.size, dtype=np.int8) == 0] *= -1
    factors = tuple(f for t in SLOPE_STEPS for f in (t, -t))
    probes = _Probes((moved - point).astype(np.float64), direction, factors * 2 + (0.0,),
                     (False,) * len(factors) + (True,) * (len(factors) + 1))
    costs = evaluator.shifted(probes, np.empty(len(probes)))  # one batch, for a vectorized J
    size = float(np.abs(direction) @ np.abs(analytic))
    here = _slope(costs[:len(factors)], noise.cost, noise, size)
    there = _slope(costs[len(factors):-1], costs[-1], noise, size)
    if here is None or there is None:
        return False
    return abs(here[0] - there[0]) > here[1] + there[1]


def _slope(costs: np.ndarray, centre: float, noise: NoiseModel, size: float) -> tuple[float, float] | None:
    """J's slope along the direction from its values at ``+-t`` for each t of `SLOPE_STEPS`, with its tolerance.

    ``centre`` is J at the point itself. None when the two steps do not
    settle on one slope (J jumps, or leaves its domain, in between) or the
    one-sided slopes do not close in (J has a kink there).
    """
    values = costs.reshape(len(SLOPE_STEPS), 2)
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
    truncation = float(noise.truncation(np.array(change), CENTRAL.order, rounding.sum()))
    floor = noise.floor(estimates[1:], estimates[1:], np.array([size]))  # as close as two right answers come
    return float(estimates[1]), float(rounding[1]) + truncation + float(floor[0])
