"""What a derivative function returned, as one float array per block of the problem's derivative.

The same reading serves the reference (whose answers must fit exactly) and
the student (whose answers are scored as they fit): a gradient of
differentiated arguments goes through `ReturnedGradients` (a tuple in
``wrt`` order, or a dict keyed by the arguments' names or ``d`` and the
name); a parameter vector's gradient through its layout (a flat vector or
the blocks in the parameters' structure); a Jacobian, VJP or Hessian is one
array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._options import InputError
from .._params import ShapeMismatch
from .._returned import ReturnedGradients
from .._verdict import TRANSPOSE
from ._problems import Problem

__all__ = ["Derivatives", "float_array", "read_derivatives"]


@dataclass(frozen=True)
class Derivatives:
    """A derivative's blocks as returned, and what had to be adapted to read them.

    Attributes
    ----------
    arrays : list of ndarray
        One per block of ``problem.blocks``, in its own shape where it could
        be matched.
    faults : dict
        Block name -> (code, message): a gradient returned in another
        argument's place, or a 2-D gradient returned transposed (turned back).
    mismatched : dict
        Block name -> `ShapeMismatch`, for gradients returned in another shape.
    transposed : list of str
        A parameter vector's blocks returned with their 2-D shape reversed
        (turned back).
    """

    arrays: list[np.ndarray]
    faults: dict[str, tuple[str, str]] = field(default_factory=dict)
    mismatched: dict[str, ShapeMismatch] = field(default_factory=dict)
    transposed: list[str] = field(default_factory=list)


def float_array(value: Any, who: str) -> np.ndarray:
    """``value`` as a float array (at least float32); an `InputError` says what came back instead."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise InputError(f"{who} returned {type(value).__name__}, not numbers")
    return array.astype(np.result_type(array.dtype, np.float32))


def read_derivatives(problem: Problem, arguments: Sequence[Any], answer: Any, who: str, strict: bool = True
                     ) -> Derivatives:
    """The derivative's blocks from what a backward (gradient, Jacobian...) returned.

    Raises `InputError` when nothing can be matched; with ``strict`` False, a
    gradient in a shape that cannot be matched is left as returned.
    """
    if not problem.roles.per_argument:
        return Derivatives([float_array(answer, who)])
    (first, *others) = problem.differentiated
    if first.kind == "parameters" and not others:
        return _parameters(first.parameters, answer, who)
    shapes = {a.name: np.shape(v) for a, v in zip(problem.arguments, arguments)}
    if isinstance(answer, dict):
        keys = [name if name in answer else f"d{name}" for name in problem.wrt]
        missing = [key for key in keys if key not in answer]
        if missing:
            raise InputError(f"{who} returned a dict without the key {missing[0]!r} (keys: "
                             f"{', '.join(map(str, answer))})")
        answer = tuple(answer[key] for key in keys)
    returned = ReturnedGradients(list(problem.wrt), [shapes[n] for n in problem.wrt], list(problem.floating), who,
                                 problem.functions[0], strict)
    arrays = returned.adapt(answer)
    faults = dict(returned.findings)
    for k, (name, array) in enumerate(zip(problem.wrt, arrays)):
        if array.shape != shapes[name] and array.shape == shapes[name][::-1]:  # a 2-D gradient returned transposed
            arrays[k] = array.T
            faults.setdefault(name, (TRANSPOSE, f"d{name} is the transpose of the reference's: return it in "
                                     f"{name}'s shape {shapes[name]}."))
    return Derivatives([a.astype(np.result_type(a.dtype, np.float32)) for a in arrays], faults,
                       dict(returned.mismatched))


def _parameters(layout: Any, answer: Any, who: str) -> Derivatives:
    """A parameter vector's gradient, in the dtype it was computed in, block by block."""
    flat, transposed = layout.flatten_like(answer, who)
    if isinstance(answer, dict):
        parts = list(answer.values())
    elif isinstance(answer, (list, tuple)) and answer and not np.isscalar(answer[0]):
        parts = list(answer)
    else:
        parts = [answer]
    dtype = np.result_type(np.float32, *(np.asarray(part).dtype for part in parts))
    return Derivatives([flat[b.slice].reshape(b.shape).astype(dtype) for b in layout.blocks], transposed=transposed)
