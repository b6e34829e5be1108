"""gradwidget for PyTorch: a custom ``autograd.Function``'s backward, or a module's, checked with gradwidget's verdict.

The analytic derivative is torch's autograd (the backward under test),
pulled back from a random upstream gradient, and, where outputs x inputs is
at most 10**6, the whole Jacobian, row by row. The numeric one comes from
calling the function itself on perturbed inputs, in torch, in the inputs'
dtype, or in float64 where the function follows its inputs' dtype
(``precision="auto"``, the default, for float32 inputs). Requires the
``gradwidget[torch]`` extra.

Complex inputs follow torch's convention: the gradient of a real ``L``
with respect to ``z`` is ``dL/dRe z + i dL/dIm z`` (the conjugate Wirtinger
derivative, times 2); they are checked as their real and imaginary parts.

Examples
--------
>>> import torch, gradwidget.torch as gwt
>>> x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
>>> gwt.check(torch.tanh, x).verdict
'passed'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.autograd.gradcheck import GradcheckError

from . import _torch_modes as _modes
from . import _torch_precision as _precision
from ._frameworks import check_vjp_of
from ._layer import argument_names
from ._options import InputError
from ._result import CheckResult
from ._torch_modes import name_of as _name

__all__ = ["GradcheckError", "check", "check_module", "gradcheck", "gradgradcheck"]


def check(fn: Callable[..., Any], *inputs: Any, names: Sequence[str] | None = None,
          reference: Callable[..., Any] | None = None, **options: Any) -> CheckResult:
    """Check the backward of ``fn`` (its autograd) against finite differences of ``fn`` itself.

    Inputs in float16 or bfloat16 (or any low precision, with ``reference=``)
    are judged by reference: ``fn``'s formula in float64, and its gradient in
    the inputs' precision against the reference's in float64, to twice the
    error the reference itself makes in that precision (see
    `gradwidget._torch_precision`).

    Parameters
    ----------
    fn : callable
        Takes the inputs and returns a tensor or a tuple of tensors. Outputs
        that do not require grad (autograd marks them not differentiable,
        as torch's gradcheck does) are not checked.
    *inputs
        Tensors (those with ``requires_grad`` are differentiated; the others,
        and anything that is not a tensor, are passed through as given), or
        one dict of them, passed as keyword arguments.
    names : sequence of str, optional
        The inputs' names (default: the dict's keys, else ``fn``'s
        parameter names, else ``input0``, ``input1``...).
    reference : callable, optional
        A plain implementation of ``fn`` (same inputs, same outputs), for a
        low-precision ``fn``: default ``fn`` itself, with each custom
        ``autograd.Function`` replaced by its forward differentiated by
        autograd. Runs on the inputs' device.
    **options
        As for :func:`gradwidget.check_layer`: ``dout``, ``method``, ``eps``,
        ``precision``, ``seed``, ``directions``...

    Returns
    -------
    CheckResult
        One block per differentiated input.

    Raises
    ------
    InputError
        No input requires grad, or ``fn`` returns something that is not a
        floating-point or complex tensor.
    """
    keywords = len(inputs) == 1 and isinstance(inputs[0], dict)
    given = list(inputs[0].values()) if keywords else list(inputs)
    labels = list(inputs[0]) if keywords else list(names) if names is not None else argument_names(fn, len(given))
    chosen = [k for k, value in enumerate(given) if isinstance(value, torch.Tensor) and value.requires_grad]
    if chosen and (reference is not None or any(given[k].dtype in (torch.float16, torch.bfloat16, torch.complex32)
                                    for k in chosen)):
        if reference is not None and not callable(reference):
            raise InputError(f"reference= must be callable, got {type(reference).__name__}")
        return _precision.by_reference(fn, reference, given, chosen, labels, keywords, _check, **options)
    return _check(fn, given, labels, keywords, **options)


def _check(fn: Callable[..., Any], given: Sequence[Any], labels: Sequence[str], keywords: bool, *,
           steady: bool = False, **options: Any) -> CheckResult:
    """`check` of given inputs; ``steady``: the backward's first answer for each point and upstream gradient kept."""
    given = list(given)
    if len(labels) != len(given):
        raise InputError(f"names= has {len(labels)} names for {len(given)} inputs")
    chosen = [k for k, value in enumerate(given) if isinstance(value, torch.Tensor) and value.requires_grad]
    if not chosen:
        raise InputError(f"no input of {_name(fn)} requires grad: pass the tensors to differentiate with "
                         "requires_grad=True")
    devices = sorted({str(given[k].device) for k in chosen} - {"cpu"})
    notes = [f"{labels[k]} is passed through, not differentiated" for k in range(len(given)) if k not in chosen]
    notes += [f"inputs on {', '.join(devices)}: the function and its backward run there; the comparison runs "
              "on the CPU"] if devices else []

    def call(values: list[np.ndarray]) -> tuple[list[np.ndarray], Any]:
        full = list(given)
        tensors = []
        for k, value in zip(chosen, values):
            tensor = torch.from_numpy(np.array(value, order="C")).to(given[k].device).requires_grad_(True)
            full[k] = tensor
            tensors.append(tensor)
        with torch.enable_grad():
            answer = fn(**dict(zip(labels, full))) if keywords else fn(*full)
        returned = answer if isinstance(answer, (tuple, list)) else [answer]
        outputs = [o for o in returned if not isinstance(o, torch.Tensor) or o.requires_grad]
        if not outputs:
            raise InputError(f"no output of {_name(fn)} requires grad: nothing to differentiate (outputs autograd "
                             "marks as not differentiable, integer ones among them, are left out)")
        return [_array(o, _name(fn)) for o in outputs], (tensors, outputs)

    kept: dict[bytes, list[np.ndarray | None]] = {}

    def pull(cache: Any, douts: list[np.ndarray]) -> list[np.ndarray | None]:
        tensors, outputs = cache
        key = b"".join(np.ascontiguousarray(a).tobytes() for a in [*(t.numpy(force=True) for t in tensors),
                                                                   *douts]) if steady else b""
        if key in kept:  # a nondeterminism within nondet_tol, measured apart, is not the engine's to judge
            return kept[key]
        grads = torch.autograd.grad(outputs, tensors, [torch.from_numpy(np.array(d, order="C")).to(
            o.device, o.dtype) for o, d in zip(outputs, douts)], retain_graph=True, allow_unused=True)
        pulled = [None if g is None else _array(g, f"{_name(fn)}'s backward") for g in grads]
        if steady:
            kept[key] = pulled
        return pulled

    arrays = [_array(given[k], labels[k]) for k in chosen]
    return check_vjp_of(_name(fn), [labels[k] for k in chosen], arrays, call, pull, notes, **options)


def check_module(module: torch.nn.Module, *inputs: Any, **options: Any) -> CheckResult:
    """Check a module's backward with respect to its parameters (blocks named as ``named_parameters()``).

    The module is called as ``module(*inputs)`` with its parameters replaced
    by the perturbed ones (``torch.func.functional_call``); inputs that
    require grad are differentiated too. Options as for :func:`check`.
    """
    parameters = {name: p for name, p in module.named_parameters() if p.requires_grad}
    if not parameters:
        raise InputError(f"{type(module).__name__} has no parameter that requires grad")
    extra = {f"input{k}": x for k, x in enumerate(inputs)}

    def run(**values: Any) -> Any:
        own = {name: values[name] for name in parameters}
        return torch.func.functional_call(module, own, tuple(values[name] for name in extra))

    run.__name__ = type(module).__name__
    return check(run, {**{n: p.detach().clone().requires_grad_(True) for n, p in parameters.items()}, **extra},
                 **options)


def gradcheck(func: Callable[..., Any], inputs: Any, *, eps: float | None = None, atol: float | None = None,
              rtol: float | None = None, raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False, check_batched_grad: bool = False,
              check_batched_forward_grad: bool = False, check_forward_ad: bool = False,
              check_backward_ad: bool = True, fast_mode: bool = False, masked: bool | None = None) -> bool:
    """A drop-in for ``torch.autograd.gradcheck``: True, or gradwidget's report as torch's `GradcheckError`.

    Parameters
    ----------
    func, inputs
        As for torch's: ``func(*inputs)`` (one tensor is one input).
    eps : float, optional
        The finite-difference step (default: chosen per entry).
    atol, rtol : float, optional
        Accepted for compatibility; gradwidget's tolerance is per entry, from
        its noise model, and these are not used.
    raise_exception : bool
        Raise `GradcheckError` (torch's) with the report when a check does
        not pass (default), else return False.
    nondet_tol : float
        The backward is called several times at the inputs with one upstream
        gradient: a spread of its answers up to this passes (said in the
        report), beyond it fails with code ``nondeterministic`` and its size.
    check_undefined_grad : bool
        Each output's upstream gradient undefined in turn: the backward must
        give zeros or None.
    check_grad_dtypes : bool
        Each gradient in its input's dtype and on its device.
    check_batched_grad : bool
        The backward under ``vmap`` must equal it called once per upstream
        gradient.
    check_batched_forward_grad : bool
        The forward-mode derivative under ``vmap`` must equal it called once
        per tangent (needs ``check_forward_ad=True``).
    check_forward_ad : bool
        The forward-mode derivative (a Function's ``jvp``, reached through
        dual tensors) checked against the same finite differences.
    check_backward_ad : bool
        Check the backward (and its repeatability, undefined and batched
        grads); False checks the forward mode only.
    fast_mode : bool
        Check along a few random directions instead of the whole Jacobian.
    masked : bool, optional
        Sparse masked semantics are not supported: True raises.

    Returns
    -------
    bool
        True when every check asked for passes (an inconclusive check does
        not).
    """
    given = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    found = _gradchecks(func, given, argument_names(func, len(given)), eps=eps, fast_mode=fast_mode,
                        nondet_tol=nondet_tol, undefined=check_undefined_grad, dtypes=check_grad_dtypes,
                        batched=check_batched_grad, batched_forward=check_batched_forward_grad,
                        forward=check_forward_ad, backward=check_backward_ad, masked=masked)
    return _answer(found, _name(func), raise_exception)


def gradgradcheck(func: Callable[..., Any], inputs: Any, grad_outputs: Any = None, *, eps: float | None = None,
                  atol: float | None = None, rtol: float | None = None, gen_non_contig_grad_outputs: bool = False,
                  raise_exception: bool = True, nondet_tol: float = 0.0, check_undefined_grad: bool = True,
                  check_grad_dtypes: bool = False, check_batched_grad: bool = False, check_fwd_over_rev: bool = False,
                  check_rev_over_rev: bool = True, fast_mode: bool = False, masked: bool = False) -> bool:
    """A drop-in for ``torch.autograd.gradgradcheck``: the double backward, checked as `gradcheck` checks a backward.

    The function checked is the first derivative, ``(inputs, grad_outputs)
    -> autograd.grad(func(*inputs), inputs, grad_outputs, create_graph=True)``:
    its backward is ``func``'s double backward, compared with finite
    differences of the first derivative itself.

    Parameters
    ----------
    func, inputs
        As for `gradcheck`.
    grad_outputs : tensor or sequence of tensors, optional
        The upstream gradients of ``func``'s outputs (default: random, drawn
        with a fixed seed, differentiated as torch's are).
    gen_non_contig_grad_outputs : bool
        Make the random upstream gradients non-contiguous (a strided view).
    check_fwd_over_rev, check_rev_over_rev : bool
        The first derivative's forward mode and backward (as
        ``check_forward_ad`` and ``check_backward_ad`` of `gradcheck`).
    eps, atol, rtol, raise_exception, nondet_tol, fast_mode, masked
        As for `gradcheck`.
    check_undefined_grad, check_grad_dtypes, check_batched_grad
        As for `gradcheck`, of the first derivative's backward.

    Returns
    -------
    bool
        True when every check asked for passes.
    """
    given = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    chosen = [k for k, x in enumerate(given) if isinstance(x, torch.Tensor) and x.requires_grad]
    labels = argument_names(func, len(given))
    with torch.enable_grad():
        outputs = [o for o in _modes.tensors_of(func(*given)) if o.requires_grad]
    if grad_outputs is None:
        generator = torch.Generator().manual_seed(0)
        grad_outputs = [_upstream(o, generator, gen_non_contig_grad_outputs) for o in outputs]
    upstream = [grad_outputs] if isinstance(grad_outputs, torch.Tensor) else list(grad_outputs)
    if len(upstream) != len(outputs):
        raise InputError(f"grad_outputs has {len(upstream)} tensors for {len(outputs)} differentiable outputs of "
                         f"{_name(func)}")

    def first_derivative(*values: Any) -> tuple[torch.Tensor, ...]:
        xs = list(values[:len(given)])
        answers = [o for o in _modes.tensors_of(func(*xs)) if o.requires_grad]
        grads = torch.autograd.grad(answers, [xs[k] for k in chosen], list(values[len(given):]), create_graph=True,
                                    allow_unused=True)
        return tuple(g for g in grads if g is not None)

    first_derivative.__name__ = f"{_name(func)}'s backward"
    names = [*labels, *(f"grad_output{k}" if len(upstream) > 1 else "grad_output" for k in range(len(upstream)))]
    found = _gradchecks(first_derivative, (*given, *upstream), names, eps=eps, fast_mode=fast_mode,
                        nondet_tol=nondet_tol, undefined=check_undefined_grad, dtypes=check_grad_dtypes,
                        batched=check_batched_grad, batched_forward=False, forward=check_fwd_over_rev,
                        backward=check_rev_over_rev, masked=masked)
    return _answer(found, f"{_name(func)}'s double backward", raise_exception)


def _upstream(output: torch.Tensor, generator: torch.Generator, strided: bool) -> torch.Tensor:
    """A random upstream gradient for ``output`` that requires grad (a strided view of a larger one, if asked)."""
    if strided:
        wide = torch.randn((*output.shape, 2), generator=generator, dtype=output.dtype).to(output.device)
        return wide[..., 0].requires_grad_(True) if output.dim() else wide[0].requires_grad_(True)
    return torch.randn(output.shape, generator=generator, dtype=output.dtype).to(output.device).requires_grad_(True)


def _gradchecks(func: Callable[..., Any], given: tuple[Any, ...], labels: list[str], *, eps: float | None,
                fast_mode: bool, nondet_tol: float, undefined: bool, dtypes: bool, batched: bool,
                batched_forward: bool, forward: bool, backward: bool, masked: bool | None) -> list[tuple[bool, str]]:
    """Every check torch's options ask for: (passed, what it says) each."""
    if masked:
        raise NotImplementedError("gradwidget's gradcheck does not support masked=True (sparse masked semantics)")
    if batched_forward and not forward:
        raise ValueError("check_batched_forward_grad=True checks the forward mode under vmap: it needs "
                         "check_forward_ad=True")
    if not (forward or backward):
        raise ValueError("check_forward_ad=False and check_backward_ad=False: there is nothing to check")
    chosen = [k for k, x in enumerate(given) if isinstance(x, torch.Tensor) and x.requires_grad]
    names = [labels[k] for k in chosen]
    options: dict[str, Any] = {"eps": eps} if eps is not None else {}
    if fast_mode:
        options["directions"] = 8
    found: list[tuple[bool, str]] = []
    if backward:
        repeat = _modes.repeatability(func, given, chosen, names, nondet_tol) if chosen else None
        result = _check(func, given, labels, False, steady=repeat is not None and repeat.ok, **options)
        found.append((result.passed, f"backward:\n{result}"))
        extra = [repeat] if repeat is not None else []
        if undefined:
            extra.append(_modes.undefined_grad(func, given, chosen, nondet_tol))
        if dtypes:
            extra.append(_modes.grad_dtypes(func, given, chosen, names))
        if batched:
            extra.append(_modes.batched_grad(func, given, chosen, names))
        found += [(f.ok, f.said) for f in extra if f.said]
    if forward:
        result = _modes.forward_mode(func, _name(func), given, chosen, names, **options)
        found.append((result.passed, f"forward mode (the jvp, through dual tensors):\n{result}"))
        if batched_forward:
            batch = _modes.batched_forward_grad(func, given, chosen, names)
            found += [(batch.ok, batch.said)] if batch.said else []
    return found


def _answer(found: list[tuple[bool, str]], what: str, raise_exception: bool) -> bool:
    if all(ok for ok, _ in found):
        return True
    if raise_exception:
        failing = [said for ok, said in found if not ok]
        raise GradcheckError(f"gradwidget: {what} is not right.\n" + "\n\n".join(failing))
    return False


def _array(value: Any, what: str) -> np.ndarray:
    """A tensor's values as a numpy array (from any device), or an error naming what returned something else.

    bfloat16, which numpy lacks, comes as float32; torch's lazy zeros, conjugates and negations are resolved.
    """
    if not isinstance(value, torch.Tensor) or not (value.is_floating_point() or value.is_complex()):
        kind = f"a {value.dtype} tensor" if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"
        raise InputError(f"{what} gave {kind}; expected a floating-point or complex tensor")
    if value.layout != torch.strided:
        raise InputError(f"{what} gave a sparse tensor: pass .to_dense() of it, or check a dense function")
    if value.dtype == torch.bfloat16:
        value = value.float()
    return value.numpy(force=True)

