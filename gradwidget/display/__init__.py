"""How a result shows: the report (text and HTML), heatmaps, the Jacobian's views, the panel and its front end.

This package is the only place matplotlib, ipywidgets and anywidget are
imported, each only when something is drawn: a `CheckResult` shows itself
through the functions here, which import what they draw with as they run.
The panel's front end is ``static/heatmap.js`` (an ES module, no build step)
with ``static/heatmap.css``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._report import report_html, report_text

if TYPE_CHECKING:
    from .._result import CheckResult

__all__ = ["eps_sweep", "heatmaps", "marimo_view", "panel", "report_html", "report_text"]


def heatmaps(result: CheckResult) -> Any:
    """A matplotlib Figure: one heatmap per block of each entry's discrepancy over its tolerance."""
    from ._plot import heatmaps as figure

    return figure(result)


def eps_sweep(result: CheckResult, entries: Any = None) -> Any:
    """A matplotlib Figure of the error against the step for a few entries (measured now)."""
    from .._sweep import sweep_result
    from ._plot import eps_sweep_figure

    return eps_sweep_figure(result, sweep_result(result, entries))


def panel(result: CheckResult) -> Any:
    """The interactive panel on ``result`` (the same one each time it is asked for)."""
    from ._panel import panel_of

    return panel_of(result)


def marimo_view(result: CheckResult) -> Any:
    """What a marimo cell shows for ``result``: the report and a live heatmap per block.

    marimo renders anywidget widgets but not ipywidgets: the heatmaps are live
    (hover, click, keys), the panel's controls are left out, and the report
    above them is the static one.
    """
    import marimo as mo

    from ._heatmap import Heatmap
    from ._report import MAX_HEATMAPS

    blocks = [block for block in result.evidence.layout.blocks if block.size][:MAX_HEATMAPS]
    return mo.vstack([mo.Html(report_html(result, heatmaps=False)),
                      mo.hstack([Heatmap(result, block) for block in blocks], wrap=True, justify="start")])
