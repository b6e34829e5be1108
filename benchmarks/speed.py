"""Speed of gradwidget's cost modes, as ratios measured in one run.

Each row is the median of several runs on this machine:

- full check: wall time of a full central check of a right gradient over
  the time of 2n bare calls of J (an MLP of about 4,000 parameters, J of
  50 us or more). Target <= 1.10.
- vectorized: a check with ``vectorized=True`` of the article's network
  written batch-aware, over one batched call of J on all 2n points
  (target <= 1.3 from 100 examples up), and the article's Octave-style loop over it (about 5x),
  with m = 20, 100 and 200 training examples. The two pull apart: batching
  beats the loop most when J is tiny, and then a check's fixed cost (two
  calls at theta, grad three times, the report: about 1.5 to 2 ms) is a large share of
  one batch.
- executor: serial over a 2-process pool, J of about 2 ms (target >= 1.7),
  beside the pool's speedup on a plain ``map`` of J: on a shared 2-core
  virtual machine the second core is not always there, and that row says
  how much of it was.
- directional: calls of ``directions=8`` over a full check's, on 20,000
  entries with one wrong (target <= 1%), and whether the entry was named.
- anchors: gradwidget, scipy.optimize.check_grad, torch.autograd.gradcheck
  (full and fast mode) and numdifftools.Gradient on the MLP: calls of J and
  seconds.

Run: ``python benchmarks/speed.py`` (anchors need ``pip install -e .[bench]``).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from anchors import ANCHORS
from tables import ok, print_table

import gradwidget as gw
from gradwidget.examples import ARTICLE_SHAPES, article_gradient, article_network, one_wrong_entry

RUNS = 5


def median_time(fn: Callable[[], Any], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---------------------------------------------------------------- problems

RNG = np.random.default_rng(0)
M, D, H, K = 192, 20, 96, 10
X = RNG.normal(size=(M, D))
Y = np.eye(K)[RNG.integers(0, K, M)]


def mlp_cost(p: dict[str, np.ndarray]) -> float:
    hidden = np.tanh(X @ p["W1"] + p["b1"])
    z = hidden @ p["W2"] + p["b2"]
    z = z - z.max(axis=1, keepdims=True)
    return float(-np.sum(Y * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))) / M)


def mlp_grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    hidden = np.tanh(X @ p["W1"] + p["b1"])
    z = hidden @ p["W2"] + p["b2"]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    G = (e / e.sum(axis=1, keepdims=True) - Y) / M
    back = (G @ p["W2"].T) * (1 - hidden ** 2)
    return {"W1": X.T @ back, "b1": back.sum(axis=0), "W2": hidden.T @ G, "b2": G.sum(axis=0)}


MLP_THETA = {"W1": RNG.normal(scale=0.3, size=(D, H)), "b1": RNG.normal(scale=0.1, size=H),
             "W2": RNG.normal(scale=0.3, size=(H, K)), "b2": RNG.normal(scale=0.1, size=K)}
MLP_SIZE = sum(v.size for v in MLP_THETA.values())
SLOW_WEIGHTS = np.linspace(-1, 1, 300)
SLOW_ROUNDS = 400


def slow_cost(x: np.ndarray) -> float:
    """About 2 ms of arithmetic (not sleep: the processes must really work)."""
    total = 0.0
    for _ in range(SLOW_ROUNDS):
        total += float(SLOW_WEIGHTS @ np.sin(x + total * 1e-300))
    return total / SLOW_ROUNDS + 0.5 * float(x @ x)


def slow_grad(x: np.ndarray) -> np.ndarray:
    return SLOW_WEIGHTS * np.cos(x) + x


# ---------------------------------------------------------------- measurements


def full_check_overhead() -> tuple[float, float]:
    def bare() -> None:
        for _ in range(2 * MLP_SIZE):
            mlp_cost(MLP_THETA)

    per_call = median_time(bare) / (2 * MLP_SIZE)
    ratios = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(2 * MLP_SIZE):
            mlp_cost(MLP_THETA)
        bare_time = time.perf_counter() - start
        start = time.perf_counter()
        gw.check(mlp_cost, mlp_grad, MLP_THETA, progress=False)
        ratios.append((time.perf_counter() - start) / bare_time)
    return statistics.median(ratios), per_call


def vectorized(samples: int) -> tuple[float, float, float]:
    J_batch, grad, theta = article_network(samples=samples, batched=True)
    J, _, _ = article_network(samples=samples)
    n = theta.size
    rows = np.repeat(theta[None, :], 2 * n, axis=0)
    rows[np.arange(n), np.arange(n)] += 1e-4
    rows[n + np.arange(n), np.arange(n)] -= 1e-4
    def check() -> None:
        gw.check(J_batch, grad, theta, shapes=ARTICLE_SHAPES, vectorized=True, progress=False)

    pairs = [(median_time(lambda: J_batch(rows), 1), median_time(check, 1)) for _ in range(3 * RUNS)]
    one_call = statistics.median(call for call, _ in pairs)
    ratio = statistics.median(checked / call for call, checked in pairs)

    return ratio, median_time(lambda: article_gradient(J, theta)) / (ratio * one_call), one_call


def executor_speedup() -> tuple[float, float, float]:
    """The check's speedup on a 2-process pool, and the pool's own on plain map (the ceiling)."""
    x = np.linspace(-1, 1, 300)
    points = [x + 1e-6 * i for i in range(600)]
    per_call = median_time(lambda: slow_cost(x), runs=20)
    speedups, ceilings = [], []
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(abs, range(8)))  # start the workers
        for _ in range(RUNS):
            serial = median_time(lambda: gw.check(slow_cost, slow_grad, x, progress=False), 1)
            speedups.append(serial / median_time(
                lambda: gw.check(slow_cost, slow_grad, x, executor=pool, progress=False), 1))
            plain = median_time(lambda: [slow_cost(p) for p in points], 1)
            ceilings.append(plain / median_time(lambda: list(pool.map(slow_cost, points, chunksize=20)), 1))
    return statistics.median(speedups), per_call, statistics.median(ceilings)


def directional() -> tuple[float, bool]:
    J, grad, x = one_wrong_entry(20_000, wrong=4321, seed=1)
    calls = []
    named = True
    for seed in range(RUNS):
        result = gw.check(J, grad, x, directions=8, seed=seed, progress=False)
        calls.append(result.evaluations)
        named &= list(result.evidence.directional.wrong) == [4321]
    return statistics.median(calls) / (2 * 20_000 + 2), named


def anchors() -> list[tuple[str, str, str]]:
    from gradwidget._params import flatten

    layout, x0 = flatten(MLP_THETA)
    calls = [0]

    def flat_cost(x: np.ndarray) -> float:
        calls[0] += 1
        return mlp_cost(layout.views(np.asarray(x, dtype=float)))

    def flat_grad(x: np.ndarray) -> np.ndarray:
        return layout.flatten_like(mlp_grad(layout.views(np.asarray(x, dtype=float))))[0]

    rows = []

    def measure(name: str, run: Callable[[], Any], runs: int = 3) -> None:
        calls[0] = 0
        run()
        count = calls[0]
        rows.append((name, str(count), f"{median_time(run, runs):.3f}"))

    for name, options in (("gradwidget (full)", {}), ("gradwidget (directions=8)", {"directions": 8, "seed": 0})):
        result = gw.check(mlp_cost, mlp_grad, MLP_THETA, progress=False, **options)
        seconds = median_time(lambda o=options: gw.check(mlp_cost, mlp_grad, MLP_THETA, progress=False, **o), 3)
        rows.append((name, str(result.evaluations), f"{seconds:.3f}"))
    try:
        import numdifftools  # noqa: F401
        import scipy  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        rows.append((f"anchors not installed ({exc.name}): pip install -e .[bench]", "", ""))
        return rows
    for name in ("scipy check_grad", "torch gradcheck", "torch gradcheck fast", "numdifftools"):
        measure(name, lambda run=ANCHORS[name]: run(flat_cost, flat_grad, x0), runs=1 if name == "numdifftools" else 3)
    return rows


def main() -> int:
    overhead, per_call = full_check_overhead()
    sizes = {m: vectorized(m) for m in (20, 100, 200)}
    speedup, slow_call, ceiling = executor_speedup()
    fraction, named = directional()
    rows = [
        (f"full check / 2n bare calls (MLP, n={MLP_SIZE}, J {per_call * 1e6:.0f} us)",
         f"{overhead:.3f}", "<= 1.10", ok(overhead <= 1.10)),
        *[(f"vectorized check / one batched call on 2n points (article network, m={m}: {call * 1e3:.1f} ms)",
           f"{ratio:.2f}", "<= 1.3" if m >= 100 else "(m >= 100)", ok(ratio <= 1.3) if m >= 100 else "")
          for m, (ratio, _, call) in sizes.items()],
        *[(f"article's loop / vectorized check (m={m})", f"{loop:.1f}x", "about 5x", ok(loop >= 4))
          for m, (_, loop, _) in sizes.items()],
        (f"serial / 2-process pool (J {slow_call * 1e3:.1f} ms, n=300)",
         f"{speedup:.2f}x", ">= 1.7x", ok(speedup >= 1.7)),
        ("  the same pool on plain map of J: what this machine allowed", f"{ceiling:.2f}x", "", ""),
        ("directions=8 calls / full check calls (n=20,000, 1 wrong)",
         f"{fraction:.2%}", "<= 1%", ok(fraction <= 0.01 and named)),
        ("  ...the wrong entry named in every run", str(named), "True", ok(named)),
    ]
    print(f"gradwidget speed (medians of {RUNS} runs; {sys.platform}, numpy {np.__version__})\n")
    print_table(("what", "measured", "target", "met"), rows)
    print(f"\nOn the MLP (n={MLP_SIZE}), a right gradient:\n")
    print_table(("checker", "calls of J", "seconds"), anchors())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
