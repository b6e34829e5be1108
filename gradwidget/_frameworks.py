"""What the PyTorch and JAX front ends share: a framework's function and its autodiff as a layer to check.

A front end gives the differentiated inputs as numpy arrays, a function
that evaluates the framework's function on such arrays (returning its
outputs as numpy arrays and what its derivative needs), and one that pulls
upstream gradients back through the framework's autodiff (a VJP). `check_vjp_of`
turns them into a forward and a backward and runs :func:`gradwidget.check_layer`
on them: the same engine, verdict and diagnoses as for hand-written layers.

Complex inputs and outputs are checked as their real and imaginary parts
(a last axis of 2). The gradient of a real ``L`` with respect to a complex
``z`` is then ``dL/dRe z + i dL/dIm z``: the convention of PyTorch (the
conjugate Wirtinger derivative, times 2); a front end maps its framework's
convention to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ._array_checks import rediagnosed
from ._layer import check_layer
from ._result import CheckResult

__all__ = ["check_vjp_of"]

COMPLEX_NOTE = ("{name} is complex: checked as its real and imaginary parts (the last axis of its block); the "
                "gradient of a real L is dL/dRe {name} + i dL/dIm {name}")


def as_real(array: np.ndarray) -> np.ndarray:
    """A complex array as float pairs (real, imaginary) on a last axis of 2; a real one as it is."""
    if np.iscomplexobj(array):
        return np.stack([array.real, array.imag], axis=-1)
    return array


def as_complex(pairs: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    """Float pairs on a last axis of 2 as a complex array of ``dtype``."""
    return (pairs[..., 0] + 1j * pairs[..., 1]).astype(dtype)


def check_vjp_of(name: str, names: Sequence[str], arrays: Sequence[np.ndarray],
                 evaluate: Callable[[list[np.ndarray]], tuple[list[np.ndarray], Any]],
                 pull: Callable[[Any, list[np.ndarray]], list[np.ndarray | None]],
                 notes: Sequence[str] = (), **options: Any) -> CheckResult:
    """Check a framework's VJP of a function against finite differences of the function itself.

    Parameters
    ----------
    name : str
        The function's name, for messages (its VJP is ``name's backward``).
    names, arrays
        The differentiated inputs.
    evaluate : callable
        ``evaluate(arrays)`` returns the outputs (numpy) and what ``pull`` needs.
    pull : callable
        ``pull(cache, douts)`` returns one gradient per input (None: the
        output does not depend on it), in the inputs' dtypes.
    notes : sequence of str
        Lines for the report (inputs passed through, where they were).
    **options
        As for :func:`gradwidget.check_layer`.
    """
    complex_inputs = [np.dtype(a.dtype) if np.iscomplexobj(a) else None for a in arrays]

    def forward(*given: np.ndarray) -> tuple[Any, ...]:
        values = [as_complex(x, c) if c is not None else x for x, c in zip(given, complex_inputs)]
        outputs, cache = evaluate(values)
        kinds = [np.dtype(o.dtype) if np.iscomplexobj(o) else None for o in outputs]
        return (*(as_real(o) for o in outputs), _Graph((cache, kinds, [np.shape(v) for v in values])))

    def backward(*douts_and_cache: Any) -> tuple[np.ndarray, ...]:
        *douts, graph = douts_and_cache
        cache, kinds, shapes = graph.value
        pulled = pull(cache, [as_complex(d, k) if k is not None else d for d, k in zip(douts, kinds)])
        return tuple(as_real(np.zeros(shape, c or float) if g is None else g)
                     for g, c, shape in zip(pulled, complex_inputs, shapes))

    forward.__name__, backward.__name__ = name, f"{name}'s backward"  # the inputs are named by names=
    said = list(notes) + [COMPLEX_NOTE.format(name=n) for n, c in zip(names, complex_inputs) if c is not None]
    result = check_layer(forward, backward, *(as_real(a) for a in arrays), names=list(names), **options)
    return _with_notes(result, said)


class _Graph:
    """What a framework recorded of a call (its autodiff graph): handed to the backward as is, never copied."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __deepcopy__(self, memo: dict[int, Any]) -> _Graph:
        return self


def _with_notes(result: CheckResult, notes: list[str]) -> CheckResult:
    """The result with the front end's notes added to what it says was checked."""
    if not notes:
        return result
    subject = result.evidence.subject
    return rediagnosed(result, subject=replace(subject, notes=(*subject.notes, *notes)))
