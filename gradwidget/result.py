"""What a check found: the verdict, per-block reports, and a readable report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .diagnose import KINK, OK, SKIPPED, UNCHECKED, WRONG, Diagnosis, Evidence, global_error

__all__ = ["BlockReport", "CheckResult"]

WORST_SHOWN = 5
METHOD_NAMES = {"central": "central differences", "forward": "forward differences",
                "complex": "complex step", "richardson": "Richardson extrapolation"}


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

    def __init__(self, evidence: Evidence, diagnoses: list[Diagnosis]) -> None:
        ev = self.evidence = evidence
        self.diagnoses = diagnoses
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
            block = ev.layout.block_of(i)
            rows.append({"block": block.name, "index": list(block.index(i - block.start)),
                         "entry": ev.layout.entry_name(i), "analytic": _num(ev.analytic[i]),
                         "numeric": _num(ev.numeric[i]), "abs_error": _num(ev.gap[i]),
                         "rel_error": _num(ev.relative[i]), "status": _STATUS[int(ev.status[i])]})
        return rows

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
        return report_text(self)


_STATUS = {UNCHECKED: "unchecked", OK: "ok", WRONG: "wrong", KINK: "kink", SKIPPED: "skipped"}


def report_text(result: CheckResult) -> str:
    """The plain-text report: verdict, a table of blocks, diagnoses, worst entries."""
    ev = result.evidence
    verdict = "PASSED" if result.passed else "FAILED"
    rule = (f"rule: error < {ev.tol:g}" if ev.tol is not None else
            f"each {'direction' if ev.directional else 'entry'} judged against its own numerical error")
    if ev.directional is not None:
        probes = ev.directional.directions
        scope = (f"along {probes.agree.size} random directions ({int(probes.agree.sum())} agree), "
                 f"{ev.directional.probes - probes.agree.size} probes to localize")
    else:
        scope = f"{result.checked} of {ev.layout.size} entries" + (" sampled" if ev.sampled else "")
    lines = [f"gradwidget: {verdict}  error {result.error:.2e}  "
             f"({METHOD_NAMES[result.method]}, {scope}, {result.evaluations} calls of J; {rule})"]
    if result.interrupted:
        lines.append(f"  {result.interrupted}")
    header = ("block", "shape", "error", "max abs", "max rel", "worst", "verdict")
    rows = [header]
    for b in result.blocks:
        worst = "" if b.worst is None else "[" + ", ".join(map(str, b.worst)) + "]"
        if b.passed:
            state = "ok"
        elif ev.directional is not None:
            state = f"wrong ({b.wrong} named)" if b.wrong else "wrong"
        else:
            state = f"{b.wrong} of {b.checked} wrong" if b.wrong else "wrong"
        if b.kinks:
            state += f", {b.kinks} at a kink"
        rows.append((b.name, str(b.shape), _short(b.error), _short(b.max_abs), _short(b.max_rel), worst, state))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines.append("")
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    if result.diagnoses:
        lines += ["", "Diagnoses"]
        lines += [f"  - [{d.code}] {d.message}" for d in result.diagnoses]
    worst_rows = result.worst_entries()
    if worst_rows:
        lines += ["", "Worst entries" if not result.passed else "Largest discrepancies (within noise)"]
        for w in worst_rows:
            lines.append(f"  {w['entry']:<16} analytic {w['analytic']: .6e}  numeric {w['numeric']: .6e}"
                         f"  abs {w['abs_error']:.1e}  rel {w['rel_error']:.1e}  {w['status']}")
    return "\n".join(lines)


def _short(value: float) -> str:
    return f"{value:.1e}" if np.isfinite(value) else "-"


def _num(value: Any) -> float | None:
    """A JSON-safe float: None for NaN (JSON has no NaN), strings never."""
    value = float(value)
    return value if np.isfinite(value) else None
