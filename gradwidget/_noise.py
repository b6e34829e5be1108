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

import itertools
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ._differences import REFINE_RATIO, Stencil

if TYPE_CHECKING:
    from ._evaluate import Evaluator

__all__ = ["CLAIM_FACTOR", "COARSE_UNIT", "GRAD_MARGIN", "MEASURED_SHARE", "MEASURED_TRUST", "NOISE_MARGIN",
           "REPEAT_MARGIN", "SATURATED_REACH", "SURE", "TRUNCATION_MARGIN", "NoiseModel", "block_rms", "block_scales",
           "gradient_precision", "measure_noise", "observed_precision", "returned_precision"]

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

GRAD_MARGIN = 64.0
"""A gradient computed in a coarser type than J agrees within this many of its ulps (relative and of its block).

Notes
-----
A float32 backward pass sums hundreds of products: its rounding grows like
``sqrt(k) * u`` for sums of k terms, and more where terms cancel ([3], ch.
4). 64 ulps of float32 is 7.6e-6: such gradients are judged to that, and the
verdict claims no finer resolution than `SURE` times twice it.
"""

SURE = 2.0
"""An error is sure to show when it exceeds this many of its entry's tolerances.

Notes
-----
A tolerance bounds the estimate's own error, which may point toward grad's
value: a wrong entry's gap is at least its error less one tolerance, so an
error of more than two tolerances always leaves a gap beyond one. What a
check can see, and what its verdict claims, are stated at that size.
"""

REPEAT_MARGIN = 4.0
"""Two calls of J at the same theta may differ by this many ulps of the larger value before J counts as random.

Notes
-----
A deterministic J gives bit-identical results for bit-identical input on one
machine; a few ulps allow for reductions whose order depends on threads
(multithreaded BLAS), never for sampling noise, which is far larger.
"""

MEASURED_TRUST = 0.25
"""Once J's noise is measured, the measurement replaces ``u * |J|``, but never goes below this share of it.

Notes
-----
The rounding of a value of J is often well below one ulp of it (float32
costs measure about 0.3 ulp): the measurement makes tolerances tighter where
it matters most, for coarse dtypes. Its floor keeps a measurement that came
out low by chance (the estimator spreads by about 2x, [2]) from making the
tolerance too tight.
"""

CLAIM_FACTOR = 3.6
"""The verdict claims to resolve each entry to ``CLAIM_FACTOR * u**(2/5)`` of its size (or its block's RMS).

Notes
-----
That is 2e-6 in float64 and 6e-3 in float32: a bug that changes an entry by
more is caught, since an entry passes only with a tolerance of at most
1 / `SURE` of that. Both are what a central difference resolves, with the
margins of this model, in a J whose value is some tens of times its
gradient entries (a network's loss): at about 2n calls in float64, and only
after the step has grown and J's noise was measured in float32. The power
2/5 interpolates between the two. Where the tolerance an entry ends up with
is larger than the claim, the check cannot say that the entry is right: the
verdict is inconclusive, and says what limited it.
"""

COARSE_UNIT = 1e-10
"""A relative rounding above this is float32's or coarser (float64's is 2.2e-16)."""

MEASURED_SHARE = 0.3
"""J's measured noise is about this share of one unit of the precision J computes in.

Notes
-----
A value rounded to a unit roundoff ``u`` carries an error spread uniformly
over half an ulp either way, of standard deviation ``u / sqrt(3)`` relative
at most and about a third of that on average over the binade ([3], ch. 2);
float32 and float16 losses measure 0.25 to 0.35 ulp with `measure_noise`.
Where the measured noise is coarser than `COARSE_UNIT` although J's type is
finer (a float32 computation returned as a Python float), J's
real unit roundoff is taken as ``measured / |J| / MEASURED_SHARE``; near a
named type's machine epsilon, the verdict claims what that type resolves.
"""

NAMED_PRECISIONS = (("float32", float(np.finfo(np.float32).eps)),)
"""The coarse floating-point types a J may compute in unseen, with their machine epsilons.

Notes
-----
Only float32: numpy code that computes in float32 often accumulates or
returns in float64, so its values show no float32 rounding and only its
noise says what it computes in. A J that computes in float16 returns values
on float16's grid, and numpy has no bfloat16 (torch's low-precision
functions are checked by reference, see `gradwidget.torch.check`). Noise of
float16's or bfloat16's size in a float64 J is far more often large terms
that cancel (a cross-entropy at confident logits is about 1e-12, the
rounding of logits of 40): taking it for such a precision would make steps
of a quarter of theta_i, far beyond where J is smooth.
"""

SATURATED_REACH = 1e-6
"""A gradient entry whose value times its entry's scale is at most this share of max(|J|, 1) could barely move J.

Notes
-----
Where J does not move at all along such an entry, J may be saturated (its
terms far larger than the change: a softmax or sigmoid at large inputs) or
exactly 0 around theta, where its rounding is unknown: J's flatness then
does not say that grad is wrong.
"""

ECNOISE_ORDERS = range(3, 7)
"""Orders k of the differences whose spread estimates the noise ([2])."""

CURVATURE_FALL = 8.0
"""Noise's estimates from orders 3 to 6 stay within a few times each other; a table that falls at every order by
more than this in all is J's curvature (`_spread`)."""

LEVELLED = 2.0
"""A falling table whose last order is within this factor of the one before has reached J's noise there."""

ECNOISE_HALF = 8
"""Points on each side of theta for one noise measurement: 16 calls of J, an estimate good to about 1.6x."""

ECNOISE_MOVING = 0.75
"""The share of neighbouring points whose values of J must differ for the spread of J to show its rounding."""

ECNOISE_WIDEN = 10.0
"""Where J's values change between fewer neighbours, the spacing grows by this factor and J is measured again."""

ECNOISE_AGAIN = 3.7
"""The second measurement's spacing, in units of the first's (not a round number: see `measure_noise`)."""

COARSE_SPACING = float(np.finfo(np.float32).eps) ** (2 / 3)
"""A float64 J's noise is measured once more at the spacing a float32 J's is measured at (relative to theta).

Notes
-----
A J that casts theta to float32 does not move at float64's spacing, and
where a float64 term of it (a penalty) does, the first measurements see only
that term's rounding. At this spacing a float64 J's smooth part stays far
below its rounding in differences of order 4 and 5 (the median of
`ECNOISE_ORDERS`): ``(2.4e-5 * theta * J^(k)**(1/k))**k`` relative.
"""

ECNOISE_WIDENINGS = 9
"""At most this many wider measurements (a J rounded to a grid up to 1e9 times coarser than u * |J|)."""


@dataclass(frozen=True)
class NoiseModel:
    """What the error estimates of one check rest on.

    Attributes
    ----------
    unit : float
        The relative rounding of J's values: the machine epsilon of theta's
        dtype, of the type J returns its cost in, or of the type its values
        are rounded to (`observed_precision`), whichever is coarsest.
    cost : float
        J at theta.
    measured : float
        The absolute noise of J's value measured by `measure_noise`, or 0
        when it was not measured (only entries that disagree need it).
    grad_unit : float
        The relative rounding of grad's values, found the same way; 0 means
        as fine as ``unit``.
    stepped : float
        Where J moves only in jumps at the finest spacing and grad is zero
        there, the jumps' typical size (0 otherwise): J is taken as
        piecewise constant (a rounding, a count), flat between the jumps.
    """

    unit: float
    cost: float
    measured: float = 0.0
    grad_unit: float = 0.0
    stepped: float = 0.0

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
        modelled = self.computed_unit * np.maximum(abs(self.cost), np.fmax.reduce(np.abs(values), axis=1))
        level = np.maximum(MEASURED_TRUST * modelled, self.measured) if self.measured > 0 else modelled
        return NOISE_MARGIN * level * stencil.noise_gain / steps

    def floor(self, analytic: np.ndarray, estimate: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """How closely two right answers can agree, whatever the step: relative and absolute parts.

        Relative: ``sqrt(u)`` of the smaller of the two (a wildly wrong
        value never widens its own tolerance), the accuracy of a
        forward difference at its best step ([1] sec. 8.1): the check never
        claims agreement finer than that; or `GRAD_MARGIN` ulps of grad's
        own values, if they are coarser. Absolute: `NOISE_MARGIN` ulps of
        ``scale``, the size of the gradient that flows into this estimate (a
        block's RMS for one entry, ``|v| . |a|`` along a direction ``v``), since
        an entry near 0 in a block of large entries is the difference of
        large terms and carries their rounding.
        """
        relative = max(np.sqrt(self.computed_unit), GRAD_MARGIN * self.grad_unit)
        return relative * np.fmin(np.abs(analytic), np.abs(estimate)) + self.absolute_floor(scale)  # NaN: not given

    def absolute_floor(self, scale: np.ndarray) -> np.ndarray:
        """The absolute part of `floor`: `NOISE_MARGIN` ulps (of J's or grad's values) of the gradient's scale."""
        return max(NOISE_MARGIN * self.computed_unit, GRAD_MARGIN * self.grad_unit) * scale

    def input_rounding(self, point: np.ndarray, analytic: np.ndarray) -> np.ndarray:
        """What grad's rounding of each ``theta_i`` itself can leave in it: `absolute_floor` of |theta_i| x grad's RMS.

        A backward that subtracts from theta_i (``theta_i - logsumexp``, a
        saturated softmax or sigmoid) carries an absolute error of
        ``u * |theta_i|`` times the terms it multiplies, which are of the
        order of the gradient: where the exact derivative is 0 and theta_i is
        large, that rounding is all grad returns.
        """
        return self.absolute_floor(np.abs(point) * block_rms(analytic))

    @staticmethod
    def truncation(change: np.ndarray, order: int, rounding: np.ndarray | float = 0.0) -> np.ndarray:
        """The truncation error of the smaller-step estimate of a pair ``REFINE_RATIO`` apart.

        ``change`` is how far the two estimates are apart and ``rounding`` the
        sum of their rounding errors: what of the change is not rounding is
        truncation, which shrinks by ``REFINE_RATIO**order`` from the larger
        step to the smaller (see `TRUNCATION_MARGIN`).
        """
        return TRUNCATION_MARGIN * (change + rounding) / (REFINE_RATIO ** order - 1)

    @property
    def claim(self) -> float:
        """The relative resolution the verdict claims (see `CLAIM_FACTOR`), never finer than grad's own rounding.

        It follows the precision J computes in (`computed_unit`), not only the
        type it returns.
        """
        return max(CLAIM_FACTOR * float(self.computed_unit ** (2 / 5)), SURE * 2 * GRAD_MARGIN * self.grad_unit)

    @property
    def computed_unit(self) -> float:
        """The unit roundoff of the arithmetic J's value comes from: ``unit``, or coarser as measured.

        A J of a coarser precision than its type shows it in its measured
        noise (see `MEASURED_SHARE`); where that is within a factor 4 of a
        named type's machine epsilon (`NAMED_PRECISIONS`), J is taken to compute
        in that type, and judged as a J of that type is. Other noise (large
        terms that cancel, kinks crossed by the measurement) is no precision's rounding:
        the claim stays the type's, and the entries it leaves unresolved make
        the verdict inconclusive.
        """
        measured = self.measured_unit
        if self.unit > COARSE_UNIT:
            return self.unit
        return next((eps for _, eps in NAMED_PRECISIONS if eps / 4 <= measured <= 4 * eps), self.unit)

    @property
    def measured_unit(self) -> float:
        """The unit roundoff J's measured noise corresponds to (0 when not measured)."""
        return self.measured / max(abs(self.cost), np.finfo(float).tiny) / MEASURED_SHARE

    @property
    def computed_in(self) -> str | None:
        """The coarse type J seems to compute in although it returns a finer one ("float32", ...), or None.

        The type `computed_unit` took J's measured noise for, if any.
        """
        return next((name for name, eps in NAMED_PRECISIONS if self.computed_unit == eps != self.unit), None)

    def resolves(self, tolerance: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Whether each tolerance makes any error above the claim (relative to ``scale``) sure to show."""
        return (scale == 0) | (SURE * tolerance <= self.claim * scale)

    def repeatable(self, first: float, second: float) -> bool:
        """Whether two values of J at the same theta are equal to rounding (see `REPEAT_MARGIN`)."""
        return bool(abs(first - second) <= REPEAT_MARGIN * self.unit * max(abs(first), abs(second)))

    @property
    def coarse(self) -> bool:
        """Whether J's values are rounded far coarser than float64's (float32 or worse), by type or as measured."""
        return self.computed_unit > COARSE_UNIT

    @property
    def precision(self) -> float:
        """Relative rounding noise of J's value: the dtype's, or more if measured."""
        return max(self.unit, self.measured / max(abs(self.cost), np.finfo(float).tiny))


def returned_precision(value: Any) -> float:
    """The relative rounding of a cost as J returned it: its type's machine epsilon, or the type it is rounded to.

    A cost computed in float32 but returned as a Python float carries float32
    rounding; `observed_precision` sees it. Anything with ``__array__``,
    ``.item()`` or ``__float__`` (a framework's 0-d tensor) is read as a number.
    """
    if isinstance(value, (tuple, list)) and len(value) == 2:
        value = value[0]
    try:
        array = np.asarray(value)
    except Exception:  # an object numpy cannot read: its __float__ decides the cost
        array = np.asarray(float(value))
    dtype = array.dtype if array.dtype.kind == "f" else np.dtype(np.float64)
    return max(float(np.finfo(dtype).eps), observed_precision(array.astype(np.float64, copy=False).ravel()))


def gradient_precision(gradient: Any) -> float:
    """The machine epsilon of the coarsest float array grad returned its gradient in (0 if float64 or finer)."""
    parts = gradient.values() if isinstance(gradient, dict) else gradient if isinstance(gradient, (list, tuple)) \
        else [gradient]
    found = [np.finfo(np.asarray(part).dtype).eps for part in parts if np.asarray(part).dtype.kind == "f"]
    coarsest = float(max(found, default=0.0))
    return coarsest if coarsest > np.finfo(np.float64).eps else 0.0


def observed_precision(values: np.ndarray) -> float:
    """float32's machine epsilon when every one of ``values`` is a float32 number (and some is not a short one).

    A value whose mantissa fits in `SHORT_MANTISSA` bits says nothing (0.5,
    3.0 and 1e6 fit every float); a value computed in float64 fits float32 by
    chance with probability about 2**-29. Returns 0 when the values show no
    rounding coarser than float64's.
    """
    finite = values[np.isfinite(values)]
    with np.errstate(over="ignore", invalid="ignore"):
        fits_float32 = bool(np.all(finite.astype(np.float32).astype(np.float64) == finite))
    if finite.size and fits_float32 and not _short(finite):
        return float(np.finfo(np.float32).eps)
    return 0.0


SHORT_MANTISSA = 16
"""Bits of mantissa that round numbers (integers, a few binary digits) fit in: no evidence of any rounding."""


def _short(values: np.ndarray) -> bool:
    """Whether every value's mantissa fits in `SHORT_MANTISSA` bits."""
    mantissa, _ = np.frexp(values)
    scaled = np.ldexp(mantissa, SHORT_MANTISSA)
    return bool(np.all(scaled == np.round(scaled)))


def block_scales(blocks: list[slice], values: np.ndarray) -> np.ndarray:
    """Per entry, the RMS of the finite ``values`` of its block (`block_rms`)."""
    scale = np.zeros(values.size)
    for part in blocks:
        scale[part] = block_rms(values[part])
    return scale


def block_rms(values: np.ndarray) -> float:
    """The root mean square of the finite ``values`` (0 if none), computed without overflow."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(finite.max()) if finite.size else 0.0
    return top * float(np.sqrt(np.mean((finite / top) ** 2))) if top > 0 else 0.0


def measure_noise(evaluator: Evaluator, point: np.ndarray, noise: NoiseModel, rng: np.random.Generator,
                  flat_gradient: bool = False) -> NoiseModel:
    """``noise`` with the absolute noise of J's value measured, from high-order differences at tiny spacing.

    Thirty-two extra calls along a random sign direction, a few hundred ulps apart
    and then 3.7 times that, and for a float64 J sixteen more at float32's
    spacing (`COARSE_SPACING`; the largest of the estimates counts):
    enough to change J's rounding, too little for J's smooth part to show in
    differences of order 3 to 6. Where J gives the same value at neighbouring
    points (a cost rounded coarser than its type, such as ``(1e8 + c) - 1e8``),
    the spacing widens until its values move at nearly every point: only then
    do their roundings look like independent noise. But where grad is zero
    there (``flat_gradient``), J staying put may be a staircase (a rounding,
    a count) as well as a coarse precision: its jumps are not taken for
    noise (which would make J look like float16), and their size is kept as
    `NoiseModel.stepped` instead. The scaled spread estimates the standard
    deviation of J's noise ([2], ECnoise, simplified: the median over the
    orders where the table of differences is level, see `_spread`).

    Notes
    -----
    The k-th difference of independent noise of variance s**2 has variance
    ``s**2 * (2k)! / (k!)**2``, so ``gamma_k = (k!)**2 / (2k)!`` rescales its
    mean square to ``s**2`` ([2]). From seventeen values, 90% of the estimates
    on a float32 network's loss fall within a factor of 1.6 of their median;
    `NOISE_MARGIN` absorbs that.
    """
    direction = np.abs(point.astype(np.float64))
    direction[direction == 0] = np.sqrt(np.mean(direction ** 2)) or 1.0
    direction[rng.integers(0, 2, direction.size, dtype=np.int8) == 0] *= -1  # random signs, scaled like theta
    first = spacing = noise.unit ** (2 / 3)
    for _ in range(ECNOISE_WIDENINGS + 1):
        costs = _costs_along(evaluator, noise.cost, _Line(direction, spacing))
        if np.mean(np.diff(costs) != 0) >= ECNOISE_MOVING:
            break
        spacing *= ECNOISE_WIDEN  # J's values are rounded coarser than they move: the noise would look small
    else:  # J stays put between jumps at every spacing (floor, round): piecewise constant, no rounding noise
        return noise.with_measured(0.0)
    if spacing > first and flat_gradient:
        jumps = np.abs(np.diff(costs))
        return replace(noise, measured=0.0, stepped=float(np.median(jumps[jumps > 0])))
    # Once more at a wider spacing: a J rounded to a grid can step by a whole number of grid points
    # (its differences all 0) or move too little for its roundings to be independent at the first one.
    wider = _costs_along(evaluator, noise.cost, _Line(direction, ECNOISE_AGAIN * spacing))
    level = max(_spread(costs), _spread(wider))
    if noise.unit <= COARSE_UNIT:  # and at float32's spacing: a J that casts theta to float32 moves only there
        level = max(level, _spread(_costs_along(evaluator, noise.cost, _Line(direction, COARSE_SPACING))))
    return noise.with_measured(level if np.isfinite(level) else 0.0)


def _spread(costs: list[float]) -> float:
    """The noise level that the differences of order `ECNOISE_ORDERS` of ``costs`` show (0 where none shows).

    Each order's scaled differences estimate the noise where noise dominates
    them: then they change sign from one point to the next, and the estimates
    of all orders are about level. Where J's smooth part dominates, they fall
    with the order instead (like ``(h * s)**k`` for a scale of variation s
    over the spacing h), and keep one sign along each side: such orders
    measure curvature, not noise. So a table that falls at every order, by
    more than `CURVATURE_FALL` in all, shows its last order's level only
    where the fall has levelled out there (by at most `LEVELLED`) and that
    order changes sign on both sides, and no noise otherwise; else the noise is the median over the orders whose
    differences change sign on both sides, 0 where none does ([2] tests the
    same sign changes and level estimates).

    Differences are taken on each side of theta, never across it: where J
    jumps at theta itself (a rounding at its boundary), a difference across
    the jump would be taken for noise, and the jump then hidden by it.
    """
    sides = (costs[:ECNOISE_HALF], costs[ECNOISE_HALF + 1:])
    with np.errstate(all="ignore"):
        levels, alternating = [], []
        for k in ECNOISE_ORDERS:
            per_side = [np.diff(side, k) for side in sides]
            gamma = math.factorial(k) ** 2 / math.factorial(2 * k)
            levels.append(float(np.sqrt(gamma * np.mean(np.concatenate(per_side) ** 2))))
            alternating.append(all((d > 0).any() and (d < 0).any() for d in per_side))
        falls = all(a > b for a, b in itertools.pairwise(levels)) and levels[0] > CURVATURE_FALL * levels[-1]
    if falls:
        return levels[-1] if alternating[-1] and levels[-2] <= LEVELLED * levels[-1] else 0.0
    noisy = [level for level, changes in zip(levels, alternating) if changes]
    return float(np.median(noisy)) if noisy else 0.0


@dataclass(frozen=True)
class _Line:
    """The moves ``j * spacing * direction`` for j = -`ECNOISE_HALF` .. `ECNOISE_HALF`, j != 0 (`Moves`)."""

    direction: np.ndarray
    spacing: float
    multiples: tuple[int, ...] = tuple(j for j in range(-ECNOISE_HALF, ECNOISE_HALF + 1) if j)

    def __len__(self) -> int:
        return len(self.multiples)

    def __getitem__(self, k: int) -> np.ndarray:
        return self.direction * (self.multiples[k] * self.spacing)

    def part(self, which: slice) -> _Line:
        return replace(self, multiples=self.multiples[which])


def _costs_along(evaluator: Evaluator, cost: float, line: _Line) -> list[float]:
    """J along ``line``, with ``cost`` (J at theta) in the middle: one moved theta in memory at a time."""
    values = evaluator.shifted(line, np.empty(len(line))).tolist()
    return [*values[:ECNOISE_HALF], cost, *values[ECNOISE_HALF:]]
