"""gradwidget for JAX: a function's reverse mode (a ``custom_vjp`` among it) or forward mode, with gradwidget's verdict.

The analytic derivative is jax's own (``jax.vjp``, or ``jax.jvp`` with
``mode="fwd"``); the numeric one comes from calling the function itself,
compiled once with ``jax.jit``, on perturbed inputs. The check runs with
64-bit types enabled, so that float64 inputs (and float32 ones, checked in
float64 where the function follows its inputs' dtype) stay what they are.
Requires the ``gradwidget[jax]`` extra.

Complex inputs: jax's VJP is the transpose of the JVP (no conjugation);
the gradient of a real ``L`` with respect to ``z`` is the conjugate of jax's
VJP of ``conj(dL/dout)``. gradwidget compares ``dL/dRe z + i dL/dIm z``,
so it conjugates jax's answer accordingly; complex inputs are checked as
their real and imaginary parts, in reverse mode.

Examples
--------
>>> import jax.numpy as jnp, numpy as np, gradwidget.jax as gwj
>>> gwj.check(jnp.tanh, np.linspace(-1, 1, 5)).verdict
'passed'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from ._array_checks import check_jvp
from ._frameworks import check_vjp_of
from ._layer import argument_names
from ._options import InputError, OptionError
from ._result import CheckResult

__all__ = ["check", "check_grads"]

MODES = ("rev", "fwd")


def check(f: Callable[..., Any], *args: Any, wrt: Sequence[int | str] | None = None, mode: str = "rev",
          names: Sequence[str] | None = None, **options: Any) -> CheckResult:
    """Check jax's derivative of ``f`` against finite differences of ``f`` itself.

    Parameters
    ----------
    f : callable
        Takes the arguments (arrays, or anything jax accepts) and returns an
        array or a tuple of arrays.
    *args
        The arguments; floating-point and complex arrays are differentiated
        (or those ``wrt`` names), the others passed through as given.
    wrt : sequence of int or str, optional
        The arguments to differentiate, by position or name.
    mode : {"rev", "fwd"}
        Check ``jax.vjp`` (reverse mode, default; every VJP rule on the way,
        ``custom_vjp`` ones among them) or ``jax.jvp`` (forward mode).
    names : sequence of str, optional
        The arguments' names (default: ``f``'s parameter names).
    **options
        As for :func:`gradwidget.check_layer`.

    Returns
    -------
    CheckResult
    """
    if mode not in MODES:
        raise OptionError("mode", f"mode={mode!r}: it is one of {', '.join(MODES)}")
    labels = list(names) if names is not None else argument_names(f, len(args))
    if len(labels) != len(args):
        raise InputError(f"names= has {len(labels)} names for {len(args)} arguments")
    chosen = _chosen(args, labels, wrt)
    name = getattr(f, "__name__", None) or type(f).__name__
    with jax.enable_x64(True):
        arrays = [np.asarray(args[k]) for k in chosen]
        if mode == "fwd":
            return _forward_mode(f, args, chosen, [labels[k] for k in chosen], name, arrays, **options)
        return _reverse_mode(f, args, chosen, labels, name, arrays, **options)


def check_grads(f: Callable[..., Any], args: Sequence[Any], order: int = 1, modes: Sequence[str] = ("fwd", "rev"),
                atol: float | None = None, rtol: float | None = None, eps: float | None = None) -> None:
    """A drop-in for ``jax.test_util.check_grads``: returns None, or raises AssertionError with gradwidget's report.

    Parameters
    ----------
    f, args
        As for jax's: ``f(*args)``.
    order : int
        1 checks ``f``'s derivatives; 2 also, as jax's does, those of
        ``jvp(f, primals, tangents)`` (in the primals and tangents) and of
        ``f``'s VJP of its own output, and so on.
    modes : sequence of {"fwd", "rev"}
    atol, rtol : float, optional
        Accepted for compatibility and not used: gradwidget's tolerance is
        per entry, from its noise model.
    eps : float, optional
        The finite-difference step (default: chosen per entry).
    """
    options: dict[str, Any] = {} if eps is None else {"eps": eps}
    for mode in modes:
        result = check(f, *args, mode=mode, **options)
        if not result.passed:
            raise AssertionError(f"gradwidget: {mode} mode of {getattr(f, '__name__', 'f')} is not right "
                                 f"({result.verdict}).\n{result}")
    if order > 1:
        for mode in modes:
            derivative, at = _derivative(f, args, mode)
            check_grads(derivative, at, order - 1, modes, eps=eps)


def _chosen(args: Sequence[Any], labels: list[str], wrt: Sequence[int | str] | None) -> list[int]:
    if wrt is not None:
        picked = [labels.index(w) if isinstance(w, str) and w in labels else w for w in wrt]
        if not all(isinstance(k, int) and 0 <= k < len(args) for k in picked):
            raise OptionError("wrt", f"wrt={list(wrt)!r}: name arguments by position or by name "
                                     f"({', '.join(labels)})")
        return [int(k) for k in picked]
    chosen = [k for k, a in enumerate(args) if hasattr(a, "dtype") and np.dtype(a.dtype).kind in "fc"]
    if not chosen:
        raise InputError("no argument is a floating-point or complex array: pass wrt= to choose")
    return chosen


def _bound(f: Callable[..., Any], args: Sequence[Any], chosen: list[int]) -> Callable[..., Any]:
    """``f`` of the differentiated arguments only (the others as given)."""
    def g(*values: Any) -> Any:
        full = list(args)
        for k, value in zip(chosen, values):
            full[k] = value
        return f(*full)
    return g


def _reverse_mode(f: Callable[..., Any], args: Sequence[Any], chosen: list[int], labels: list[str], name: str,
                  arrays: list[np.ndarray], **options: Any) -> CheckResult:
    g = _bound(f, args, chosen)
    value = jax.jit(g)

    @jax.jit
    def pulled(values: list[Any], douts: list[Any]) -> Any:
        outputs, vjp = jax.vjp(g, *values)
        return vjp(jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(outputs), douts))

    def evaluate(values: list[np.ndarray]) -> tuple[list[np.ndarray], Any]:
        with jax.enable_x64(True):
            outputs = _leaves(value(*values))
        return outputs, (values, [o.dtype for o in outputs])

    def pull(cache: Any, douts: list[np.ndarray]) -> list[np.ndarray | None]:
        values, dtypes = cache
        # jax's VJP of conj(v), conjugated: the gradient of Re<v, f>; v in the output's own dtype, as jax wants it
        conj = [np.conj(d).astype(dtype) for d, dtype in zip(douts, dtypes)]
        with jax.enable_x64(True):
            grads = pulled(list(values), conj)
        return [np.conj(np.asarray(gr)).astype(np.asarray(v).dtype) for gr, v in zip(grads, values)]

    notes = [f"{labels[k]} is passed through, not differentiated" for k in range(len(args)) if k not in chosen]
    return check_vjp_of(name, [labels[k] for k in chosen], arrays, evaluate, pull, notes, **options)


def _forward_mode(f: Callable[..., Any], args: Sequence[Any], chosen: list[int], labels: list[str], name: str,
                  arrays: list[np.ndarray], **options: Any) -> CheckResult:
    if any(np.iscomplexobj(a) for a in arrays):
        raise InputError("forward mode with complex inputs is not checked: use mode='rev'")
    g = _bound(f, args, chosen)
    value = jax.jit(lambda xs: g(*xs))
    tangent_map = jax.jit(lambda xs, ts: jax.jvp(g, tuple(xs), tuple(ts))[1])

    def run(xs: list[np.ndarray]) -> Any:
        with jax.enable_x64(True):
            return _as_output(value(xs))

    def jvp(xs: list[np.ndarray], ts: list[np.ndarray]) -> Any:
        with jax.enable_x64(True):
            return _as_output(tangent_map(xs, [np.asarray(t, np.asarray(x).dtype) for x, t in zip(xs, ts)]))

    run.__name__, jvp.__name__ = name, f"{name}'s jvp"
    return check_jvp(run, jvp, list(arrays), names=labels, **options)


def _leaves(tree: Any) -> list[np.ndarray]:
    """A function's outputs (an array, a tuple, any pytree) as a list of numpy arrays."""
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]


def _as_output(tree: Any) -> Any:
    """One array for one output, else a tuple of arrays (their shapes may differ)."""
    leaves = _leaves(tree)
    return leaves[0] if len(leaves) == 1 else tuple(leaves)


def _derivative(f: Callable[..., Any], args: Sequence[Any], mode: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """What jax's ``check_grads`` checks at the next order, with its arguments.

    Forward mode: ``jvp(f, primals, tangents)`` as a function of the primals and tangents (at the arguments
    twice); reverse mode: ``f``'s VJP of its own output, ``vjp(f, *args)[1](f(*args))``.
    """
    count = len(args)
    if mode == "fwd":
        def f_jvp(*both: Any) -> Any:
            return jax.jvp(f, tuple(both[:count]), tuple(both[count:]))
        return f_jvp, (*args, *args)

    def f_vjp(*xs: Any) -> Any:
        out, vjp = jax.vjp(f, *xs)
        return vjp(out)
    return f_vjp, tuple(args)
