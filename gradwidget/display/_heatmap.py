"""A block's discrepancy, or a part of the whole Jacobian, as an anywidget heatmap (front end: ``static/heatmap.js``).

The values travel as float32 bytes (4 bytes an entry), as a binary buffer
of the widget's message. A front end that delivers buffers empty (Colab's
widget manager) asks for them as base64 text instead: it sets ``encoding``
to ``"base64"``, and from then on ``values_base64`` holds the same bytes.
Hovering an entry asks for its details with a custom message, answered from
the result.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets

from .._verdict import Status
from ._block_state import block_state
from ._colour import METRICS, RELATIVE_FLOOR, SCALES, UNCHECKED_COLOUR, colour_range, colour_table, metric_values

if TYPE_CHECKING:
    from .._params import Block
    from .._result import CheckResult
    from ._jacobian import PairView

__all__ = ["MAX_MARKED", "Canvas", "Heatmap", "PairHeatmap", "float32_bytes", "front_end_file"]

MAX_MARKED = 10_000
"""Wrong entries marked one by one on the canvas, at most (beyond, the colour alone shows them)."""


def front_end_file(name: str) -> Path:
    """A file of the front end, in ``static/`` beside this module."""
    found = Path(__file__).with_name("static") / name
    if not found.is_file():
        raise FileNotFoundError(f"gradwidget's front end {name} is missing from {found.parent}; reinstall gradwidget")
    return found


def float32_bytes(values: np.ndarray) -> bytes:
    """Little-endian float32, 4 bytes an entry; NaN kept, overflow clipped to the largest float32."""
    limit = float(np.finfo(np.float32).max)
    return np.clip(values, -limit, limit).astype("<f4").tobytes()


class Canvas(anywidget.AnyWidget):
    """What the front end draws: one 2-D array of values with its colour scale, names and marks.

    Attributes
    ----------
    block, shape, rows, cols : the block and its 2-D layout (vectors as one row,
        higher ranks as rows x the rest)
    verdict : str
        The block's line of the report's table ("ok", "3 of 110 wrong").
    wrong : list of int
        Offsets of the wrong entries (at most `MAX_MARKED`), marked on the canvas.
    threshold : float
        Where the colour bar marks the verdict's threshold (0: none).
    values : bytes
        float32, one per entry, row-major in the 2-D layout.
    encoding : {"binary", "base64"}
        How the front end reads the values: set to ``"base64"`` by a front end
        whose binary buffers arrive empty.
    values_base64 : str
        With ``encoding="base64"``, `values` as base64 text; otherwise empty.
    vmin, vmax, log, label : the colour bar
    colours, unchecked : the colour scale (0xRRGGBB stops) and the colour of entries not checked
    selected : int
        Flat offset of the selected entry in the block; -1 for none.
    """

    _esm = front_end_file("heatmap.js")
    _css = front_end_file("heatmap.css")

    block = traitlets.Unicode("").tag(sync=True)
    shape = traitlets.List(traitlets.Int()).tag(sync=True)
    rows = traitlets.Int(1).tag(sync=True)
    cols = traitlets.Int(1).tag(sync=True)
    values = traitlets.Bytes(b"").tag(sync=True)
    encoding = traitlets.Enum(("binary", "base64"), "binary").tag(sync=True)
    values_base64 = traitlets.Unicode("").tag(sync=True)
    vmin = traitlets.Float(RELATIVE_FLOOR).tag(sync=True)
    vmax = traitlets.Float(1.0).tag(sync=True)
    log = traitlets.Bool(True).tag(sync=True)
    label = traitlets.Unicode("tolerance").tag(sync=True)
    colours = traitlets.List(traitlets.Int()).tag(sync=True)
    unchecked = traitlets.Int(UNCHECKED_COLOUR).tag(sync=True)
    threshold = traitlets.Float(0.0).tag(sync=True)
    verdict = traitlets.Unicode("").tag(sync=True)
    wrong = traitlets.List(traitlets.Int()).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)

    @traitlets.observe("encoding", "values")
    def _text_copy(self, _: Any) -> None:
        """Keep `values_base64` for a front end that cannot receive binary buffers."""
        self.values_base64 = base64.b64encode(self.values).decode("ascii") if self.encoding == "base64" else ""

    def _draw(self, name: str, shape: list[int], grid: tuple[int, int], values: np.ndarray, metric: str, scale: str,
              verdict: str, wrong: np.ndarray) -> None:
        """Set everything the front end draws at once."""
        if metric not in METRICS:
            raise ValueError(f"metric={metric!r} is not one of {list(METRICS)}")
        if scale not in SCALES:
            raise ValueError(f"scale={scale!r} is not one of {list(SCALES)}")
        vmin, vmax, log = colour_range(values, metric, scale)
        with self.hold_sync():
            self.block, self.shape, (self.rows, self.cols) = name, shape, grid
            self.values = float32_bytes(values)
            self.vmin, self.vmax, self.log, self.label = vmin, vmax, log, metric
            self.colours, self.threshold = colour_table(metric), 1.0 if metric == "tolerance" else 0.0
            self.verdict = verdict
            self.wrong = wrong[:MAX_MARKED].tolist()
            if self.selected >= values.size:
                self.selected = -1


class Heatmap(Canvas):
    """A heatmap of one block of a `CheckResult` (see `Canvas` for what it draws)."""

    def __init__(self, result: CheckResult, block: Block, metric: str = "tolerance", scale: str = "log") -> None:
        super().__init__()
        self.on_msg(self._answer)
        self.show(result, block, metric, scale)

    def show(self, result: CheckResult, block: Block, metric: str = "tolerance", scale: str = "log") -> None:
        """Draw ``block`` of ``result`` with the given metric and colour scale."""
        self.result, self._block = result, block
        self._draw(block.name, list(block.shape), block.grid, metric_values(result, block, metric), metric, scale,
                   block_state(result, result.evidence.layout.blocks.index(block)),
                   np.flatnonzero(result.evidence.status[block.slice] == Status.WRONG))

    @property
    def position(self) -> int:
        """The selected entry's flat position in theta, or -1."""
        return -1 if self.selected < 0 else self._block.start + self.selected

    def _answer(self, _: Any, content: dict[str, Any], buffers: list[bytes]) -> None:
        """Reply to the front end's ``{type: "entry", index}`` with the entry's details."""
        offset = content.get("index") if isinstance(content, dict) and content.get("type") == "entry" else None
        if isinstance(offset, int) and 0 <= offset < self._block.size:
            self.send({**self.result.entry(self._block.start + offset), "type": "entry", "index": offset})


class PairHeatmap(Canvas):
    """One part of a check's whole Jacobian, outputs x inputs (see `gradwidget.display._jacobian.PairView`).

    Hovering a pair answers with its name (``out[2, 5] / w[3, 1]``), both
    derivatives and its tolerance.
    """

    def __init__(self, view: PairView, metric: str = "tolerance", scale: str = "log") -> None:
        super().__init__()
        self.on_msg(self._answer)
        self.show(view, metric, scale)

    def show(self, view: PairView, metric: str = "tolerance", scale: str = "log") -> None:
        """Draw ``view`` with the given metric and colour scale."""
        self.view = view
        self._draw(view.name, list(view.shape), view.shape, view.values(metric), metric, scale, view.state(),
                   view.wrong())

    def _answer(self, _: Any, content: dict[str, Any], buffers: list[bytes]) -> None:
        """Reply to the front end's ``{type: "entry", index}`` with the pair's details."""
        offset = content.get("index") if isinstance(content, dict) and content.get("type") == "entry" else None
        if isinstance(offset, int) and 0 <= offset < self.view.shape[0] * self.view.shape[1]:
            self.send({**self.view.entry(offset), "type": "entry", "index": offset})
