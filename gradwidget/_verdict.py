"""The verdict, decided in one place: per entry, per block, overall; and the table of diagnosis codes.

An entry agrees when its discrepancy is within its tolerance (`judge`), and
is resolved when that tolerance is within what the verdict claims. A block
fails when one of its entries is wrong, when grad returned it transposed,
or, under the classic rule, when its ``||a - n|| / ||a + n||`` is not below
``tol``; it is inconclusive when an entry could not be resolved or checked,
or when none of its entries was judged;
the check passes when every block passes, nothing stopped it and no
diagnosis is fatal (`CODES`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ._evidence import Evidence, global_error, global_resolution
from ._params import Block

# Public through gradwidget: the diagnosis codes. The rest is imported by name inside the package.
__all__ = [
    "BROADCAST",
    "CODES",
    "DOMAIN",
    "IGNORES_DOUT",
    "IGNORES_INPUT",
    "INTERRUPTED",
    "KINK",
    "LOCALIZED",
    "MISSING_TERM",
    "MUTATES_INPUT",
    "NOISE_FLOOR",
    "NONDETERMINISTIC",
    "NOT_SUBGRADIENT",
    "PERMUTATION",
    "PRECISION_LOSS",
    "RECURRENCE",
    "SCALE",
    "SHAPE",
    "SIGN",
    "SWAPPED",
    "SYMMETRIC_POINT",
    "TRANSPOSE",
]


class Status(IntEnum):
    """What the check concluded about one entry."""

    UNCHECKED = 0  # not measured (sampled out, directional mode, interrupted)
    OK = 1  # agrees within its tolerance
    WRONG = 2  # disagrees beyond it
    KINK = 3  # J is not differentiable there; the analytic value lies between the one-sided slopes (or J jumps)
    SKIPPED = 4  # J returned NaN or inf at every step tried
    UNRESOLVED = 5  # agrees, but no step gave a tolerance within the resolution the verdict claims

    @property
    def label(self) -> str:
        """The name used in reports and JSON: ``"ok"``, ``"wrong"``, ..."""
        return self.name.lower()


JUDGED = (Status.OK, Status.WRONG, Status.KINK, Status.UNRESOLVED)
"""The statuses of entries that were measured and judged (not skipped, not left unchecked)."""


def among(status: np.ndarray, statuses: Iterable[Status]) -> np.ndarray:
    """Where ``status`` is one of ``statuses``: a table lookup (``np.isin`` costs far more on small arrays)."""
    wanted = np.zeros(len(Status), bool)
    wanted[list(statuses)] = True
    return wanted[status]


class Verdict(IntEnum):
    """A block's or the whole check's verdict; the worse of two is the larger."""

    PASSED = 0
    INCONCLUSIVE = 1
    FAILED = 2

    @property
    def label(self) -> str:
        """``"passed"``, ``"inconclusive"`` or ``"failed"``."""
        return self.name.lower()


@dataclass(frozen=True)
class Code:
    """A diagnosis code: what it means, and whether it fails the check on its own."""

    meaning: str
    fatal: bool = False


SCALE = "scale"
SIGN = "sign"
TRANSPOSE = "transpose"
PERMUTATION = "permutation"
LOCALIZED = "localized"
KINK = "kink"
NONDETERMINISTIC = "nondeterministic"
MUTATES_INPUT = "mutates-input"
SYMMETRIC_POINT = "symmetric-point"
DOMAIN = "domain"
NOISE_FLOOR = "noise-floor"
IGNORES_INPUT = "ignores-input"
INTERRUPTED = "interrupted"
NOT_SUBGRADIENT = "not-subgradient"
PRECISION_LOSS = "precision-loss"
IGNORES_DOUT = "ignores-dout"
BROADCAST = "broadcast"
SWAPPED = "swapped"
MISSING_TERM = "missing-term"
RECURRENCE = "recurrence"
SHAPE = "shape"

CODES: dict[str, Code] = {
    SCALE: Code("analytic = c * numeric for a constant c != 1 (whole or one block)"),
    SIGN: Code("analytic = -numeric (the constant c is -1): a flipped sign"),
    TRANSPOSE: Code("a block's analytic gradient is the transpose of the numeric one"),
    PERMUTATION: Code("same values in another order (column-major unrolling, two blocks swapped)"),
    LOCALIZED: Code("the error sits in a few entries or blocks"),
    KINK: Code("J is not differentiable there: not a bug in grad"),
    NONDETERMINISTIC: Code("J or grad returns different values for the same theta", fatal=True),
    MUTATES_INPUT: Code("J or grad changed theta in place", fatal=True),
    SYMMETRIC_POINT: Code("theta has identical units/rows: bugs can hide; check at a random point"),
    DOMAIN: Code("a perturbed point left J's domain (NaN/inf); step adapted or entry skipped"),
    NOISE_FLOOR: Code("precision limits how small an error can be seen"),
    IGNORES_INPUT: Code("grad does not change when theta changes", fatal=True),
    INTERRUPTED: Code("the check stopped before every entry was judged (Ctrl-C, Cancel, a dying worker)"),
    NOT_SUBGRADIENT: Code("at a kink or tie, grad is inconsistent with J's one-sided slopes along a smooth direction",
                          fatal=True),
    PRECISION_LOSS: Code("grad's float32 value differs from its float64 value beyond float32's rounding (an "
                         "overflow, a constant rounded to float32)", fatal=True),
    IGNORES_DOUT: Code("a backward whose result does not scale with its upstream gradient", fatal=True),
    BROADCAST: Code("a gradient of the wrong shape, or summed over the wrong axis", fatal=True),
    SWAPPED: Code("one argument's gradient returned in another's place", fatal=True),
    MISSING_TERM: Code("a structured part of the Jacobian missing (diagonal only, a normalization's mean path)"),
    RECURRENCE: Code("a sequence layer right at its last step, wrong at earlier ones"),
    SHAPE: Code("a gradient with another number of entries than its argument (a padded dx never cropped, a (D, D) "
                "dgamma): not compared, and named with both shapes", fatal=True),
}
"""Every diagnosis code, in the order reports list them. Tools match on the codes; they never change."""


@dataclass(frozen=True)
class Diagnosis:
    """One finding: a fixed ``code``, a message for people, and where.

    Attributes
    ----------
    code : str
        One of `gradwidget.CODES` (tools match on it).
    message : str
        What was found and what to do, naming blocks and entries.
    block : str or None
        The block it is about, if one.
    index : tuple of int or None
        The entry it is about, if one (its index in the block).
    warning : bool
        Reported for the user to act on, but not a failure of the check,
        even where its code usually fails it (a backward that writes into
        its cache but whose gradients are right; a gradient of the right
        values in another shape).
    """

    code: str
    message: str
    block: str | None = None
    index: tuple[int, ...] | None = None
    warning: bool = False

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


@dataclass(frozen=True)
class Judgement:
    """One look at a set of estimates: each one's tolerance, and whether it agrees or has settled wrong."""

    tolerance: np.ndarray
    agree: np.ndarray
    settled: np.ndarray


def judge(gap: np.ndarray, rounding: np.ndarray, floor: np.ndarray, truncation: np.ndarray | float = 0.0,
          change: np.ndarray | float = np.inf) -> Judgement:
    """Judge estimates whose discrepancy with grad is ``gap``.

    An estimate agrees when ``gap <= rounding + floor + truncation``. One
    that disagrees has *settled* when its change since the previous, larger
    step is within rounding and floor: a smaller step would not move it, so
    the discrepancy is grad's. (On a first look there is no previous step:
    ``change`` is infinite and nothing settles.)
    """
    tolerance = rounding + floor + truncation
    agree = gap <= tolerance
    settled = ~agree & (change <= rounding + floor)
    return Judgement(tolerance, agree, settled)


def classic_agrees(gap: np.ndarray, analytic: np.ndarray, numeric: np.ndarray, tol: float) -> np.ndarray:
    """The classic rule entry by entry: ``|a - n| <= tol * (|a| + |n|)``."""
    return gap <= tol * (np.abs(analytic) + np.abs(numeric))


def within(analytic: np.ndarray, left: np.ndarray, right: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """Whether each analytic value lies between the one-sided slopes (a valid subgradient at a kink)."""
    low, high = np.minimum(left, right), np.maximum(left, right)
    return (analytic >= low - tolerance) & (analytic <= high + tolerance)


def block_verdict(ev: Evidence, block: Block) -> Verdict:
    """A block's verdict: by the classic rule when ``tol`` is set, else entry by entry."""
    if block.name in ev.transposed or block.name in ev.not_subgradient:
        return Verdict.FAILED
    mismatch = ev.mismatched.get(block.name)
    if mismatch is not None and not mismatch.reshaped:  # another number of entries: summed or not comparable
        return Verdict.FAILED
    if ev.contract is not None and block.name in ev.contract.faults:  # a fault seen without finite differences
        return Verdict.FAILED
    if ev.promotion is not None and ((ev.promotion.wrong >= block.start) & (ev.promotion.wrong < block.stop)).any():
        return Verdict.FAILED
    if ev.directional is not None:  # directions move every block: a block is judged only when it fails
        if block.name in ev.directional.failed_blocks:
            return Verdict.FAILED
        settled = ev.directional.directions.resolved.all() and not ev.directional.unexplained
        return Verdict.PASSED if settled else Verdict.INCONCLUSIVE
    part = block.slice
    status = ev.status[part]
    if ev.tol is not None:
        return classic_verdict(ev.analytic[part], ev.numeric[part], ev.tolerance[part], ev.tol)
    if (status == Status.WRONG).any():
        return Verdict.FAILED
    nothing_judged = status.size and ev.directional is None and not among(status, JUDGED).any()
    if nothing_judged or among(status, (Status.UNRESOLVED, Status.SKIPPED)).any():
        return Verdict.INCONCLUSIVE
    return Verdict.PASSED


def classic_verdict(analytic: np.ndarray, numeric: np.ndarray, tolerance: np.ndarray, tol: float) -> Verdict:
    """The classic rule ``||a - n|| / ||a + n|| < tol``, inconclusive where the numeric error alone reaches ``tol``."""
    checked = np.isfinite(numeric)
    if not checked.any():
        return Verdict.INCONCLUSIVE
    if not np.isfinite(analytic[checked]).all():
        return Verdict.FAILED
    if global_resolution(analytic, numeric, tolerance) >= tol:
        return Verdict.INCONCLUSIVE
    return Verdict.PASSED if global_error(analytic, numeric, tolerance) < tol else Verdict.FAILED


def overall_verdict(ev: Evidence, blocks: Iterable[Verdict], codes: Iterable[str]) -> Verdict:
    """The check's verdict from its blocks' verdicts and its diagnoses' codes."""
    if any(CODES[code].fatal for code in codes):
        return Verdict.FAILED
    worst = max(blocks, default=Verdict.PASSED)
    if ev.tol is not None and ev.directional is None:
        worst = max(worst, classic_verdict(ev.analytic, ev.numeric, ev.tolerance, ev.tol))
    if worst is Verdict.FAILED:
        return worst
    if ev.interrupted or (ev.directional is None and not np.isfinite(ev.numeric).any()):
        return Verdict.INCONCLUSIVE
    if ev.directional is not None and (not ev.directional.directions.resolved.all() or ev.directional.unexplained):
        return Verdict.INCONCLUSIVE
    return worst
