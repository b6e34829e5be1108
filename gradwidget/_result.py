"""What a check found: the verdict, per-block reports, and a readable report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import Any

import numpy as np

from ._evidence import Evidence, global_error
from ._options import CheckOptions
from ._params import Block
from ._verdict import JUDGED, Diagnosis, Status, Verdict, block_verdict, overall_verdict

__all__ = ["BlockReport", "CheckCall", "CheckResult"]

WORST_SHOWN = 5


@dataclass(frozen=True)
class CheckCall:
    """What was checked (J, grad, theta and the options), so that a result can be measured again (eps sweep, panel)."""

    J: Callable[[Any], Any]
    grad: Callable[[Any], Any] | None
    theta: Any
    options: CheckOptions
    rerun: Callable[..., CheckResult] | None = None
    """``rerun(theta, **options)`` checks again as the result was made (`check_layer` and its siblings)."""


@dataclass(frozen=True)
class BlockReport:
    """How one parameter array fared.

    Attributes
    ----------
    name, shape : the block
    error : float
        ``||a - n|| / ||a + n||`` over the block.
    max_abs, max_rel : float
        Largest absolute and relative entry error.
    worst : tuple of int or None
        Index in the block of the entry that disagrees most (in units of its
        own tolerance).
    verdict : str
        ``"passed"``, ``"failed"`` or ``"inconclusive"``.
    checked, wrong, kinks, unresolved, skipped : int
        Entries measured and judged; of those, found wrong, at a kink of J,
        and agreeing only within a tolerance looser than the verdict claims;
        and entries J's domain kept from being checked.
    """

    name: str
    shape: tuple[int, ...]
    error: float
    max_abs: float
    max_rel: float
    worst: tuple[int, ...] | None
    verdict: str
    checked: int
    wrong: int
    kinks: int
    unresolved: int = 0
    skipped: int = 0

    @property
    def passed(self) -> bool:
        """Whether the block passed."""
        return self.verdict == Verdict.PASSED.label

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "error": _num(self.error),
                "max_abs": _num(self.max_abs), "max_rel": _num(self.max_rel),
                "worst": None if self.worst is None else list(self.worst), "verdict": self.verdict,
                "passed": self.passed, "checked": self.checked, "wrong": self.wrong, "kinks": self.kinks,
                "unresolved": self.unresolved, "skipped": self.skipped}


class CheckResult:
    """The result of :func:`gradwidget.check`.

    Attributes
    ----------
    verdict : str
        ``"passed"``, ``"failed"`` or ``"inconclusive"`` (the check could not
        resolve every entry to the accuracy it claims, or was stopped with
        every judged entry agreeing; a diagnosis says what limited it).
    passed : bool
        Whether the verdict is ``"passed"``.
    error : float
        ``||a - n|| / ||a + n||`` over all checked entries.
    analytic, numeric : same structure as theta
        The two gradients; ``numeric`` is NaN where an entry was not checked.
    blocks : list of BlockReport
    diagnoses : list of Diagnosis
    evaluations : int
        Calls of J.
    method : str
    interrupted : str or None
        How far an interrupted check got.
    evidence : Evidence
        Everything measured, per entry (for tools that look closer).
    call : CheckCall or None
        What was checked, so that it can be measured again (the eps sweep,
        the panel's re-checks).
    """

    def __init__(self, evidence: Evidence, diagnoses: list[Diagnosis], call: CheckCall | None = None) -> None:
        ev = self.evidence = evidence
        self.diagnoses = diagnoses
        self.call = call
        self.method = ev.method
        self.evaluations = ev.calls
        self.interrupted = ev.interrupted
        for flat in (ev.analytic, ev.numeric):
            flat.flags.writeable = False  # the result's arrays are views of the evidence: read only
        self.analytic = ev.layout.views(ev.analytic)
        self.numeric = ev.layout.views(ev.numeric)
        self._block_verdicts = [block_verdict(ev, b) for b in ev.layout.blocks]
        self._verdict = overall_verdict(ev, self._block_verdicts, (d.code for d in diagnoses if not d.warning))

    @property
    def error(self) -> float:
        """``||a - n|| / ||a + n||`` over all checked entries."""
        return self.evidence.error

    @cached_property
    def blocks(self) -> list[BlockReport]:
        """One report per block (made when first asked for)."""
        ev = self.evidence
        return [block_report(ev, b, v) for b, v in zip(ev.layout.blocks, self._block_verdicts)]

    @property
    def verdict(self) -> str:
        """``"passed"``, ``"failed"`` or ``"inconclusive"``."""
        return self._verdict.label

    @property
    def passed(self) -> bool:
        """Whether the check passed."""
        return self._verdict is Verdict.PASSED

    # ------------------------------------------------------------ summaries

    @property
    def checked(self) -> int:
        """Entries with a verdict (not skipped, not left unchecked)."""
        return sum(b.checked for b in self.blocks)

    def worst_entries(self, count: int = WORST_SHOWN) -> list[dict[str, Any]]:
        """The entries that disagree most, worst first (only disagreeing ones when any)."""
        return [self.entry(i) for i in worst_positions(self.evidence, count)]

    def entry(self, position: int) -> dict[str, Any]:
        """One entry, by flat position: its name, both gradients, errors and status (JSON-safe)."""
        return entry_summary(self.evidence, position)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (for graders and logs)."""
        return {
            "verdict": self.verdict, "passed": self.passed, "error": _num(self.error), "method": self.method,
            "tol": self.evidence.tol, "evaluations": self.evaluations, "entries": self.evidence.layout.size,
            "checked": self.checked, "interrupted": self.interrupted, "precision": self.precision,
            "blocks": [b.to_dict() for b in self.blocks],
            "diagnoses": [{"code": d.code, "message": d.message, "block": d.block,
                           "index": None if d.index is None else list(d.index)} for d in self.diagnoses],
            "worst": self.worst_entries(), "checked_what": subject_summary(self.evidence)}

    @property
    def precision(self) -> dict[str, Any]:
        """The dtype the check ran in and theta's; with ``precision="auto"``, how the coarse gradient agreed."""
        return precision_summary(self.evidence)

    def __bool__(self) -> bool:
        return self.passed

    def __getstate__(self) -> dict[str, Any]:  # J and grad are often lambdas or closures, which do not pickle
        return {**self.__dict__, "call": None}

    def __repr__(self) -> str:
        verdict = self.verdict if self.passed else self.verdict.upper()
        codes = ", ".join(sorted({d.code for d in self.diagnoses}))
        return (f"<CheckResult {verdict} error={self.error:.3g} blocks={len(self.blocks)} "
                f"evaluations={self.evaluations}{' diagnoses=' + codes if codes else ''}>")

    def __str__(self) -> str:
        return _display().report_text(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's plain-text display
        printer.text(str(self))

    def _repr_html_(self) -> str:
        return _display().report_html(self)

    def _display_(self) -> Any:
        """The report with a live heatmap per block, as marimo's display protocol asks of a cell's output."""
        return _display().marimo_view(self)

    def plot(self) -> Any:
        """A matplotlib Figure with one heatmap per block of each entry's discrepancy over its tolerance.

        One log scale for every block, the threshold 1 marked on the colour
        bar: calm tones below it, red above. Vectors are drawn as a strip,
        higher-rank arrays as rows x the rest; entries not checked are grey;
        wrong entries are marked with a cross.
        """
        return _display().heatmaps(self)

    def widget(self) -> Any:
        """The interactive panel on this result (heatmaps, controls, eps sweep).

        The same panel each time, so that ``result.widget().selected`` reads
        the entry clicked in the panel ``%gradcheck`` showed.
        """
        return _display().panel(self)

    def plot_eps_sweep(self, entries: Any = None) -> Any:
        """A matplotlib Figure of the error against the step, log-log, for a few entries.

        Parameters
        ----------
        entries : int, str or list of them, optional
            Flat positions or names such as ``"W1[2, 3]"``; by default the
            worst entry of each block (at most 4). Each costs 50 calls of J.
        """
        return _display().eps_sweep(self, entries)

    def require_call(self) -> CheckCall:
        """What was checked, to measure it again; a ValueError for a result made without it."""
        if self.call is None:
            raise ValueError("this result does not carry its J; make it with gradwidget.check")
        return self.call

    def worst_positions(self) -> list[int | None]:
        """Flat position of each block's worst entry (None for a block with nothing checked)."""
        return [None if r.worst is None else b.start + (int(np.ravel_multi_index(r.worst, b.shape)) if b.shape else 0)
                for b, r in zip(self.evidence.layout.blocks, self.blocks)]


def worst_positions(ev: Evidence, count: int) -> list[int]:
    """Flat positions of the ``count`` measured entries of ``ev`` that disagree most (only wrong ones when any)."""
    order = np.argsort(-ev.significance, kind="stable")
    order = order[ev.significance[order] > -np.inf]  # measured, and compared (a block of another size is not)
    wrong = ev.status[order] == Status.WRONG
    if wrong.any():
        order = order[wrong]
    return [i for i in order[:count].tolist() if np.isfinite(ev.numeric[i])]


def entry_summary(ev: Evidence, position: int) -> dict[str, Any]:
    """One entry of ``ev``, by flat position: its name, both gradients, errors and status (JSON-safe)."""
    block = ev.layout.block_of(position)
    return {"block": block.name, "index": list(block.index(position - block.start)), "position": position,
            "entry": ev.layout.entry_name(position), "analytic": _num(ev.analytic[position]),
            "numeric": _num(ev.numeric[position]), "abs_error": _num(ev.gap[position]),
            "rel_error": _num(ev.relative[position]), "status": Status(ev.status[position]).label}


def subject_summary(ev: Evidence) -> dict[str, Any]:
    """What ``ev`` checked: the kind of check, the functions' names, the report's lines, the Jacobian's pairs."""
    subject, pairs = ev.subject, ev.pairs
    return {"kind": subject.kind, "function": subject.cost, "derivative": subject.gradient,
            "title": subject.title, "notes": list(subject.notes),
            "jacobian_pairs": None if pairs is None else int(pairs.wrong.size),
            "wrong_pairs": None if pairs is None else int(pairs.wrong.sum())}


def precision_summary(ev: Evidence) -> dict[str, Any]:
    """The dtype ``ev`` was measured in and theta's; for a promoted check, how the coarse gradient agreed."""
    promoted = ev.promotion
    found: dict[str, Any] = {"checked_in": str(ev.point.dtype),
                             "theta": promoted.dtype if promoted else str(ev.point.dtype)}
    if promoted is not None:
        found["agreement"] = _num(promoted.agreement)
    return found


def block_report(ev: Evidence, block: Block, verdict: Verdict) -> BlockReport:
    """The report of one block of ``ev`` whose verdict is ``verdict``."""
    part = block.slice
    checked = np.isfinite(ev.numeric[part])
    # Directional checks measure only the entries they name: no per-block figure.
    error = (global_error(ev.analytic[part], ev.numeric[part], ev.tolerance[part])
             if ev.directional is None else float("nan"))
    worst = block.index(int(np.argmax(ev.significance[part]))) if checked.any() else None
    counts = np.bincount(ev.status[part], minlength=len(Status))
    return BlockReport(
        block.name, block.shape, error,
        _largest(ev.gap[part], checked), _largest(ev.relative[part], checked),
        worst, verdict.label, int(sum(counts[s] for s in JUDGED)), int(counts[Status.WRONG]),
        int(counts[Status.KINK]), int(counts[Status.UNRESOLVED]), int(counts[Status.SKIPPED]))


def _largest(values: np.ndarray, where: np.ndarray) -> float:
    """The largest of ``values`` where ``where`` holds, NaNs aside, without a copy (NaN if there is none)."""
    if not where.any():
        return float("nan")
    return float(np.fmax.reduce(values, where=where, initial=-np.inf))


def _num(value: Any) -> float | None:
    """A JSON-safe float: None for NaN (JSON has no NaN), strings never."""
    value = float(value)
    return value if np.isfinite(value) else None


def _display() -> ModuleType:
    """How a result shows (`gradwidget.display`): imported when it is shown, the one import of a layer above."""
    from . import display

    return display
