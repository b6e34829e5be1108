"""A backward's contract, checked without finite differences.

A backward pass maps an upstream gradient ``dout`` to the gradients of its
arguments. Whatever the layer, that map is linear in ``dout``, and calling it
twice on the same ``dout`` and cache gives the same answer. The checks here
call the backward a few times at the check point (never the forward again)
and return a `Contract` for the diagnoses.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._evidence import Contract

__all__ = ["LINEARITY_SLACK", "backward_contract", "changed_parts", "linearity", "private_copy"]

LINEARITY_SLACK = 0.5
"""``b(v1) + b(v2)`` and ``b(v1 + v2)`` may differ by ``u ** LINEARITY_SLACK`` of the largest of them, u the
gradients' precision: rounding in long sums stays far below it, a backward that ignores dout is off by order 1."""


def backward_contract(gradients: Callable[[np.ndarray, bool], list[np.ndarray]], cotangent: np.ndarray,
                      names: Sequence[str], rng: np.random.Generator,
                      writes: Callable[[], list[str]]) -> Contract:
    """Linearity in dout, and what the backward writes into, for a backward at the check point.

    Parameters
    ----------
    gradients : callable
        ``gradients(v, fresh)``: the backward's gradients (flat, in the dtype returned, one
        per argument, arrays of their own) for the flat upstream gradient ``v``;
        ``fresh=False`` calls it again on the very dout and cache the previous
        call was given (and perhaps wrote into), and ignores ``v``.
    cotangent : ndarray
        The check's upstream gradient.
    names : sequence of str
        The arguments' names, in the order of ``gradients``.
    rng : Generator
    writes : callable
        What the latest call wrote into (``"dout"``, ``"the cache's item 2"``).
    """
    first = gradients(cotangent, True)
    touched = writes()
    effect = _effect_of_writes(gradients, first) if touched else ""
    ignores, constant = linearity(lambda v: gradients(v, True), cotangent, first, names, rng)
    return Contract(ignores_dout=ignores, constant_in_dout=constant, writes=tuple(touched), after_writes=effect)


def linearity(answers: Callable[[np.ndarray], list[np.ndarray]], given: np.ndarray, first: list[np.ndarray],
              names: Sequence[str], rng: np.random.Generator) -> tuple[dict[str, float], list[str]]:
    """Which parts of a linear map's answer are not linear in its input: ``b(v1) + b(v2)`` against ``b(v1 + v2)``.

    A backward (linear in dout), a VJP (in its cotangent) and a JVP (in its
    tangent) are all linear maps. ``answers(v)`` gives the map's parts
    (flat, one per name) for the flat input ``v``; ``first`` is its answer
    for ``given``. Returns each failing part's relative miss, and the parts
    that came back the same for two different inputs (the input ignored).
    """
    other = rng.standard_normal(given.size)
    second, both = answers(other), answers(given + other)
    ignores: dict[str, float] = {}
    constant: list[str] = []
    for name, *returned in zip(names, first, second, both):
        unit = _rounding(*returned)
        a, b, ab = (r.astype(np.float64) for r in returned)
        scale = float(np.max(np.abs(a) + np.abs(b) + np.abs(ab), initial=0.0))
        miss = float(np.max(np.abs(a + b - ab), initial=0.0))
        if miss > unit ** LINEARITY_SLACK * scale:  # a NaN gradient is wrong, not nonlinear: the check says so
            ignores[name] = miss / max(scale, np.finfo(float).tiny)
            if np.array_equal(a, b):
                constant.append(name)
    return ignores, constant


def _effect_of_writes(gradients: Callable[[np.ndarray, bool], list[np.ndarray]], first: list[np.ndarray]) -> str:
    """What the backward does when called again on the dout and cache it wrote into: ``""`` (the same answer).

    The check gives every call a dout and a cache of its own, so a write never changes what is checked; this
    says what it would do in a program that calls the backward twice on one cache. An exception there is the
    consequence being measured (a list emptied by ``cache.pop()``), not a failure of the check.
    """
    try:
        again = gradients(np.zeros(0), False)
    except Exception as exc:  # the user's backward on what it consumed: whatever it raises is the finding
        return f"raises {type(exc).__name__}" + (f" ({exc})" if str(exc) else "")
    same = all(np.array_equal(x, y, equal_nan=True) for x, y in zip(first, again))
    return "" if same else "gives another answer"


def _rounding(*arrays: np.ndarray) -> float:
    return max(float(np.finfo(a.dtype).eps) if a.dtype.kind == "f" else float(np.finfo(float).eps) for a in arrays)


def changed_parts(before: Any, after: Any, name: str) -> list[str]:
    """The parts of ``after`` (a copy of ``before`` a function was given) that it wrote into, by name.

    A list or dict that lost or gained items (a cache emptied by ``pop``) changed as a whole.
    """
    if isinstance(before, np.ndarray):
        same = isinstance(after, np.ndarray) and before.shape == after.shape and np.array_equal(
            before, after, equal_nan=before.dtype.kind in "fc")
        return [] if same else [name]
    if isinstance(before, dict):
        if not isinstance(after, dict) or before.keys() != after.keys():
            return [name]
        return [part for key in before for part in changed_parts(before[key], after[key], f"{name}[{key!r}]")]
    if isinstance(before, (list, tuple)):
        if not isinstance(after, (list, tuple)) or len(before) != len(after):
            return [name]
        return [part for k, (b, a) in enumerate(zip(before, after)) for part in changed_parts(b, a, f"{name}[{k}]")]
    return []


def private_copy(value: Any) -> Any:
    """A deep copy of a dout or cache, so that nothing the backward writes reaches the caller's."""
    return copy.deepcopy(value)
