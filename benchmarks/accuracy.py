"""gradwidget against other gradient checkers on the test corpus.

Every checker sees the same cases (tests/corpus.py): right gradients, which
must pass, and buggy ones, which must fail. The table counts bugs caught,
false alarms, right explanations (the exact diagnosis codes a case calls
for), calls of J and seconds.

The anchors and the verdict rule each is given:

- scipy.optimize.check_grad: forward differences with step sqrt(eps);
  pass when its ||grad - approx|| < 1e-5 * max(1, ||grad||).
- torch.autograd.gradcheck, float64, default tolerances (eps=1e-6,
  atol=1e-5, rtol=1e-3), full and fast_mode; grad is wrapped as the
  backward of a custom autograd Function.
- numdifftools.Gradient (adaptive central differences with Richardson
  extrapolation); pass when np.allclose(a, n, rtol=1e-6, atol=1e-9).
- The gradient-checking article: central, eps=1e-4, pass when
  ||a - n|| / ||a + n|| < 1e-7.
- The R article: central, eps=1e-8, pass when every element-wise relative
  error |n - a| / |n| < 1e-6.

Run: ``python benchmarks/accuracy.py`` (needs ``pip install -e .[bench]``).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from corpus import Case, all_cases, make

import gradwidget as gw
from gradwidget._params import flatten


class Counted:
    """J on a flat vector, counting its calls."""

    def __init__(self, case: Case) -> None:
        self.layout, self.x0 = flatten(case.theta, case.options.get("shapes"), case.options.get("names"))
        self.case = case
        self.calls = 0

    def cost(self, x: np.ndarray) -> float:
        self.calls += 1
        value = self.case.J(self.layout.views(np.array(x, dtype=self.x0.dtype)))
        if self.case.grad is None:
            value = value[0]
        return float(np.asarray(value).reshape(()))

    def grad(self, x: np.ndarray) -> np.ndarray:
        point = self.layout.views(np.array(x, dtype=self.x0.dtype))
        g = self.case.J(point)[1] if self.case.grad is None else self.case.grad(point)
        # Unrolled as a user of these tools would: each array raveled as it came back.
        parts = [g[k] for k in self.layout.keys] if isinstance(g, dict) else g
        if self.layout.kind in ("dict", "list", "tuple"):
            return np.concatenate([np.ravel(p) for p in parts]).astype(np.float64)
        return np.ravel(parts).astype(np.float64)


def central(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float) -> np.ndarray:
    out = np.empty(x.size)
    for i in range(x.size):
        plus, minus = x.copy(), x.copy()
        plus[i] += eps
        minus[i] -= eps
        out[i] = (f(plus) - f(minus)) / (2 * eps)
    return out


def run_gradwidget(case: Case) -> tuple[bool, set[str], int]:
    result = gw.check(case.J, case.grad, case.theta, **case.options)
    return result.passed, {d.code for d in result.diagnoses}, result.evaluations


def run_scipy(c: Counted) -> bool:
    from scipy.optimize import check_grad

    a = c.grad(c.x0)
    return bool(check_grad(c.cost, c.grad, c.x0) < 1e-5 * max(1.0, float(np.linalg.norm(a))))


def run_torch(c: Counted, fast: bool) -> bool:
    import torch

    class Wrapped(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(x)
            return torch.tensor(c.cost(x.detach().numpy()), dtype=torch.float64)

        @staticmethod
        def backward(ctx: Any, out: torch.Tensor) -> torch.Tensor:
            (x,) = ctx.saved_tensors
            return out * torch.from_numpy(c.grad(x.detach().numpy()).astype(np.float64))

    x = torch.tensor(c.x0.astype(np.float64), requires_grad=True)
    return bool(torch.autograd.gradcheck(Wrapped.apply, (x,), raise_exception=False, fast_mode=fast))


def run_numdifftools(c: Counted) -> bool:
    import numdifftools as nd

    numeric = np.atleast_1d(nd.Gradient(c.cost)(c.x0.astype(np.float64)))
    return bool(np.allclose(c.grad(c.x0), numeric, rtol=1e-6, atol=1e-9))


def run_article(c: Counted) -> bool:
    a, n = c.grad(c.x0), central(c.cost, c.x0, 1e-4)
    return bool(np.linalg.norm(a - n) / np.linalg.norm(a + n) < 1e-7)


def run_r_article(c: Counted) -> bool:
    a, n = c.grad(c.x0), central(c.cost, c.x0, 1e-8)
    with np.errstate(divide="ignore", invalid="ignore"):
        return bool(np.all(np.abs((n - a) / n) < 1e-6))


ANCHORS: dict[str, Callable[[Counted], bool]] = {
    "scipy check_grad": run_scipy,
    "torch gradcheck": lambda c: run_torch(c, fast=False),
    "torch gradcheck fast": lambda c: run_torch(c, fast=True),
    "numdifftools": run_numdifftools,
    "article: 1e-4, <1e-7": run_article,
    "R article: 1e-8, rel": run_r_article,
}


def main() -> int:
    cases = all_cases()
    buggy = [c for c in cases if not c.correct]
    explained = [c for c in buggy if c.codes]
    rows = []
    misses: dict[str, list[str]] = {}

    def tally(name: str, outcomes: list[tuple[Case, bool, set[str] | None, int, float]]) -> None:
        caught = sum(not passed for case, passed, *_ in outcomes if not case.correct)
        alarms = sum(not passed for case, passed, *_ in outcomes if case.correct)
        right = sum(1 for case, passed, codes, *_ in outcomes
                    if case in explained and not passed and codes == set(case.codes))
        calls = sum(o[3] for o in outcomes)
        seconds = sum(o[4] for o in outcomes)
        misses[name] = [case.name for case, passed, *_ in outcomes if passed != case.correct]
        rows.append((name, f"{caught}/{len(buggy)}", f"{alarms}/{len(cases) - len(buggy)}",
                     f"{right}/{len(explained)}", str(calls), f"{seconds:.2f}"))

    outcomes = []
    for case in cases:
        start = time.perf_counter()
        passed, codes, calls = run_gradwidget(case)
        outcomes.append((case, passed, codes, calls, time.perf_counter() - start))
    tally("gradwidget (defaults)", outcomes)
    for name, run in ANCHORS.items():
        outcomes = []
        for case in cases:
            counted = Counted(make(case.name))  # fresh closures: stateful cases start over
            start = time.perf_counter()
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                passed = run(counted)
            outcomes.append((case, passed, None, counted.calls, time.perf_counter() - start))
        tally(name, outcomes)

    header = ("checker", "bugs caught", "false alarms", "right explanations", "calls of J", "seconds")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"{len(cases)} cases: {len(buggy)} buggy ({len(explained)} with a diagnosis to give), "
          f"{len(cases) - len(buggy)} right\n")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
    print("\nWrong verdicts:")
    for name, names in misses.items():
        print(f"  {name}: {', '.join(names) if names else 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
