"""What a check measured, per entry of the flat vector, and the figures derived from it.

`Evidence` is built once, at the end of a check, from the arrays the check
filled; the verdict, the diagnoses and the result read it and never change
it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ._noise import SURE, NoiseModel, block_scales
from ._params import Layout, ShapeMismatch

__all__ = ["Contract", "DirectionalFindings", "Evidence", "JacobianPairs", "NotSubgradient", "Probes", "Promotion",
           "Subject", "global_error", "global_resolution", "uncompared"]


@dataclass(frozen=True)
class Probes:
    """Verdicts of a set of probes: analytic A = v . a, numeric D, tolerance, agreement, resolution."""

    analytic: np.ndarray
    numeric: np.ndarray
    tolerance: np.ndarray
    agree: np.ndarray
    resolved: np.ndarray

    @classmethod
    def none(cls) -> Probes:
        """No probes yet."""
        empty = np.zeros(0)
        return cls(empty, empty, empty, empty.astype(bool), empty.astype(bool))

    def joined(self, other: Probes) -> Probes:
        """These probes followed by ``other``."""
        return Probes(*(np.concatenate([mine, theirs]) for mine, theirs in
                        zip((self.analytic, self.numeric, self.tolerance, self.agree, self.resolved),
                            (other.analytic, other.numeric, other.tolerance, other.agree, other.resolved))))


@dataclass
class DirectionalFindings:
    """What the random directions and the search for wrong entries found."""

    directions: Probes
    wrong: dict[int, tuple[float, float]] = field(default_factory=dict)  # entry -> (numeric, tolerance)
    failed_blocks: list[str] = field(default_factory=list)
    factor: float | None = None  # analytic = factor * numeric along every direction
    probes: int = 0
    reduced: bool = False  # a probe left J's domain and moved closer to theta
    kinks: dict[int, tuple[float, float]] = field(default_factory=dict)  # entry at a kink -> (left, right slope)
    unexplained: bool = False  # a probe disagreed, but no entry the search could name is wrong or at a kink


@dataclass(frozen=True)
class NotSubgradient:
    """A block whose gradient at its kinks is no subgradient of J.

    Attributes
    ----------
    positions : ndarray
        The flat entries at a kink that moved together.
    claimed : float
        grad's directional derivative ``g . d`` along the move, per unit
        move of the entry that moves most.
    left, right : float
        J's one-sided slopes along it, in the same unit (equal where J is
        smooth along it).
    """

    positions: np.ndarray
    claimed: float
    left: float
    right: float


@dataclass(frozen=True)
class Promotion:
    """A coarse theta (float32) checked in float64, because J and grad follow their input's dtype.

    Attributes
    ----------
    dtype : str
        theta's own dtype.
    agreement : float
        The largest gap between grad's value at theta as given and at theta
        in float64, relative to the larger of the entry and its block's RMS.
    claim : float
        What the coarse dtype resolves (`NoiseModel.claim`): a larger gap is
        a bug of the coarse computation itself.
    wrong : ndarray
        Flat entries whose gaps exceed ``claim`` (an overflow, a constant
        rounded to float32), or what ``against`` allows.
    against : str
        What the coarse gradient was held to instead of ``claim``, when it
        was judged against a reference (``gradwidget.torch.check(...,
        reference=)``); empty otherwise.
    """

    dtype: str
    agreement: float
    claim: float
    wrong: np.ndarray
    against: str = ""


@dataclass(frozen=True)
class Subject:
    """What was checked, in the user's words: the functions' names, what was compared, what was passed through.

    A gradient check compares ``grad`` with finite differences of ``J`` at
    ``theta``. The checks of array-valued functions run the same engine on
    ``J(x) = <v, f(x)>`` (v the cotangent, or ``dout``), and their messages
    name the user's functions instead.

    Attributes
    ----------
    kind : str
        ``"gradient"``, ``"layer"``, ``"vjp"``, ``"jvp"``, ``"jacobian"`` or ``"hessian"``.
    cost, gradient, point : str
        The names messages use for J, grad and theta (``"affine_forward"``,
        ``"affine_backward"``, ``"the inputs"``).
    title : str
        The report's first line (empty for a gradient).
    notes : tuple of str
        Lines for the report (arguments passed through, the Hessian's symmetry).
    outputs : Layout or None
        The structure of f's output, for naming pairs of the Jacobian.
    cotangent : ndarray or None
        The flat cotangent v (``dout``) the engine checked ``<v, f>`` with.
    """

    kind: str = "gradient"
    cost: str = "J"
    gradient: str = "grad"
    point: str = "theta"
    title: str = ""
    notes: tuple[str, ...] = ()
    outputs: Layout | None = None
    cotangent: np.ndarray | None = None

    def words(self, message: str) -> str:
        """``message`` with J, grad and theta called by this subject's names."""
        if self.kind == "gradient":
            return message
        names = {"J": self.cost, "grad": self.gradient, "theta": self.point}
        parts = message.split("`")  # code between backticks is left as written
        return "`".join(part if k % 2 else _NAMED.sub(lambda found: names[found.group(0)], part)
                        for k, part in enumerate(parts))


_NAMED = re.compile(r"(?<![\w.'`=])(J|grad|theta)(?![\w(=])")


@dataclass(frozen=True)
class JacobianPairs:
    """The whole Jacobian, output entry by input entry, compared pair by pair.

    Attributes
    ----------
    analytic, numeric, tolerance : ndarray
        Shape ``(m, n)``: m flat outputs, n flat inputs. ``numeric`` is NaN
        in columns that were not measured.
    wrong : ndarray of bool
        Pairs beyond their tolerance, in columns the check found wrong.
    """

    analytic: np.ndarray
    numeric: np.ndarray
    tolerance: np.ndarray
    wrong: np.ndarray


@dataclass(frozen=True)
class Contract:
    """What a backward's contract checks found, without finite differences.

    Attributes
    ----------
    ignores_dout : dict
        Argument name -> relative failure of ``b(v1) + b(v2) = b(v1 + v2)``.
    constant_in_dout : list of str
        Arguments whose gradient came back the same for two different dout.
    faults : dict
        Argument name -> (code, message) for a fault that fails it without
        finite differences: a gradient returned in another shape (a
        broadcast not summed, a Jacobian transposed) or in another
        argument's place, a JVP that is not the VJP's transpose.
    writes : tuple of str
        What the backward wrote into (``"dout"``, ``"the cache[2]"``). The
        check gives every call its own copies, so a write never changes
        what is checked: it is reported, as a warning.
    after_writes : str
        What the backward does when called again on what it wrote into:
        ``""`` (the same answer), ``"gives another answer"`` or
        ``"raises IndexError (...)"``.
    """

    ignores_dout: dict[str, float] = field(default_factory=dict)
    constant_in_dout: list[str] = field(default_factory=list)
    faults: dict[str, tuple[str, str]] = field(default_factory=dict)
    writes: tuple[str, ...] = ()
    after_writes: str = ""


@dataclass(frozen=True)
class Evidence:
    """Everything the checker measured, per entry of the flat vector.

    Attributes
    ----------
    layout, point : the parameters and the check point, flat
    method : str
    analytic, numeric, steps, tolerance : ndarray
        Per entry; ``numeric`` and ``tolerance`` are NaN where not measured.
    status : ndarray
        Per entry, a `gradwidget._verdict.Status` value.
    noise : NoiseModel
    tol : float or None
        The classic rule's threshold, when given.
    calls : int
        Calls of J.
    costs_at_point : tuple of float
        J at theta: twice at the start, once more at the end (for a
        vectorized J: two rows of one call, then the last batch's row).
    nondeterministic : bool
        They differ beyond rounding.
    grad_keeps_state : bool
        grad gave another gradient the second time at theta.
    mutated : dict
        ``"J"`` or ``"grad"`` -> flat positions it changed in place.
    linear, transposed : tuple of str, list of str
        Blocks along which J is linear (one-sided slopes equal to rounding);
        blocks grad returned with their 2-D shape reversed.
    mismatched : dict
        Block name -> `ShapeMismatch` (reshaped, summed, or NaN if of another size).
    step_reduced, kink_near, jumps : ndarray
        Entries where the step was made smaller (domain edge), agreeing
        entries with a kink within one step, and entries where J jumps.
    one_sided : dict
        Entry at a kink or a jump -> (slope from the left, slope from the right).
    ignores_input : list of str
        Blocks whose gradient, right at theta, disagrees with J's slope at a
        second point nearby (part of it does not follow theta).
    not_subgradient : dict
        Block name -> `NotSubgradient`: its entries at a kink, moved
        together, show grad outside J's one-sided slopes.
    promotion : Promotion or None
        Set when a coarse theta was checked in float64 (``precision="auto"``).
    interrupted : str or None
        How far an interrupted check got.
    sampled : int or None
        Entries checked, when ``sample=`` chose them.
    directional : DirectionalFindings or None
        Set in directional mode.
    eps : float or None
        The step the user gave, if any.
    vectorized : bool
        J was called on batches of points (``vectorized=True``).
    subject : Subject
        What was checked and the names messages use.
    pairs : JacobianPairs or None
        The whole Jacobian, where a check of an array-valued function compared it.
    contract : Contract or None
        A backward's contract checks (layers).
    against : str
        What ``numeric`` is: ``"numeric"`` (finite differences, a check) or
        ``"reference"`` (an instructor's gradient, when grading); it sets how
        diagnoses word the comparison.
    """

    layout: Layout
    point: np.ndarray
    method: str
    analytic: np.ndarray
    numeric: np.ndarray
    steps: np.ndarray
    tolerance: np.ndarray
    status: np.ndarray
    noise: NoiseModel
    tol: float | None = None
    calls: int = 0
    costs_at_point: tuple[float, ...] = (np.nan, np.nan)
    nondeterministic: bool = False
    grad_keeps_state: bool = False
    mutated: dict[str, np.ndarray] = field(default_factory=dict)
    transposed: list[str] = field(default_factory=list)
    mismatched: dict[str, ShapeMismatch] = field(default_factory=dict)
    linear: tuple[str, ...] = ()
    step_reduced: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    kink_near: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    jumps: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    one_sided: dict[int, tuple[float, float]] = field(default_factory=dict)
    ignores_input: list[str] = field(default_factory=list)
    not_subgradient: dict[str, NotSubgradient] = field(default_factory=dict)
    promotion: Promotion | None = None
    interrupted: str | None = None
    sampled: int | None = None
    directional: DirectionalFindings | None = None
    against: str = "numeric"
    eps: float | None = None
    vectorized: bool = False
    subject: Subject = field(default_factory=Subject)
    pairs: JacobianPairs | None = None
    contract: Contract | None = None

    @property
    def unit(self) -> float:
        """The relative rounding of J's values (see `NoiseModel.unit`)."""
        return self.noise.unit

    @cached_property
    def gap(self) -> np.ndarray:
        """|analytic - numeric| per entry (NaN where not measured)."""
        return np.abs(self.analytic - self.numeric)

    @cached_property
    def relative(self) -> np.ndarray:
        """|a - n| / max(|a|, |n|) per entry (0 where both are 0)."""
        a, n = self.analytic, self.numeric
        rel = np.abs(a)
        np.maximum(rel, np.abs(n), out=rel)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(self.gap, rel, out=rel)
        rel[(a == 0) & (n == 0)] = 0.0
        return rel

    @cached_property
    def significance(self) -> np.ndarray:
        """|a - n| in units of the entry's tolerance: +inf where grad gave NaN, -inf where not measured."""
        measured = np.isfinite(self.numeric)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.nan_to_num(np.divide(self.gap, self.tolerance), copy=False, nan=0.0)
        ratio[~measured] = -np.inf
        ratio[measured & ~np.isfinite(self.analytic)] = np.inf
        for part in uncompared(self.layout, self.mismatched):
            ratio[part] = -np.inf
        return ratio

    @cached_property
    def block_scale(self) -> np.ndarray:
        """Per entry, the RMS of the analytic gradient over its block."""
        return block_scales([b.slice for b in self.layout.blocks], self.analytic)

    @cached_property
    def resolution(self) -> np.ndarray:
        """Per entry, the relative error sure to show there: `SURE` tolerances over max(|a_i|, its block's RMS)."""
        scale = np.maximum(np.abs(self.analytic), self.block_scale)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(scale > 0, SURE * self.tolerance / scale, 0.0)

    @cached_property
    def error(self) -> float:
        """The article's ``||a - n|| / ||a + n||``: over checked entries, or over the random directions."""
        if self.directional is not None:
            probes = self.directional.directions
            return global_error(probes.analytic, probes.numeric, probes.tolerance)
        return global_error(self.analytic, self.numeric, self.tolerance)

    @property
    def precision(self) -> float:
        """Relative rounding noise of J's value: the dtype's, or more if measured."""
        return self.noise.precision

    @property
    def noise_floor(self) -> float:
        """The relative gradient error below which this check is blind (NaN if unknown); kinks and jumps aside."""
        checked = np.isfinite(self.numeric) & np.isfinite(self.analytic)
        checked[list(self.one_sided)] = False
        size = np.maximum(np.abs(self.analytic), np.abs(self.numeric))[checked]
        scale = np.sqrt(np.mean(size ** 2)) if size.size else 0.0
        return float(SURE * np.median(self.tolerance[checked]) / scale) if scale > 0 else float("nan")


def uncompared(layout: Layout, mismatched: dict[str, ShapeMismatch]) -> list[slice]:
    """The blocks whose gradient came back with another number of entries (NaN in the analytic gradient)."""
    return [b.slice for b in layout.blocks if b.name in mismatched and mismatched[b.name].unusable]


def global_error(a: np.ndarray, n: np.ndarray, tolerance: np.ndarray) -> float:
    """The classic ``||a - n|| / ||a + n||`` over the entries that have a numeric value.

    Where both gradients are down at the noise (at a minimum), the
    denominator is the noise scale instead, so the figure does not become
    an arbitrary ratio of two roundings. An analytic value that is not
    finite makes it infinite.
    """
    checked = np.isfinite(n)
    if not checked.any():
        return float("nan")
    if not np.isfinite(a[checked]).all():
        return float("inf")
    scale = max(float(np.abs(a[checked]).max()), float(np.abs(n[checked]).max()), np.finfo(float).tiny)
    a, n = a[checked] / scale, n[checked] / scale  # no overflow in the norms
    tol = tolerance[checked] / scale
    denominator = max(_norm(a + n), _norm(np.nan_to_num(tol, nan=0.0, posinf=np.inf)))
    difference = _norm(a - n)
    if denominator == 0:
        return 0.0 if difference == 0 else float("inf")
    return difference / denominator


def global_resolution(a: np.ndarray, n: np.ndarray, tolerance: np.ndarray) -> float:
    """What ``||a - n|| / ||a + n||`` can resolve: ``||tolerance|| / ||a + n||`` over the checked entries."""
    checked = np.isfinite(n) & np.isfinite(a)
    total = _norm(a[checked] + n[checked])
    spread = _norm(np.nan_to_num(tolerance[checked], nan=0.0, posinf=np.inf))
    with np.errstate(over="ignore"):
        return spread / total if total > 0 else (0.0 if spread == 0 else float("inf"))


def _norm(values: np.ndarray) -> float:
    """The 2-norm, without overflow for entries near the largest float (inf if one is infinite)."""
    top = float(np.abs(values).max()) if values.size else 0.0
    if top == 0 or not np.isfinite(top):
        return top
    return top * float(np.linalg.norm(values / top))
