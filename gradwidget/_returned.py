"""What a backward returned, matched to the arguments it differentiates.

A backward returns one gradient per argument, each in its argument's shape.
The bugs of layer code often show first in those shapes: a bias gradient of
shape ``(N, D)`` is a broadcast not summed over the batch axis, gradients in
another order are swapped, a padded gradient was never cropped.
`ReturnedGradients` puts each gradient where and in the shape its check can
use, and records what it had to do (`ShapeMismatch`, a swap finding) for the
diagnoses; what cannot be matched at all (a count of gradients that fits no
argument list, None) is an `InputError` that says what to return.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._options import InputError, counted
from ._params import ShapeMismatch, fit_shape
from ._verdict import SWAPPED

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
        A gradient with another number of entries than its argument (that no
        sum over broadcast axes explains) is returned as NaN in the
        argument's shape, to be compared as not computed (False: left as
        returned, for a grader to mark that item wrong).

    Attributes
    ----------
    findings : dict
        Argument name -> (code, message), for each gradient returned in
        another argument's place.
    mismatched : dict
        Argument name -> `ShapeMismatch`, for each gradient returned in
        another shape (the first time it was seen).
    """

    def __init__(self, names: list[str], shapes: list[tuple[int, ...]], floating: list[str], who: str,
                 forward: str, strict: bool = True) -> None:
        self.names, self.shapes, self.floating, self.who, self.forward = names, shapes, floating, who, forward
        self.strict = strict
        self.findings: dict[str, tuple[str, str]] = {}
        self.mismatched: dict[str, ShapeMismatch] = {}

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
        if len(shape) == 2 and array.shape == shape[::-1]:
            return array  # the check names a transposed 2-D gradient itself
        fitted, mismatch = fit_shape(array, shape, name)
        if mismatch is not None:
            self.mismatched.setdefault(name, mismatch)
        if fitted is not None:
            return fitted
        if self.strict:  # compared as not computed: the diagnoses say what its shape shows
            return np.full(shape, np.nan)
        return array
