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

from ._frameworks import check_vjp_of
from ._layer import argument_names
from ._options import InputError
from ._result import CheckResult

__all__ = ["GradcheckError", "check", "check_module", "gradcheck"]

IGNORED = ("nondet_tol", "check_undefined_grad", "check_grad_dtypes", "check_batched_grad",
           "check_batched_forward_grad", "check_forward_ad", "check_backward_ad", "masked")
"""torch.autograd.gradcheck's options with no meaning here: accepted, and ignored (see `gradcheck`)."""


def check(fn: Callable[..., Any], *inputs: Any, names: Sequence[str] | None = None, **options: Any) -> CheckResult:
    """Check the backward of ``fn`` (its autograd) against finite differences of ``fn`` itself.

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

    def pull(cache: Any, douts: list[np.ndarray]) -> list[np.ndarray | None]:
        tensors, outputs = cache
        grads = torch.autograd.grad(outputs, tensors, [torch.from_numpy(np.array(d, order="C")).to(
            o.device, o.dtype) for o, d in zip(outputs, douts)], retain_graph=True, allow_unused=True)
        return [None if g is None else _array(g, f"{_name(fn)}'s backward") for g in grads]

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
              rtol: float | None = None, raise_exception: bool = True, fast_mode: bool = False,
              **ignored: Any) -> bool:
    """A drop-in for ``torch.autograd.gradcheck``: True, or gradwidget's report as the error.

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
        Raise `GradcheckError` (torch's) with the report when the check does
        not pass (default), else return False.
    fast_mode : bool
        Check along a few random directions instead of the whole Jacobian.
    **ignored
        torch's ``nondet_tol``, ``check_undefined_grad``, ``check_grad_dtypes``,
        ``check_batched_grad``, ``check_batched_forward_grad``,
        ``check_forward_ad``, ``check_backward_ad`` and ``masked``: accepted,
        and not used (their checks are torch's own, not of the backward's
        values).

    Returns
    -------
    bool
        True when the backward is right (an inconclusive check is not).
    """
    unknown = sorted(set(ignored) - set(IGNORED))
    if unknown:
        raise TypeError(f"gradcheck() got an unexpected keyword argument {unknown[0]!r}")
    given = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    options: dict[str, Any] = {"eps": eps} if eps is not None else {}
    if fast_mode:
        options["directions"] = 8
    result = check(func, *given, **options)
    if result.passed:
        return True
    if raise_exception:
        raise GradcheckError(f"gradwidget: the backward of {_name(func)} is not right ({result.verdict}).\n"
                             f"{result}")
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


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__
