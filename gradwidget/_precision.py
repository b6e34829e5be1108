"""A float32 theta checked in float64, where J and grad follow their input's dtype.

Most float32 models in a notebook are numpy code that computes in the dtype
it is given: with float64 parameters it computes in float64. For such code
float32's noise floor belongs to the dtype it ran in, not to the gradient
formula, so the formula is checked in float64 (to float64's claim) and the
float32 gradient is compared with its float64 value entry by entry. Code
that casts to float32 itself returns float32 values (or values rounded to
float32) at a float64 theta: it is checked in float32, as given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._evaluate import call_with_copy, scalar_cost
from ._evidence import Promotion
from ._noise import (
    COARSE_UNIT,
    GRAD_MARGIN,
    NoiseModel,
    block_scales,
    gradient_precision,
    observed_precision,
    returned_precision,
)
from ._params import Layout, read_gradient

__all__ = ["promotion"]

FLOAT64_EPS = float(np.finfo(np.float64).eps)


def promotion(J: Callable[[Any], Any], grad: Callable[[Any], Any] | None, layout: Layout,
              point: np.ndarray) -> Promotion | None:
    """How J and grad at a coarse ``point`` compare with their values at the same point in float64.

    Returns None when the check stays in theta's dtype: theta is float64
    already (nothing is called then), J or grad return coarser values at
    the float64 point (the code casts itself), or J's two values differ
    beyond ``GRAD_MARGIN`` ulps of the coarse type (the float32 cost is not
    the float64 one rounded).
    """
    unit = float(np.finfo(point.dtype).eps)
    if unit <= COARSE_UNIT:
        return None
    try:
        narrow_cost, _, narrow_grad, _ = _cost_and_gradient(J, grad, layout, point)
        wide_cost, cost_unit, wide_grad, grad_unit = _cost_and_gradient(J, grad, layout, point.astype(np.float64))
    except (TypeError, ValueError, ArithmeticError):  # InputError is both of the first two
        return None  # the check as given calls them again and says what is wrong
    if max(cost_unit, grad_unit) > FLOAT64_EPS:
        return None
    if not abs(narrow_cost - wide_cost) <= GRAD_MARGIN * unit * max(abs(wide_cost), abs(narrow_cost)):
        return None
    scale = np.maximum(np.abs(wide_grad), block_scales([b.slice for b in layout.blocks], wide_grad))
    with np.errstate(all="ignore"):
        gap = np.where(scale > 0, np.abs(narrow_grad - wide_grad) / scale, np.abs(narrow_grad - wide_grad))
    gap[~np.isfinite(narrow_grad) & np.isfinite(wide_grad)] = np.inf
    claim = NoiseModel(unit, wide_cost).claim
    wrong = np.flatnonzero(gap > claim)
    agreement = float(np.nanmax(gap)) if gap.size else 0.0
    return Promotion(str(point.dtype), agreement, claim, wrong)


def _cost_and_gradient(J: Callable[[Any], Any], grad: Callable[[Any], Any] | None, layout: Layout,
                       point: np.ndarray) -> tuple[float, float, np.ndarray, float]:
    """At ``point``, on private copies: J's cost, its precision as returned, grad's flat answer and its precision."""
    value, _ = call_with_copy(J, layout, point, "J")
    if grad is None:
        value, gradient = value  # not a pair: the check as given says so
    else:
        gradient, _ = call_with_copy(grad, layout, point, "grad")
    flat = read_gradient(layout, gradient).flat
    return (float(np.real(scalar_cost(value))), returned_precision(value), flat,
            max(gradient_precision(gradient), observed_precision(flat)))
