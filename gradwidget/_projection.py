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
    """F's output as one flat vector in ``outputs``' order, or an error naming the shape at fault."""
    flat, transposed = outputs.flatten_like(value, what)
    if transposed:
        raise InputError(f"{what} returned shape {tuple(reversed(outputs.blocks[0].shape))}, expected "
                         f"{outputs.blocks[0].shape}: its output changed shape between calls")
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

    def __call__(self, x: Any) -> Any:
        value = self.f(x)
        if np.iscomplexobj(value) or (isinstance(value, (tuple, list)) and any(map(np.iscomplexobj, value))):
            out = _complex_flat(value, self.outputs)
        else:
            out = flat_output(value, self.outputs, self.what)
        self.last = out
        projected = np.dot(self.cotangent, out)
        return projected if projected.dtype.kind == "c" else self.dtype.type(projected)


def _complex_flat(value: Any, outputs: Layout) -> np.ndarray:
    """A complex output (the complex step) flattened in ``outputs``' order."""
    parts = value if isinstance(value, (tuple, list)) and outputs.kind != "array" else [value]
    return np.concatenate([np.asarray(p, dtype=np.complex128).reshape(-1) for p in parts])


class RecordingEvaluator(Evaluator):
    """The serial evaluator of a `Projection`, keeping f's outputs at each entry's first stencil points.

    Only the first ``stencil.calls`` moves of each entry are kept (the first
    look): ``calls x n x m`` numbers, which the whole-Jacobian size limit
    keeps small.
    """

    def __init__(self, J: Projection, layout: Layout, point: np.ndarray, *, method: str, dtype: Any = None) -> None:
        super().__init__(J, layout, point, dtype=dtype)
        self.projection = J
        self.keep = STENCILS[method].calls if method in STENCILS else 1
        self.outputs: dict[int, dict[complex, np.ndarray]] = {}
        self.at_point: np.ndarray | None = None

    def at(self, point: np.ndarray, times: int = 1) -> tuple[list[Any], np.ndarray]:
        values, changed = super().at(point, times)
        if self.at_point is None:
            self.at_point = self.projection.last
        return values, changed

    def _along(self, positions: np.ndarray, deltas: np.ndarray, out: np.ndarray) -> np.ndarray:
        for k in range(positions.size):
            try:
                super()._along(positions[k:k + 1], deltas[k:k + 1], out[k:k + 1])
            except KeyboardInterrupt:
                self.reached = k
                raise
            seen = self.outputs.setdefault(int(positions[k]), {})
            if len(seen) < self.keep and self.projection.last is not None:
                seen[complex(deltas[k])] = self.projection.last
        return out


def numeric_columns(outputs: dict[int, dict[complex, np.ndarray]], at_point: np.ndarray, size: int,
                    method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The Jacobian's numeric columns from the recorded outputs, and two parts of each pair's error.

    Parameters
    ----------
    outputs : dict
        Input entry -> {move: f's flat output there}.
    at_point : ndarray
        f's flat output at the point.
    size : int
        The number of input entries n.
    method : str

    Returns
    -------
    numeric : ndarray
        ``(m, n)``: NaN in columns without a complete record.
    reach : ndarray
        ``(m, n)``: the largest |f| a pair's estimate subtracted, over its
        step (rounding is a share of it).
    curvature : ndarray
        ``(m, n)``: ``|f(x+h) - 2 f(x) + f(x-h)| / h`` where both sides were
        seen (``h f''``: a bound on the truncation of a smooth pair), else 0.
    steps : ndarray
        ``(n,)``: each column's step (NaN where none).
    """
    m = at_point.size
    numeric = np.full((m, size), np.nan)
    reach = np.zeros((m, size))
    curvature = np.zeros((m, size))
    steps = np.full(size, np.nan)
    stencil = STENCILS.get(method)
    for position, seen in outputs.items():
        moves = np.array(list(seen))
        values = np.array(list(seen.values()))
        if stencil is None:  # the complex step: Im f(x + ih) / h
            step = abs(moves[0].imag)
            numeric[:, position] = values[0].imag / step
            steps[position] = step
            continue
        step = float(np.max(moves.real))
        if len(seen) < stencil.calls or step <= 0:
            continue
        by_offset = {round(float(move.real) / step, 6): value for move, value in zip(moves, values)}
        column = np.zeros(m)
        largest = np.abs(at_point.real)
        for offset, weight in zip(stencil.offsets, stencil.weights):
            value = at_point.real if offset == 0 else by_offset.get(round(offset, 6))
            if value is None:
                break
            column += weight * value.real
            np.maximum(largest, np.abs(value.real), out=largest)
        else:
            numeric[:, position] = column / step
            reach[:, position] = largest / step
            steps[position] = step
            if 1.0 in by_offset and -1.0 in by_offset:
                curvature[:, position] = np.abs(by_offset[1.0].real - 2 * at_point.real + by_offset[-1.0].real) / step
    return numeric, reach, curvature, steps
