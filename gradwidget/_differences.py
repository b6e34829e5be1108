"""Finite-difference schemes, their steps, and the estimates they give.

Every real scheme is a stencil: the derivative along entry i is
``sum(w_k * J(theta + c_k * h * e_i)) / h``, with truncation error of order
``h**order``. Knowing the weights gives the rounding error of the estimate
(``noise * ||w|| / h``); knowing the order tells how the truncation error
shrinks when ``h`` does, which is what separates a wrong gradient from a
step that is merely too large. The complex step is handled apart: it takes
one call per entry and has no subtractive cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._options import METHODS

if TYPE_CHECKING:
    from ._evaluate import Evaluator

__all__ = ["COMPLEX_STEP", "DOMAIN_RETRIES", "DOMAIN_SHRINK", "KINK_PERSISTS", "METHODS", "REFINE_LEVELS",
           "REFINE_RATIO", "STENCILS", "PartialDifferences", "Stencil", "default_steps", "differences", "one_sided",
           "point_scales", "representable_steps", "smaller_steps", "spread"]

REFINE_RATIO = 4.0
"""How much smaller each second look's step is.

With a central difference, a factor 4 in h divides the truncation error by
16 and multiplies the rounding error by 4: one level tells truncation from a
real discrepancy, and six levels span 4**6 ~ 4000 in h, from the default
step down to about where rounding dominates in float64 (u**(1/3) / 4**6 ~
1.5e-9, still far above u**(1/2)).
"""

REFINE_LEVELS = 6
"""Second looks at h/4, h/16, ... before an entry that keeps changing is left wrong."""

KINK_PERSISTS = 0.5
"""At a kink the one-sided spread stays: at a 4x smaller step it keeps at least this share (smooth J: 1/4)."""

DOMAIN_RETRIES = 3
"""Smaller steps tried where J returns NaN or inf one step away (a domain edge)."""

DOMAIN_SHRINK = 16.0
"""How much smaller each domain retry's step is: 16**3 ~ 4000 in three tries."""

COMPLEX_STEP = 1e-20
"""The complex step: any tiny value works, since ``Im J(x + ih)/h`` has no cancellation (Squire & Trapp 1998)."""


@dataclass(frozen=True)
class Stencil:
    """Offsets ``c_k`` (in units of h) and weights ``w_k`` of a scheme."""

    offsets: tuple[float, ...]
    weights: tuple[float, ...]
    order: int

    @property
    def noise_gain(self) -> float:
        """Factor from the noise of one J value to the noise of the estimate times h: ``||w||``."""
        return float(np.sqrt(np.sum(np.square(self.weights))))

    @property
    def calls(self) -> int:
        """Calls of J per entry (the value at theta itself is shared)."""
        return sum(1 for c in self.offsets if c != 0)

    @property
    def step_exponent(self) -> float:
        """H ~ u**(1/(order+1)) balances truncation against rounding (Nocedal & Wright, sec. 8.1)."""
        return 1.0 / (self.order + 1)

    @property
    def sides(self) -> tuple[int, int] | None:
        """Columns of J's values at ``+h`` and ``-h``, when the stencil has both (one-sided slopes)."""
        if {1.0, -1.0} <= set(self.offsets):
            return self.offsets.index(1.0), self.offsets.index(-1.0)
        return None


STENCILS = {
    "forward": Stencil((1.0, 0.0), (1.0, -1.0), 1),
    "central": Stencil((1.0, -1.0), (0.5, -0.5), 2),
    # (4 C(h/2) - C(h)) / 3, C the central difference: order 4.
    "richardson": Stencil((0.5, -0.5, 1.0, -1.0), (4 / 3, -4 / 3, -1 / 6, 1 / 6), 4),
}


def point_scales(flat: np.ndarray, blocks: list[slice]) -> np.ndarray:
    """Per entry, the scale of theta there: ``max(|theta_i|, min(1, 10 * s))``, s its block's RMS.

    Entries of order one or smaller in ordinary blocks (the weights of a
    network) get the scale 1; large entries their own size; entries of a
    block far below 1 (parameters of 1e-6) a scale of their block's, so that
    a step never dwarfs them. A block of zeros counts as ordinary.
    """
    scale = np.abs(flat, dtype=np.float64)  # the only theta-sized array made: a check of 1e7 entries is tight
    for part in blocks:
        size = scale[part]
        rms = float(np.sqrt(np.dot(size, size) / size.size)) if size.size else 0.0
        np.maximum(size, min(1.0, 10 * rms) if rms > 0 else 1.0, out=size)
    return scale


def default_steps(method: str, scale: np.ndarray, unit: float) -> np.ndarray:
    """Per-entry steps from theta's scale there (`point_scales`) and the precision of J.

    The step is ``u**(1/(order+1)) * scale`` where ``u`` is the relative
    rounding of J's values: the step that balances truncation against
    rounding when J's derivatives are of the size its scale makes them
    (Nocedal & Wright, sec. 8.1). Entries whose tolerance this step leaves too
    loose get other steps later; entries near a domain edge smaller ones,
    when J returns NaN there.
    """
    if method == "complex":
        return COMPLEX_STEP * scale
    return unit ** STENCILS[method].step_exponent * scale


def representable_steps(flat: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Steps adjusted so that ``theta_i + h_i`` is exact in theta's dtype.

    Otherwise the step J actually sees differs from ``h_i`` by a rounding of
    ``theta_i``, a relative error of about ``u * |theta_i| / h_i`` in the
    difference (1e-4 in float32).
    """
    moved = (flat + steps.astype(flat.dtype)).astype(flat.dtype)
    exact = (moved - flat).astype(np.float64)
    return np.where(exact > 0, exact, steps)


def smaller_steps(flat: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Steps that stay inside J's domain: relative to |theta_i| first, then `DOMAIN_SHRINK` x smaller."""
    size = np.abs(flat)
    relative = steps / np.maximum(size, 1.0) * size
    smaller = np.where((relative > 0) & (relative < steps / DOMAIN_SHRINK), relative, steps / DOMAIN_SHRINK)
    return representable_steps(flat, smaller)


class PartialDifferences(KeyboardInterrupt):
    """An interrupt during `differences`, carrying the entries whose calls had all returned.

    Attributes
    ----------
    count : int
        Entries complete (the first ``count`` of the positions asked for).
    estimates, values : ndarray
        Their estimates and stencil values.
    reason : str or None
        Why the evaluation stopped, when not Ctrl-C (a worker died).
    """

    def __init__(self, count: int, estimates: np.ndarray, values: np.ndarray, reason: str | None = None) -> None:
        super().__init__()
        self.count, self.estimates, self.values, self.reason = count, estimates, values, reason


def differences(evaluator: Evaluator, method: str, positions: np.ndarray, steps: np.ndarray,
                cost: float) -> tuple[np.ndarray, np.ndarray]:
    """The scheme's estimate of the derivative along each entry of ``positions``.

    Parameters
    ----------
    evaluator : Evaluator
        Calls J with one entry moved.
    method : str
        One of `METHODS`.
    positions, steps : ndarray
        Flat positions and their steps.
    cost : float
        J at theta (the stencil's value at offset 0).

    Returns
    -------
    estimates : ndarray
        One per position (NaN or inf where J left its domain).
    values : ndarray
        J's values on each position's stencil, one row per position (for the
        complex step, the imaginary parts).

    Raises
    ------
    PartialDifferences
        On an interrupt, with the entries that were complete.
    """
    if method == "complex":
        out = np.full(positions.size, np.nan, dtype=np.complex128)
        try:
            evaluator.along(positions, 1j * steps, out)
        except KeyboardInterrupt as stop:
            done = evaluator.reached
            raise PartialDifferences(done, out.imag[:done] / steps[:done], out.imag[:done, None],
                                     reason=getattr(stop, "reason", None)) from None
        return out.imag / steps, out.imag[:, None]
    stencil = STENCILS[method]
    offsets = np.array(stencil.offsets)
    moving = offsets != 0
    out = np.full((positions.size, int(moving.sum())), np.nan)
    deltas = steps[:, None] * offsets[moving]
    try:
        evaluator.along(np.repeat(positions, moving.sum()), deltas.ravel(), out.reshape(-1))
    except KeyboardInterrupt as stop:
        complete = evaluator.reached // int(moving.sum())
        raise PartialDifferences(complete, *_combine(stencil, out[:complete], steps[:complete], cost),
                                 reason=getattr(stop, "reason", None)) from None
    return _combine(stencil, out, steps, cost)


def _combine(stencil: Stencil, out: np.ndarray, steps: np.ndarray, cost: float) -> tuple[np.ndarray, np.ndarray]:
    """The stencil's estimates from J's values one step away (``out``) and at theta."""
    offsets = np.array(stencil.offsets)
    values = np.full((out.shape[0], offsets.size), cost)
    values[:, offsets != 0] = out
    with np.errstate(invalid="ignore", over="ignore"):
        estimates = values @ np.array(stencil.weights) / steps
    return estimates, values


def one_sided(stencil: Stencil, values: np.ndarray, steps: np.ndarray, cost: float) -> tuple[np.ndarray, np.ndarray]:
    """The slopes from the left and from the right, ``(J(x) - J(x-h))/h`` and ``(J(x+h) - J(x))/h``."""
    plus, minus = stencil.sides or (0, 0)
    return (cost - values[:, minus]) / steps, (values[:, plus] - cost) / steps


def spread(stencil: Stencil, values: np.ndarray, steps: np.ndarray, cost: float) -> np.ndarray:
    """Right minus left slope: ``h * J''`` where J is smooth, the jump of the slope at a kink."""
    plus, minus = stencil.sides or (0, 0)
    return (values[:, plus] - 2 * cost + values[:, minus]) / steps
