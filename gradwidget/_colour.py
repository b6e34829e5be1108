"""The colour scales of a result's discrepancy, shared by the static figures and the panel.

matplotlib's colormap is the one source of the colours: the figures use it
directly and the panel's canvas gets the same table from `colour_table`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._params import Block
    from ._result import CheckResult

__all__ = ["COLORMAP", "METRICS", "RELATIVE_FLOOR", "SCALES", "UNCHECKED_COLOUR", "colour_range", "colour_table",
           "metric_values"]

COLORMAP = "magma_r"  # light for small errors, dark for large ones
UNCHECKED_COLOUR = 0xC8C8C8  # entries with no value (not checked)
RELATIVE_FLOOR = 1e-12  # the bottom of the relative-error scales: float64 rounding sits near 1e-16 to 1e-13
COLOUR_STOPS = 17  # stops of the table the canvas interpolates between
METRICS = {"abs": "absolute error", "rel": "relative error", "log10 rel": "log10 relative error"}
SCALES = ("log", "linear")


def colour_table(stops: int = COLOUR_STOPS) -> list[int]:
    """`COLORMAP` sampled at ``stops`` evenly spaced points, as 0xRRGGBB integers."""
    from matplotlib import colormaps

    rgb = np.rint(colormaps[COLORMAP](np.linspace(0, 1, stops))[:, :3] * 255).astype(int)
    return [int(r) << 16 | int(g) << 8 | int(b) for r, g, b in rgb]


def metric_values(result: CheckResult, block: Block, metric: str) -> np.ndarray:
    """One value per entry of ``block`` (NaN where not checked), in float64."""
    ev = result.evidence
    if metric == "abs":
        return ev.gap[block.slice].astype(np.float64)
    relative = ev.relative[block.slice].astype(np.float64)
    if metric == "rel":
        return relative
    with np.errstate(divide="ignore"):
        return np.log10(np.maximum(relative, RELATIVE_FLOOR))


def colour_range(values: np.ndarray, metric: str, scale: str) -> tuple[float, float, bool]:
    """``(vmin, vmax, log)`` of the colour bar."""
    if metric == "log10 rel":  # already a logarithm: a linear bar
        return float(np.log10(RELATIVE_FLOOR)), 0.0, False
    if metric == "rel":
        return (RELATIVE_FLOOR, 1.0, True) if scale == "log" else (0.0, 1.0, False)
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return (top * RELATIVE_FLOOR, top, True) if scale == "log" else (0.0, top, False)
