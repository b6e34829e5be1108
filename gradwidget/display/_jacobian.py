"""The whole Jacobian of a check, as the report, the figures and the panel show it: one heatmap per pair of blocks.

A check of an array-valued function that compared the whole Jacobian
(`JacobianPairs`) has one ``(m_o, n_b)`` part per output block o and
differentiated argument b. Each part is drawn outputs x inputs, flattened,
with the shapes kept for names (``out[2, 5] / w[3, 1]``), so that a
transposed backward, a diagonal-only softmax or a dropped recurrence shows
as a pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._evidence import JacobianPairs
from .._params import Block
from ._colour import RELATIVE_FLOOR

if TYPE_CHECKING:
    from .._result import CheckResult

__all__ = ["PairView", "pair_views"]


@dataclass(frozen=True)
class PairView:
    """The part of the Jacobian between one output block and one differentiated argument."""

    output: Block
    argument: Block
    pairs: JacobianPairs

    @property
    def name(self) -> str:
        """``"out / w"``."""
        return f"{self.output.name} / {self.argument.name}"

    @property
    def shape(self) -> tuple[int, int]:
        """Outputs x inputs, each flattened."""
        return self.output.size, self.argument.size

    def part(self, array: np.ndarray) -> np.ndarray:
        """The part of an ``(m, n)`` array of the check between this output block and argument."""
        return array[self.output.slice, self.argument.slice]

    def values(self, metric: str) -> np.ndarray:
        """One value per pair, row-major (NaN where not measured): as `gradwidget._colour.metric_values` does."""
        a, n, tolerance = (self.part(x) for x in (self.pairs.analytic, self.pairs.numeric, self.pairs.tolerance))
        gap = np.abs(a - n)
        with np.errstate(invalid="ignore", divide="ignore"):
            if metric == "tolerance":
                values = np.where(tolerance > 0, gap / tolerance, np.where(gap > 0, np.inf, 0.0))
            elif metric == "abs":
                values = gap
            else:
                scale = np.maximum(np.abs(a), np.abs(n))
                values = np.where(scale > 0, gap / scale, 0.0)
                if metric == "log10 rel":
                    values = np.log10(np.maximum(values, RELATIVE_FLOOR))
        return np.where(np.isfinite(n), values, np.nan).astype(np.float64).ravel()

    def wrong(self) -> np.ndarray:
        """Row-major offsets of the wrong pairs."""
        return np.flatnonzero(self.part(self.pairs.wrong))

    def state(self) -> str:
        """As the report's table words a block: ``"ok"``, ``"12 of 300 pairs wrong"``, ``"not measured"``."""
        measured = int(np.isfinite(self.part(self.pairs.numeric)).sum())
        wrong = int(self.part(self.pairs.wrong).sum())
        if not measured:
            return "not measured"
        return f"{wrong} of {measured} pairs wrong" if wrong else "ok"

    def entry(self, offset: int) -> dict[str, Any]:
        """One pair, by row-major offset: its name, both derivatives, its tolerance, errors and status (JSON-safe)."""
        row, col = divmod(offset, self.argument.size)
        a, n, tolerance = (float(self.part(x)[row, col]) for x in (self.pairs.analytic, self.pairs.numeric,
                                                                  self.pairs.tolerance))
        gap = abs(a - n)
        scale = max(abs(a), abs(n))
        status = ("not measured" if not np.isfinite(n) else "wrong" if self.part(self.pairs.wrong)[row, col]
                  else "ok" if gap <= tolerance else "beyond its tolerance, in a column that agrees")
        return {"entry": f"{self.output.entry_name(row)} / {self.argument.entry_name(col)}",
                "analytic": _number(a), "numeric": _number(n), "tolerance": _number(tolerance),
                "abs_error": _number(gap), "rel_error": _number(gap / scale if scale > 0 else 0.0), "status": status}


def pair_views(result: CheckResult) -> list[PairView]:
    """One view per (output block, argument) of a check that compared the whole Jacobian; none otherwise."""
    ev = result.evidence
    outputs = ev.subject.outputs
    if ev.pairs is None or outputs is None:
        return []
    return [PairView(output, argument, ev.pairs) for output in outputs.blocks for argument in ev.layout.blocks
            if output.size and argument.size]


def _number(value: float) -> float | None:
    return value if np.isfinite(value) else None
