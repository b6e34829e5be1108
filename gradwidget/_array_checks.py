"""Checks of array-valued functions: a VJP, a JVP, a Jacobian, a Hessian; and the engine they share with layers.

Each runs the gradient engine on ``J(x) = <v, f(x)>`` for a random
cotangent v: its gradient is the vector-Jacobian product ``v^T J_f``, so the
noise model, the second point, the inconclusive verdict and the diagnoses
are the gradient check's own. Where outputs x inputs is small, the first
look's calls of f also give the whole numeric Jacobian, which is compared
pair by pair with the analytic one (`JacobianPairs`). `gradwidget._layer`
checks a layer's backward through `projected_check`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from ._backward_contract import linearity
from ._check import run_check
from ._diagnose import diagnose
from ._differences import STENCILS
from ._evaluate import Evaluator, make_evaluator, note_exception
from ._evidence import Contract, Evidence, JacobianPairs, Subject
from ._options import CheckOptions, InputError, OptionError, counted, parse_options
from ._params import Layout, flatten
from ._progress import Progress
from ._projection import Projection, RecordingEvaluator, flat_output, numeric_columns
from ._result import CheckResult
from ._verdict import TRANSPOSE, Status

__all__ = ["COTANGENT_STREAM", "DOT_ROUNDING", "MAX_PAIRS", "PAIR_MARGIN", "check_hessian", "check_jacobian",
           "check_jvp", "check_vjp", "cotangent_generator", "described", "flat_cotangent", "float_dtype", "name_of",
           "one_hots", "output_layout", "projected_check", "rediagnosed", "require_callable", "valid_options"]

MAX_PAIRS = 10 ** 6
"""Outputs x inputs up to which the whole Jacobian is compared pair by pair."""

COTANGENT_STREAM = 0x646F7574
"""Mixed into ``seed`` for the cotangents, so that they are not the numbers a notebook drew its data with."""

PAIR_MARGIN = 4.0
"""A pair's tolerance: this many times its rounding and its curvature bound."""

DOT_ROUNDING = 64.0
"""``<v, Ju> - <J^T v, u>`` may be this many roundings of the products summed, times sqrt(n + m)."""


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
    opts = valid_options(options, "check_vjp")
    fname, vname = _names(f, vjp, "f", "vjp")
    outputs, value = _outputs_of(f, x, fname)
    rng = cotangent_generator(opts.seed)
    v = flat_cotangent(cotangent, outputs, rng, "cotangent", fname)

    def gradient(xs: Any) -> Any:
        return vjp(xs, outputs.views(v.copy()))

    def rows(xs: Any, layout: Layout, cotangents: Iterable[np.ndarray]) -> np.ndarray:
        return np.stack([layout.flatten_like(vjp(xs, outputs.views(e)), vname)[0] for e in cotangents])

    subject = Subject("vjp", fname, vname, "x", f"{vname} against {fname}: cotangent "
                      + ("given" if cotangent is not None else "random"))
    result = projected_check(f, gradient, x, opts, subject, outputs, v, rows, float_dtype(value))
    layout, point = result.evidence.layout, result.evidence.point
    fault = None
    if jvp is not None:
        require_callable(jvp, "jvp")
        fault = _dot_product_test(vjp, jvp, x, outputs, layout, rng, vname, name_of(jvp, "jvp"))

    def pulled(w: np.ndarray) -> list[np.ndarray]:
        flat = layout.flatten_like(vjp(layout.views(point.copy()), outputs.views(w.copy())), vname)[0]
        return [flat[b.slice] for b in layout.blocks]

    names = [b.name for b in layout.blocks]
    ignores, constant = linearity(pulled, v, pulled(v), names, rng)
    contract = Contract(ignores_dout=ignores, constant_in_dout=constant,
                        faults={} if fault is None else {names[0]: fault})
    return rediagnosed(result, lambda theta, **given: check_vjp(f, vjp, theta, cotangent=cotangent, jvp=jvp,
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
    opts = valid_options(options, "check_jvp")
    fname, jname = _names(f, jvp, "f", "jvp")
    outputs, value = _outputs_of(f, x, fname)
    layout, _ = flatten(x, None, opts.names)
    if outputs.size * layout.size > MAX_PAIRS:
        raise InputError(f"check_jvp builds the Jacobian from one {jname} call per input entry, and here it has "
                         f"{outputs.size} x {layout.size} pairs, more than {MAX_PAIRS:,}: check {jname} on a "
                         "smaller x, or check the matching VJP with check_vjp (which needs no Jacobian)")

    def columns(xs: Any) -> np.ndarray:
        return np.stack([flat_output(jvp(xs, layout.views(e)), outputs, jname) for e in one_hots(layout.size)], axis=1)

    subject = Subject("jvp", fname, jname, "x", f"{jname} against {fname}: every tangent e_i")
    result = _against_jacobian(f, columns, x, opts, subject, outputs, float_dtype(value))
    point, names = result.evidence.point, [b.name for b in layout.blocks]

    def pushed(u: np.ndarray) -> list[np.ndarray]:  # the JVP as a whole, under each input's name
        return [flat_output(jvp(layout.views(point.copy()), layout.views(u.copy())), outputs, jname)] * len(names)

    tangent = cotangent_generator(opts.seed).standard_normal(layout.size)
    ignores, constant = linearity(pushed, tangent, pushed(tangent), names, np.random.default_rng(opts.seed))
    return rediagnosed(result, lambda theta, **given: check_jvp(f, jvp, theta, **given),
                       contract=Contract(ignores_dout=ignores, constant_in_dout=constant))


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
        Jacobian pair by pair (outputs x inputs up to 10**6, ``MAX_PAIRS``).

    Examples
    --------
    >>> import numpy as np, gradwidget as gw
    >>> f = lambda x: np.array([x[0] ** 2 * x[1], 5 * x[0] + np.sin(x[1])])
    >>> jac = lambda x: np.array([[2 * x[0] * x[1], x[0] ** 2], [5.0, np.cos(x[1])]])
    >>> gw.check_jacobian(f, jac, np.array([1.0, 2.0])).verdict
    'passed'
    """
    opts = valid_options(options, "check_jacobian")
    fname, jname = _names(f, jac, "f", "jac")
    result = _jacobian_check(f, jac, x, opts, Subject("jacobian", fname, jname, "x",
                                                      f"{jname} against {fname}: the whole Jacobian"))
    return rediagnosed(result, lambda theta, **given: check_jacobian(f, jac, theta, **given))


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
    opts = valid_options(options, "check_hessian")
    gname, hname = _names(grad, hess, "grad", "hess")
    result = _jacobian_check(grad, hess, x, opts, Subject("hessian", gname, hname, "x",
                                                           f"{hname} against {gname}: the Hessian"))
    pairs, subject = result.evidence.pairs, result.evidence.subject
    if pairs is not None and pairs.analytic.shape[0] == pairs.analytic.shape[1]:
        subject = replace(subject, notes=(*subject.notes, _symmetry(pairs.analytic)))
    return rediagnosed(result, lambda theta, **given: check_hessian(grad, hess, theta, **given), subject=subject)


def projected_check(f: Callable[[Any], Any], gradient: Callable[[Any], Any], x: Any, opts: CheckOptions,
                    subject: Subject, outputs: Layout, cotangent: np.ndarray,
                    rows: Callable[[Any, Layout, Iterable[np.ndarray]], np.ndarray], dtype: np.dtype) -> CheckResult:
    """The gradient engine on ``<v, f(x)>``; the whole Jacobian compared where it is small enough."""
    if opts.names is None and isinstance(x, np.ndarray):
        opts = replace(opts, names=("x",))
    layout, _ = flatten(x, None, opts.names)
    whole = outputs.size * layout.size <= MAX_PAIRS and opts.executor is None and not opts.directions
    recorders: list[RecordingEvaluator] = []
    projection = Projection(f, outputs, cotangent, subject.cost, dtype)

    def evaluator_for(J: Any, lay: Layout, point: np.ndarray, *, dtype: Any = None, **rest: Any) -> Evaluator:
        if not whole:
            evaluator = make_evaluator(J, lay, point, dtype=dtype, **rest)
        else:
            recorders.append(RecordingEvaluator(J, lay, point, method=opts.method, dtype=dtype))
            evaluator = recorders[-1]
        evaluator.name = subject.cost
        return evaluator

    def named_gradient(xs: Any) -> Any:
        try:
            return gradient(xs)
        except Exception as exc:
            note_exception(exc, f"raised by {subject.gradient} at the point")
            raise

    try:
        result = run_check(projection, named_gradient, x, opts, evaluator_for)
    except InputError as exc:  # the engine's words (J, grad, theta) for this check's functions
        raise InputError(subject.words(str(exc))) from None
    ev = result.evidence
    pairs = None
    if recorders and recorders[-1].at_point is not None and ev.interrupted is None:
        try:
            with Progress(opts.progress) as progress:
                analytic = rows(ev.layout.views(ev.point.copy()), ev.layout,
                                one_hots(outputs.size, progress, "the Jacobian's rows"))
        except KeyboardInterrupt:  # the check itself is complete: keep it, without the whole Jacobian
            subject = replace(subject, notes=(*subject.notes, "the whole Jacobian was not compared: interrupted "
                                              f"while {subject.gradient} gave its rows"))
        else:
            pairs = _pairs(recorders[-1], ev, analytic, projection.dtype)
    return rediagnosed(result, subject=replace(subject, outputs=outputs, cotangent=cotangent), pairs=pairs)


def _against_jacobian(f: Callable[[Any], Any], jacobian: Callable[[Any], np.ndarray], x: Any, opts: CheckOptions,
                      subject: Subject, outputs: Layout, dtype: np.dtype) -> CheckResult:
    """`projected_check` for an analytic Jacobian ``(m, n)``: its gradient of ``<v, f>`` is ``v @ jacobian``."""
    v = cotangent_generator(opts.seed).standard_normal(outputs.size)

    def gradient(xs: Any) -> np.ndarray:
        return v @ jacobian(xs)

    return projected_check(f, gradient, x, opts, subject, outputs, v, lambda xs, *_: jacobian(xs), dtype)


def _dot_product_test(vjp: Callable[[Any, Any], Any], jvp: Callable[[Any, Any], Any], x: Any, outputs: Layout,
                      layout: Layout, rng: np.random.Generator, vname: str, jname: str) -> tuple[str, str] | None:
    """``<v, jvp(x, u)> = <vjp(x, v), u>`` for random u and v, to rounding; else the finding that says it."""
    u, v = rng.standard_normal(layout.size), rng.standard_normal(outputs.size)
    point = layout.flatten_like(x, "x")[0]
    along = flat_output(jvp(layout.views(point.copy()), layout.views(u.copy())), outputs, jname)
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
            raise InputError(f"{jname} returned {described(value)}; expected a real array")
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

    result = _against_jacobian(f, matrix, x, opts, subject, outputs, float_dtype(value))
    if transposed:
        named = result.evidence.layout.blocks[0].name
        return rediagnosed(result, contract=Contract(faults={named: (TRANSPOSE, transposed[0])}))
    return result


def _pairs(recorder: RecordingEvaluator, ev: Evidence, analytic: np.ndarray, dtype: np.dtype) -> JacobianPairs:
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


def rediagnosed(result: CheckResult, rerun: Callable[..., CheckResult] | None = None,
                 **changes: Any) -> CheckResult:
    """``result`` with its evidence changed and diagnosed again; ``rerun`` checks again as the result was made."""
    evidence = replace(result.evidence, **changes)
    call = result.call if rerun is None or result.call is None else replace(result.call, rerun=rerun)
    return CheckResult(evidence, diagnose(evidence), call)


def valid_options(options: dict[str, Any], entry: str) -> CheckOptions:
    for name in ("vectorized", "shapes"):
        if options.get(name) not in (None, False):  # the defaults (a %config's among them) are fine
            raise OptionError(name, f"{entry}() does not take {name}=: the function is called on one point at a "
                                    "time, in the structure its inputs are given in")
    return parse_options(options)


def require_callable(fn: Any, role: str) -> None:
    if not callable(fn):
        raise InputError(f"{role} must be callable, got {described(fn)}")


def _names(function: Any, derivative: Any, function_role: str, derivative_role: str) -> tuple[str, str]:
    """The two functions' names for messages (their roles where they have none), once both are seen callable."""
    require_callable(function, function_role)
    require_callable(derivative, derivative_role)
    return name_of(function, function_role), name_of(derivative, derivative_role)


def name_of(fn: Any, default: str) -> str:
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) and name.isidentifier() else default


def described(value: Any) -> str:
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
    try:
        layout, point = flatten(x)
    except InputError as exc:
        raise InputError(Subject("vjp", point="x").words(str(exc))) from None
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
    return output_layout(value, fname), value


def output_layout(out: Any, fname: str) -> Layout:
    """The structure of an output (an array, a tuple or a dict of arrays), or an error naming what is wrong."""
    try:
        outputs, _ = flatten(out, None, _output_names(out) if not isinstance(out, dict) else None)
    except InputError as exc:
        raise InputError(f"{fname}'s output at the given point: " + str(exc).replace("theta has", "it has")) from None
    return outputs


def float_dtype(value: Any) -> np.dtype:
    """The floating-point dtype of f's output (float64 when it has none): the rounding its values carry."""
    parts = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else [value]
    kinds = [np.asarray(p).dtype for p in parts]
    floats = [d for d in kinds if d.kind == "f"]
    return np.result_type(*floats) if floats else np.dtype(np.float64)


def one_hots(size: int, progress: Progress | None = None, phase: str = "") -> Iterator[np.ndarray]:
    """``e_0, e_1, ...`` of length ``size``, one at a time (never the ``size x size`` identity), with progress."""
    if progress is not None:
        progress.phase(size, phase)
    for k in range(size):
        unit = np.zeros(size)
        unit[k] = 1.0
        yield unit
        if progress is not None:
            progress.update(1)


def cotangent_generator(seed: int | None) -> np.random.Generator:
    """The generator of random cotangents: repeatable with ``seed``, and not ``default_rng(seed)``'s own stream.

    A notebook that draws ``x = default_rng(0).normal(...)`` and checks with
    ``seed=0`` would otherwise get ``dout == x``: ``x.T @ dout`` is then
    symmetric, and a transposed ``dw`` passes.
    """
    return np.random.default_rng(None if seed is None else [seed, COTANGENT_STREAM])


def flat_cotangent(given: Any, outputs: Layout, rng: np.random.Generator, what: str, fname: str) -> np.ndarray:
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


def _symmetry(hessian: np.ndarray) -> str:
    """A line saying whether the analytic Hessian is symmetric."""
    size = float(np.max(np.abs(hessian))) if hessian.size else 0.0
    asymmetry = float(np.max(np.abs(hessian - hessian.T))) if hessian.size else 0.0
    if size == 0 or asymmetry <= 64 * np.finfo(float).eps * size:
        return "the analytic Hessian is symmetric"
    i, j = np.unravel_index(int(np.argmax(np.abs(hessian - hessian.T))), hessian.shape)
    return (f"the analytic Hessian is not symmetric: H[{i}, {j}] = {hessian[i, j]:.6g} but H[{j}, {i}] = "
            f"{hessian[j, i]:.6g} (a Hessian of a smooth function is symmetric)")
