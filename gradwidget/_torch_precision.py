"""A low-precision torch function's gradient judged against a float64 reference, to what its precision can do.

A bfloat16, float16 or float32 backward cannot match finite differences to
float64's resolution, and a fixed tolerance either hides a real loss of
precision or flags the rounding every such kernel has. Kernel tests judge
it as the error a plain implementation makes in the same precision: the
function's gradient, against the reference's in float64, may be off by at
most `PLAIN_MARGIN` times the reference's own gradient in that precision.
Here that is one check of three parts:

1. the formula: the function run in float64 (every floating-point cast and
   ``dtype=`` inside it raised to float64, see `Float64`), its backward against
   finite differences by the whole engine;
2. the truth: the reference's gradient on float64 copies of the inputs, with
   one upstream gradient representable in the outputs' dtypes;
3. the precision: per input, ``max |g - truth| <= PLAIN_MARGIN * max
   |g_plain - truth| + ROUNDING_ULPS`` ulps of the largest entry, where
   ``g`` is the function's gradient at the inputs as given and ``g_plain``
   the reference's.

The reference is by default the function itself with each custom
``autograd.Function`` replaced by its forward, differentiated by autograd
(`plain`): the same arithmetic without the hand-written backward. A
function with no custom Function is its own plain implementation: its
precision is then what autograd gives, and the report says so. Requires torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.autograd.function import BackwardCFunction, _is_setup_context_defined
from torch.overrides import TorchFunctionMode

from ._array_checks import rediagnosed
from ._evidence import Promotion
from ._frameworks import as_real
from ._noise import block_rms
from ._options import InputError
from ._result import CheckResult
from ._torch_modes import name_of, tensors_of

__all__ = ["LOW_PRECISION", "PLAIN_MARGIN", "ROUNDING_ULPS", "Float64", "by_reference", "plain"]

LOW_PRECISION = (torch.float16, torch.bfloat16, torch.float32)
"""Input dtypes judged by reference (float64 ones are checked against finite differences alone)."""

PLAIN_MARGIN = 2.0
"""The function's gradient may be off by this many times the plain implementation's error (kernel tests use 2)."""

ROUNDING_ULPS = 2.0
"""...and by this many ulps of the block's largest entry: rounding the true gradient to the dtype costs half of one."""

AGREES_IN_FLOAT64 = 1e-6
"""The reference's float64 gradient and the function's agree to this share of the largest entry, or they differ."""

_WIDER = {torch.float16: torch.float64, torch.bfloat16: torch.float64, torch.float32: torch.float64,
          torch.complex32: torch.complex128, torch.complex64: torch.complex128}
_CASTS = {torch.Tensor.half: torch.Tensor.double, torch.Tensor.bfloat16: torch.Tensor.double,
          torch.Tensor.float: torch.Tensor.double}


class Float64(TorchFunctionMode):
    """While active, torch computes in float64: tensors, casts and ``dtype=`` of coarser floating types raised.

    In a custom Function's backward too, which autograd's engine runs
    outside the mode.

    ``x.half()``, ``x.to(torch.bfloat16)``, ``torch.zeros(n, dtype=torch.float32)``,
    the default dtype, and any float16, bfloat16 or float32 tensor an
    operation is given (a constant or buffer the function holds) all become
    float64 (complex ones complex128), so a function that casts its inputs to
    run in low precision runs, unchanged, in float64.
    """

    def __enter__(self) -> Float64:
        self._default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        # autograd's engine runs a Function's backward without the mode: its Python entry point enters it again
        self._backward = BackwardCFunction.__dict__["apply"]
        original = self._backward

        def apply(node: Any, *grads: Any) -> Any:
            with Float64():
                return original(node, *grads)

        BackwardCFunction.apply = apply  # type: ignore[method-assign]
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        BackwardCFunction.apply = self._backward  # type: ignore[method-assign]
        torch.set_default_dtype(self._default)

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        kwargs = {k: _raised(v) for k, v in (kwargs or {}).items()}
        return _CASTS.get(func, func)(*(_raised(a) for a in args), **kwargs)


def _raised(value: Any) -> Any:
    """A dtype, or a tensor (one the function holds itself: a constant, a buffer), in float64; a list of them too."""
    if isinstance(value, torch.dtype):
        return _WIDER.get(value, value)
    if isinstance(value, torch.Tensor) and value.dtype in _WIDER:
        return value.to(_WIDER[value.dtype])
    if isinstance(value, (list, tuple)) and any(isinstance(v, (torch.Tensor, torch.dtype)) for v in value):
        return type(value)(_raised(v) for v in value)
    return value


class _PlainContext:
    """What a Function's forward may ask of its ``ctx`` when it runs as plain torch code (nothing is kept)."""

    def __init__(self, args: Sequence[Any]) -> None:
        self.needs_input_grad = tuple(isinstance(a, torch.Tensor) and a.requires_grad for a in args)
        self.saved_tensors: tuple[torch.Tensor, ...] = ()

    def save_for_backward(self, *tensors: Any) -> None:
        self.saved_tensors = tensors

    def save_for_forward(self, *tensors: Any) -> None:
        pass

    def mark_dirty(self, *tensors: Any) -> None:
        pass

    def mark_non_differentiable(self, *tensors: Any) -> None:
        pass

    def set_materialize_grads(self, value: bool) -> None:
        pass


@contextmanager
def plain(replaced: list[str]) -> Iterator[None]:
    """While active, a custom ``autograd.Function`` runs its forward as plain torch code, differentiated by autograd.

    The name of each Function so replaced is appended to ``replaced``.
    """
    original = torch.autograd.Function.__dict__["apply"]

    def apply(cls: Any, *args: Any, **kwargs: Any) -> Any:
        replaced.append(cls.__name__)
        with torch.enable_grad():
            if _is_setup_context_defined(cls.setup_context):
                return cls.forward(*args, **kwargs)
            return cls.forward(_PlainContext(args), *args, **kwargs)

    torch.autograd.Function.apply = classmethod(apply)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        torch.autograd.Function.apply = original  # type: ignore[method-assign]


def by_reference(fn: Callable[..., Any], reference: Callable[..., Any] | None, given: Sequence[Any],
                 chosen: Sequence[int], labels: Sequence[str], keywords: bool,
                 check: Callable[..., CheckResult], **options: Any) -> CheckResult:
    """Check a low-precision ``fn``: its formula in float64, its gradient against ``reference``'s (see the module).

    ``check(fn, given, labels, keywords, **options)`` is torch's check of a
    function at given inputs; ``chosen`` are the differentiated inputs.
    """
    dtypes = sorted({str(given[k].dtype).removeprefix("torch.") for k in chosen})
    if not all(given[k].dtype in LOW_PRECISION or given[k].dtype in (torch.complex32, torch.complex64)
               for k in chosen):
        raise InputError(f"reference= judges a float16, bfloat16 or float32 function, but the inputs are "
                         f"{', '.join(dtypes)}: check fn as it is")
    wide = [_wider(x, k in chosen) for k, x in enumerate(given)]

    try:
        with Float64():  # the backward too: a Function's backward may cast as its forward does
            result = check(fn, wide, labels, keywords, **options)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{name_of(fn)} does not run in float64 ({type(exc).__name__}: {exc}); its formula can "
                         "only be checked in float64: pass the inputs in float64 to a version that does") from exc
    if result.verdict == "failed":  # a wrong formula: what its precision loses on top of it does not matter
        return result
    replaced: list[str] = []
    own = reference is None
    if reference is None:
        function: Any = getattr(fn, "__self__", None)
        called = (lambda *values, **named: function.apply(*values, **named)) if _is_function(function) else fn

        def reference(*values: Any, **named: Any) -> Any:
            with plain(replaced):
                return called(*values, **named)

    values, outputs = _run(fn, given, labels, keywords)  # one call of fn: its outputs' shapes, graph and gradient
    upstream = _upstream(outputs)
    called_functions = _functions_in(outputs) if own else []
    with Float64():
        truth = _gradient(reference, wide, chosen, labels, keywords, upstream, "the reference in float64")
    mine = _pulled(values, outputs, chosen, upstream, name_of(fn))
    baseline = _gradient(reference, given, chosen, labels, keywords, upstream, "the reference")
    names = [labels[k] for k in chosen]
    unreplaced = sorted(set(called_functions) - set(replaced))
    if unreplaced:
        raise InputError(f"{name_of(fn)} calls {', '.join(unreplaced)} through an apply bound before the check (such "
                         "as op = MyFunction.apply): its plain implementation cannot be made; call "
                         "MyFunction.apply inside fn, or pass reference=, a plain torch implementation")
    if result.passed:
        with Float64():
            ours = _gradient(fn, wide, chosen, labels, keywords, upstream, f"{name_of(fn)} in float64")
        _require_same_formula(ours, truth, names, name_of(fn))
    note = (f"{name_of(fn)} has no custom autograd.Function: its gradient is autograd's, the plain implementation "
            "itself, in its precision" if own and not replaced else "")
    plain_words = (f"{name_of(fn)} itself" if not replaced else f"its forward with {', '.join(sorted(set(replaced)))} "
                   "differentiated by autograd") if own else "the reference"
    promotion = _compare(mine, baseline, truth, names, ", ".join(dtypes), plain_words)
    notes = (*result.evidence.subject.notes, *([note] if note else []))
    return rediagnosed(result, promotion=promotion, subject=replace(result.evidence.subject, notes=notes))


def _is_function(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, torch.autograd.Function)


def _functions_in(outputs: Sequence[torch.Tensor]) -> list[str]:
    """The custom Functions in the autograd graph of ``outputs``."""
    pending = [o.grad_fn for o in outputs]
    seen: set[int] = set()
    found: list[str] = []
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, BackwardCFunction):
            found.append(node._forward_cls.__name__)
        pending.extend(next_node for next_node, _ in node.next_functions)
    return found


def _wider(value: Any, differentiated: bool) -> Any:
    """A float64 copy of a floating-point tensor (requiring grad if differentiated); anything else as given."""
    if not isinstance(value, torch.Tensor) or not (value.is_floating_point() or value.is_complex()):
        return value
    copy = value.detach().to(_WIDER.get(value.dtype, value.dtype))
    return copy.requires_grad_(True) if differentiated else copy


def _upstream(outputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """One random upstream gradient per output, drawn in float64 and rounded to the output's dtype (seeded)."""
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(o.shape, generator=generator, dtype=torch.float64).to(o.dtype).to(o.device)
            for o in outputs]


def _run(fn: Callable[..., Any], given: Sequence[Any], labels: Sequence[str], keywords: bool
         ) -> tuple[list[Any], list[torch.Tensor]]:
    """``fn`` called on fresh leaves of ``given``, with grad: (the leaves, its differentiable outputs)."""
    values = [_leaf(x) for x in given]
    with torch.enable_grad():
        return values, _outputs(fn, values, labels, keywords)


def _gradient(fn: Callable[..., Any], given: Sequence[Any], chosen: Sequence[int], labels: Sequence[str],
              keywords: bool, upstream: list[torch.Tensor], what: str) -> list[np.ndarray]:
    """``fn``'s gradient at ``given`` pulled back from ``upstream`` (as each output's dtype), as float64 arrays."""
    return _pulled(*_run(fn, given, labels, keywords), chosen, upstream, what)


def _pulled(values: Sequence[Any], outputs: Sequence[torch.Tensor], chosen: Sequence[int],
            upstream: list[torch.Tensor], what: str) -> list[np.ndarray]:
    """The gradient of ``outputs`` with respect to ``values[k]`` for k in ``chosen``, from ``upstream``."""
    if not outputs:
        raise InputError(f"{what} is not differentiable by autograd: no output requires grad (its forward "
                         "leaves torch: numpy, a compiled kernel); pass reference=, a plain torch implementation")
    if len(outputs) != len(upstream) or any(o.shape != u.shape for o, u in zip(outputs, upstream)):
        raise InputError(f"{what} returns {len(outputs)} differentiable outputs of shapes "
                         f"{[tuple(o.shape) for o in outputs]}; {len(upstream)} of shapes "
                         f"{[tuple(u.shape) for u in upstream]} expected")
    try:
        grads = torch.autograd.grad(outputs, [values[k] for k in chosen],
                                    [u.to(o.dtype) for o, u in zip(outputs, upstream)], allow_unused=True)
    except RuntimeError as exc:
        raise InputError(f"{what} is not differentiable by autograd ({exc}): its forward leaves torch "
                         "(numpy, a compiled kernel); pass reference=, a plain torch implementation") from exc
    return [as_real(np.zeros(tuple(values[k].shape)) if g is None else
                    g.detach().to(_WIDER.get(g.dtype, g.dtype)).numpy(force=True)).ravel()
            for k, g in zip(chosen, grads)]


def _leaf(value: Any) -> Any:
    return value.detach().clone().requires_grad_(value.requires_grad) if isinstance(value, torch.Tensor) else value


def _outputs(fn: Callable[..., Any], values: Sequence[Any], labels: Sequence[str], keywords: bool
             ) -> list[torch.Tensor]:
    answer = fn(**dict(zip(labels, values))) if keywords else fn(*values)
    return [o for o in tensors_of(answer) if o.requires_grad]


def _require_same_formula(ours: list[np.ndarray], truth: list[np.ndarray], names: Sequence[str], name: str) -> None:
    """The reference must compute the same derivative as ``fn`` in float64 (whose formula the check passed)."""
    for label, a, b in zip(names, ours, truth):
        scale = float(np.max(np.abs(b), initial=0.0))
        gap = float(np.max(np.abs(a - b), initial=0.0))
        if not gap <= AGREES_IN_FLOAT64 * scale:
            raise InputError(f"the reference's gradient of {label} differs from {name}'s in float64 by {gap:.1e} "
                             f"(largest entry {scale:.1e}), though {name}'s passes the check: the reference "
                             "computes something else, or its forward leaves autograd (a detach, numpy); pass "
                             "reference=, a plain torch implementation of the same function")


def _compare(mine: list[np.ndarray], baseline: list[np.ndarray], truth: list[np.ndarray], names: Sequence[str],
             dtype: str, plain_words: str) -> Promotion:
    """Per input, fn's gradient against the truth, held to `PLAIN_MARGIN` times the plain one's error."""
    unit = max(float(torch.finfo(getattr(torch, d)).eps) for d in dtype.split(", ")
               if d in ("float16", "bfloat16", "float32"))
    wrong, agreement, held = [], 0.0, []
    start = 0
    for label, a, b, t in zip(names, mine, baseline, truth):
        # Entries whose true gradient is not finite (a domain edge) are the formula check's; those the plain
        # implementation loses too (an overflow in that precision) are not held against fn.
        judged = np.isfinite(t) & np.isfinite(b)
        largest = float(np.max(np.abs(t[judged]), initial=0.0))
        plain_error = float(np.max(np.abs(b - t)[judged], initial=0.0))
        tolerance = PLAIN_MARGIN * plain_error + ROUNDING_ULPS * unit * largest
        gap = np.abs(a - t)
        bad = judged & ~(gap <= tolerance)
        wrong.append(start + np.flatnonzero(bad))
        scale = np.maximum(np.abs(t), block_rms(t))
        with np.errstate(all="ignore"):
            relative = np.where(scale > 0, gap / scale, gap)[judged]
        agreement = max(agreement, float(np.nanmax(np.where(np.isfinite(relative), relative, np.inf)))
                        if relative.size else 0.0)
        held.append(f"{label} {tolerance:.1e} ({PLAIN_MARGIN:g} x the plain one's {plain_error:.1e})")
        start += a.size
    return Promotion(dtype, agreement, unit, np.concatenate(wrong) if wrong else np.zeros(0, int),
                     against=f"{PLAIN_MARGIN:g} x the error of {plain_words} in {dtype} (" + "; ".join(held) + ")")

