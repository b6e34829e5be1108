"""What a check found: the verdict, per-block reports, and a readable report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .diagnose import KINK, OK, SKIPPED, UNCHECKED, WRONG, Diagnosis, Evidence, global_error
from .evaluate import make_evaluator

__all__ = ["BlockReport", "CheckResult", "Problem"]

WORST_SHOWN = 5


@dataclass(frozen=True)
class Problem:
    """What was checked, so that a result can be measured again (eps sweep, the panel)."""

    J: Callable[[Any], Any]
    grad: Callable[[Any], Any] | None
    theta: Any
    options: dict[str, Any]

    @property
    def vectorized(self) -> bool:
        return bool(self.options.get("vectorized"))


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
    passed : bool
    checked, wrong, kinks : int
        Entries checked, found wrong, and at a kink of J.
    """

    name: str
    shape: tuple[int, ...]
    error: float
    max_abs: float
    max_rel: float
    worst: tuple[int, ...] | None
    passed: bool
    checked: int
    wrong: int
    kinks: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "error": _num(self.error),
                "max_abs": _num(self.max_abs), "max_rel": _num(self.max_rel),
                "worst": None if self.worst is None else list(self.worst), "passed": self.passed,
                "checked": self.checked, "wrong": self.wrong, "kinks": self.kinks}


class CheckResult:
    """The result of :func:`gradwidget.check`.

    Attributes
    ----------
    passed : bool
        The verdict.
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
    """

    def __init__(self, evidence: Evidence, diagnoses: list[Diagnosis], problem: Problem | None = None) -> None:
        ev = self.evidence = evidence
        self.diagnoses = diagnoses
        self.problem = problem
        self._panel: Any = None
        self.method = ev.method
        self.evaluations = ev.calls
        self.interrupted = ev.interrupted
        self.analytic = ev.layout.unflatten(ev.analytic)
        self.numeric = ev.layout.unflatten(ev.numeric)
        if ev.directional is not None:  # the same figure over the random directions
            probes = ev.directional.directions
            self.error = global_error(probes.analytic, probes.numeric, probes.tolerance)
        else:
            self.error = global_error(ev.analytic, ev.numeric, ev.tolerance)
        self.blocks = [self._block_report(b) for b in ev.layout.blocks]
        self.passed = self._verdict()

    def _block_report(self, block: Any) -> BlockReport:
        ev = self.evidence
        part = block.slice
        checked = np.isfinite(ev.numeric[part])
        # Directional checks measure only the entries they name: no per-block figure.
        error = (global_error(ev.analytic[part], ev.numeric[part], ev.tolerance[part])
                 if ev.directional is None else float("nan"))
        worst = block.index(int(np.argmax(ev.significance[part]))) if checked.any() else None
        counts = np.bincount(ev.status[part], minlength=len(_STATUS))
        return BlockReport(
            block.name, block.shape, error,
            float(np.nanmax(ev.gap[part][checked])) if checked.any() else float("nan"),
            float(np.nanmax(ev.relative[part][checked])) if checked.any() else float("nan"),
            worst, not ev.block_fails(block), int(counts[OK] + counts[WRONG] + counts[KINK]),
            int(counts[WRONG]), int(counts[KINK]))

    def _verdict(self) -> bool:
        ev = self.evidence
        if ev.interrupted or (ev.directional is None and not np.isfinite(ev.numeric).any()):
            return False
        if ev.tol is not None:
            return bool(self.error < ev.tol)
        fatal = {"mutates-input", "nondeterministic", "ignores-input"}
        return all(b.passed for b in self.blocks) and not any(d.code in fatal for d in self.diagnoses)

    # ------------------------------------------------------------ summaries

    @property
    def checked(self) -> int:
        """Entries with a verdict (not skipped, not left unchecked)."""
        return sum(b.checked for b in self.blocks)

    def worst_entries(self, count: int = WORST_SHOWN) -> list[dict[str, Any]]:
        """The entries that disagree most, worst first (only disagreeing ones when any)."""
        ev = self.evidence
        order = np.argsort(-ev.significance, kind="stable")
        wrong = ev.status[order] == WRONG
        if wrong.any():
            order = order[wrong]
        rows = []
        for i in order[:count].tolist():
            if not np.isfinite(ev.numeric[i]):
                break
            rows.append(self.entry(i))
        return rows

    def entry(self, position: int) -> dict[str, Any]:
        """One entry, by flat position: its name, both gradients, errors and status (JSON-safe)."""
        ev = self.evidence
        block = ev.layout.block_of(position)
        return {"block": block.name, "index": list(block.index(position - block.start)),
                "entry": ev.layout.entry_name(position), "analytic": _num(ev.analytic[position]),
                "numeric": _num(ev.numeric[position]), "abs_error": _num(ev.gap[position]),
                "rel_error": _num(ev.relative[position]), "status": _STATUS[int(ev.status[position])]}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (for graders and logs)."""
        return {
            "passed": self.passed, "error": _num(self.error), "method": self.method,
            "tol": self.evidence.tol, "evaluations": self.evaluations, "entries": self.evidence.layout.size,
            "checked": self.checked, "interrupted": self.interrupted,
            "blocks": [b.to_dict() for b in self.blocks],
            "diagnoses": [{"code": d.code, "message": d.message, "block": d.block,
                           "index": None if d.index is None else list(d.index)} for d in self.diagnoses],
            "worst": self.worst_entries(),
        }

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        codes = ", ".join(sorted({d.code for d in self.diagnoses}))
        return (f"<CheckResult {verdict} error={self.error:.3g} blocks={len(self.blocks)} "
                f"evaluations={self.evaluations}{' diagnoses=' + codes if codes else ''}>")

    def __str__(self) -> str:
        from .report import report_text

        return report_text(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's plain-text display
        printer.text(str(self))

    def _repr_html_(self) -> str:
        from .report import report_html

        return report_html(self)

    def plot(self) -> Any:
        """A matplotlib Figure with one heatmap of relative error per block.

        Vectors are drawn as a strip, higher-rank arrays as rows x the rest;
        entries not checked are grey; wrong entries are marked with a cross.
        """
        from .plot import heatmaps

        return heatmaps(self)

    def widget(self) -> Any:
        """The interactive panel on this result (heatmaps, controls, eps sweep).

        The same panel each time, so that ``result.widget().selected`` reads
        the entry clicked in the panel ``%gradcheck`` showed.
        """
        if self._panel is None:
            from .widget import GradCheckPanel

            self._panel = GradCheckPanel(result=self)
        return self._panel

    def plot_eps_sweep(self, entries: Any = None) -> Any:
        """A matplotlib Figure of the error against the step, log-log, for a few entries.

        Parameters
        ----------
        entries : int, str or list of them, optional
            Flat positions or names such as ``"W1[2, 3]"``; by default the
            worst entry of each block (at most 4). Each costs 50 calls of J.
        """
        from .plot import eps_sweep_figure
        from .sweep import sweep

        if self.problem is None:
            raise ValueError("this result does not carry its J; make it with gradwidget.check")
        positions = self._positions(entries)
        evaluator = make_evaluator(self.problem.J, self.evidence.layout, self.evidence.point,
                                   pair=self.problem.grad is None, vectorized=self.problem.vectorized)
        return eps_sweep_figure(self, sweep(evaluator, self.evidence.point, self.evidence.analytic, positions))

    def worst_positions(self) -> list[int | None]:
        """Flat position of each block's worst entry (None for a block with nothing checked)."""
        return [None if r.worst is None else b.start + (int(np.ravel_multi_index(r.worst, b.shape)) if b.shape else 0)
                for b, r in zip(self.evidence.layout.blocks, self.blocks)]

    def _positions(self, entries: Any) -> np.ndarray:
        layout = self.evidence.layout
        if entries is None:
            return np.array([p for p in self.worst_positions() if p is not None][:4], dtype=int)
        names = {layout.entry_name(i): i for i in range(layout.size)} if layout.size <= 1 << 20 else {}
        chosen = []
        for entry in np.atleast_1d(np.asarray(entries, dtype=object)).tolist():
            if isinstance(entry, str):
                if entry not in names:
                    raise ValueError(f"no entry named {entry!r}; names look like {layout.entry_name(0)!r}")
                chosen.append(names[entry])
            elif not 0 <= int(entry) < layout.size:
                raise ValueError(f"entry {entry} is outside theta's {layout.size} entries")
            else:
                chosen.append(int(entry))
        return np.array(chosen, dtype=int)


_STATUS = {UNCHECKED: "unchecked", OK: "ok", WRONG: "wrong", KINK: "kink", SKIPPED: "skipped"}


def _num(value: Any) -> float | None:
    """A JSON-safe float: None for NaN (JSON has no NaN), strings never."""
    value = float(value)
    return value if np.isfinite(value) else None
