"""A layer's check: ``out, cache = forward(*args)`` and ``dx, dw, ... = backward(dout, cache)``.

The backward is checked as a vector-Jacobian product of the forward, on the
engine of `gradwidget._array_checks`, with the layer's arguments named as in
the forward's signature and what is not a floating-point array passed
through. A backward's contract is also checked without finite differences
(`gradwidget._backward_contract`): linear in dout, gradients in their arguments'
shapes (`gradwidget._returned`), no harmful writes into dout or the cache.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ._array_checks import (
    cotangent_generator,
    described,
    flat_cotangent,
    float_dtype,
    name_of,
    output_layout,
    projected_check,
    rediagnosed,
    require_callable,
    valid_options,
)
from ._backward_contract import backward_contract, changed_parts, private_copy
from ._causes import EXPLAINED
from ._check import GradientCheckError, run_check
from ._differences import default_steps, differences, point_scales
from ._evaluate import make_evaluator, note_exception
from ._evidence import Contract, Subject
from ._options import InputError, OptionError
from ._params import Layout
from ._projection import Projection
from ._result import CheckResult
from ._returned import ReturnedGradients
from ._verdict import SWAPPED, Status, Verdict

__all__ = ["argument_names", "assert_layer", "check_layer", "check_loss"]


def check_layer(forward: Callable[..., Any], backward: Callable[..., Any], *args: Any, wrt: Any = None,
                dout: Any = None, **options: Any) -> CheckResult:
    """Check a layer's backward pass against finite differences of its forward pass.

    The course convention: ``out, cache = forward(*args)`` and
    ``dx, dw, ... = backward(dout, cache)``. A forward with several outputs
    returns ``(out1, out2, ..., cache)`` and its backward takes
    ``backward(dout1, dout2, ..., cache)``. The check compares the backward's
    gradients with the gradient of ``<dout, out>`` by finite differences of
    the forward, and, where outputs x inputs is at most 10**6 (``MAX_PAIRS``), the whole
    Jacobian pair by pair (one backward call per output entry). The backward
    is also checked for linearity in ``dout`` (``ignores-dout``), for the
    shapes it returns (``broadcast``, ``swapped``), and for writes into
    ``dout`` or the cache that change its result (``mutates-input``).

    Parameters
    ----------
    forward : callable
        ``forward(*args)`` returns ``(out, cache)``.
    backward : callable
        ``backward(dout, cache)`` returns one gradient per differentiated
        argument, in the forward's order (a tuple, or one array).
    *args
        The forward's arguments. Floating-point arrays are differentiated;
        anything else (a ``conv_param`` dict, integer labels, a mask) is
        passed through as given.
    wrt : int, str or sequence of them, optional
        The arguments to differentiate, by position or by name (default:
        every floating-point array). The backward may return gradients for
        just these or for every floating-point array.
    dout : array or tuple of arrays, optional
        The upstream gradient, in the output's shape (default: random
        normal, drawn with ``seed``).
    **options
        ``method``, ``eps``, ``tol``, ``precision``, ``sample``,
        ``directions``, ``executor``, ``seed``, ``progress`` as for
        :func:`gradwidget.check`; ``names``, one name per argument.

    Returns
    -------
    CheckResult
        Blocks are the differentiated arguments, named as in the forward's
        signature (or by ``names``).

    Examples
    --------
    >>> import numpy as np, gradwidget as gw
    >>> def affine_forward(x, w, b):
    ...     return x @ w + b, (x, w)
    >>> def affine_backward(dout, cache):
    ...     x, w = cache
    ...     return dout @ w.T, x.T @ dout, dout.sum(axis=0)
    >>> rng = np.random.default_rng(0)
    >>> x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)
    >>> gw.check_layer(affine_forward, affine_backward, x, w, b, seed=0).verdict
    'passed'
    """
    opts = valid_options(options, "check_layer")
    require_callable(forward, "forward")
    require_callable(backward, "backward")
    names = _given_names(opts.names, len(args)) or argument_names(forward, len(args))
    opts = replace(opts, names=None)  # they name the arguments, not blocks of one of them
    chosen = _differentiated(args, names, wrt)
    if not chosen:
        lists = [n for n, a in zip(names, args) if isinstance(a, (list, tuple))]
        hint = f" ({lists[0]} is a {type(args[names.index(lists[0])]).__name__}: pass np.asarray({lists[0]}))" \
            if lists else ""
        raise InputError(f"{name_of(forward, 'forward')} has no floating-point array argument to differentiate "
                         f"(arguments: {', '.join(names) or 'none'}){hint}; pass wrt= to choose")
    _require_finite({names[k]: args[k] for k in chosen})
    fname, bname = name_of(forward, "forward"), name_of(backward, "backward")
    layer = _Layer(forward, backward, args, chosen, names, fname, bname)
    outputs, dtype = layer.outputs()
    rng = cotangent_generator(opts.seed)
    cotangent = flat_cotangent(dout, outputs, rng, "dout", fname)
    x = {names[k]: np.asarray(args[k]) for k in chosen}
    returned = ReturnedGradients([names[k] for k in chosen], [np.shape(args[k]) for k in chosen],
                                 [names[k] for k in layer.floating], bname, fname)
    contract = _layer_contract(layer, returned, cotangent, outputs, rng)
    passed = [names[k] for k in range(len(args)) if k not in chosen]
    notes = tuple(f"{n} is {_kind(args[names.index(n)])}: it is passed through, not differentiated" for n in passed)
    described = "given" if dout is not None else "random" + (f", seed {opts.seed}" if opts.seed is not None else "")
    subject = Subject("layer", fname, bname, "the point",
                      f"{bname} against {fname}: {', '.join('d' + names[k] for k in chosen)}; dout {described}",
                      notes)

    def gradient(xs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # the forward (for the cache) runs on copies: a forward that writes into its input is the forward's fault
        own = {name: value.copy() for name, value in xs.items()}
        return dict(zip(returned.names, returned.adapt(layer.backward_at(own, _douts(outputs, cotangent)))))

    def rows(xs: dict[str, np.ndarray], layout: Layout, douts: Iterable[np.ndarray]) -> np.ndarray:
        cache = layer.cache_at({name: value.copy() for name, value in xs.items()})
        return np.stack([layout.flatten_like(dict(zip(returned.names, returned.adapt(
            layer.call_backward(_douts(outputs, e), cache)))), bname)[0] for e in douts])

    result = projected_check(layer.output_at, gradient, x, opts, subject, outputs, cotangent, rows, dtype)
    contract = replace(contract, faults={**returned.findings, **_roles_swapped(layer, result, outputs, cotangent)})

    def rerun(theta: dict[str, Any], **given: Any) -> CheckResult:
        moved = list(args)
        for name, value in theta.items():
            moved[names.index(name)] = value
        given["names"] = names
        return check_layer(forward, backward, *moved, wrt=tuple(theta), dout=dout, **given)

    return rediagnosed(result, rerun, contract=contract, mismatched=dict(returned.mismatched))


def check_loss(loss: Callable[..., Any], *args: Any, wrt: Any = None, **options: Any) -> CheckResult:
    """Check a scalar loss layer that returns its own gradients: ``loss, dx = softmax_loss(x, y)``.

    ``loss(*args)`` returns ``(value, grads)``: one gradient per
    differentiated argument (a tuple, or one array). Arguments that are not
    floating-point arrays (labels, a regularization strength given as a
    float) are passed through. Takes the options of :func:`gradwidget.check`.

    Examples
    --------
    >>> import numpy as np, gradwidget as gw
    >>> def square_loss(x, y):
    ...     return 0.5 * np.sum((x - y) ** 2), x - y
    >>> rng = np.random.default_rng(0)
    >>> gw.check_loss(square_loss, rng.normal(size=(3, 2)), np.zeros((3, 2)), wrt="x").verdict
    'passed'
    """
    opts = valid_options(options, "check_loss")
    require_callable(loss, "loss")
    names = argument_names(loss, len(args))
    chosen = _differentiated(args, names, wrt)
    lname = name_of(loss, "loss")
    if not chosen:
        raise InputError(f"{lname} has no floating-point array argument to differentiate; pass wrt= to choose")
    floating = [k for k, a in enumerate(args) if _is_float_array(a)]
    returned = ReturnedGradients([names[k] for k in chosen], [np.shape(args[k]) for k in chosen],
                                 [names[k] for k in floating], lname, lname)

    def value_and_gradients(xs: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
        given = list(args)
        for k in chosen:
            given[k] = xs[names[k]]
        answer = loss(*given)
        if not (isinstance(answer, tuple) and len(answer) == 2):
            raise InputError(f"{lname} must return (loss, grads); it returned {described(answer)}")
        return answer[0], dict(zip(returned.names, returned.adapt(answer[1])))

    x = {names[k]: np.asarray(args[k]) for k in chosen}
    subject = Subject("layer", lname, lname, "the point",
                      f"{lname}'s gradients: {', '.join('d' + names[k] for k in chosen)}",
                      tuple(f"{names[k]} is {_kind(args[k])}: it is passed through, not differentiated"
                            for k in range(len(args)) if k not in chosen))
    try:
        result = run_check(value_and_gradients, None, x, opts)
    except InputError as exc:
        raise InputError(subject.words(str(exc))) from None
    def rerun(theta: dict[str, Any], **given: Any) -> CheckResult:
        moved = list(args)
        for name, value in theta.items():
            moved[names.index(name)] = value
        given.pop("names", None)
        return check_loss(loss, *moved, wrt=tuple(theta), **given)

    return rediagnosed(result, rerun, subject=subject, contract=Contract(faults=dict(returned.findings)),
                       mismatched=dict(returned.mismatched))


def assert_layer(forward: Callable[..., Any], backward: Callable[..., Any], *args: Any,
                 allow_inconclusive: bool = False, **options: Any) -> CheckResult:
    """:func:`check_layer`, raising `GradientCheckError` (an AssertionError) unless it passes.

    Parameters
    ----------
    allow_inconclusive : bool, default False
        Accept an inconclusive verdict as well as a pass.

    Returns
    -------
    CheckResult
    """
    result = check_layer(forward, backward, *args, **options)
    if not (result.passed or (allow_inconclusive and result.verdict == Verdict.INCONCLUSIVE.label)):
        raise GradientCheckError(str(result), result)
    return result


class _Layer:
    """A forward and a backward with their arguments: calls with the differentiated ones replaced."""

    def __init__(self, forward: Callable[..., Any], backward: Callable[..., Any], args: Sequence[Any],
                 chosen: list[int], names: list[str], fname: str, bname: str) -> None:
        self.forward, self.backward, self.args, self.chosen, self.names = forward, backward, args, chosen, names
        self.fname, self.bname = fname, bname
        self.douts = _dout_count(backward)  # the upstream gradients the backward takes, when its signature says
        self.floating = [k for k, a in enumerate(args) if _is_float_array(a)]
        self.last_given: tuple[Any, Any] | None = None  # the dout and cache of the latest backward call
        # Copies of what the functions are given, until they are seen not to write into it.
        self.copy_passed = self.copy_for_backward = True

    def forward_at(self, xs: dict[str, np.ndarray], given: list[Any] | None = None) -> tuple[Any, Any]:
        """``(out, cache)``: out an array or a tuple of arrays; ``given``: the arguments passed through."""
        if given is None:
            given = [private_copy(a) for a in self.args] if self.copy_passed else list(self.args)
        for k in self.chosen:
            given[k] = xs[self.names[k]]
        answer = self.forward(*given)
        if not isinstance(answer, tuple) or len(answer) < 2:
            raise InputError(f"{self.fname} must return (out, cache); it returned {described(answer)}: return the "
                             "output and what the backward needs")
        if len(answer) > 2 and self.douts == 1:
            parts = ", ".join(described(part) for part in answer[1:])
            raise InputError(f"{self.fname} returned {len(answer)} values, but {self.bname} takes (dout, cache), so "
                             f"{self.fname} must return (out, cache): the first ({described(answer[0])}) would be out "
                             f"and the other {len(answer) - 1} ({parts}) the cache. Return them as one: "
                             "`return out, (a, b)`")
        out = answer[0] if len(answer) == 2 else tuple(answer[:-1])
        return out, answer[-1]

    def outputs(self) -> tuple[Layout, np.dtype]:
        """The output's structure and dtype at the given arguments (and whether the forward writes into them)."""
        given = [private_copy(a) for a in self.args]
        try:
            out, _ = self.forward_at({self.names[k]: np.array(self.args[k], dtype=float) for k in self.chosen}, given)
        except Exception as exc:
            note_exception(exc, f"raised by {self.fname} at the given arguments")
            raise
        self.copy_passed = any(changed_parts(self.args[k], given[k], "") for k in range(len(given))
                               if k not in self.chosen)
        if isinstance(out, tuple):  # several outputs, then the cache
            for k, part in enumerate(out):
                if not isinstance(part, np.ndarray) or part.dtype.kind not in "biuf":
                    raise InputError(f"{self.fname} returned {len(out) + 1} values, taken as {len(out)} outputs and a "
                                     f"cache (the last), but output {k} is {described(part)}, not an array of "
                                     "numbers: return (out, cache), or several output arrays followed by the cache")
        return output_layout(out, self.fname), float_dtype(out)

    def output_at(self, xs: dict[str, np.ndarray]) -> Any:
        """The forward's output at ``xs`` (a method, not a closure: an executor's worker processes get it pickled)."""
        return self.forward_at(xs)[0]

    def cache_at(self, xs: dict[str, np.ndarray]) -> Any:
        try:
            return self.forward_at(xs)[1]
        except Exception as exc:
            note_exception(exc, f"raised by {self.fname}, called for the cache {self.bname} needs")
            raise

    def call_backward(self, dout: Any, cache: Any) -> Any:
        given = (private_copy(dout), private_copy(cache)) if self.copy_for_backward else (dout, cache)
        self.last_given = given
        return self.run_backward(*given)

    def run_backward(self, dout: Any, cache: Any) -> Any:
        """The backward on exactly these objects (a list of douts for a forward with several outputs).

        What it returns is copied at once: a backward may return an array it keeps (``dx = cache; dx *= dout``),
        which a later call on the same cache would change under the check.
        """
        douts = list(dout) if isinstance(dout, list) else [dout]
        try:
            answer = self.backward(*douts, cache)
        except Exception as exc:
            note_exception(exc, f"raised by {self.bname}")
            raise
        return private_copy(answer)

    def backward_at(self, xs: dict[str, np.ndarray], dout: Any) -> Any:
        return self.call_backward(dout, self.cache_at(xs))


def _layer_contract(layer: _Layer, returned: ReturnedGradients, cotangent: np.ndarray, outputs: Layout,
                    rng: np.random.Generator) -> Contract:
    """The backward's contract at the given arguments (see `backward_contract`)."""
    at_args = {layer.names[k]: np.array(layer.args[k], dtype=float) for k in layer.chosen}  # copies: a forward
    # that writes into its input must not reach the caller's arrays
    cache = layer.cache_at(at_args)
    latest: dict[str, Any] = {}

    def gradients(v: np.ndarray, fresh: bool) -> list[np.ndarray]:
        if fresh:
            answer = layer.call_backward(_douts(outputs, v), cache)
            latest["given"] = layer.last_given
        else:  # again on what the previous call was given, and perhaps wrote into
            answer = layer.run_backward(*latest["given"])
        return [np.asarray(g).ravel() for g in returned.adapt(answer)]

    def writes() -> list[str]:
        dout_given, cache_given = latest["given"]
        written = (changed_parts(_douts(outputs, cotangent), dout_given, "dout")
                   + changed_parts(cache, cache_given, "the cache"))
        layer.copy_for_backward = bool(written)  # later calls share the cache when the backward leaves it alone
        return written

    return backward_contract(gradients, cotangent, returned.names, rng, writes)


def _roles_swapped(layer: _Layer, result: CheckResult, outputs: Layout, cotangent: np.ndarray
                   ) -> dict[str, tuple[str, str]]:
    """Two arguments of one shape whose roles the backward exchanged: its gradients are right with them swapped.

    A cache unpacked in another order than the forward packed it (``w, x =
    cache`` for ``x, w``) gives, for square arguments, exactly the gradients
    at the point with the two exchanged. That is tested, for the first pair
    of one shape among the failing blocks, against a numeric gradient there
    (one central difference per entry of the two).
    """
    ev = result.evidence
    if result.passed or ev.directional is not None or ev.pairs is None:
        return {}
    failing = {b.name for b in ev.layout.blocks if (ev.status[b.slice] == Status.WRONG).any()}
    for first, second in itertools.combinations(ev.layout.blocks, 2):
        if first.shape != second.shape or not {first.name, second.name} & failing:
            continue
        point = ev.point.astype(np.float64)
        point[first.slice], point[second.slice] = ev.point[second.slice], ev.point[first.slice]
        cost = Projection(layer.output_at, outputs, cotangent, layer.fname)
        evaluator = make_evaluator(cost, ev.layout, point, pair=False)
        positions = np.r_[np.arange(first.start, first.stop), np.arange(second.start, second.stop)]
        steps = default_steps("central", point_scales(point, [b.slice for b in ev.layout.blocks]),
                              ev.noise.unit)[positions]
        there, _ = differences(evaluator, "central", positions, steps, float(cost(ev.layout.views(point.copy()))))
        a, here = ev.analytic[positions], ev.numeric[positions]
        if np.linalg.norm(a - there) <= EXPLAINED * np.linalg.norm(a - here):
            said = (f"{layer.bname} gives d{first.name} and d{second.name} as if {first.name} and {second.name} were "
                    f"exchanged: its gradients are right at the point with the two swapped. The cache is unpacked in "
                    f"another order than {layer.fname} packs it (`{second.name}, {first.name} = cache` for "
                    f"`{first.name}, {second.name}`?), or the two are used in each other's place.")
            return {first.name: (SWAPPED, said), second.name: (SWAPPED, said)}
    return {}


def _douts(outputs: Layout, v: np.ndarray) -> Any:
    """The upstream gradient in the output's structure: one array, or a list for several outputs."""
    views = outputs.views(v.copy())
    return list(views) if isinstance(views, (list, tuple)) else views


def _dout_count(backward: Callable[..., Any]) -> int | None:
    """How many upstream gradients ``backward(dout1, ..., cache)`` takes: its required positional parameters, less 1."""
    try:
        parameters = list(inspect.signature(backward).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in parameters if p.kind in positional and p.default is p.empty]
    return len(required) - 1 if len(required) >= 2 else None


def _given_names(names: tuple[str, ...] | None, count: int) -> list[str] | None:
    """``names=``, when given, one per argument."""
    if names is not None and len(names) != count:
        raise OptionError("names", f"names= has {len(names)} names for {count} arguments")
    return None if names is None else list(names)


def argument_names(fn: Callable[..., Any], count: int) -> list[str]:
    """The forward's parameter names for its first ``count`` positional arguments (``arg3`` where unknown)."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    named = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [named[k] if k < len(named) else f"arg{k}" for k in range(count)]


def _is_float_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _differentiated(args: Sequence[Any], names: list[str], wrt: Any) -> list[int]:
    """Positions of the arguments to differentiate (``wrt`` by position or name; default: float arrays)."""
    if wrt is None:
        return [k for k, a in enumerate(args) if _is_float_array(a)]
    wanted = [part.strip() for part in wrt.split(",")] if isinstance(wrt, str) else (
        [wrt] if isinstance(wrt, (int, np.integer)) else list(wrt))
    chosen = []
    for item in wanted:
        if isinstance(item, str):
            if item not in names:
                raise OptionError("wrt", f"wrt={wrt!r}: no argument named {item!r}; the arguments are "
                                         f"{', '.join(names)}")
            k = names.index(item)
        elif isinstance(item, (int, np.integer)) and -len(args) <= item < len(args):
            k = int(item) % len(args)
        else:
            raise OptionError("wrt", f"wrt={wrt!r}: {item!r} is neither an argument's name nor a position "
                                     f"below {len(args)}")
        value = args[k]
        if not (isinstance(value, np.ndarray) and value.dtype.kind in "f"):
            raise InputError(f"{names[k]} is {_kind(value)}: only floating-point arrays can be differentiated "
                             "(integer labels, token ids and masks are passed through)")
        chosen.append(k)
    return sorted(dict.fromkeys(chosen))


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an {value.dtype} array" if value.dtype.name[0] in "aeiou" else f"a {value.dtype} array"
    return "a " + type(value).__name__


def _require_finite(arrays: dict[str, np.ndarray]) -> None:
    for name, array in arrays.items():
        if array.size == 0:
            raise InputError(f"{name} is empty: there is nothing to check")
        bad = np.argwhere(~np.isfinite(array))
        if bad.size:
            where = ", ".join(map(str, bad[0].tolist()))
            raise InputError(f"{name} has {array[tuple(bad[0])]} at {name}[{where}]: the check point must be finite")
