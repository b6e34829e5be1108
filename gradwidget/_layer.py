"""Checks of array-valued functions: a layer's backward, a VJP, a JVP, a Jacobian, a Hessian.

Each runs the gradient engine on ``J(x) = <v, f(x)>`` for a random
cotangent v: its gradient is the vector-Jacobian product ``v^T J_f``, so the
noise model, the second point, the inconclusive verdict and the diagnoses
are the gradient check's own. Where outputs x inputs is small, the first
look's calls of f also give the whole numeric Jacobian, which is compared
pair by pair with the analytic one (`JacobianPairs`). A layer's backward is
also checked for what needs no finite difference (`_contract`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ._check import GradientCheckError, run_check
from ._contract import backward_contract, changed_parts, private_copy
from ._diagnose import diagnose
from ._differences import STENCILS
from ._evaluate import Evaluator, make_evaluator, note_exception
from ._evidence import Contract, JacobianPairs, Subject
from ._options import CheckOptions, InputError, OptionError, counted, parse_options
from ._params import Layout, flatten
from ._projection import Projection, RecordingEvaluator, numeric_columns
from ._result import CheckResult
from ._shapes import ReturnedGradients
from ._verdict import TRANSPOSE, Status, Verdict

__all__ = ["MAX_PAIRS", "assert_layer", "check_hessian", "check_jacobian", "check_jvp", "check_layer", "check_loss",
           "check_vjp"]

MAX_PAIRS = 10 ** 6
"""Outputs x inputs up to which the whole Jacobian is compared pair by pair."""

COTANGENT_STREAM = 0x646F7574
"""Mixed into ``seed`` for the cotangents, so that they are not the numbers a notebook drew its data with."""

PAIR_MARGIN = 4.0
"""A pair's tolerance: this many times its rounding and its curvature bound."""

DOT_ROUNDING = 64.0
"""``<v, Ju> - <J^T v, u>`` may be this many roundings of the products summed, times sqrt(n + m)."""


# ---------------------------------------------------------------- entry points


def check_layer(forward: Callable[..., Any], backward: Callable[..., Any], *args: Any, wrt: Any = None,
                dout: Any = None, **options: Any) -> CheckResult:
    """Check a layer's backward pass against finite differences of its forward pass.

    The course convention: ``out, cache = forward(*args)`` and
    ``dx, dw, ... = backward(dout, cache)``. A forward with several outputs
    returns ``(out1, out2, ..., cache)`` and its backward takes
    ``backward(dout1, dout2, ..., cache)``. The check compares the backward's
    gradients with the gradient of ``<dout, out>`` by finite differences of
    the forward, and, where outputs x inputs is at most `MAX_PAIRS`, the whole
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
        :func:`gradwidget.check`.

    Returns
    -------
    CheckResult
        Blocks are the differentiated arguments, named as in the forward's
        signature.

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
    opts = _options(options, "check_layer")
    _require_callable(forward, "forward")
    _require_callable(backward, "backward")
    names = _argument_names(forward, len(args))
    chosen = _differentiated(args, names, wrt)
    if not chosen:
        lists = [n for n, a in zip(names, args) if isinstance(a, (list, tuple))]
        hint = f" ({lists[0]} is a {type(args[names.index(lists[0])]).__name__}: pass np.asarray({lists[0]}))" \
            if lists else ""
        raise InputError(f"{_name(forward, 'forward')} has no floating-point array argument to differentiate "
                         f"(arguments: {', '.join(names) or 'none'}){hint}; pass wrt= to choose")
    _require_finite({names[k]: args[k] for k in chosen})
    fname, bname = _name(forward, "forward"), _name(backward, "backward")
    layer = _Layer(forward, backward, args, chosen, names, fname, bname)
    outputs, dtype = layer.outputs()
    rng = _cotangent_generator(opts.seed)
    cotangent = _cotangent(dout, outputs, rng, "dout", fname)
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

    def rows(xs: dict[str, np.ndarray], layout: Layout) -> np.ndarray:
        cache = layer.cache_at({name: value.copy() for name, value in xs.items()})
        return np.stack([layout.flatten_like(dict(zip(returned.names, returned.adapt(
            layer.call_backward(_douts(outputs, e), cache)))), bname)[0] for e in np.eye(outputs.size)])

    result = _projected(layer.output_at, gradient, x, opts, subject, outputs, cotangent, rows,
                        dtype)
    contract = replace(contract, faults=dict(returned.findings))

    def rerun(theta: dict[str, Any], **given: Any) -> CheckResult:
        moved = list(args)
        for name, value in theta.items():
            moved[names.index(name)] = value
        given.pop("names", None)  # blocks are named after the forward's parameters
        return check_layer(forward, backward, *moved, wrt=tuple(theta), dout=dout, **given)

    return _rediagnosed(result, rerun, contract=contract)


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
    opts = _options(options, "check_loss")
    _require_callable(loss, "loss")
    names = _argument_names(loss, len(args))
    chosen = _differentiated(args, names, wrt)
    lname = _name(loss, "loss")
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
            raise InputError(f"{lname} must return (loss, grads); it returned {_described(answer)}")
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

    return _rediagnosed(result, rerun, subject=subject, contract=Contract(faults=dict(returned.findings)))


def check_vjp(f: Callable[[Any], Any], vjp: Callable[[Any, Any], Any], x: Any, *, cotangent: Any = None,
              jvp: Callable[[Any, Any], Any] | None = None, **options: Any) -> CheckResult:
    """Check a vector-Jacobian product: ``vjp(x, v)`` is the gradient of ``<v, f(x)>``.

    Parameters
    ----------
    f : callable
        ``f(x)`` returns an array (or a structure of arrays).
    vjp : callable
        ``vjp(x, v)`` returns the gradient of ``<v, f(x)>`` in x's structure.
    x : ndarray, dict or list of arrays
    cotangent : optional
        v, in f's output structure (default: random normal, drawn with ``seed``).
    jvp : callable, optional
        ``jvp(x, u)``, f's change along u: with it, the dot-product test
        ``<v, jvp(x, u)> = <vjp(x, v), u>`` for random u and v (code
        ``transpose`` when the two are not each other's transposes).
    **options
        As for :func:`check_layer`.

    Returns
    -------
    CheckResult

    Examples
    --------
    >>> import numpy as np, gradwidget as gw
    >>> A = np.arange(6.0).reshape(2, 3)
    >>> gw.check_vjp(lambda x: np.tanh(A @ x), lambda x, v: A.T @ (v * (1 - np.tanh(A @ x) ** 2)),
    ...              np.array([0.1, -0.2, 0.3])).verdict
    'passed'
    """
    opts = _options(options, "check_vjp")
    fname, vname = _names(f, vjp, "f", "vjp")
    outputs, value = _outputs_of(f, x, fname)
    rng = _cotangent_generator(opts.seed)
    v = _cotangent(cotangent, outputs, rng, "cotangent", fname)

    def gradient(xs: Any) -> Any:
        return vjp(xs, outputs.views(v.copy()))

    def rows(xs: Any, layout: Layout) -> np.ndarray:
        return np.stack([layout.flatten_like(vjp(xs, outputs.views(e)), vname)[0] for e in np.eye(outputs.size)])

    subject = Subject("vjp", fname, vname, "x", f"{vname} against {fname}: cotangent "
                      + ("given" if cotangent is not None else "random"))
    result = _projected(f, gradient, x, opts, subject, outputs, v, rows, _float_dtype(value))
    fault = None
    if jvp is not None:
        _require_callable(jvp, "jvp")
        fault = _dot_product_test(vjp, jvp, x, outputs, result.evidence.layout, rng, vname, _name(jvp, "jvp"))
    contract = None if fault is None else Contract(faults={result.evidence.layout.blocks[0].name: fault})
    return _rediagnosed(result, lambda theta, **given: check_vjp(f, vjp, theta, cotangent=cotangent, jvp=jvp,
                                                                 **given), contract=contract)


def check_jvp(f: Callable[[Any], Any], jvp: Callable[[Any, Any], Any], x: Any, **options: Any) -> CheckResult:
    """Check a Jacobian-vector product: ``jvp(x, u)`` is f's change along the tangent u.

    The JVP is called once per input entry with a one-hot tangent: those
    are the Jacobian's columns, checked as :func:`check_jacobian` checks a
    Jacobian. A Hessian-vector product is the JVP of the gradient:
    ``check_jvp(grad, hvp, x)``.

    Parameters
    ----------
    f : callable
    jvp : callable
        ``jvp(x, u)`` returns an array (or structure) in f's output structure.
    x : ndarray, dict or list of arrays
    **options
        As for :func:`check_layer`.

    Returns
    -------
    CheckResult
    """
    opts = _options(options, "check_jvp")
    fname, jname = _names(f, jvp, "f", "jvp")
    outputs, value = _outputs_of(f, x, fname)
    layout, _ = flatten(x, None, opts.names)

    def columns(xs: Any) -> np.ndarray:
        return np.stack([_flat(jvp(xs, layout.views(e)), outputs, jname) for e in np.eye(layout.size)], axis=1)

    subject = Subject("jvp", fname, jname, "x", f"{jname} against {fname}: every tangent e_i")
    result = _against_jacobian(f, columns, x, opts, subject, outputs, _float_dtype(value))
    return _rediagnosed(result, lambda theta, **given: check_jvp(f, jvp, theta, **given))


def check_jacobian(f: Callable[[Any], Any], jac: Callable[[Any], Any], x: Any, **options: Any) -> CheckResult:
    """Check an analytic Jacobian: ``jac(x)[i..., j...]`` is d f(x)[i...] / d x[j...].

    ``jac(x)`` has shape ``f(x).shape + x.shape`` (a Jacobian returned as
    ``x.shape + f(x).shape`` is named a transpose). When x or f(x) is a
    structure of arrays, ``jac(x)`` is one ``(m, n)`` matrix over the
    flattened outputs and inputs, each structure flattened block after block
    in row-major order.

    Parameters
    ----------
    f : callable
        ``f(x)`` returns an array (or a tuple or dict of arrays).
    jac : callable
        ``jac(x)``: the analytic Jacobian at x.
    x : ndarray, dict or list of arrays
    **options
        As for :func:`check_layer`.

    Returns
    -------
    CheckResult
        Blocks are x's arrays; ``result.evidence.pairs`` compares the
        Jacobian pair by pair (outputs x inputs up to `MAX_PAIRS`).

    Examples
    --------
    >>> import numpy as np, gradwidget as gw
    >>> f = lambda x: np.array([x[0] ** 2 * x[1], 5 * x[0] + np.sin(x[1])])
    >>> jac = lambda x: np.array([[2 * x[0] * x[1], x[0] ** 2], [5.0, np.cos(x[1])]])
    >>> gw.check_jacobian(f, jac, np.array([1.0, 2.0])).verdict
    'passed'
    """
    opts = _options(options, "check_jacobian")
    fname, jname = _names(f, jac, "f", "jac")
    result = _jacobian_check(f, jac, x, opts, Subject("jacobian", fname, jname, "x",
                                                      f"{jname} against {fname}: the whole Jacobian"))
    return _rediagnosed(result, lambda theta, **given: check_jacobian(f, jac, theta, **given))


def check_hessian(grad: Callable[[Any], Any], hess: Callable[[Any], Any], x: Any, **options: Any) -> CheckResult:
    """Check an analytic Hessian against finite differences of the gradient.

    The Hessian is the Jacobian of the gradient: ``hess(x)`` has shape
    ``x.shape + x.shape`` (an ``(n, n)`` matrix for a structure). The report
    also says whether the analytic Hessian is symmetric. For a
    Hessian-vector product, use ``check_jvp(grad, hvp, x)``.

    Parameters
    ----------
    grad : callable
        ``grad(x)`` returns the gradient, in x's structure (check it first
        with :func:`gradwidget.check`).
    hess : callable
        ``hess(x)``: the analytic Hessian at x.
    x : ndarray, dict or list of arrays
        The point (never modified).
    **options
        As for :func:`check_layer`.

    Returns
    -------
    CheckResult
        Its report's first lines say what was checked and whether the
        analytic Hessian is symmetric.

    Examples
    --------
    >>> import numpy as np, gradwidget as gw
    >>> grad = lambda x: np.array([2 * x[0] * x[1], x[0] ** 2 + 3 * x[1] ** 2])
    >>> hess = lambda x: np.array([[2 * x[1], 2 * x[0]], [2 * x[0], 6 * x[1]]])
    >>> gw.check_hessian(grad, hess, np.array([0.5, -1.0])).verdict
    'passed'
    """
    opts = _options(options, "check_hessian")
    gname, hname = _names(grad, hess, "grad", "hess")
    result = _jacobian_check(grad, hess, x, opts, Subject("hessian", gname, hname, "x",
                                                           f"{hname} against {gname}: the Hessian"))
    pairs, subject = result.evidence.pairs, result.evidence.subject
    if pairs is not None and pairs.analytic.shape[0] == pairs.analytic.shape[1]:
        subject = replace(subject, notes=(*subject.notes, _symmetry(pairs.analytic)))
    return _rediagnosed(result, lambda theta, **given: check_hessian(grad, hess, theta, **given), subject=subject)


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


# ---------------------------------------------------------------- the engine on <v, f>


def _projected(f: Callable[[Any], Any], gradient: Callable[[Any], Any], x: Any, opts: CheckOptions,
               subject: Subject, outputs: Layout, cotangent: np.ndarray,
               rows: Callable[[Any, Layout], np.ndarray], dtype: np.dtype) -> CheckResult:
    """The gradient engine on ``<v, f(x)>``; the whole Jacobian compared where it is small enough."""
    if opts.names is None and isinstance(x, np.ndarray):
        opts = replace(opts, names=("x",))
    layout, _ = flatten(x, None, opts.names)
    whole = outputs.size * layout.size <= MAX_PAIRS and opts.executor is None and not opts.directions
    recorders: list[RecordingEvaluator] = []
    projection = Projection(f, outputs, cotangent, subject.cost, dtype)

    def evaluator_for(J: Any, lay: Layout, point: np.ndarray, *, dtype: Any = None, **rest: Any) -> Evaluator:
        if not whole:
            return make_evaluator(J, lay, point, dtype=dtype, **rest)
        recorders.append(RecordingEvaluator(J, lay, point, method=opts.method, dtype=dtype))
        return recorders[-1]

    try:
        result = run_check(projection, gradient, x, opts, evaluator_for)
    except InputError as exc:  # the engine's words (J, grad, theta) for this check's functions
        raise InputError(subject.words(str(exc))) from None
    ev = result.evidence
    pairs = None
    if recorders and recorders[-1].at_point is not None and ev.interrupted is None:
        try:
            analytic = rows(ev.layout.views(ev.point.copy()), ev.layout)
        except KeyboardInterrupt:  # the check itself is complete: keep it, without the whole Jacobian
            subject = replace(subject, notes=(*subject.notes, "the whole Jacobian was not compared: interrupted "
                                              f"while {subject.gradient} gave its rows"))
        else:
            pairs = _pairs(recorders[-1], ev, analytic, projection.dtype)
    return _rediagnosed(result, subject=replace(subject, outputs=outputs, cotangent=cotangent), pairs=pairs)


def _against_jacobian(f: Callable[[Any], Any], jacobian: Callable[[Any], np.ndarray], x: Any, opts: CheckOptions,
                      subject: Subject, outputs: Layout, dtype: np.dtype) -> CheckResult:
    """`_projected` for an analytic Jacobian ``(m, n)``: its gradient of ``<v, f>`` is ``v @ jacobian``."""
    v = _cotangent_generator(opts.seed).standard_normal(outputs.size)

    def gradient(xs: Any) -> np.ndarray:
        return v @ jacobian(xs)

    return _projected(f, gradient, x, opts, subject, outputs, v, lambda xs, _: jacobian(xs), dtype)


def _dot_product_test(vjp: Callable[[Any, Any], Any], jvp: Callable[[Any, Any], Any], x: Any, outputs: Layout,
                      layout: Layout, rng: np.random.Generator, vname: str, jname: str) -> tuple[str, str] | None:
    """``<v, jvp(x, u)> = <vjp(x, v), u>`` for random u and v, to rounding; else the finding that says it."""
    u, v = rng.standard_normal(layout.size), rng.standard_normal(outputs.size)
    point = layout.flatten_like(x, "x")[0]
    along = _flat(jvp(layout.views(point.copy()), layout.views(u.copy())), outputs, jname)
    back = layout.flatten_like(vjp(layout.views(point.copy()), outputs.views(v.copy())), vname)[0]
    left, right = float(v @ along), float(back @ u)
    scale = float(np.abs(v) @ np.abs(along) + np.abs(back) @ np.abs(u))
    if abs(left - right) <= DOT_ROUNDING * np.finfo(float).eps * np.sqrt(u.size + v.size) * scale:
        return None
    return TRANSPOSE, (f"{jname} and {vname} are not each other's transposes: for random u and v, <v, {jname}(x, u)> "
                       f"= {left:.6g} but <{vname}(x, v), u> = {right:.6g}. The check below says whether {vname} "
                       f"agrees with finite differences; if it does, {jname} is wrong.")


def _jacobian_check(f: Callable[[Any], Any], jac: Callable[[Any], Any], x: Any, opts: CheckOptions,
                    subject: Subject) -> CheckResult:
    """`check_jacobian` (and `check_hessian`) with validated options: ``jac(x)`` as an ``(m, n)`` matrix."""
    fname, jname = subject.cost, subject.gradient
    outputs, value = _outputs_of(f, x, fname)
    layout, _ = flatten(x, None, opts.names)
    transposed: list[str] = []

    def matrix(xs: Any) -> np.ndarray:
        value = np.asarray(jac(xs))
        if value.dtype.kind not in "biuf":
            raise InputError(f"{jname} returned {_described(value)}; expected a real array")
        m, n = outputs.size, layout.size
        out_shape = outputs.blocks[0].shape if len(outputs.blocks) == 1 else (m,)
        in_shape = layout.blocks[0].shape if len(layout.blocks) == 1 else (n,)
        if value.size == m * n and value.shape in (out_shape + in_shape, (m, n)):
            return value.reshape(m, n).astype(np.float64)
        if value.size == m * n and value.shape in (in_shape + out_shape, (n, m)) and m != n:
            if not transposed:
                transposed.append(f"{jname} returned shape {value.shape}, expected {out_shape + in_shape} = "
                                  f"{fname}(x).shape + x.shape: the transpose. Return its transpose "
                                  f"(d {fname}_i / d x_j at [i, j]).")
            return value.reshape(n, m).T.astype(np.float64)
        raise InputError(f"{jname} returned shape {value.shape}; expected {out_shape + in_shape} "
                         f"({fname}(x).shape + x.shape)")

    result = _against_jacobian(f, matrix, x, opts, subject, outputs, _float_dtype(value))
    if transposed:
        named = result.evidence.layout.blocks[0].name
        return _rediagnosed(result, contract=Contract(faults={named: (TRANSPOSE, transposed[0])}))
    return result


def _pairs(recorder: RecordingEvaluator, ev: Any, analytic: np.ndarray, dtype: np.dtype) -> JacobianPairs:
    """Each pair of the Jacobian judged against its own tolerance, in the columns the check measured."""
    numeric, reach, curvature, steps = numeric_columns(recorder, ev.method)
    stencil = STENCILS.get(ev.method)
    gain = stencil.noise_gain if stencil is not None else 0.0
    unit = max(float(np.finfo(dtype).eps) if dtype.kind == "f" else 0.0, ev.noise.computed_unit)
    # an output made of large terms that cancel is rounded at the terms' size: sum_i |d f_j / d x_i * x_i|
    terms = np.nan_to_num(np.abs(numeric)) @ np.abs(ev.point.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        reach = np.maximum(reach, terms[:, None] / steps[None, :])
    tolerance = PAIR_MARGIN * (gain * unit * reach + curvature + ev.noise.grad_unit * np.abs(analytic))
    with np.errstate(invalid="ignore"):
        wrong = (np.abs(analytic - numeric) > tolerance) & (ev.status == Status.WRONG)[None, :]
    return JacobianPairs(analytic, numeric, tolerance, wrong)


def _rediagnosed(result: CheckResult, rerun: Callable[..., CheckResult] | None = None,
                 **changes: Any) -> CheckResult:
    """``result`` with its evidence changed and diagnosed again; ``rerun`` checks again as the result was made."""
    evidence = replace(result.evidence, **changes)
    problem = result.problem if rerun is None or result.problem is None else replace(result.problem, rerun=rerun)
    return CheckResult(evidence, diagnose(evidence), problem)


# ---------------------------------------------------------------- a layer


class _Layer:
    """A forward and a backward with their arguments: calls with the differentiated ones replaced."""

    def __init__(self, forward: Callable[..., Any], backward: Callable[..., Any], args: Sequence[Any],
                 chosen: list[int], names: list[str], fname: str, bname: str) -> None:
        self.forward, self.backward, self.args, self.chosen, self.names = forward, backward, args, chosen, names
        self.fname, self.bname = fname, bname
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
            raise InputError(f"{self.fname} must return (out, cache); it returned {_described(answer)}: return the "
                             "output and what the backward needs")
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
        return _output_layout(out, self.fname), _float_dtype(out)

    def output_at(self, xs: dict[str, np.ndarray]) -> Any:
        """The forward's output at ``xs`` (a method, not a closure: an executor's worker processes get it pickled)."""
        return self.forward_at(xs)[0]

    def cache_at(self, xs: dict[str, np.ndarray]) -> Any:
        return self.forward_at(xs)[1]

    def call_backward(self, dout: Any, cache: Any) -> Any:
        given = (private_copy(dout), private_copy(cache)) if self.copy_for_backward else (dout, cache)
        self.last_given = given
        douts = list(given[0]) if isinstance(given[0], list) else [given[0]]
        return self.backward(*douts, given[1])

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
            dout_given, cache_given = latest["given"]
            douts = list(dout_given) if isinstance(dout_given, list) else [dout_given]
            answer = layer.backward(*douts, cache_given)
        return [np.asarray(g).ravel() for g in returned.adapt(answer)]

    def writes() -> list[str]:
        dout_given, cache_given = latest["given"]
        written = (changed_parts(_douts(outputs, cotangent), dout_given, "dout")
                   + changed_parts(cache, cache_given, "the cache"))
        layer.copy_for_backward = bool(written)  # later calls share the cache when the backward leaves it alone
        return written

    return backward_contract(gradients, cotangent, returned.names, rng, writes)


def _douts(outputs: Layout, v: np.ndarray) -> Any:
    """The upstream gradient in the output's structure: one array, or a list for several outputs."""
    views = outputs.views(v.copy())
    return list(views) if isinstance(views, (list, tuple)) else views


# ---------------------------------------------------------------- arguments and outputs


def _options(options: dict[str, Any], entry: str) -> CheckOptions:
    for name in ("vectorized", "shapes"):
        if options.get(name) not in (None, False):  # the defaults (a %config's among them) are fine
            raise OptionError(name, f"{entry}() does not take {name}=: the function is called on one point at a "
                                    "time, in the structure its inputs are given in")
    return parse_options(options)


def _require_callable(fn: Any, role: str) -> None:
    if not callable(fn):
        raise InputError(f"{role} must be callable, got {_described(fn)}")


def _names(function: Any, derivative: Any, function_role: str, derivative_role: str) -> tuple[str, str]:
    """The two functions' names for messages (their roles where they have none), once both are seen callable."""
    _require_callable(function, function_role)
    _require_callable(derivative, derivative_role)
    return _name(function, function_role), _name(derivative, derivative_role)


def _name(fn: Any, default: str) -> str:
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) and name.isidentifier() else default


def _argument_names(fn: Callable[..., Any], count: int) -> list[str]:
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


def _described(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return "None" if value is None else f"a {type(value).__name__}"


def _output_names(out: Any) -> list[str] | None:
    if isinstance(out, tuple):
        return [f"out{k}" for k in range(len(out))]
    return ["out"]


def _outputs_of(f: Callable[[Any], Any], x: Any, fname: str) -> tuple[Layout, Any]:
    """The structure of f's output at x (f called on a copy), and the output."""
    layout, point = flatten(x)
    try:
        value = f(layout.views(point.copy()))
    except Exception as exc:
        note_exception(exc, f"raised by {fname} at x")
        raise
    if isinstance(value, (tuple, list)) and value and not np.isscalar(value[0]):
        value = tuple(value)
    elif not isinstance(value, dict):
        value = np.asarray(value)
        if value.dtype.kind not in "biufc":
            raise InputError(f"{fname} must return an array; it returned a {type(value.item()).__name__}")
    return _output_layout(value, fname), value


def _output_layout(out: Any, fname: str) -> Layout:
    """The structure of an output (an array, a tuple or a dict of arrays), or an error naming what is wrong."""
    try:
        outputs, _ = flatten(out, None, _output_names(out) if not isinstance(out, dict) else None)
    except InputError as exc:
        raise InputError(f"{fname}'s output at the given point: " + str(exc).replace("theta has", "it has")) from None
    return outputs


def _require_finite(arrays: dict[str, np.ndarray]) -> None:
    for name, array in arrays.items():
        if array.size == 0:
            raise InputError(f"{name} is empty: there is nothing to check")
        bad = np.argwhere(~np.isfinite(array))
        if bad.size:
            where = ", ".join(map(str, bad[0].tolist()))
            raise InputError(f"{name} has {array[tuple(bad[0])]} at {name}[{where}]: the check point must be finite")


def _float_dtype(value: Any) -> np.dtype:
    """The floating-point dtype of f's output (float64 when it has none): the rounding its values carry."""
    parts = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else [value]
    kinds = [np.asarray(p).dtype for p in parts]
    floats = [d for d in kinds if d.kind == "f"]
    return np.result_type(*floats) if floats else np.dtype(np.float64)


def _cotangent_generator(seed: int | None) -> np.random.Generator:
    """The generator of random cotangents: repeatable with ``seed``, and not ``default_rng(seed)``'s own stream.

    A notebook that draws ``x = default_rng(0).normal(...)`` and checks with
    ``seed=0`` would otherwise get ``dout == x``: ``x.T @ dout`` is then
    symmetric, and a transposed ``dw`` passes.
    """
    return np.random.default_rng(None if seed is None else [seed, COTANGENT_STREAM])


def _cotangent(given: Any, outputs: Layout, rng: np.random.Generator, what: str, fname: str) -> np.ndarray:
    """The flat cotangent: ``given`` checked against f's output structure, or random normal."""
    if given is None:
        return rng.standard_normal(outputs.size)
    try:
        flat, transposed = outputs.flatten_like(given, what)
    except InputError as exc:
        raise InputError(f"{exc}: {what} must have the shape of {fname}'s output") from None
    if transposed:
        shape = outputs.blocks[0].shape
        raise InputError(f"{what} has shape {shape[::-1]} but {fname}'s output has shape {shape}")
    if not np.isfinite(flat).all():
        raise InputError(f"{what} has NaN or inf in {counted(int((~np.isfinite(flat)).sum()), 'entry')}")
    return flat


def _flat(value: Any, outputs: Layout, what: str) -> np.ndarray:
    flat, transposed = outputs.flatten_like(value, what)
    if transposed:
        shape = outputs.blocks[0].shape
        raise InputError(f"{what} returned shape {shape[::-1]}, expected f's output shape {shape}")
    return flat


def _symmetry(hessian: np.ndarray) -> str:
    """A line saying whether the analytic Hessian is symmetric."""
    size = float(np.max(np.abs(hessian))) if hessian.size else 0.0
    asymmetry = float(np.max(np.abs(hessian - hessian.T))) if hessian.size else 0.0
    if size == 0 or asymmetry <= 64 * np.finfo(float).eps * size:
        return "the analytic Hessian is symmetric"
    i, j = np.unravel_index(int(np.argmax(np.abs(hessian - hessian.T))), hessian.shape)
    return (f"the analytic Hessian is not symmetric: H[{i}, {j}] = {hessian[i, j]:.6g} but H[{j}, {i}] = "
            f"{hessian[j, i]:.6g} (a Hessian of a smooth function is symmetric)")

