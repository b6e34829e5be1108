"""The gradient check: measure, judge each entry against its noise, explain.

The verdict does not rest on one threshold. Each entry's finite difference
comes with an estimate of its own error: rounding (the noise of J divided by
the step) and, when that is not enough, truncation measured by looking again
at smaller steps. A right gradient's discrepancy shrinks with the step like
``h**order`` until rounding takes over; a wrong one stays put. Entries that
agree on the first look cost nothing more, so a right gradient costs about
2n calls of J.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .diagnose import KINK, OK, SKIPPED, UNCHECKED, WRONG, Evidence, diagnose
from .differences import METHODS, STENCILS, default_steps, representable_steps
from .directions import DirectionalFindings, Probes, check_directions
from .evaluate import call_with_copy, cost_precision, make_evaluator
from .params import flatten
from .progress import Progress
from .result import CheckResult, Problem

__all__ = ["GradientCheckError", "assert_gradient", "check"]

NOISE_MARGIN = 8.0  # an entry agrees within this many noise estimates
TRUNCATION_MARGIN = 3.0  # and within this many truncation estimates
REFINE_LEVELS = 6  # looks again at h/4, h/16, ... for entries that disagree
REFINE_RATIO = 4.0
DOMAIN_RETRIES = 3  # smaller steps tried where J returns NaN or inf
DOMAIN_SHRINK = 16.0
MAX_CHUNK = 1 << 16  # entries in one chunk of the first pass, at most
SECOND_POINT_SPREAD = 0.05


class GradientCheckError(AssertionError):
    """A gradient check failed; the message says where and why.

    Attributes
    ----------
    result : CheckResult
        The full result, for a closer look.
    """

    def __init__(self, message: str, result: CheckResult) -> None:
        super().__init__(message)
        self.result = result


def check(J: Callable[[Any], Any], grad: Callable[[Any], Any] | None, theta: Any, *,
          method: str = "central", eps: float | None = None, tol: float | None = None,
          shapes: Sequence[Sequence[int]] | None = None, names: Sequence[str] | None = None,
          sample: int | None = None, directions: int | None = None, vectorized: bool = False,
          executor: Any = None, seed: int | None = None,
          progress: bool | Callable[[int, int], None] | None = None) -> CheckResult:
    """Check an analytic gradient against finite differences of the cost.

    Parameters
    ----------
    J : callable
        The cost: ``J(theta)`` returns a scalar (a float, numpy scalar, 0-d or
        1-element array), or ``(cost, grad)`` when ``grad`` is None.
    grad : callable or None
        ``grad(theta)`` returns the gradient in ``theta``'s structure or as a
        flat vector of the same size.
    theta : ndarray, dict or list/tuple of arrays, or flat vector
        The point to check at; never modified. Check at a random point
        (:func:`random_init`), not a symmetric one.
    method : {"central", "forward", "complex", "richardson"}
        The finite-difference scheme. ``"complex"`` needs a J that computes
        with complex numbers; ``"richardson"`` costs 4n calls, most accurate.
    eps : float, optional
        The step, used as given (``eps=1e-4`` is the classic choice). By
        default each entry gets a step from ``|theta_i|`` and the dtype.
    tol : float, optional
        When given, the verdict is the classic rule
        ``||a - n|| / ||a + n|| < tol``. By default each entry is judged
        against an estimate of its own numerical error.
    shapes, names : optional
        Block shapes (and names) of a flat, unrolled ``theta``.
    sample : int, optional
        Check only this many entries per block, chosen at random (the others
        are NaN in ``numeric``).
    directions : int, optional
        Check along this many random directions (2 calls each) instead of
        entry by entry; when one disagrees, find and name the wrong entries
        by splitting the parameters into groups (about 2 log2(n) more probes).
    vectorized : bool
        J accepts a batch: every array gets a leading batch axis (an unrolled
        vector becomes a 2-D array, one point per row) and J returns one cost
        per row. The check then calls J once per chunk of points.
    executor : concurrent.futures.Executor, optional
        Evaluates J in parallel (a process pool, a ``dask.distributed.Client``,
        an ipyparallel view's executor). J must be picklable by it.
    seed : int, optional
        Makes the random parts of the check (sampling, directions, noise
        probe, second point) repeatable.
    progress : bool or callable, optional
        Show a progress bar; by default only when the check takes more than
        about a second. A callable gets ``(entries done, total)`` instead;
        raising KeyboardInterrupt in it stops the check like Ctrl-C.

    Returns
    -------
    CheckResult
        ``passed``, ``error``, per-block reports, diagnoses and the gradients.
        Interrupting the check (Ctrl-C) returns what was measured so far.

    Examples
    --------
    >>> import numpy as np, gradwidget as gw
    >>> X = np.arange(6.0).reshape(3, 2); y = np.array([1.0, 2.0, 2.0])
    >>> J = lambda b: 0.5 * np.sum((X @ b - y) ** 2)
    >>> grad = lambda b: X.T @ (X @ b - y)
    >>> gw.check(J, grad, np.array([0.3, -0.2])).passed
    True
    >>> gw.check(J, lambda b: 2 * grad(b), np.array([0.3, -0.2])).diagnoses[0].code
    'scale'
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {', '.join(map(repr, METHODS))}")
    if eps is not None and not (np.isscalar(eps) and np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    if tol is not None and not (np.isscalar(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if not callable(J):
        raise TypeError(f"J must be callable, got a {type(J).__name__}")
    if grad is not None and not callable(grad):
        raise TypeError(f"grad must be callable or None (when J returns (cost, grad)), "
                        f"got a {type(grad).__name__}")
    for name, value in (("sample", sample), ("directions", directions)):
        if value is not None and not (isinstance(value, (int, np.integer)) and value > 0):
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    if sample is not None and directions is not None:
        raise ValueError("sample= and directions= are two ways to check less; pick one")
    if directions is not None and method != "central":
        raise ValueError(f"directions= uses central differences; method={method!r} does not apply")
    options = _Options(method, eps, tol, sample, directions, vectorized, executor, seed, progress)
    evidence = _Check(J, grad, theta, shapes, names, options).run()
    problem = Problem(J, grad, theta, {"method": method, "eps": eps, "tol": tol, "shapes": shapes,
                                       "names": names, "sample": sample, "directions": directions,
                                       "vectorized": vectorized, "seed": seed})
    return CheckResult(evidence, diagnose(evidence), problem)


def assert_gradient(J: Callable[[Any], Any], grad: Callable[[Any], Any] | None, theta: Any,
                    **options: Any) -> CheckResult:
    """Check the gradient and raise `GradientCheckError` if it is wrong.

    For test cells (nbgrader, otter-grader) and pytest: the error is an
    explicit `AssertionError` subclass (not a bare ``assert``, which
    ``python -O`` removes) whose message is the report. Takes the options of
    :func:`check`.

    Returns
    -------
    CheckResult
        When the check passes.

    Raises
    ------
    GradientCheckError
        When it fails, or was interrupted before it could pass.
    """
    result = check(J, grad, theta, **options)
    if not result.passed:
        raise GradientCheckError(str(result), result)
    return result


@dataclass(frozen=True)
class _Options:
    method: str
    eps: float | None
    tol: float | None
    sample: int | None
    directions: int | None
    vectorized: bool
    executor: Any
    seed: int | None
    progress: bool | Callable[[int, int], None] | None


class _Check:
    """One run of a check; fills per-entry arrays as it goes."""

    def __init__(self, J: Callable[[Any], Any], grad: Callable[[Any], Any] | None, theta: Any,
                 shapes: Sequence[Sequence[int]] | None, names: Sequence[str] | None,
                 options: _Options) -> None:
        self.layout, self.point = flatten(theta, shapes, names)
        self.options = options
        self.J, self.grad, self.method, self.tol = J, grad, options.method, options.tol
        self.rng = np.random.default_rng(options.seed)
        self.unit = float(np.finfo(self.point.dtype).eps)
        self.eps = options.eps
        n = self.layout.size
        self.stencil = STENCILS.get(self.method)
        self.evaluator = make_evaluator(J, self.layout, self.point, pair=grad is None,
                                        dtype=np.complex128 if self.method == "complex" else None,
                                        vectorized=options.vectorized, executor=options.executor)
        self.positions = self._positions_to_check()
        self.directional: DirectionalFindings | None = None
        self.block_rms: np.ndarray | None = None  # per entry, its block's gradient RMS (cached)
        self.direction_reduced = False  # a directional probe left J's domain and moved closer
        self.numeric = np.full(n, np.nan)
        self.tolerance = np.full(n, np.nan)
        self.status = np.full(n, UNCHECKED)
        self.steps = np.full(n, np.nan)
        offsets = self.stencil.offsets if self.stencil else ()
        self.sides = (offsets.index(1.0), offsets.index(-1.0)) if {1.0, -1.0} <= set(offsets) else None
        width = len(offsets) or 1
        self.values = np.full((n, width), np.nan)  # J on each entry's stencil
        self.noise = 0.0  # measured noise of J, when measured
        self.reduced: list[np.ndarray] = []
        self.kink_near: list[np.ndarray] = []
        self.one_sided: dict[int, tuple[float, float]] = {}
        self.ignores_input = False
        self.interrupted: str | None = None

    # ------------------------------------------------------------ the run

    def run(self) -> Evidence:
        self._at_point()
        self.steps = self._initial_steps()
        try:
            if self.options.directions:
                if not self.evidence().nondeterministic:
                    self._directional()
            else:
                self._first_pass()
                if self.tol is None and not self.evidence().nondeterministic and self.stencil:
                    self._second_look()
            if not self.evidence().nondeterministic:
                with np.errstate(all="ignore"):
                    self._second_point()
        except KeyboardInterrupt:
            done = int(np.sum(self.status[self.positions] != UNCHECKED))
            self.interrupted = (f"interrupted after {done} of {self.positions.size} entries; "
                                "the rest are NaN in numeric")
        drift = self.evaluator.drifted()
        if drift.size:
            self.mutated["J"] = np.union1d(self.mutated.get("J", drift[:0]), drift)
        return self.evidence()

    def evidence(self) -> Evidence:
        return Evidence(
            layout=self.layout, point=self.point, method=self.method, analytic=self.analytic,
            numeric=self.numeric, steps=self.steps, tolerance=self.tolerance, status=self.status,
            unit=self.unit, tol=self.tol, calls=self.evaluator.calls,
            costs_at_point=self.costs_at_point, mutated=self.mutated, transposed=self.transposed,
            step_reduced=_joined(self.reduced), kink_near=_joined(self.kink_near),
            one_sided=self.one_sided, ignores_input=self.ignores_input,
            interrupted=self.interrupted, noise=self.noise,
            sampled=self.positions.size if self.options.sample else None,
            directional=self.directional, direction_reduced=self.direction_reduced)

    def _initial_steps(self) -> np.ndarray:
        if self.eps is not None:  # a user's step is used as given
            return np.full(self.layout.size, float(self.eps))
        steps = default_steps(self.method, self.point, self.unit)
        return steps if self.method == "complex" else representable_steps(self.point, steps)

    def _at_point(self) -> None:
        """J twice and grad once at theta: cost, gradient, mutation, determinism."""
        evaluator = self.evaluator
        first, changed = evaluator.at(self.point)
        self.cost = _finite_cost(evaluator.cost(first), "J(theta)")
        self.unit = max(self.unit, cost_precision(first))  # a float32 cost is as coarse as float32 theta
        self.mutated = {"J": changed} if changed.size else {}
        if changed.size:
            evaluator.fresh_copies = True
        if self.grad is None:
            gradient, source = first[1], "J's second output (grad=None)"
        else:
            gradient, changed = call_with_copy(self.grad, self.layout, self.point, "grad")
            source = "grad"
            if changed.size:
                self.mutated["grad"] = changed
        second, _ = evaluator.at(self.point)
        self.costs_at_point = (self.cost, float(np.real(evaluator.cost(second))))
        self.analytic, self.transposed = self.layout.flatten_like(gradient, source)

    def _positions_to_check(self) -> np.ndarray:
        """Every entry, or ``sample`` entries of each block chosen at random."""
        if not self.options.sample:
            return np.arange(self.layout.size)
        chosen = [np.sort(self.rng.choice(np.arange(b.start, b.stop), min(self.options.sample, b.size),
                                          replace=False)) for b in self.layout.blocks]
        return np.concatenate(chosen)

    def _first_pass(self) -> None:
        """One look at every entry to check, in chunks sized to take a fraction of a second.

        Chunks are the unit of progress and of what an interrupt keeps.
        """
        positions, size, done = self.positions, self.evaluator.first_chunk, 0
        start_time = time.perf_counter()
        with Progress(positions.size, self.options.progress) as bar:
            while done < positions.size:
                chunk = positions[done:done + size]
                chunk_start = time.perf_counter()
                self._measure(chunk, self.steps[chunk])
                self._judge(chunk[self.status[chunk] == UNCHECKED])
                done += chunk.size
                bar.update(chunk.size, time.perf_counter() - start_time)
                per_entry = (time.perf_counter() - chunk_start) / chunk.size
                size = int(np.clip(self.evaluator.chunk_seconds / max(per_entry, 1e-9), 8, MAX_CHUNK))

    def _second_look(self) -> None:
        suspects = self._suspects()
        if suspects.size and self.noise == 0:
            with np.errstate(all="ignore"):
                self.noise = self._measure_noise()
            self._judge(suspects)
            suspects = self._suspects()
        again = np.union1d(suspects, self._kink_candidates())
        if again.size:
            self._refine(again)

    def _suspects(self) -> np.ndarray:
        return np.flatnonzero((self.status == WRONG) & np.isfinite(self.analytic))

    # ------------------------------------------------------------ measuring

    def _measure(self, positions: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Estimate the derivative along each entry, with smaller steps where J fails.

        Fills ``numeric``, ``values`` and ``steps``; entries where no step
        gives finite values are SKIPPED. Returns the estimates.
        """
        estimates, values = self._differences(positions, steps)
        for _ in range(DOMAIN_RETRIES):
            bad = ~np.isfinite(estimates)
            if not bad.any():
                break
            self.reduced.append(positions[bad])
            steps = steps.copy()
            steps[bad] = representable_steps(self.point[positions[bad]], self._smaller(positions[bad], steps[bad]))
            estimates[bad], values[bad] = self._differences(positions[bad], steps[bad])
        self.status[positions[~np.isfinite(estimates)]] = SKIPPED
        self.numeric[positions], self.values[positions], self.steps[positions] = estimates, values, steps
        return estimates

    def _smaller(self, positions: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """A step that stays inside J's domain: relative to |theta_i| first, then 16x smaller."""
        relative = steps / np.maximum(np.abs(self.point[positions]), 1.0) * np.abs(self.point[positions])
        return np.where((relative > 0) & (relative < steps / DOMAIN_SHRINK), relative, steps / DOMAIN_SHRINK)

    def _differences(self, positions: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.stencil is None:
            out = np.full(positions.size, np.nan, dtype=np.complex128)
            self.evaluator.along(positions, 1j * steps, out)
            self._require_complex(positions, out)
            return out.imag / steps, out.imag[:, None]
        offsets = np.array(self.stencil.offsets)
        moving = offsets != 0
        out = np.full((positions.size, int(moving.sum())), np.nan)
        deltas = steps[:, None] * offsets[moving]
        try:
            self.evaluator.along(np.repeat(positions, moving.sum()), deltas.ravel(), out.reshape(-1))
        except KeyboardInterrupt:  # keep every entry whose calls all returned
            complete = self.evaluator.reached // int(moving.sum())
            done = positions[:complete]
            self.numeric[done], self.values[done] = self._combine(out[:complete], steps[:complete])
            self.steps[done] = steps[:complete]
            self._judge(done[self.status[done] == UNCHECKED])
            raise
        return self._combine(out, steps)

    def _combine(self, out: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stencil's estimates from J's values one step away (``out``) and at theta."""
        offsets = np.array(self.stencil.offsets)
        values = np.full((out.shape[0], offsets.size), self.cost)
        values[:, offsets != 0] = out
        with np.errstate(invalid="ignore", over="ignore"):
            estimates = values @ np.array(self.stencil.weights) / steps
        return estimates, values

    def _require_complex(self, positions: np.ndarray, out: np.ndarray) -> None:
        if not np.any(out.imag) and np.any(self.analytic[positions]):
            raise ValueError(
                "method='complex' needs a J that computes with complex numbers, but "
                "J(theta + 1e-20j * e_i) came back real (abs, np.real, float() or a real-typed "
                "array drops the imaginary part); use method='central'")

    def _measure_noise(self) -> float:
        """The noise of J's value, from high-order differences at tiny spacing.

        Six extra calls along a random direction; rounding makes J's value
        jitter with a spread that these differences isolate (Moré & Wild's
        ECnoise idea, simplified).
        """
        size = np.abs(self.point.astype(np.float64))
        scale = np.where(size > 0, size, np.sqrt(np.mean(size ** 2)) or 1.0)
        # Hundreds of ulps in any dtype: enough to change J's rounding, too
        # little for J's smooth part to show in third differences (~u**2).
        direction = self.rng.choice([-1.0, 1.0], size.size) * self.unit ** (2 / 3) * scale
        costs = []
        for j in range(-3, 4):
            if j == 0:
                costs.append(self.cost)
                continue
            point = (self.point + j * direction).astype(self.point.dtype)
            costs.append(float(np.real(self.evaluator.cost(self.evaluator.at(point)[0]))))
        levels = []
        for k in range(3, 7):
            diffs = np.diff(costs, k)
            gamma = math.factorial(k) ** 2 / math.factorial(2 * k)
            levels.append(np.sqrt(gamma * np.mean(diffs ** 2)))
        noise = float(np.median(levels))
        return noise if np.isfinite(noise) else 0.0

    # ------------------------------------------------------------ judging

    def _noise(self, positions: np.ndarray, values: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Rounding error of each estimate: noise of J times the stencil's gain over h."""
        if self.stencil is None:
            return np.zeros(positions.size)
        modelled = self.unit * np.maximum(np.abs(self.cost), np.nanmax(np.abs(values), axis=1))
        return NOISE_MARGIN * np.maximum(modelled, self.noise) * self.stencil.noise_gain / steps

    def _block_scale(self, positions: np.ndarray) -> np.ndarray:
        """The RMS of the analytic gradient over each position's block."""
        if self.block_rms is None:
            self.block_rms = np.empty(self.layout.size)
            for block in self.layout.blocks:
                values = self.analytic[block.slice]
                finite = values[np.isfinite(values)]
                self.block_rms[block.slice] = np.sqrt(np.mean(finite ** 2)) if finite.size else 0.0
        return self.block_rms[positions]

    def _floor(self, positions: np.ndarray, estimates: np.ndarray) -> np.ndarray:
        """Rounding of the analytic gradient itself: relative, and a sliver of its block's scale."""
        a = self.analytic[positions]
        return (np.sqrt(self.unit) * np.maximum(np.abs(a), np.abs(estimates))
                + NOISE_MARGIN * self.unit * self._block_scale(positions))

    def _judge(self, positions: np.ndarray) -> None:
        """First-look verdict: agree within rounding noise, or suspect."""
        positions = positions[self.status[positions] != SKIPPED]
        estimates = self.numeric[positions]
        tolerance = (self._noise(positions, self.values[positions], self.steps[positions])
                     + self._floor(positions, estimates))
        self.tolerance[positions] = tolerance
        gap = np.abs(self.analytic[positions] - estimates)
        if self.tol is not None:  # the classic rule, entry by entry
            agree = gap <= self.tol * (np.abs(self.analytic[positions]) + np.abs(estimates))
        else:
            agree = gap <= tolerance
        self.status[positions] = np.where(agree, OK, WRONG)

    def _kink_candidates(self) -> np.ndarray:
        """Agreeing entries whose one-sided slopes differ a lot: J may have a corner there.

        The central difference at a symmetric corner (|w| at 0) lands on the
        midpoint and can agree with grad by luck; the spread between the
        one-sided differences, free from the first pass, gives it away.
        """
        if self.sides is None:
            return np.zeros(0, int)
        agreeing = np.flatnonzero(self.status == OK)
        spread = np.abs(self._spread(agreeing))
        noise = 2 * self._noise(agreeing, self.values[agreeing], self.steps[agreeing])
        scale = (np.abs(self.analytic[agreeing]) + np.abs(self.numeric[agreeing])
                 + self._block_scale(agreeing))
        return agreeing[(spread > noise) & (spread > 1e-2 * scale)]

    def _refine(self, suspects: np.ndarray) -> None:
        """Look again at smaller steps until each entry agrees, settles, or shows a kink."""
        order = self.stencil.order
        previous = self.numeric[suspects].copy()
        spread = self._spread(suspects) if self.sides else None
        active = suspects
        for _ in range(REFINE_LEVELS):
            steps = representable_steps(self.point[active], self.steps[active] / REFINE_RATIO)
            estimates = self._measure(active, steps)
            live = np.isfinite(estimates)
            change = np.abs(previous - estimates)
            noise = self._noise(active, self.values[active], self.steps[active])
            floor = self._floor(active, estimates)
            tolerance = noise + floor + TRUNCATION_MARGIN * change / (REFINE_RATIO ** order - 1)
            self.tolerance[active] = tolerance
            agree = live & (np.abs(self.analytic[active] - estimates) <= tolerance)
            kink = np.zeros(active.size, bool)
            if self.sides:
                # Smooth: the spread is h * J'' and shrinks 4x with h. At a corner it stays.
                new_spread = np.abs(self._spread(active))
                significant = new_spread > 2 * noise
                kink = live & significant & (new_spread >= 0.5 * np.abs(spread))
                crossed = agree & ~kink & (np.abs(spread) > 16 * new_spread) & (np.abs(spread) > 2 * noise)
                self.kink_near.append(active[crossed])
                self._resolve_kinks(active[kink], tolerance[kink])
                spread = new_spread
            settled = live & ~agree & ~kink & (change <= noise + floor)
            self.status[active[agree & ~kink]] = OK
            self.status[active[settled]] = WRONG
            keep = live & ~agree & ~kink & ~settled
            active, previous = active[keep], estimates[keep]
            if spread is not None:
                spread = spread[keep]
            if not active.size:
                break

    def _spread(self, positions: np.ndarray) -> np.ndarray:
        """Forward minus backward difference: h * J'' when smooth, the jump at a kink."""
        plus, minus = self.sides
        values = self.values[positions]
        return (values[:, plus] - 2 * self.cost + values[:, minus]) / self.steps[positions]

    def _resolve_kinks(self, positions: np.ndarray, tolerance: np.ndarray) -> None:
        plus, minus = self.sides
        values, steps = self.values[positions], self.steps[positions]
        right = (values[:, plus] - self.cost) / steps
        left = (self.cost - values[:, minus]) / steps
        a = self.analytic[positions]
        between = (a >= np.minimum(left, right) - tolerance) & (a <= np.maximum(left, right) + tolerance)
        self.status[positions] = np.where(between, KINK, WRONG)
        for i, lo, hi in zip(positions.tolist(), left.tolist(), right.tolist()):
            self.one_sided[i] = (lo, hi)

    # ------------------------------------------------------------ directions

    def _directional(self) -> None:
        self.directional = check_directions(self._probe, self.layout, self.steps,
                                            self.options.directions, self.rng)
        for position, (derivative, tolerance) in self.directional.wrong.items():
            self.numeric[position], self.tolerance[position] = derivative, tolerance
            self.status[position] = WRONG

    def _probe(self, shifts: np.ndarray) -> Probes:
        """Judge J along ``theta +- shifts[k]``: noise-aware, with smaller moves where it disagrees.

        Each probe keeps its own scale of the move: a quarter of it for a
        second look, a sixteenth where J left its domain.
        """
        count = len(shifts)
        analytic = shifts @ self.analytic
        spread = NOISE_MARGIN * self.unit * (np.abs(shifts) @ np.abs(self.analytic))
        numeric, tolerance = np.full(count, np.nan), np.full(count, np.inf)
        agree = np.zeros(count, bool)
        scale, previous = np.ones(count), np.full(count, np.nan)
        levels, retries = np.zeros(count, int), np.zeros(count, int)
        active = np.arange(count)
        while active.size:
            rows = shifts[active] * scale[active, None]
            costs = self.evaluator.shifted(np.concatenate([rows, -rows]), np.empty(2 * active.size))
            plus, minus = costs[: active.size], costs[active.size:]
            estimate = (plus - minus) / (2 * scale[active])
            finite = np.isfinite(estimate)
            lost = ~finite & (retries[active] < DOMAIN_RETRIES)
            if lost.any():
                self.direction_reduced = True
            retries[active[lost]] += 1
            scale[active[lost]] /= DOMAIN_SHRINK
            first = np.isnan(previous[active])
            gap = np.abs(analytic[active] - estimate)
            if self.noise == 0 and np.any(finite & first & (gap > self._probe_noise(plus, minus, scale[active])
                                                             + spread[active])):
                self.noise = self._measure_noise()
            noise = self._probe_noise(plus, minus, scale[active])
            floor = np.sqrt(self.unit) * np.maximum(np.abs(analytic[active]), np.abs(estimate)) + spread[active]
            change = np.where(first, np.inf, np.abs(previous[active] - estimate))
            truncation = np.where(first, 0.0, TRUNCATION_MARGIN * change / (REFINE_RATIO ** 2 - 1))
            ok = finite & (gap <= noise + floor + truncation)
            settled = finite & ~ok & (change <= noise + floor)
            numeric[active[finite]] = estimate[finite]
            tolerance[active[finite]] = (noise + floor + truncation)[finite]
            agree[active[ok]] = True
            again = finite & ~ok & ~settled & (levels[active] < REFINE_LEVELS)
            levels[active[again]] += 1
            previous[active[again]] = estimate[again]
            scale[active[again]] /= REFINE_RATIO
            active = active[again | lost]
        return Probes(analytic, numeric, tolerance, agree)

    def _probe_noise(self, plus: np.ndarray, minus: np.ndarray, scale: float) -> np.ndarray:
        modelled = self.unit * np.maximum(np.abs(self.cost), np.maximum(np.abs(plus), np.abs(minus)))
        return NOISE_MARGIN * np.maximum(modelled, self.noise) * STENCILS["central"].noise_gain / scale

    def _second_point(self) -> None:
        """Does grad change when theta does? Catches a grad that reads a global."""
        if self.interrupted or self.layout.size == 0:
            return
        spread = SECOND_POINT_SPREAD * np.maximum(np.abs(self.point), 0.1)
        moved = (self.point + spread * self.rng.uniform(-1, 1, self.point.size)).astype(self.point.dtype)
        if self.grad is None:
            value, _ = self.evaluator.at(moved)
            gradient = value[1]
        else:
            gradient, _ = call_with_copy(self.grad, self.layout, moved, "grad")
        try:
            other, _ = self.layout.flatten_like(gradient)
        except ValueError:
            return
        if not np.array_equal(other, self.analytic):
            return
        if self.grad is not None:
            value, _ = self.evaluator.at(moved)
        cost = float(np.real(self.evaluator.cost(value)))
        delta = (moved - self.point).astype(np.float64)
        linear = self.cost + float(self.analytic @ delta)
        scale = abs(self.cost) + abs(cost) + float(np.abs(self.analytic) @ np.abs(delta))
        self.ignores_input = bool(np.isfinite(cost) and abs(cost - linear) > 1e3 * self.unit * scale)


def _finite_cost(cost: float | complex, what: str) -> float:
    value = float(np.real(cost))
    if not np.isfinite(value):
        raise ValueError(f"{what} is {value}: the check point must be inside J's domain")
    return value


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, int)
