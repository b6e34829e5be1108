"""What a backward returned, matched to the arguments it differentiates.

A backward returns one gradient per argument, each in its argument's shape.
The bugs of layer code often show first in those shapes: a bias gradient of
shape ``(N, D)`` is a broadcast not summed over the batch axis, gradients in
another order are swapped, a gradient of the right size in another shape was
reshaped. `ReturnedGradients` puts each gradient where and in the shape its
check can use, and records what it had to do as a finding with its code;
what cannot be matched is an `InputError` that says what to return.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._options import InputError, counted
from ._verdict import BROADCAST, SWAPPED

__all__ = ["ReturnedGradients"]


class ReturnedGradients:
    """Matches a backward's answer to its differentiated arguments.

    Parameters
    ----------
    names : list of str
        The differentiated arguments, in order.
    shapes : list of tuple
        Their shapes.
    floating : list of str
        Every floating-point array argument (a backward may return one
        gradient for each, when ``wrt`` picks fewer).
    who, forward : str
        The backward's and the forward's names, for messages.
    strict : bool
        Raise on a gradient whose shape cannot be matched (False: leave it
        as returned, for a grader to mark that item wrong).

    Attributes
    ----------
    findings : dict
        Argument name -> (code, message), for each gradient that needed
        summing, reshaping or moving.
    """

    def __init__(self, names: list[str], shapes: list[tuple[int, ...]], floating: list[str], who: str,
                 forward: str, strict: bool = True) -> None:
        self.names, self.shapes, self.floating, self.who, self.forward = names, shapes, floating, who, forward
        self.strict = strict
        self.findings: dict[str, tuple[str, str]] = {}

    def adapt(self, answer: Any) -> list[np.ndarray]:
        """One float array per differentiated argument, in its shape (a 2-D transpose is left as returned)."""
        parts = self._parts(answer)
        arrays = [self._array(part, name) for part, name in zip(parts, self.names)]
        arrays = self._in_order(arrays)
        return [self._shaped(array, name, shape) for array, name, shape in zip(arrays, self.names, self.shapes)]

    def _parts(self, answer: Any) -> list[Any]:
        if isinstance(answer, dict):
            raise InputError(f"{self.who} returned a dict (keys {', '.join(map(str, answer))}); return the gradients "
                             f"as a tuple in {self.forward}'s order: {', '.join('d' + n for n in self.names)}")
        many = isinstance(answer, tuple) or (isinstance(answer, list) and len(self.names) > 1
                                             and len(answer) in (len(self.names), len(self.floating)))
        parts = list(answer) if many else [answer]
        if len(parts) == len(self.names):
            return parts
        if len(parts) == len(self.floating) and set(self.names) <= set(self.floating):
            return [parts[self.floating.index(name)] for name in self.names]
        args = ", ".join(self.names)
        hint = f", or pass wrt={tuple(self.names[:len(parts)])!r}" if 0 < len(parts) < len(self.names) else ""
        raise InputError(f"{self.who} returned {counted(len(parts), 'array')}, but {self.forward} has "
                         f"{counted(len(self.names), 'floating-point argument')} to differentiate ({args}): return "
                         f"{', '.join('d' + n for n in self.names)}{hint}")

    def _array(self, part: Any, name: str) -> np.ndarray:
        if part is None:
            raise InputError(f"{self.who} returned None for d{name}; expected an array of shape "
                             f"{self.shapes[self.names.index(name)]}")
        try:
            array = np.asarray(part)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{self.who} returned d{name} that is not an array ({exc})") from None
        if array.dtype.kind not in "biuf":
            raise InputError(f"{self.who} returned d{name} of dtype {array.dtype}; expected real numbers")
        return array

    def _in_order(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The arrays in the arguments' order, when they came back in another order (told by their shapes)."""
        shapes = [a.shape for a in arrays]
        if shapes == [tuple(s) for s in self.shapes] or len(set(map(tuple, self.shapes))) < len(self.shapes):
            return arrays
        if sorted(shapes) != sorted(tuple(s) for s in self.shapes):
            return arrays
        order = [shapes.index(tuple(s)) for s in self.shapes]
        moved = [(self.names[k], self.names[order[k]]) for k in range(len(order)) if order[k] != k]
        for name, given_as in moved:
            self.findings.setdefault(name, (SWAPPED, (
                f"{self.who} returns d{name} in d{given_as}'s place (told by their shapes): return the gradients "
                f"in the order of {self.forward}'s arguments ({', '.join('d' + n for n in self.names)}).")))
        return [arrays[k] for k in order]

    def _shaped(self, array: np.ndarray, name: str, shape: tuple[int, ...]) -> np.ndarray:
        shape = tuple(shape)
        if array.shape == shape or (len(shape) == 2 and array.shape == shape[::-1]):
            return array
        size = int(np.prod(shape))
        if array.size == size:
            self.findings.setdefault(name, (BROADCAST, (
                f"d{name} has shape {array.shape} but {name} has shape {shape}: the values are reshaped to be "
                f"compared; return `d{name}.reshape({name}.shape)` only if they are in {name}'s order.")))
            return array.reshape(shape)
        axes = _broadcast_axes(shape, array.shape)
        if axes is None and not self.strict:
            return array
        if axes is None:
            raise InputError(f"{self.who} returned shape {array.shape} for d{name}, expected {shape} "
                             f"({name}'s shape)")
        listed = axes[0] if len(axes) == 1 else axes
        self.findings.setdefault(name, (BROADCAST, (
            f"d{name} has shape {array.shape} but {name} has shape {shape}: a broadcast in {self.forward} is not "
            f"summed in {self.who}. Sum over axis {listed} (`d{name} = dout.sum(axis={listed})`); summed, it is "
            "compared below.")))
        return array.sum(axis=axes).reshape(shape)


def _broadcast_axes(shape: Sequence[int], returned: Sequence[int]) -> tuple[int, ...] | None:
    """The axes of ``returned`` to sum so that it takes ``shape``, when ``shape`` broadcasts to it."""
    try:
        if np.broadcast_shapes(tuple(shape), tuple(returned)) != tuple(returned):
            return None
    except ValueError:
        return None
    extra = len(returned) - len(shape)
    return tuple(range(extra)) + tuple(extra + k for k, s in enumerate(shape) if s == 1 and returned[extra + k] != 1)
