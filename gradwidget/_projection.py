"""An array-valued f seen as the scalar ``J(x) = <v, f(x)>``, keeping f's outputs to build its Jacobian.

A vector-Jacobian product with a cotangent v is the gradient of
``<v, f(x)>``, so the gradient engine checks it as it is. The first look of
a full check moves each input entry by its step on both sides: f's outputs
there are the Jacobian's numeric columns, at no extra call. `Projection` is
the scalar J; `RecordingEvaluator` keeps the outputs of each entry's first
look; `numeric_columns` turns them into columns with the scheme's weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._differences import STENCILS
from ._evaluate import Evaluator
from ._options import InputError
from ._params import Layout

__all__ = ["Projection", "RecordingEvaluator", "flat_output", "numeric_columns"]


def flat_output(value: Any, outputs: Layout, what: str) -> np.ndarray:
    """The output of f as a fresh flat float64 vector in ``outputs``' order, or an error naming the shape at fault."""
    if type(value) is np.ndarray and value.dtype.kind == "f" and outputs.kind == "array" \
            and value.shape == outputs.shape:
        return value.astype(np.float64).reshape(-1)  # the common case, without flatten_like's checks
    flat, transposed = outputs.flatten_like(value, what)
    if transposed:
        shape = outputs.blocks[0].shape
        raise InputError(f"{what} returned shape {shape[::-1]}, expected {shape}, the output's shape")
    return flat


class Projection:
    """``J(x) = <v, f(x)>`` for a flat cotangent v; the latest flat output is kept in ``last``.

    Parameters
    ----------
    f : callable
        Takes the inputs' structure and returns f's output (anything
        ``outputs.flatten_like`` accepts).
    outputs : Layout
        The structure of f's output.
    cotangent : ndarray
        Flat, float64.
    what : str
        f's name for messages.
    dtype : dtype
        The dtype J's value is returned in: f's, so that its rounding is seen.
    """

    def __init__(self, f: Callable[[Any], Any], outputs: Layout, cotangent: np.ndarray, what: str,
                 dtype: Any = np.float64) -> None:
        self.f, self.outputs, self.cotangent, self.what = f, outputs, cotangent, what
        self.dtype = np.dtype(dtype)
        self.last: np.ndarray | None = None
        self.kept: list[np.ndarray] | None = None  # a `RecordingEvaluator` collects the outputs of its calls here

    def __call__(self, x: Any) -> Any:
        value = self.f(x)
        parts = value if isinstance(value, (tuple, list)) else [value]  # outputs of several shapes, or one
        if any(map(np.iscomplexobj, parts)):
            out = _complex_flat(value, self.outputs)
        else:
            out = flat_output(value, self.outputs, self.what)
        self.last = out
        if self.kept is not None:
            self.kept.append(out.imag if out.dtype.kind == "c" else out)
        projected = np.dot(self.cotangent, out)
        return projected if projected.dtype.kind == "c" else self.dtype.type(projected)


def _complex_flat(value: Any, outputs: Layout) -> np.ndarray:
    """A complex output (the complex step) flattened in ``outputs``' order."""
    parts = value if isinstance(value, (tuple, list)) and outputs.kind != "array" else [value]
    return np.concatenate([np.asarray(p, dtype=np.complex128).reshape(-1) for p in parts])


class RecordingEvaluator(Evaluator):
    """The serial evaluator of a `Projection`, keeping f's outputs at each entry's first look.

    A first look moves entry i to each of the scheme's offsets in turn; the
    outputs there are kept in ``values[i]`` (``calls x n x m`` numbers,
    which the whole-Jacobian size limit keeps small), the moves in
    ``moves[i]``. Later looks at other steps are not kept.
    """

    def __init__(self, J: Projection, layout: Layout, point: np.ndarray, *, method: str, dtype: Any = None) -> None:
        super().__init__(J, layout, point, dtype=dtype)
        self.projection = J
        calls = STENCILS[method].calls if method in STENCILS else 1
        self.moves = np.full((point.size, calls), np.nan, dtype=np.complex128)
        self.values = np.full((point.size, calls, J.outputs.size), np.nan)
        self.filled = np.zeros(point.size, dtype=np.intp)  # moves kept so far, per entry
        self.at_point: np.ndarray | None = None
        J.kept = []

    def at(self, point: np.ndarray, times: int = 1) -> tuple[list[Any], np.ndarray]:
        values, changed = super().at(point, times)
        if self.at_point is None and self.projection.last is not None:
            self.at_point = np.array(self.projection.last, dtype=np.float64)
        self.projection.kept = []
        return values, changed

    def _along(self, positions: np.ndarray, deltas: np.ndarray, out: np.ndarray) -> np.ndarray:
        kept = self.projection.kept = []
        try:
            return super()._along(positions, deltas, out)
        finally:  # the outputs of every call that returned, an interrupted chunk's too
            for i, delta, value in zip(positions.tolist(), deltas.tolist(), kept):
                slot = self.filled[i]
                if slot < self.moves.shape[1]:
                    self.moves[i, slot], self.values[i, slot] = delta, value
                    self.filled[i] = slot + 1
            self.projection.kept = []


def numeric_columns(recorder: RecordingEvaluator, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The Jacobian's numeric columns from a recorder's first looks, and two parts of each pair's error.

    Returns
    -------
    numeric : ndarray
        ``(m, n)``: NaN in columns without a complete first look.
    reach : ndarray
        ``(m, n)``: the largest |f| a pair's estimate subtracted, over its
        step (rounding is a share of it).
    curvature : ndarray
        ``(m, n)``: ``|f(x+h) - 2 f(x) + f(x-h)| / h`` where both sides were
        seen (``h f''``: a bound on the truncation of a smooth pair), else 0.
    steps : ndarray
        ``(n,)``: each column's step (NaN where none).
    """
    assert recorder.at_point is not None
    centre = recorder.at_point.real
    complete = recorder.filled == recorder.moves.shape[1]
    stencil = STENCILS.get(method)
    values = np.where(complete[:, None, None], recorder.values, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        if stencil is None:  # the complex step: ``values`` keeps Im f(x + ih); the estimate is Im f / h
            steps = np.where(complete, np.abs(recorder.moves[:, 0].imag), np.nan)
            numeric = values[:, 0] / steps[:, None]
            return numeric.T, np.zeros_like(numeric.T), np.zeros_like(numeric.T), steps
        steps = np.where(complete, np.max(recorder.moves.real, axis=1), np.nan)
        moving = [(o, w) for o, w in zip(stencil.offsets, stencil.weights) if o != 0]
        weights = np.array([w for _, w in moving])
        total = np.einsum("k,nkm->nm", weights, values)
        total += sum(w for o, w in zip(stencil.offsets, stencil.weights) if o == 0) * centre
        numeric = total / steps[:, None]
        reach = np.maximum(np.max(np.abs(values), axis=1), np.abs(centre)) / steps[:, None]
        offsets = [o for o, _ in moving]
        curvature = np.zeros_like(numeric)
        if 1.0 in offsets and -1.0 in offsets:
            plus, minus = values[:, offsets.index(1.0)], values[:, offsets.index(-1.0)]
            curvature = np.abs(plus - 2 * centre + minus) / steps[:, None]
    return numeric.T, np.nan_to_num(reach.T), np.nan_to_num(curvature.T), steps
