"""One model of each estimate's numerical error: rounding, truncation, and the floor of agreement.

A finite difference ``D(h)`` of a right gradient differs from it by two
errors (Nocedal & Wright, sec. 8.1): truncation, which shrinks like
``h**order``, and rounding, which grows like ``noise(J) / h``. An entry
agrees when ``|a - D(h)|`` is within the sum of both, plus a floor for the
rounding of the analytic gradient itself. `NoiseModel` holds what these
estimates need and computes each of them once, for both the coordinate path
(one entry moved) and the directional path (the whole vector moved).

References
----------
.. [1] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed.,
   Springer, 2006, sec. 8.1 (finite-difference errors and steps).
.. [2] J. J. More and S. M. Wild, "Estimating computational noise",
   SIAM J. Sci. Comput. 33(3), 2011 (the ECnoise estimator).
.. [3] N. J. Higham, *Accuracy and Stability of Numerical Algorithms*,
   2nd ed., SIAM, 2002, ch. 2-4 (how rounding accumulates in sums).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ._differences import REFINE_RATIO, Stencil

if TYPE_CHECKING:
    from ._evaluate import Evaluator

__all__ = ["NOISE_MARGIN", "REPEAT_MARGIN", "TRUNCATION_MARGIN", "NoiseModel", "measure_noise", "returned_precision"]

NOISE_MARGIN = 8.0
"""An estimate agrees within this many modelled rounding errors.

Notes
-----
The rounding of one value of J is modelled as ``u * |J|`` (``u`` the unit
roundoff of J's arithmetic), or the measured noise when that is larger. J's
value is the result of many operations: a sum of k terms carries an error
of order ``sqrt(k) * u * |J|`` when roundings behave like independent random
variables, and up to ``k * u * |J|`` in the worst case ([3], ch. 2 and
ch. 4). A margin of 8 covers the typical accumulation of a few dozen roundings
while keeping the tolerance orders of magnitude below any real bug (the
corpus and the sensitivity benchmark check both sides).
"""

TRUNCATION_MARGIN = 3.0
"""An estimate agrees within this many truncation estimates.

Notes
-----
When the step shrinks by r = `REFINE_RATIO`, the truncation error of a
scheme of order p shrinks by about ``r**p``, so the change between two looks,
``|D(h) - D(h/r)|``, estimates the error left in ``D(h/r)`` as
``change / (r**p - 1)`` (Richardson's error estimate, [1] sec. 8.1). The
margin of 3 covers the next term of the expansion, which makes the ratio
differ from ``r**p`` while h is not yet small.
"""

REPEAT_MARGIN = 4.0
"""Two calls of J at the same theta may differ by this many ulps of the larger value before J counts as random.

Notes
-----
A deterministic J gives bit-identical results for bit-identical input on one
machine; a few ulps allow for reductions whose order depends on threads
(multithreaded BLAS), never for sampling noise, which is far larger.
"""

ECNOISE_ORDERS = range(3, 7)
"""Orders k of the differences whose spread estimates the noise ([2])."""


@dataclass(frozen=True)
class NoiseModel:
    """What the error estimates of one check rest on.

    Attributes
    ----------
    unit : float
        The relative rounding of J's values: the machine epsilon of theta's
        dtype or of the type J returns its cost in, whichever is coarser.
    cost : float
        J at theta.
    measured : float
        The absolute noise of J's value measured by `measure_noise`, or 0
        when it was not measured (only entries that disagree need it).
    """

    unit: float
    cost: float
    measured: float = 0.0

    def with_measured(self, noise: float) -> NoiseModel:
        """The same model with J's measured noise."""
        return replace(self, measured=noise)

    def rounding(self, values: np.ndarray, steps: np.ndarray | float, stencil: Stencil | None) -> np.ndarray:
        """The rounding error of each estimate, with its margin: ``noise(J) * ||w|| / h``.

        ``values`` holds J's values on each estimate's stencil, one row per
        estimate; the larger of them and J(theta) sets the scale of rounding.
        The complex step (``stencil`` None) has no subtractive cancellation.
        """
        if stencil is None:
            return np.zeros(len(values))
        modelled = self.unit * np.maximum(abs(self.cost), np.fmax.reduce(np.abs(values), axis=1))
        return NOISE_MARGIN * np.maximum(modelled, self.measured) * stencil.noise_gain / steps

    def floor(self, analytic: np.ndarray, estimate: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """How closely two right answers can agree, whatever the step: relative and absolute parts.

        Relative: ``sqrt(u)`` of the larger of the two, the accuracy of a
        forward difference at its best step ([1] sec. 8.1): the check never
        claims agreement finer than that. Absolute: `NOISE_MARGIN` ulps of
        ``scale``, the size of the gradient that flows into this estimate (a
        block's RMS for one entry, ``|v| . |a|`` along a direction ``v``), since
        an entry near 0 in a block of large entries is the difference of
        large terms and carries their rounding.
        """
        return np.sqrt(self.unit) * np.maximum(np.abs(analytic), np.abs(estimate)) + self.absolute_floor(scale)

    def absolute_floor(self, scale: np.ndarray) -> np.ndarray:
        """The absolute part of `floor`: `NOISE_MARGIN` ulps of the gradient's scale."""
        return NOISE_MARGIN * self.unit * scale

    @staticmethod
    def truncation(change: np.ndarray, order: int) -> np.ndarray:
        """The truncation error left after a look at a ``REFINE_RATIO`` x smaller step (see `TRUNCATION_MARGIN`)."""
        return TRUNCATION_MARGIN * change / (REFINE_RATIO ** order - 1)

    def repeatable(self, first: float, second: float) -> bool:
        """Whether two values of J at the same theta are equal to rounding (see `REPEAT_MARGIN`)."""
        return bool(abs(first - second) <= REPEAT_MARGIN * self.unit * max(abs(first), abs(second)))

    @property
    def precision(self) -> float:
        """Relative rounding noise of J's value: the dtype's, or more if measured."""
        return max(self.unit, self.measured / max(abs(self.cost), np.finfo(float).tiny))


def returned_precision(value: Any) -> float:
    """Machine epsilon of the type J returned its cost in (float64 for Python floats)."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        value = value[0]
    dtype = getattr(value, "dtype", None)
    return float(np.finfo(dtype).eps) if dtype is not None and dtype.kind == "f" else float(np.finfo(float).eps)


def measure_noise(evaluator: Evaluator, point: np.ndarray, noise: NoiseModel, rng: np.random.Generator) -> float:
    """The absolute noise of J's value, from high-order differences at tiny spacing.

    Six extra calls along a random sign direction, a few hundred ulps apart:
    enough to change J's rounding, too little for J's smooth part to show in
    differences of order 3 to 6. Their scaled spread estimates the standard
    deviation of J's noise ([2], ECnoise, simplified: the median over orders
    instead of a test of their consistency).

    Notes
    -----
    The k-th difference of independent noise of variance s**2 has variance
    ``s**2 * (2k)! / (k!)**2``, so ``gamma_k = (k!)**2 / (2k)!`` rescales its
    mean square to ``s**2`` ([2]). From seven values the estimate is rough:
    on pure noise its median is about 0.8 s, and single estimates spread by a
    factor of 2 either way, which `NOISE_MARGIN` absorbs.
    """
    size = np.abs(point.astype(np.float64))
    scale = np.where(size > 0, size, np.sqrt(np.mean(size ** 2)) or 1.0)
    direction = rng.choice([-1.0, 1.0], size.size) * noise.unit ** (2 / 3) * scale
    costs = []
    with np.errstate(all="ignore"):
        for j in range(-3, 4):
            if j == 0:
                costs.append(noise.cost)
                continue
            moved = (point + j * direction).astype(point.dtype)
            costs.append(float(np.real(evaluator.cost(evaluator.at(moved)[0]))))
        levels = []
        for k in ECNOISE_ORDERS:
            diffs = np.diff(costs, k)
            gamma = math.factorial(k) ** 2 / math.factorial(2 * k)
            levels.append(np.sqrt(gamma * np.mean(diffs ** 2)))
    level = float(np.median(levels))
    return level if np.isfinite(level) else 0.0
