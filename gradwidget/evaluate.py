"""Calling the user's J: at a point, or at many points one entry away.

`Evaluator.along` is the hot loop of every check. It moves one entry of a
private work vector, calls J on views of that vector and moves the entry
back: no parameter tree is copied per call. J never sees the caller's
arrays. If J is caught changing its argument, the evaluator switches to
handing J a fresh copy on every call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .params import Layout

__all__ = ["Evaluator", "call_with_copy", "scalar_cost"]


def cost_precision(value: Any) -> float:
    """Machine epsilon of the type J returned its cost in (float64 for Python floats)."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        value = value[0]
    dtype = getattr(value, "dtype", None)
    return float(np.finfo(dtype).eps) if dtype is not None and dtype.kind == "f" else float(np.finfo(float).eps)


def scalar_cost(value: Any, *, allow_complex: bool = False) -> float | complex:
    """J's return value as a Python number, or a clear error."""
    if type(value) is float:
        return value
    if isinstance(value, (np.floating, int, np.integer)):
        return float(value)
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "biufc":
        what = f"an array of shape {array.shape}" if array.dtype.kind in "biufc" else f"a {type(value).__name__}"
        raise TypeError(f"J must return a scalar cost; it returned {what}")
    number = array.reshape(()).item()
    if isinstance(number, complex) and not allow_complex:
        raise TypeError("J returned a complex cost; expected a real number")
    return number


def note_exception(exc: BaseException, note: str) -> None:
    """Attach ``note`` to ``exc`` so its traceback says where it happened."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10: no notes; extend the message instead
        exc.args = (*exc.args[:1], note, *exc.args[1:]) if exc.args else (note,)


def call_with_copy(fn: Callable[[Any], Any], layout: Layout, point: np.ndarray,
                   name: str) -> tuple[Any, np.ndarray]:
    """Call ``fn`` on a private copy of ``point``.

    Returns what ``fn`` returned and the flat positions it changed in place.
    """
    copy = point.copy()
    try:
        result = fn(layout.views(copy))
    except Exception as exc:
        note_exception(exc, f"gradwidget: raised by {name} at the check point")
        raise
    changed = np.flatnonzero(copy != point)
    return result, changed


class Evaluator:
    """Evaluates J at theta and along single entries, counting the calls.

    Parameters
    ----------
    J : callable
        The cost.
    layout : Layout
        How the flat vector becomes J's argument.
    point : ndarray
        The flat check point (copied).
    pair : bool
        J returns ``(cost, grad)``; only the cost is used here.
    dtype : dtype, optional
        Working dtype (complex for the complex-step method).
    """

    def __init__(self, J: Callable[[Any], Any], layout: Layout, point: np.ndarray, *,
                 pair: bool = False, dtype: Any = None) -> None:
        self.J = J
        self.layout = layout
        self.pair = pair
        self.work = np.array(point, dtype=dtype or point.dtype)
        self.point = self.work.copy()
        self.allow_complex = self.work.dtype.kind == "c"
        self.args = layout.views(self.work)
        self.calls = 0
        self.reached = 0
        self.fresh_copies = False

    def cost(self, value: Any) -> float | complex:
        """The cost out of what J returned."""
        if self.pair:
            if not (isinstance(value, (tuple, list)) and len(value) == 2):
                raise TypeError(
                    f"with grad=None, J must return (cost, grad); it returned a {type(value).__name__}"
                )
            value = value[0]
        return scalar_cost(value, allow_complex=self.allow_complex)

    def along(self, positions: np.ndarray, deltas: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Fill ``out[k]`` with J(theta + deltas[k] * e[positions[k]]).

        On an interrupt, ``reached`` says how many of ``out`` were filled.
        """
        with np.errstate(all="ignore"):  # NaN one step outside J's domain is handled, not news
            return self._along(positions, deltas, out)

    def _along(self, positions: np.ndarray, deltas: np.ndarray, out: np.ndarray) -> np.ndarray:
        work, J, layout = self.work, self.J, self.layout
        k = 0
        try:
            for k, (i, delta) in enumerate(zip(positions.tolist(), deltas.tolist())):
                original = work[i]
                work[i] = original + delta
                try:
                    args = layout.views(work.copy()) if self.fresh_copies else layout.rebuild(self.args)
                    value = J(args)
                except Exception as exc:
                    note_exception(exc, f"gradwidget: raised by J with {layout.entry_name(i)} "
                                        f"moved by {delta:+.3g} from {original:.6g}")
                    raise
                finally:
                    work[i] = original
                    self.calls += 1
                out[k] = self.cost(value)
        except KeyboardInterrupt:
            self.reached = k  # out[:k] is complete
            raise
        return out

    def at(self, point: np.ndarray) -> tuple[Any, np.ndarray]:
        """J's raw return value at ``point`` and the positions J changed."""
        self.calls += 1
        return call_with_copy(self.J, self.layout, point, "J")

    def drifted(self) -> np.ndarray:
        """Positions of the work vector that J changed for good."""
        return np.flatnonzero(self.work != self.point)
