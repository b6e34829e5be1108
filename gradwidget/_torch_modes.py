"""torch's other autograd paths, checked for ``gradcheck``: forward mode, repeatability, undefined and batched grads.

Each takes the function, its inputs and which of them are differentiated,
and returns what it found: forward mode as a ``CheckResult`` of the same
engine (its Jacobian, column by column from dual tensors, transposed into a
backward); the others (batched: the backward's and the forward mode's) as
a `Finding` (a failure says what differs, and by how much). Requires torch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.autograd.forward_ad as forward_ad
from torch._vmap_internals import _vmap  # what torch's own gradcheck batches the forward mode with

from ._frameworks import check_vjp_of
from ._options import InputError
from ._result import CheckResult

__all__ = ["Finding", "batched_forward_grad", "batched_grad", "forward_mode", "grad_dtypes", "name_of",
           "repeatability", "tensors_of", "undefined_grad"]

REPEATS = 3  # backward calls at one point, with one upstream gradient, to measure their spread


@dataclass(frozen=True)
class Finding:
    """What one of torch's other checks found: ``ok``, and a line saying what (its size, where)."""

    ok: bool
    said: str


def name_of(fn: Any) -> str:
    """A function's name for messages (its type's, where it has none)."""
    return getattr(fn, "__name__", None) or type(fn).__name__


def tensors_of(answer: Any) -> list[torch.Tensor]:
    """The tensors a function returned (one, or a tuple or list of them and other things)."""
    return [o for o in (answer if isinstance(answer, (tuple, list)) else [answer]) if isinstance(o, torch.Tensor)]


def _call(fn: Callable[..., Any], given: Sequence[Any]) -> list[torch.Tensor]:
    """``fn``'s differentiable outputs (tensors that require grad, or carry a tangent)."""
    return [o for o in tensors_of(fn(*given)) if o.is_floating_point() or o.is_complex()]


def _with(given: Sequence[Any], chosen: Sequence[int], values: Sequence[torch.Tensor]) -> list[Any]:
    full = list(given)
    for k, value in zip(chosen, values):
        full[k] = value
    return full


def forward_mode(fn: Callable[..., Any], name: str, given: Sequence[Any], chosen: Sequence[int],
                 labels: Sequence[str], **options: Any) -> CheckResult:
    """Check ``fn``'s forward-mode derivative (a Function's ``jvp``) against finite differences of ``fn``.

    The Jacobian is built column by column from dual tensors (one-hot
    tangents), transposed into a backward, and checked by the same engine
    as the backward itself.
    """
    if any(given[k].is_complex() for k in chosen):
        raise InputError("check_forward_ad with complex inputs is not supported: check their real and imaginary "
                         "parts as real inputs")

    def evaluate(values: list[np.ndarray]) -> tuple[list[np.ndarray], Any]:
        tensors = [torch.from_numpy(np.array(v, order="C")).to(given[k].device).requires_grad_(True)
                   for k, v in zip(chosen, values)]  # a function of a backward (fwd-over-rev) differentiates them
        with torch.enable_grad():
            outputs = _call(fn, _with(given, chosen, tensors))
        return [o.numpy(force=True) for o in outputs], {"tensors": tensors, "columns": None,
                                                        "dtypes": [np.asarray(v).dtype for v in values]}

    def pull(cache: dict[str, Any], douts: list[np.ndarray]) -> list[np.ndarray | None]:
        if cache["columns"] is None:
            cache["columns"] = _jacobian_columns(fn, given, chosen, cache["tensors"])
        flat = np.concatenate([np.ravel(d) for d in douts]) if douts else np.zeros(0)
        # torch's convention for a complex output: the gradient of a real L is Re(conj(dout) . dy/dx)
        return [np.real(columns @ np.conj(flat)).reshape(tensor.shape).astype(dtype)
                for columns, tensor, dtype in zip(cache["columns"], cache["tensors"], cache["dtypes"])]

    return check_vjp_of(f"{name} (forward mode)", list(labels), [given[k].numpy(force=True) for k in chosen],
                        evaluate, pull, **options)


def _jacobian_columns(fn: Callable[..., Any], given: Sequence[Any], chosen: Sequence[int],
                      tensors: list[torch.Tensor]) -> list[np.ndarray]:
    """Per differentiated input, the Jacobian's columns for its entries (rows: every output entry, flat)."""
    found = []
    for which, tensor in enumerate(tensors):
        rows = []
        for j in range(tensor.numel()):
            tangent = torch.zeros_like(tensor).view(-1)
            tangent[j] = 1
            with forward_ad.dual_level(), torch.enable_grad():
                duals = [forward_ad.make_dual(t, tangent.view(t.shape) if i == which else torch.zeros_like(t))
                         for i, t in enumerate(tensors)]
                outputs = _call(fn, _with(given, chosen, duals))
                tangents = [forward_ad.unpack_dual(o).tangent for o in outputs]
                rows.append(np.concatenate([np.zeros(o.numel(), o.numpy(force=True).dtype) if t is None else
                                            t.numpy(force=True).ravel() for o, t in zip(outputs, tangents)])
                            if outputs else np.zeros(0))
        found.append(np.array(rows).reshape(tensor.numel(), -1))
    return found


def repeatability(fn: Callable[..., Any], given: Sequence[Any], chosen: Sequence[int], labels: Sequence[str],
                  tolerance: float, seed: int = 0) -> Finding:
    """Call the backward `REPEATS` times at the inputs with one upstream gradient: the spread of its answers."""
    generator = torch.Generator().manual_seed(seed)
    outputs = _call(fn, given)
    douts = [torch.randn(o.shape, generator=generator, dtype=o.dtype).to(o.device) for o in outputs]
    answers = [torch.autograd.grad(outputs, [given[k] for k in chosen], douts, retain_graph=True,
                                   allow_unused=True) for _ in range(REPEATS)]
    spread, where = 0.0, ""
    for k, label in enumerate(labels):
        first = answers[0][k]
        for other in answers[1:]:
            if first is None or other[k] is None:
                continue
            size = float((other[k] - first).abs().max()) if first.numel() else 0.0
            if size > spread:
                spread, where = size, label
    if spread == 0.0:
        return Finding(True, "")
    said = f"the backward's answers for the same inputs and upstream gradient differ by up to {spread:.3g} (in " \
           f"{where}, over {REPEATS} calls)"
    if spread <= tolerance:
        return Finding(True, f"nondeterministic within nondet_tol={tolerance:g}: {said}")
    return Finding(False, f"nondeterministic: {said}, beyond nondet_tol={tolerance:g} (a reduction in another "
                          "order each call, atomics? pass nondet_tol= the spread you accept)")


def grad_dtypes(fn: Callable[..., Any], given: Sequence[Any], chosen: Sequence[int], labels: Sequence[str]) -> Finding:
    """Each gradient in its input's dtype and on its device."""
    outputs = _call(fn, given)
    inputs = [given[k] for k in chosen]
    grads = torch.autograd.grad(outputs, inputs, [torch.ones_like(o) for o in outputs], retain_graph=True,
                                allow_unused=True)
    for label, x, g in zip(labels, inputs, grads):
        if g is not None and (g.dtype != x.dtype or g.device != x.device):
            return Finding(False, f"grad dtypes: {label}'s gradient is {g.dtype} on {g.device}; {label} is {x.dtype} "
                                  f"on {x.device}")
    return Finding(True, "")


def undefined_grad(fn: Callable[..., Any], given: Sequence[Any], chosen: Sequence[int], tolerance: float = 0.0
                   ) -> Finding:
    """Each output's upstream gradient undefined in turn: the backward gives zeros (within ``tolerance``) or None."""
    outputs = _call(fn, given)
    inputs = [given[k] for k in chosen]
    undefined = getattr(getattr(torch._C, "_functions", None), "UndefinedGrad", None)
    if undefined is None:
        return Finding(True, "check_undefined_grad: this torch has no way to make an undefined gradient; not checked")
    for index, output in enumerate(outputs):
        try:
            grads = torch.autograd.grad([undefined()(output)], inputs, [torch.ones_like(output)],
                                        retain_graph=True, allow_unused=True)
        except Exception as exc:  # the backward's own error, whatever it is: None * tensor is a TypeError
            return Finding(False, f"undefined grad: with output {index}'s upstream gradient undefined, the backward "
                                  f"raised {type(exc).__name__}: {str(exc).splitlines()[0]} (treat a None grad as "
                                  "zeros, or call ctx.set_materialize_grads(True))")
        bad = [k for k, g in enumerate(grads) if g is not None and g.numel() and bool(g.abs().max() > tolerance)]
        if bad:
            return Finding(False, f"undefined grad: with output {index}'s upstream gradient undefined, the backward "
                                  f"returned nonzero gradients for input {bad[0]} (it must give zeros or None)")
    return Finding(True, "")


def batched_grad(fn: Callable[..., Any], given: Sequence[Any], chosen: Sequence[int], labels: Sequence[str],
                 batch: int = 3, seed: int = 0) -> Finding:
    """The backward under ``vmap`` (a batch of upstream gradients) must equal it called once per gradient."""
    generator = torch.Generator().manual_seed(seed)
    outputs = _call(fn, given)
    inputs = [given[k] for k in chosen]
    stacked = [torch.randn((batch, *o.shape), generator=generator, dtype=o.dtype).to(o.device) for o in outputs]
    looped = [torch.autograd.grad(outputs, inputs, [s[b] for s in stacked], retain_graph=True, allow_unused=True)
              for b in range(batch)]
    try:
        batched = torch.autograd.grad(outputs, inputs, stacked, retain_graph=True, allow_unused=True,
                                      is_grads_batched=True)
    except RuntimeError as exc:
        return Finding(False, f"batched grad: the backward fails under vmap: {str(exc).splitlines()[0]}")
    for k, label in enumerate(labels):
        differs = _batch_differs(batched[k], [answer[k] for answer in looped], inputs[k])
        if differs:
            return Finding(False, f"batched grad: {label}'s gradient under vmap differs from the per-example loop "
                                  f"{differs}: a wrong vmap rule, or a backward that mixes the batch's examples")
    return Finding(True, "")


def batched_forward_grad(fn: Callable[..., Any], given: Sequence[Any], chosen: Sequence[int],
                         labels: Sequence[str], batch: int = 3, seed: int = 0) -> Finding:
    """Per input, the forward-mode derivative under ``vmap`` (a batch of tangents) must equal it once per tangent.

    torch's own check runs it under the vmap of its autograd internals, which
    runs a custom Function's ``forward`` and ``jvp`` on batched tensors
    (no vmap rule needed): so does this one.
    """
    generator = torch.Generator().manual_seed(seed)
    primals = [given[k].detach().clone() for k in chosen]  # its own memory: an expanded input cannot be dual
    for which, (primal, label) in enumerate(zip(primals, labels)):
        def jvp(tangent: torch.Tensor, which: int = which) -> tuple[torch.Tensor, ...]:
            with forward_ad.dual_level():
                duals = [forward_ad.make_dual(p, tangent) if i == which else p for i, p in enumerate(primals)]
                outputs = _call(fn, _with([_detached(g) for g in given], chosen, duals))
                return tuple(_tangent_of(o) for o in outputs)

        tangents = torch.randn((batch, *primal.shape), generator=generator, dtype=primal.dtype).to(primal.device)
        looped = [jvp(t) for t in tangents]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # its performance warnings for ops without a batching rule
                batched = _vmap(jvp)(tangents)
        except RuntimeError as exc:
            return Finding(False, f"batched forward grad: the forward-mode derivative along {label} fails under "
                                  f"vmap: {str(exc).splitlines()[0]}")
        for index, output in enumerate(batched):
            differs = _batch_differs(output, [answer[index] for answer in looped], looped[0][index])
            if differs:
                return Finding(False, f"batched forward grad: output {index}'s tangent along {label} under vmap "
                                      f"differs from the per-example loop {differs}: a wrong vmap rule, or a jvp "
                                      "that mixes the batch's examples")
    return Finding(True, "")


def _detached(value: Any) -> Any:
    return value.detach() if isinstance(value, torch.Tensor) else value


def _tangent_of(output: torch.Tensor) -> torch.Tensor:
    """A dual output's tangent (zeros where it has none: it does not depend on the input)."""
    primal, tangent = forward_ad.unpack_dual(output)
    return torch.zeros_like(primal) if tangent is None else tangent


def _batch_differs(got: torch.Tensor | None, loop: list[torch.Tensor | None], like: torch.Tensor) -> str:
    """How a batched answer differs from the per-example ones stacked ("" if it does not); None is zeros."""
    if got is None and all(g is None for g in loop):
        return ""
    expected = torch.stack([torch.zeros_like(like) if g is None else g for g in loop])
    got = torch.zeros_like(expected) if got is None else got
    if got.shape == expected.shape and torch.allclose(got, expected, rtol=1e-7, atol=1e-12):
        return ""
    size = float((got - expected).abs().max()) if got.shape == expected.shape else float("nan")
    return f"(by up to {size:.3g}; shapes {tuple(got.shape)} and {tuple(expected.shape)})"
