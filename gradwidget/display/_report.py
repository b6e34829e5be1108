"""The report of a check, as text (terminals, logs, graders) and as HTML (notebooks).

Both are built from the same pieces: a headline, a table of blocks, the
diagnoses and the worst entries; the HTML adds a heatmap image per block.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._block_state import block_state

if TYPE_CHECKING:
    from .._result import CheckResult

__all__ = ["BADGE_COLOURS", "blocks_html", "report_html", "report_text", "summary_html", "worst_html"]

METHOD_NAMES = {"central": "central differences", "forward": "forward differences",
                "complex": "complex step", "richardson": "Richardson extrapolation",
                "reference": "the instructor's reference"}
BLOCK_COLUMNS = ("block", "shape", "error", "max abs", "max rel", "worst", "verdict")
HTML_BLOCK_COLUMNS = ("block", "verdict", "shape", "error", "max abs", "max rel", "worst")
"""The HTML table's columns: the verdict beside the block's name, in view in the narrowest window."""
MAX_HEATMAPS = 12  # blocks drawn in the HTML report; more are listed in the table only


def headline(result: CheckResult) -> tuple[str, str]:
    """The verdict word and what was measured, e.g. ``("FAILED", "error 1.2e-01 (central ...)")``."""
    ev = result.evidence
    rule = (f"rule: error < {ev.tol:g}" if ev.tol is not None else
            f"each {'direction' if ev.directional else 'entry'} judged against its own numerical error")
    if ev.directional is not None:
        probes = ev.directional.directions
        scope = (f"along {probes.agree.size} random directions ({int(probes.agree.sum())} agree), "
                 f"{ev.directional.probes - probes.agree.size} probes to localize")
    else:
        scope = f"{result.checked} of {ev.layout.size} entries" + (" sampled" if ev.sampled else "")
    if ev.promotion is not None:
        agrees = (f"agrees with its float64 value to {ev.promotion.agreement:.0e}" if not ev.promotion.wrong.size
                  else "differs from its float64 value: see precision-loss")
        scope += (f", checked in float64 ({ev.promotion.dtype} theta: J and grad follow its dtype; the "
                  f"{ev.promotion.dtype} gradient {agrees})" if not ev.promotion.against else
                  f", the formula checked in float64 (the {ev.promotion.dtype} gradient {agrees}, held to "
                  f"{ev.promotion.against})")
    detail = (f"error {result.error:.2e}  ({METHOD_NAMES[result.method]}, {scope}, "
              f"{result.evaluations} calls of {ev.subject.cost}{_pairs_compared(result)}; {rule})")
    return result.verdict.upper(), detail


def _pairs_compared(result: CheckResult) -> str:
    pairs = result.evidence.pairs
    if pairs is None:
        return ""
    wrong = int(pairs.wrong.sum())
    return f"; the whole Jacobian, {pairs.wrong.size} pairs" + (f", {wrong} wrong" if wrong else "")


def subject_lines(result: CheckResult) -> list[str]:
    """What was checked and what was passed through, for results of array-valued checks (else nothing)."""
    subject = result.evidence.subject
    return [subject.title, *subject.notes] if subject.title else list(subject.notes)


def block_rows(result: CheckResult) -> list[tuple[str, ...]]:
    """One row of strings per block, in the order of `BLOCK_COLUMNS`."""
    rows: list[tuple[str, ...]] = []
    for index, b in enumerate(result.blocks):
        worst = "" if b.worst is None else "[" + ", ".join(map(str, b.worst)) + "]"
        rows.append((b.name, str(b.shape), _short(b.error), _short(b.max_abs), _short(b.max_rel), worst,
                     block_state(result, index)))
    return rows


BADGE_COLOURS = {"passed": "#1a7f37", "inconclusive": "#9a6700", "failed": "#cf222e"}
"""The verdict badge's background, white text on each (contrast 4.5:1 or more)."""


def worst_title(result: CheckResult) -> str:
    return "Worst entries" if not result.passed else "Largest discrepancies (within noise)"


def worst_cells(result: CheckResult) -> list[tuple[str, ...]]:
    """The worst entries as strings: entry, analytic, numeric, abs and rel error, status (NaN and inf shown)."""
    ev = result.evidence
    return [(w["entry"], f"{ev.analytic[w['position']]: .6e}", f"{ev.numeric[w['position']]: .6e}",
             f"{ev.gap[w['position']]:.1e}", f"{ev.relative[w['position']]:.1e}", w["status"])
            for w in result.worst_entries()]


def report_text(result: CheckResult) -> str:
    """The plain-text report: verdict, a table of blocks, diagnoses, worst entries."""
    verdict, detail = headline(result)
    lines = [f"gradwidget: {verdict}  {detail}", *(f"  {line}" for line in subject_lines(result))]
    rows = [BLOCK_COLUMNS, *block_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(BLOCK_COLUMNS))]
    lines.append("")
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    if result.diagnoses:
        lines += ["", "Diagnoses"]
        lines += [f"  - [{d.code}] {d.message}" for d in result.diagnoses]
    worst_rows = worst_cells(result)
    if worst_rows:
        lines += ["", worst_title(result)]
        for entry, analytic, numeric, gap, relative, status in worst_rows:
            lines.append(f"  {entry:<16} analytic {analytic}  numeric {numeric}  abs {gap}  rel {relative}  {status}")
    return "\n".join(lines)


def report_html(result: CheckResult, heatmaps: bool = True) -> str:
    """The HTML report, self-contained (images inline), for notebooks and static renders."""
    parts = ['<div class="gradwidget-report" style="font-family: sans-serif; font-size: 13px">',
             summary_html(result), blocks_html(result), worst_html(result)]
    if heatmaps:
        parts.append(heatmaps_html(result))
    parts.append("</div>")
    return "\n".join(parts)


def blocks_html(result: CheckResult) -> str:
    """The per-block table: shape, error, largest discrepancies, worst entry and verdict."""
    order = [BLOCK_COLUMNS.index(name) for name in HTML_BLOCK_COLUMNS]
    return _table("gradwidget-blocks", HTML_BLOCK_COLUMNS, [tuple(row[k] for k in order) for row in block_rows(result)])


def summary_html(result: CheckResult) -> str:
    """The verdict badge with what was measured, and the diagnoses."""
    esc = html.escape
    verdict, detail = headline(result)
    color = BADGE_COLOURS[result.verdict]
    parts = [f'<p><span class="gradwidget-verdict" style="background:{color};color:white;padding:2px 8px;'
             f'border-radius:4px;font-weight:bold">{verdict}</span> {esc(detail)}</p>']
    parts += [f'<p class="gradwidget-subject">{esc(line)}</p>' for line in subject_lines(result)]
    if result.diagnoses:
        items = "".join(f'<li data-code="{esc(d.code)}"><code>{esc(d.code)}</code> {with_code(d.message)}</li>'
                        for d in result.diagnoses)
        parts.append(f'<p><b>Diagnoses</b></p><ul class="gradwidget-diagnoses">{items}</ul>')
    return "\n".join(parts)


def worst_html(result: CheckResult) -> str:
    """The entries that disagree most, as a table (empty when nothing was checked)."""
    rows = [tuple(cell.strip() for cell in row) for row in worst_cells(result)]
    if not rows:
        return ""
    return (f"<p><b>{worst_title(result)}</b></p>"
            + _table("gradwidget-worst", ("entry", "analytic", "numeric", "abs", "rel", "status"), rows))


def heatmaps_html(result: CheckResult) -> str:
    """A PNG heatmap per block (the first `MAX_HEATMAPS`), inline."""
    from ._jacobian import pair_views
    from ._plot import block_png, pair_png

    esc = html.escape
    figures = []
    for block in [b for b in result.evidence.layout.blocks if b.size][:MAX_HEATMAPS]:
        data = base64.b64encode(block_png(result, block)).decode("ascii")
        figures.append(f'<figure style="display:inline-block;margin:4px" data-block="{esc(block.name)}">'
                       f'<img src="data:image/png;base64,{data}" alt="{esc(block.name)} heatmap of '
                       f'relative error"/></figure>')
    for view in pair_views(result)[:MAX_HEATMAPS]:
        data = base64.b64encode(pair_png(view)).decode("ascii")
        figures.append(f'<figure style="display:inline-block;margin:4px" data-pair="{esc(view.name)}">'
                       f'<img src="data:image/png;base64,{data}" alt="{esc(view.name)}: the Jacobian, outputs x '
                       f'inputs, each pair against its tolerance"/></figure>')
    return '<div class="gradwidget-heatmaps">' + "".join(figures) + "</div>"


def with_code(message: str) -> str:
    """A diagnosis's message as HTML: escaped, its `code` spans (formulas to write) set as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(message))


NUMBER = re.compile(r"-?\d(\.\d+)?(e[+-]\d+)?$|-$")
CELL = "padding:2px 10px 2px 0;white-space:nowrap;font-variant-numeric:tabular-nums"


def _table(css_class: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """A table styled inline, so that it reads the same in a notebook, a widget, a static page and feedback.

    Columns of numbers are right-aligned under their heading; the rest left.
    A narrow window scrolls the table, never wraps a number.
    """
    esc = html.escape
    numeric = [bool(rows) and all(NUMBER.match(row[k]) for row in rows) for k in range(len(header))]
    styles = [f"{CELL};text-align:{'right' if n else 'left'}" for n in numeric]
    head = "".join(f'<th style="{style};border-bottom:1px solid #8888">{esc(h)}</th>'
                   for h, style in zip(header, styles))
    body = "".join("<tr>" + "".join(f'<td style="{style}">{esc(c)}</td>' for c, style in zip(row, styles))
                   + "</tr>" for row in rows)
    return (f'<div style="overflow-x:auto"><table class="{css_class}" style="border-collapse:collapse;'
            f'margin:4px 0"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')


def _short(value: float) -> str:
    return f"{value:.1e}" if np.isfinite(value) else "-"
