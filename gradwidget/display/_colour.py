"""The colour scales of a result's discrepancy, shared by the static figures and the panel.

matplotlib's colormap is the one source of the colours: the figures use it
directly and the panel's canvas gets the same table from `colour_table`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .._params import Block
    from .._result import CheckResult

__all__ = ["COLORMAP", "METRICS", "RELATIVE_FLOOR", "SCALES", "TOLERANCE_RANGE", "UNCHECKED_COLOUR", "colour_range",
           "colour_table", "metric_values"]

COLORMAP = "magma_r"  # light for small errors, dark for large ones (abs and rel)
UNCHECKED_COLOUR = 0xC8C8C8  # entries with no value (not checked)
RELATIVE_FLOOR = 1e-12  # the bottom of the relative-error scales: float64 rounding sits near 1e-16 to 1e-13
COLOUR_STOPS = 17  # stops of the table the canvas interpolates between
METRICS = {"tolerance": "|a - n| / tolerance", "abs": "absolute error", "rel": "relative error",
           "log10 rel": "log10 relative error"}
SCALES = ("log", "linear")
TOLERANCE_RANGE = (1e-3, 1e3)
"""The shared log scale of |a - n| / tolerance: the verdict's threshold, 1, in the middle."""
AGREE_STOPS = (0xE8F1F2, 0x9CC7CF, 0x4C8C9E)  # calm: agreeing entries, light to a muted teal
WRONG_STOPS = (0xF28E2B, 0xE03C31, 0xB0001E)  # unmistakable: wrong entries, orange to deep red
VERDICT_STOPS = 33  # an odd count: the threshold falls on a stop, and the jump to warm is 1/32 of the scale


def colour_table(metric: str = "rel", stops: int = COLOUR_STOPS) -> list[int]:
    """The colour stops of ``metric``'s scale, as 0xRRGGBB integers, for the canvas to interpolate between.

    ``tolerance`` has its own two-part scale (calm up to the threshold, warm
    above it); the others sample `COLORMAP` at ``stops`` points.
    """
    if metric == "tolerance":
        half = VERDICT_STOPS // 2
        return _ramp(AGREE_STOPS, half + 1) + _ramp(WRONG_STOPS, half)
    from matplotlib import colormaps

    rgb = np.rint(colormaps[COLORMAP](np.linspace(0, 1, stops))[:, :3] * 255).astype(int)
    return [int(r) << 16 | int(g) << 8 | int(b) for r, g, b in rgb]


def _ramp(anchors: tuple[int, ...], count: int) -> list[int]:
    """``count`` colours spread evenly along the piecewise-linear path through ``anchors``."""
    channels = np.array([[(c >> shift) & 0xFF for shift in (16, 8, 0)] for c in anchors], dtype=float)
    where = np.linspace(0, len(anchors) - 1, count)
    rgb = np.rint([np.interp(where, np.arange(len(anchors)), channels[:, i]) for i in range(3)]).astype(int).T
    return [int(r) << 16 | int(g) << 8 | int(b) for r, g, b in rgb]


def metric_values(result: CheckResult, block: Block, metric: str) -> np.ndarray:
    """One value per entry of ``block`` (NaN where not checked), in float64."""
    ev = result.evidence
    if metric == "tolerance":
        ratio = ev.significance[block.slice].astype(np.float64)
        ratio[np.isneginf(ratio)] = np.nan  # not measured
        return ratio
    if metric == "abs":
        return ev.gap[block.slice].astype(np.float64)
    relative = ev.relative[block.slice].astype(np.float64)
    if metric == "rel":
        return relative
    with np.errstate(divide="ignore"):
        return np.log10(np.maximum(relative, RELATIVE_FLOOR))


def colour_range(values: np.ndarray, metric: str, scale: str) -> tuple[float, float, bool]:
    """``(vmin, vmax, log)`` of the colour bar (one scale for every block, except ``abs``)."""
    if metric == "tolerance":
        return (*TOLERANCE_RANGE, True) if scale == "log" else (0.0, 2.0, False)
    if metric == "log10 rel":  # already a logarithm: a linear bar
        return float(np.log10(RELATIVE_FLOOR)), 0.0, False
    if metric == "rel":
        return (RELATIVE_FLOOR, 1.0, True) if scale == "log" else (0.0, 1.0, False)
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return (top * RELATIVE_FLOOR, top, True) if scale == "log" else (0.0, top, False)
