"""The benchmarks' output: Markdown tables, as the README quotes them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a Markdown table, each column as wide as its widest cell."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")


def ok(met: bool) -> str:
    """The "met" column: yes or NO."""
    return "yes" if met else "NO"


def verdict_row(name: str, outcomes: Sequence[tuple[Any, str, set[str] | None, int, float]],
                gradwidget: bool) -> tuple[tuple[str, ...], list[str]]:
    """One checker's row of an accuracy table, and the cases it gave a verdict other than their own.

    ``outcomes`` holds, per case (with ``correct``, ``codes``, ``verdict``
    and ``name``), the verdict, the diagnosis codes (None for an anchor),
    the calls and the seconds. Columns: checker, bugs caught, false alarms,
    inconclusive (gradwidget only), right explanations, calls, seconds.
    """
    cases = [o[0] for o in outcomes]
    buggy = [c for c in cases if not c.correct]
    explained = [c for c in buggy if c.codes]
    caught = sum(verdict == "failed" for case, verdict, *_ in outcomes if not case.correct)
    alarms = sum(verdict == "failed" for case, verdict, *_ in outcomes if case.correct)
    unsure = sum(verdict == "inconclusive" for _, verdict, *_ in outcomes)
    right = sum(1 for case, verdict, codes, *_ in outcomes
                if case in explained and verdict == "failed" and codes == set(case.codes))
    row = (name, f"{caught}/{len(buggy)}", f"{alarms}/{len(cases) - len(buggy)}", str(unsure) if gradwidget else "-",
           f"{right}/{len(explained)}", str(sum(o[3] for o in outcomes)), f"{sum(o[4] for o in outcomes):.2f}")
    return row, [case.name for case, verdict, *_ in outcomes if verdict != case.verdict]
