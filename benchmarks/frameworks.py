"""gradwidget.torch.check against torch.autograd.gradcheck over torch's own operator database.

Every op of ``op_db`` with autograd and float64 CPU samples gives its first
sample whose tensors hold at most ``--max-size`` numbers (its input and
tensor arguments that require grad are differentiated; the op's floating
and complex outputs are checked; the op is called through its OpInfo's
``gradcheck_wrapper``, as torch's own tests call gradcheck). Each checker
sees the op as it is (a false alarm if it does not pass) and with its
backward wrapped to move one entry of the first input's gradient (the
largest, for a random upstream gradient) by a relative 1e-2, 1e-4 and 1e-6
(caught if it does not pass); ops whose gradient is 0 there (floor, sign)
have no such bug and are left out of those columns. gradcheck runs in its
default and fast mode; gradwidget with its defaults. The same ops' float32
samples, which gradcheck refuses (it needs float64), are checked by
gradwidget alone: in float64 where the op follows its inputs' dtype.

Then, with ``--modes``, the other derivatives of the ops that support them:
forward mode (``check_forward_ad=True``, the backward left out) and the
double backward (``gradgradcheck``), each as it is and with one entry of its
tangent, or of its double backward, moved by a relative 1e-4; gradwidget's
drop-ins beside torch's.

With ``--low-precision``, the ops' bfloat16 and float16 samples, judged by
reference (``gradwidget.torch.check``'s default for such inputs: the formula
in float64, the gradient against the float64 one to twice the error of a
plain implementation in that precision), as they are and with a backward
that moves one entry by 16 ulps of the dtype in that dtype only (right in
float64: a loss of precision, not a wrong formula); torch's gradcheck beside.

Run: ``python benchmarks/frameworks.py [--limit N] [--max-size 400] [--modes | --low-precision]`` (needs
``pip install -e .[bench]``: op_db lives in torch's test suite, which needs expecttest).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tables import print_table

import gradwidget.torch as gwt

DELTAS = (1e-2, 1e-4, 1e-6)


@dataclass
class Case:
    """One op's sample: a function of its differentiated tensors, and the tensors (float64 and float32)."""

    name: str
    fn: Callable[..., Any]
    inputs: list[torch.Tensor]
    inputs32: list[torch.Tensor] | None
    entry: int | None = None  # the entry moved: None where every entry's gradient is 0 (no bug to find)


@dataclass
class Tally:
    """One checker's counts over the cases."""

    alarms: int = 0
    alarm_names: list[str] = field(default_factory=list)
    unsure_names: list[str] = field(default_factory=list)
    right: int = 0
    caught: dict[float, int] = field(default_factory=lambda: dict.fromkeys(DELTAS, 0))
    wrong: dict[float, int] = field(default_factory=lambda: dict.fromkeys(DELTAS, 0))
    unsure: int = 0
    errors: int = 0
    seconds: float = 0.0


def moved(tensor: torch.Tensor, entry: int, delta: float) -> torch.Tensor:
    """``tensor`` with its flat entry ``entry`` moved by a relative ``delta`` (linear in the tensor)."""
    flat = tensor.clone().reshape(-1)
    flat[entry] = flat[entry] * (1 + delta)
    return flat.reshape(tensor.shape)


class Nudge(torch.autograd.Function):
    """The identity, whose backward moves one entry of the gradient by a relative delta (linear in it)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, entry: int, delta: float) -> torch.Tensor:
        ctx.entry, ctx.delta = entry, delta
        return x.clone()

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return moved(g, ctx.entry, ctx.delta), None, None


class NudgeTangent(Nudge):
    """The identity, whose forward-mode derivative moves one entry of the tangent by a relative delta."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return g, None, None

    @staticmethod
    def jvp(ctx: Any, t: torch.Tensor, *_: Any) -> torch.Tensor:
        return moved(t, ctx.entry, ctx.delta)


class NudgeSecond(Nudge):
    """The identity, whose backward is the identity through `Nudge` (so its double backward moves one entry)."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return Nudge.apply(g, ctx.entry, ctx.delta), None, None


class NudgeLowPrecision(Nudge):
    """The identity, whose backward moves one entry by `LOW_ULPS` ulps in float16 and bfloat16 (right in float64)."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        if g.dtype not in (torch.float16, torch.bfloat16):
            return g, None, None
        return moved(g, ctx.entry, LOW_ULPS * torch.finfo(g.dtype).eps), None, None


LOW_ULPS = 16


def cases(limit: int | None, max_size: int, dtype: torch.dtype = torch.float64) -> list[Case]:
    from torch.testing._internal.common_methods_invocations import op_db

    found = []
    for op in op_db:
        dtypes = op.supported_dtypes("cpu") if dtype == torch.float64 else op.supported_backward_dtypes("cpu")
        if not op.supports_autograd or dtype not in dtypes:
            continue
        case = _first_sample(op, max_size, dtype)
        if case is not None:
            found.append(case)
        if limit is not None and len(found) >= limit:
            break
    return found


def _first_sample(op: Any, max_size: int, dtype: torch.dtype = torch.float64) -> Case | None:
    try:
        samples = op.sample_inputs("cpu", dtype, requires_grad=True)
        for sample in samples:
            parts = [sample.input, *sample.args]
            if not all(isinstance(p, torch.Tensor) or not isinstance(p, (list, tuple)) for p in parts):
                continue
            chosen = [k for k, p in enumerate(parts) if isinstance(p, torch.Tensor) and p.requires_grad]
            if not chosen or sum(parts[k].numel() for k in chosen) > max_size or parts[0].numel() == 0 \
                    or 0 not in chosen:
                continue
            return _case(op, parts, chosen, dict(sample.kwargs))
    except Exception:  # an op whose samples cannot be made on this machine
        return None
    return None


def _case(op: Any, parts: list[Any], chosen: list[int], kwargs: dict[str, Any]) -> Case:
    def fn(*tensors: torch.Tensor) -> Any:
        full = list(parts)
        for k, t in zip(chosen, tensors):
            full[k] = t
        out = op.gradcheck_wrapper(op, full[0], *full[1:], **kwargs)  # as torch's own tests call gradcheck
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        kept = tuple(o for o in outputs if isinstance(o, torch.Tensor) and (o.is_floating_point() or o.is_complex()))
        return kept[0] if len(kept) == 1 else kept

    inputs = [parts[k].detach().clone().requires_grad_(True) for k in chosen]
    single = torch.float32 in op.supported_dtypes("cpu")
    inputs32 = [t.detach().float().requires_grad_(True) for t in inputs] if single else None
    case = Case(label(op), fn, inputs, inputs32)
    case.entry = _largest_entry(case)
    return case


def label(op: Any) -> str:
    """An op's name, with its variant's where it has one (``max.reduction_with_dim``): one label per OpInfo."""
    return f"{op.name}.{op.variant_test_name}" if op.variant_test_name else op.name


def _largest_entry(case: Case) -> int | None:
    """The first input's entry with the largest gradient for a random upstream gradient (None if all are 0)."""
    try:
        out = case.fn(*case.inputs)
        outputs = out if isinstance(out, tuple) else (out,)
        generator = torch.Generator().manual_seed(0)
        grads = torch.autograd.grad(outputs, case.inputs[0], [torch.randn(o.shape, generator=generator,
                                                                         dtype=o.dtype) for o in outputs],
                                    allow_unused=True)
    except Exception:
        return None
    if grads[0] is None or not bool(grads[0].abs().max() > 0):
        return None
    return int(grads[0].abs().argmax())


def nudged(case: Case, delta: float) -> Callable[..., Any]:
    return lambda first, *rest: case.fn(Nudge.apply(first, case.entry, delta), *rest)


def verdicts(name: str, fn: Callable[..., Any], inputs: list[torch.Tensor]) -> str:
    """``passed``, ``failed``, ``inconclusive`` or ``error`` from one checker."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name == "gradwidget":
                return gwt.check(fn, *inputs, seed=0, progress=False).verdict
            fast = name == "gradcheck, fast mode"
            return "passed" if torch.autograd.gradcheck(fn, tuple(inputs), fast_mode=fast,
                                                        raise_exception=False) else "failed"
    except Exception:
        return "error"


def tally(name: str, all_cases: list[Case], precision: str = "float64") -> Tally:
    counts = Tally()
    start = time.perf_counter()
    for case in all_cases:
        inputs = case.inputs if precision == "float64" else case.inputs32
        if inputs is None:
            continue
        right = verdicts(name, case.fn, inputs)
        if right == "error":
            counts.errors += 1
            continue
        counts.right += 1
        counts.alarms += right == "failed"
        if right == "failed":
            counts.alarm_names.append(case.name)
        counts.unsure += right == "inconclusive"
        if right == "inconclusive":
            counts.unsure_names.append(case.name)
        if right != "passed" or case.entry is None:
            continue  # a bug in an op the checker cannot pass is not a bug it can tell; a zero gradient has none
        for delta in DELTAS:
            verdict = verdicts(name, nudged(case, delta), inputs)
            counts.wrong[delta] += 1
            counts.caught[delta] += verdict in ("failed", "error")
    counts.seconds = time.perf_counter() - start
    return counts


def row(name: str, counts: Tally) -> list[str]:
    return [name, f"{counts.alarms}/{counts.right}", str(counts.unsure),
            *(f"{counts.caught[d]}/{counts.wrong[d]} ({100 * counts.caught[d] / max(counts.wrong[d], 1):.1f}%)"
              for d in DELTAS), str(counts.errors), f"{counts.seconds:.0f}"]


MODE_DELTA = 1e-4


def mode_verdict(checker: str, mode: str, fn: Callable[..., Any], inputs: list[torch.Tensor]) -> str:
    """``passed``, ``failed``, ``inconclusive`` (gradwidget's, where it could not resolve) or ``error``."""
    module = gwt if checker == "gradwidget" else torch.autograd
    options: dict[str, Any] = {}
    if mode == "forward":
        options.update(check_forward_ad=True, check_backward_ad=False, check_undefined_grad=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check = module.gradcheck if mode == "forward" else module.gradgradcheck
            check(fn, tuple(inputs), **options)
            return "passed"
    except gwt.GradcheckError as exc:
        said = str(exc)
        return "inconclusive" if "INCONCLUSIVE" in said and "FAILED" not in said else "failed"
    except Exception:
        return "error"


def mode_rows(found: list[Case]) -> list[list[str]]:
    """Forward mode and double backward: each drop-in on the ops that support it, right and with a planted error."""
    from torch.testing._internal.common_methods_invocations import op_db

    supports = {label(op): (op.supports_forward_ad, op.supports_gradgrad) for op in op_db}
    rows = []
    for mode, planted, index in (("forward", NudgeTangent, 0), ("double backward", NudgeSecond, 1)):
        chosen = [c for c in found if supports.get(c.name, (False, False))[index] and c.entry is not None]
        for checker in ("gradwidget", "torch"):
            start = time.perf_counter()
            right = {c.name: mode_verdict(checker, mode, c.fn, c.inputs) for c in chosen}
            passed = [c for c in chosen if right[c.name] == "passed"]
            caught = sum(mode_verdict(checker, mode, lambda first, *rest, c=c, planted=planted: c.fn(
                planted.apply(first, c.entry, MODE_DELTA), *rest), c.inputs) in ("failed", "error") for c in passed)
            rows.append(verdict_row(f"{mode}: {checker}", right, caught, len(passed), start)[:-1])
    return rows


def verdict_row(label: str, right: dict[str, str], caught: int, passed: int, start: float) -> list[str]:
    """A table row: failed and inconclusive verdicts on the ops as they are, planted errors caught, errors, names."""
    named = {kind: [name for name, verdict in right.items() if verdict == kind]
             for kind in ("failed", "inconclusive", "error")}
    return [label, f"{len(named['failed'])}/{len(right)}", str(len(named["inconclusive"])),
            f"{caught}/{passed} ({100 * caught / max(passed, 1):.1f}%)", str(len(named["error"])),
            f"{time.perf_counter() - start:.0f}",
            ", ".join(named["failed"][:12]) + (" ..." if len(named["failed"]) > 12 else ""),
            ", ".join(named["inconclusive"]), ", ".join(named["error"])]


def low_precision_rows(limit: int | None, max_size: int) -> list[list[str]]:
    """Each dtype's samples: each checker on the ops as they are, and with a loss of precision planted."""
    rows = []
    for dtype in (torch.bfloat16, torch.float16):
        found = [c for c in cases(limit, max_size, dtype) if c.entry is not None]
        for checker in ("gradwidget", "gradcheck"):
            start = time.perf_counter()
            right = {c.name: verdicts(checker, c.fn, c.inputs) for c in found}
            passed = [c for c in found if right[c.name] == "passed"]
            caught = sum(verdicts(checker, lambda first, *rest, c=c: c.fn(
                NudgeLowPrecision.apply(first, c.entry, 0.0), *rest), c.inputs) in ("failed", "error")
                for c in passed)
            name = "gradwidget, by reference" if checker == "gradwidget" else "torch gradcheck"
            rows.append(verdict_row(f"{str(dtype).removeprefix('torch.')}: {name}", right, caught, len(passed),
                                    start))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="at most this many ops")
    parser.add_argument("--max-size", type=int, default=400, help="numbers differentiated per sample, at most")
    parser.add_argument("--modes", action="store_true", help="forward mode and the double backward only")
    parser.add_argument("--low-precision", action="store_true", help="bfloat16 and float16 samples only")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.low_precision:
        print_table(("dtype: checker", "failed on the op as it is", "inconclusive",
                     f"{LOW_ULPS} ulps planted, caught", "errors", "seconds", "failed ops", "inconclusive ops",
                     "error ops"),
                    low_precision_rows(args.limit, args.max_size))
        return 0
    found = cases(args.limit, args.max_size)
    print(f"{len(found)} ops of op_db with a float64 CPU sample of at most {args.max_size} differentiated numbers\n")
    if args.modes:
        print_table(("drop-in", "failed on the op as it is", "inconclusive", f"planted errors caught at {MODE_DELTA:g}",
                     "errors", "seconds", "failed ops", "inconclusive ops"), mode_rows(found))
        return 0
    header = ("checker", "false alarms", "inconclusive", *(f"caught at {d:g}" for d in DELTAS), "errors",
              "seconds")
    tallies = {name: tally(name, found) for name in ("gradwidget", "gradcheck", "gradcheck, fast mode")}
    tallies["gradwidget, float32 samples"] = tally("gradwidget", found, "float32")
    print_table(header, [row(name, counts) for name, counts in tallies.items()])
    print("\nFalse alarms and inconclusive verdicts, by op:")
    for name, counts in tallies.items():
        print(f"  {name}: {', '.join(counts.alarm_names) or 'none'}; inconclusive: "
              f"{', '.join(counts.unsure_names) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
