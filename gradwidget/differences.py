"""Finite-difference schemes and their steps.

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

import numpy as np

__all__ = ["METHODS", "STENCILS", "Stencil", "default_steps", "representable_steps"]

METHODS = ("central", "forward", "complex", "richardson")


@dataclass(frozen=True)
class Stencil:
    """Offsets ``c_k`` (in units of h) and weights ``w_k`` of a scheme."""

    offsets: tuple[float, ...]
    weights: tuple[float, ...]
    order: int

    @property
    def noise_gain(self) -> float:
        """Factor from the noise of one J value to the noise of the estimate times h."""
        return float(np.sqrt(np.sum(np.square(self.weights))))

    @property
    def calls(self) -> int:
        """Calls of J per entry (the value at theta itself is shared)."""
        return sum(1 for c in self.offsets if c != 0)

    @property
    def step_exponent(self) -> float:
        """H ~ u**(1/(order+1)) balances truncation against rounding."""
        return 1.0 / (self.order + 1)


STENCILS = {
    "forward": Stencil((1.0, 0.0), (1.0, -1.0), 1),
    "central": Stencil((1.0, -1.0), (0.5, -0.5), 2),
    # (4 C(h/2) - C(h)) / 3, C the central difference: order 4.
    "richardson": Stencil((0.5, -0.5, 1.0, -1.0), (4 / 3, -4 / 3, -1 / 6, 1 / 6), 4),
}

COMPLEX_STEP = 1e-20


def default_steps(method: str, flat: np.ndarray, unit: float) -> np.ndarray:
    """Per-entry steps chosen from |theta_i| and the precision of J.

    The step is ``u**(1/(order+1)) * max(|theta_i|, 1)`` where ``u`` is the
    machine epsilon J computes with: absolute for entries of order one or
    smaller (weights of a network), relative for large entries. Entries near
    a domain edge get smaller steps later, when J returns NaN there.
    """
    scale = np.maximum(np.abs(flat.astype(np.float64)), 1.0)
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
