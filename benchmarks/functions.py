"""gradwidget and other checkers on ordinary numerical functions, right and with one entry mutated.

Each function f becomes the cost ``J(x) = sum(f(x) * w)`` with fixed random
weights w; its right gradient comes from torch's automatic differentiation
(float64). The functions are elementwise maps, reductions, linear algebra,
normalizations, pooling, losses, special functions, and the awkward kinds:
piecewise constant (floor, round), locally linear (a slice, abs away from
0) and non-smooth at a few places (max, sort). Each is checked at
``--points`` seeded random points, with its right gradient and with one
random entry scaled by ``1 + delta`` for delta = 1e-2, 1e-4 and 1e-6.

Printed per checker: false alarms (a failed verdict on a right gradient),
gradwidget's inconclusive verdicts on right gradients, its `ignores-input`
claims on mutated gradients (each of them uses its input: every such claim
is a misdiagnosis), and the share of mutations caught at each delta. The
mutated entry is drawn among those whose gradient is at least a tenth of
the gradient's RMS (as in ``sensitivity.py``): a relative error of 1e-6 in
an entry a thousand times smaller than the rest is an error of 1e-9 of the
gradient, below what any check claims.

Run: ``python benchmarks/functions.py [--points 5]`` (needs ``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anchors import ANCHORS, Counted
from tables import print_table

import gradwidget as gw

DELTAS = (1e-2, 1e-4, 1e-6)
CHECKERS = ["gradwidget", "scipy check_grad", "torch gradcheck", "article: 1e-4, <1e-7", "R article: 1e-8, rel"]


@dataclass(frozen=True)
class Function:
    """One function of torch tensors, the shape of its input and how its input is drawn."""

    name: str
    kind: str
    f: Callable[[Any], Any]
    shape: tuple[int, ...] = (4, 5)
    domain: str = "real"  # "real": normal; "positive": log-normal; "unit": uniform in (0.05, 0.95)


@dataclass(frozen=True)
class Problem:
    """A checkable problem in the shape `anchors.Counted` takes."""

    J: Callable[[np.ndarray], float]
    grad: Callable[[np.ndarray], np.ndarray]
    theta: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)


def functions() -> list[Function]:
    """The functions, by kind (torch is imported here: only this benchmark needs it)."""
    import torch
    from torch.nn import functional as nnf

    t = torch
    square = (4, 4)
    spd = lambda a: a @ a.T + 4 * t.eye(a.shape[0], dtype=a.dtype)  # noqa: E731
    return [
        *(Function(n, "elementwise", f) for n, f in [
            ("sin", t.sin), ("cos", t.cos), ("tan", lambda x: t.tan(0.3 * x)), ("exp", t.exp),
            ("expm1", t.expm1), ("tanh", t.tanh), ("sigmoid", t.sigmoid), ("softplus", nnf.softplus),
            ("elu", nnf.elu), ("gelu", nnf.gelu), ("silu", nnf.silu), ("arctan", t.arctan), ("asinh", t.asinh),
            ("sinh", t.sinh), ("cosh", t.cosh), ("erf", t.erf), ("erfc", t.erfc), ("square", t.square),
            ("cube", lambda x: x ** 3), ("sinc", t.sinc), ("logaddexp", lambda x: t.logaddexp(x, 0.5 * x))]),
        *(Function(n, "elementwise", f, domain="positive") for n, f in [
            ("log", t.log), ("log1p", t.log1p), ("log2", t.log2), ("log10", t.log10), ("sqrt", t.sqrt),
            ("rsqrt", t.rsqrt), ("reciprocal", t.reciprocal), ("lgamma", t.lgamma), ("digamma", t.digamma),
            ("pow 2.5", lambda x: x ** 2.5), ("xlogy", lambda x: t.xlogy(x, x))]),
        *(Function(n, "elementwise", f, domain="unit") for n, f in [
            ("arcsin", t.arcsin), ("arccos", t.arccos), ("logit", t.logit), ("erfinv", t.erfinv)]),
        *(Function(n, "piecewise", f) for n, f in [
            ("floor", t.floor), ("ceil", t.ceil), ("round", t.round), ("trunc", t.trunc), ("frac", t.frac),
            ("sign", t.sign), ("relu", nnf.relu), ("leaky relu", nnf.leaky_relu), ("abs", t.abs),
            ("clamp", lambda x: t.clamp(x, -0.5, 0.5)), ("hardtanh", nnf.hardtanh),
            ("step", lambda x: (x > 0).to(x.dtype) + 0 * x)]),
        *(Function(n, "locally linear", f) for n, f in [
            ("reshape", lambda x: x.reshape(-1) * 3.0), ("slice", lambda x: x[1:3, ::2]),
            ("transpose", lambda x: x.T), ("flip", lambda x: t.flip(x, (0,))), ("roll", lambda x: t.roll(x, 2)),
            ("diff", lambda x: t.diff(x, dim=1))]),
        *(Function(n, "reduction", f) for n, f in [
            ("sum", lambda x: x.sum(1)), ("mean", lambda x: x.mean(0)), ("prod", lambda x: x.prod(1)),
            ("max", lambda x: x.max(1).values), ("min", lambda x: x.amin(0)),
            ("logsumexp", lambda x: t.logsumexp(x, 1)), ("norm", lambda x: t.linalg.vector_norm(x, dim=1)),
            ("std", lambda x: x.std(1)), ("var", lambda x: x.var(0)), ("cumsum", lambda x: x.cumsum(1)),
            ("cumprod", lambda x: x.cumprod(1)), ("sort", lambda x: t.sort(x, 1).values),
            ("topk", lambda x: t.topk(x, 2, 1).values), ("median", lambda x: x.median(1).values)]),
        *(Function(n, "linear algebra", f, square) for n, f in [
            ("matmul", lambda a: a @ a), ("det", t.linalg.det), ("inv", lambda a: t.linalg.inv(spd(a))),
            ("solve", lambda a: t.linalg.solve(spd(a), t.arange(4.0, dtype=a.dtype))),
            ("slogdet", lambda a: t.linalg.slogdet(spd(a)).logabsdet), ("cholesky", lambda a: t.linalg.cholesky(
                spd(a))), ("eigvalsh", lambda a: t.linalg.eigvalsh(spd(a))),
            ("svdvals", t.linalg.svdvals), ("trace", t.trace), ("matrix exp", t.linalg.matrix_exp),
            ("pinv", t.linalg.pinv), ("qr", lambda a: t.linalg.qr(a).R.diagonal().abs())]),
        *(Function(n, "normalization", f) for n, f in [
            ("softmax", lambda x: t.softmax(x, 1)), ("log softmax", lambda x: t.log_softmax(x, 1)),
            ("layer norm", lambda x: nnf.layer_norm(x, (5,))), ("batch norm", lambda x: nnf.batch_norm(
                x, None, None, training=True)), ("l2 normalize", lambda x: nnf.normalize(x, dim=1)),
            ("standardize", lambda x: (x - x.mean()) / x.std())]),
        *(Function(n, "pooling", f, (1, 1, 6, 6)) for n, f in [
            ("max pool", lambda x: nnf.max_pool2d(x, 2)), ("avg pool", lambda x: nnf.avg_pool2d(x, 2)),
            ("lp pool", lambda x: nnf.lp_pool2d(x, 2, 2)), ("adaptive max", lambda x: nnf.adaptive_max_pool2d(x, 2)),
            ("conv", lambda x: nnf.conv2d(x, t.ones(1, 1, 3, 3, dtype=x.dtype) / 9))]),
        *(Function(n, "loss", f) for n, f in [
            ("mse", lambda x: nnf.mse_loss(x, t.ones_like(x))), ("l1", lambda x: nnf.l1_loss(x, t.ones_like(x) * 0.3)),
            ("huber", lambda x: nnf.huber_loss(x, t.zeros_like(x))),
            ("cross entropy", lambda x: nnf.cross_entropy(x, t.tensor([0, 3, 1, 4]))),
            ("bce logits", lambda x: nnf.binary_cross_entropy_with_logits(x, t.full_like(x, 0.3))),
            ("hinge", lambda x: t.relu(1 - x * t.sign(t.arange(20.0, dtype=x.dtype).reshape(4, 5) - 9.5))),
            ("poisson nll", lambda x: nnf.poisson_nll_loss(x, t.full_like(x, 2.0))),
            ("kl div", lambda x: nnf.kl_div(t.log_softmax(x, 1), t.softmax(t.ones_like(x), 1), reduction="sum"))]),
        Function("count nonzero", "piecewise", lambda x: t.count_nonzero(t.relu(x)).to(x.dtype) + x.sum()),
    ]


def problem(fn: Function, seed: int) -> Problem:
    """``J(x) = sum(f(x) * w)`` and its right gradient, at a random point."""
    import torch

    rng = np.random.default_rng(seed)
    draw = {"real": lambda: rng.normal(size=fn.shape), "positive": lambda: np.exp(0.5 * rng.normal(size=fn.shape)),
            "unit": lambda: rng.uniform(0.05, 0.95, fn.shape)}[fn.domain]
    theta = draw()
    out_shape = fn.f(torch.from_numpy(theta)).shape
    w = torch.from_numpy(np.random.default_rng(seed + 1000).normal(size=tuple(out_shape)))

    def J(x: np.ndarray) -> float:
        with torch.no_grad():
            return float(torch.sum(fn.f(torch.from_numpy(np.asarray(x, dtype=np.float64))) * w))

    def grad(x: np.ndarray) -> np.ndarray:
        tensor = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
        with torch.enable_grad():  # also inside torch.gradcheck's backward, where it is off
            torch.sum(fn.f(tensor) * w).backward()
        return tensor.grad.numpy().copy()

    return Problem(J, grad, theta)


def mutated(p: Problem, position: int, delta: float) -> Problem:
    def grad(x: np.ndarray) -> np.ndarray:
        g = p.grad(x)
        g.reshape(-1)[position] *= 1 + delta
        return g
    return Problem(p.J, grad, p.theta)


def verdict(checker: str, p: Problem) -> tuple[str, set[str]]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if checker == "gradwidget":
            result = gw.check(p.J, p.grad, p.theta, progress=False)
            return result.verdict, {d.code for d in result.diagnoses}
        counted = Counted(p)
        return ("passed" if ANCHORS[checker](counted.cost, counted.grad, counted.x0) else "failed"), set()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=None, help="names of the checkers to run")
    args = parser.parse_args()
    checkers = args.only or CHECKERS
    fns = functions()
    alarms = dict.fromkeys(checkers, 0)
    unsure = dict.fromkeys(checkers, 0)
    ignores = 0
    caught = {c: np.zeros(len(DELTAS)) for c in checkers}
    trials = np.zeros(len(DELTAS))
    alarm_names: dict[str, list[str]] = {c: [] for c in checkers}
    ignores_names: list[str] = []
    rights = 0
    for fn in fns:
        for seed in range(args.points):
            p = problem(fn, seed)
            g = p.grad(p.theta).reshape(-1)
            live = np.flatnonzero((g != 0) & (np.abs(g) >= 0.1 * np.sqrt(np.mean(g ** 2))))
            rights += 1
            for checker in checkers:
                v, _ = verdict(checker, p)
                alarms[checker] += v == "failed"
                unsure[checker] += v == "inconclusive"
                if v == "failed":
                    alarm_names[checker].append(f"{fn.name}@{seed}")
            if not live.size:
                continue
            position = int(np.random.default_rng(seed).choice(live))
            for k, delta in enumerate(DELTAS):
                trials[k] += 1
                for checker in checkers:
                    v, found = verdict(checker, mutated(p, position, delta))
                    caught[checker][k] += v == "failed"
                    if "ignores-input" in found:
                        ignores += 1
                        ignores_names.append(f"{fn.name}@{seed}, delta {delta:g}")
    kinds = sorted({fn.kind for fn in fns})
    print(f"{len(fns)} functions ({', '.join(f'{sum(fn.kind == k for fn in fns)} {k}' for k in kinds)}), "
          f"{args.points} points each: {rights} right gradients, {int(trials[0])} mutations per delta\n")
    rows = []
    for checker in checkers:
        rows.append((checker, f"{alarms[checker]}/{rights}",
                     str(unsure[checker]) if checker == "gradwidget" else "-",
                     f"{ignores}" if checker == "gradwidget" else "-",
                     *(f"{100 * caught[checker][k] / trials[k]:.1f}%" for k in range(len(DELTAS)))))
    print_table(("checker", "false alarms", "inconclusive (right)", "ignores-input (misdiagnosed)",
                 *(f"caught at {d:g}" for d in DELTAS)), rows)
    for checker in checkers:
        if alarm_names[checker] and checker == "gradwidget":
            print(f"\n{checker} failed right gradients: {', '.join(alarm_names[checker])}")
    if ignores_names:
        print(f"\nignores-input claimed on: {', '.join(ignores_names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
