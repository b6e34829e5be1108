"""Figures of a check: per-block discrepancy heatmaps and the error against the step.

matplotlib is imported here only, and this module only when a figure is
asked for. Figures are made with the object-oriented API (no pyplot), so
they leave no global state behind and work with any backend.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .._params import Block
from .._verdict import Status
from ._block_state import block_state
from ._colour import METRICS, RELATIVE_FLOOR, TOLERANCE_RANGE, UNCHECKED_COLOUR, colour_table, metric_values
from ._jacobian import PairView, pair_views

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.image import AxesImage

    from .._result import CheckResult
    from .._sweep import Sweep

__all__ = ["MAX_PIXELS", "TOLERANCE_LABEL", "block_png", "eps_sweep_figure", "heatmaps", "max_pooled", "pair_png"]

TOLERANCE_LABEL = f"{METRICS['tolerance']}: wrong above 1"

MAX_COLUMNS = 3
MAX_PIXELS = 400
"""Cells along a side of a drawn Jacobian part; larger parts are max-pooled (a single wrong pair never disappears)."""


class DisplayedFigure(Figure):
    """A Figure that shows itself as a PNG in IPython even when pyplot was never imported.

    Where IPython already has a formatter for figures (``%matplotlib inline``,
    or pyplot imported in a notebook), that formatter is used instead.
    """

    def _repr_png_(self) -> bytes:
        return figure_png(self, dpi=100)


def heatmaps(result: CheckResult) -> Figure:
    """One heatmap per block of each entry's discrepancy over its tolerance, on one shared log scale (as the panel).

    Entries that agree are in calm tones, wrong ones red and crossed, entries
    not checked grey; the colour bar marks the threshold, 1. Empty blocks have
    no heatmap.
    """
    blocks = [b for b in result.evidence.layout.blocks if b.size]
    parts = pair_views(result)
    drawn = len(blocks) + len(parts)
    columns = max(1, min(MAX_COLUMNS, drawn))
    rows = -(-drawn // columns)
    fig = DisplayedFigure(figsize=(4.2 * columns + 1.2, 2.8 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    images = [_draw_block(ax, result, block) for ax, block in zip(axes.ravel(), blocks)]
    images += [_draw_pair(ax, view) for ax, view in zip(axes.ravel()[len(blocks):], parts)]
    for ax in axes.ravel()[drawn:]:
        ax.remove()
    if images:
        _threshold(fig.colorbar(images[-1], ax=axes.ravel()[:len(images)].tolist(), label=TOLERANCE_LABEL))
    verdict = result.verdict if result.passed else result.verdict.upper()
    fig.suptitle(f"gradwidget: {verdict}, error {result.error:.2e}")
    return fig


def block_png(result: CheckResult, block: Block) -> bytes:
    """A small PNG heatmap of one block (for the HTML report)."""
    rows, cols = block.grid
    width = float(np.clip(1.2 + cols * 0.28, 3.0, 6.5))
    height = float(np.clip(0.9 + rows * 0.28 * (width - 1.2) / max(cols * 0.28, 1e-9), 1.6, 5.0))
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    image = _draw_block(ax, result, block)
    _threshold(fig.colorbar(image, ax=ax, label=METRICS["tolerance"], shrink=0.9))
    return figure_png(fig)


def pair_png(view: PairView) -> bytes:
    """A small PNG heatmap of one part of the Jacobian, outputs x inputs (for the HTML report)."""
    rows, cols = (min(size, MAX_PIXELS) for size in view.shape)
    width = float(np.clip(1.6 + cols * 0.12, 3.8, 6.5))  # room for the title
    height = float(np.clip(1.0 + rows * 0.12, 1.8, 5.0))
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    image = _draw_pair(ax, view)
    _threshold(fig.colorbar(image, ax=ax, label=METRICS["tolerance"], shrink=0.9))
    return figure_png(fig)


def max_pooled(values: np.ndarray, limit: int = MAX_PIXELS) -> np.ndarray:
    """``values`` (2-D) max-pooled to at most ``limit`` cells a side; a cell is NaN only if all it covers is."""
    rows, cols = values.shape
    row_edges = np.linspace(0, rows, min(rows, limit) + 1).astype(int)
    col_edges = np.linspace(0, cols, min(cols, limit) + 1).astype(int)
    return np.fmax.reduceat(np.fmax.reduceat(values, row_edges[:-1], axis=0), col_edges[:-1], axis=1)


def _draw_pair(ax: Axes, view: PairView) -> AxesImage:
    rows, cols = view.shape
    ratio = max_pooled(view.values("tolerance").reshape(rows, cols))
    image = ax.imshow(np.ma.masked_invalid(np.clip(ratio, *TOLERANCE_RANGE)), cmap=_colormap(),
                      norm=LogNorm(*TOLERANCE_RANGE), aspect="auto", interpolation="nearest")
    wrong = view.wrong()
    if wrong.size and rows * cols <= 4096:
        wrong_rows, wrong_cols = np.divmod(wrong, cols)
        ax.scatter(wrong_cols, wrong_rows, s=12, marker="x", color="#19a0ff", linewidths=1.0, label="wrong")
    pooled = " (max-pooled)" if ratio.shape != (rows, cols) else ""
    ax.set_title(f"{view.name} ({rows}x{cols}{pooled}): {view.state()}", fontsize=10)
    ax.set_xlabel(f"{view.argument.name}, flattened", fontsize=8)
    ax.set_ylabel(f"{view.output.name}, flattened", fontsize=8)
    ax.tick_params(labelsize=7)
    return image


def figure_png(fig: Figure, dpi: int = 80, transparent: bool = False) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, transparent=transparent)
    return buffer.getvalue()


def _draw_block(ax: Axes, result: CheckResult, block: Block) -> AxesImage:
    ev = result.evidence
    rows, cols = block.grid
    ratio = metric_values(result, block, "tolerance").reshape(rows, cols)
    values = np.ma.masked_invalid(np.clip(ratio, *TOLERANCE_RANGE))
    image = ax.imshow(values, cmap=_colormap(), norm=LogNorm(*TOLERANCE_RANGE), aspect="auto",
                      interpolation="nearest")
    wrong_rows, wrong_cols = np.nonzero((ev.status[block.slice] == Status.WRONG).reshape(rows, cols))
    if wrong_rows.size and rows * cols <= 4096:
        ax.scatter(wrong_cols, wrong_rows, s=_cross_size(ax, rows, cols), marker="x", color="#19a0ff",
                   linewidths=1.5, label="wrong")
    shape = "x".join(map(str, block.shape)) or "scalar"
    laid_out = f" as {rows}x{cols}" if len(block.shape) > 2 else ""
    ax.set_title(f"{block.name} ({shape}{laid_out}): {block_state(result, ev.layout.blocks.index(block))}",
                 fontsize=10)
    ax.set_xlabel("column" if len(block.shape) != 1 else "index", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))  # entries have whole indices
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    if rows == 1:
        ax.set_yticks([])
    ax.tick_params(labelsize=7)
    return image


def _cross_size(ax: Axes, rows: int, cols: int) -> float:
    """The area (points squared) of a wrong entry's cross: about half a cell across, never a speck."""
    figure = ax.get_figure(root=True)
    dpi = figure.dpi if figure is not None else 72.0
    cell = 72 / dpi * min(ax.bbox.width / cols, ax.bbox.height / rows)
    return float(np.clip((0.55 * cell) ** 2, 20.0, 220.0))


def _colormap() -> Colormap:
    """The panel's verdict colours (`colour_table`), entries not checked ("bad") in grey."""
    from matplotlib.colors import LinearSegmentedColormap

    stops = [f"#{c:06x}" for c in colour_table("tolerance")]
    return LinearSegmentedColormap.from_list("gradwidget-verdict", stops).with_extremes(bad=f"#{UNCHECKED_COLOUR:06x}")


def _threshold(colorbar: Any) -> None:
    """Mark the verdict's threshold, 1, on a colour bar of |a - n| / tolerance."""
    colorbar.ax.axhline(1.0, color="black", linewidth=2)


SWEEP_MARKERS = ("o", "s", "^", "D", "v", "P")


def eps_sweep_figure(result: CheckResult, measured: Sweep) -> Figure:
    """Error against step on log-log axes, one line per entry, the checked step marked."""
    ev = result.evidence
    fig = DisplayedFigure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    error = np.maximum(measured.error, RELATIVE_FLOOR / 10)
    count = len(measured.positions)
    for k, position in enumerate(measured.positions.tolist()):
        # lines that lie on one another (bugs of one size) stay apart: each later one drawn thinner, with a smaller
        # marker of its own shape, so that every earlier one shows around it
        line = ax.loglog(measured.steps[:, k], error[:, k], marker=SWEEP_MARKERS[k % len(SWEEP_MARKERS)],
                         markersize=3 + 2.5 * (count - 1 - k), linewidth=1 + 1.5 * (count - 1 - k) / max(count, 1),
                         alpha=0.9, label=ev.layout.entry_name(position))[0]
        if measured.steps[:, k].min() <= ev.steps[position] <= measured.steps[:, k].max():  # not the complex step
            ax.axvline(ev.steps[position], color=line.get_color(), linestyle=":", linewidth=1)
    top = float(np.nanmax(error)) if np.isfinite(error).any() else 1.0
    ax.set_ylim(bottom=min(float(np.nanmin(error)), top / 1e3) / 2, top=top * 2)  # at least 3 decades: flat looks flat
    ax.set_xlabel("step h")
    ax.set_ylabel("|numeric - analytic| / |analytic|")
    ax.set_title("error against step: a V (rounding left, truncation right) means a right gradient;\n"
                 "a flat floor is the size of a bug. Dotted: the step the check used.", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return fig
