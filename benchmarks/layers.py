"""gradwidget's checks of layers, Jacobians and Hessians against the course recipe, torch and jax.

Every checker sees the cases of ``tests/layer_cases.py``: right layers and
derivatives, which must pass, and buggy ones, which must fail. Each case is
handed to the anchors as a user of those tools would: the differentiated
inputs, a function to the flat output, and its vector-Jacobian product.

- The course recipe: a numerical VJP with central differences (h = 1e-5)
  and an upstream gradient of standard normals, passed when every input's
  max |a - n| / max(1e-8, |a| + |n|) is below 1e-7.
- torch.autograd.gradcheck (default and fast mode, float64): the numpy
  forward and VJP wrapped in a ``torch.autograd.Function``, as a numpy
  layer is checked with torch.
- jax.test_util.check_grads (reverse mode, order 1, float64): the numpy
  forward and VJP wrapped in a ``jax.custom_vjp`` through
  ``jax.pure_callback``.

The table counts bugs caught, false alarms, inconclusive verdicts, right
explanations (the exact diagnosis codes a case calls for), calls of the
forward and seconds. An anchor that raises on a case (a gradient of the
wrong shape) counts as catching it. Then the speed of a whole-Jacobian
check against its floor (2n calls of the forward and m of the backward),
and the peak memory of random projections on a large layer at 8 and 64
directions (it must not grow with them).

Run: ``python benchmarks/layers.py`` (needs ``pip install -e .[bench]``).
"""

from __future__ import annotations

import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from layer_cases import LAYER_CASES, LayerCase, make_layer
from tables import ok, print_table, verdict_row

import gradwidget as gw
from gradwidget._layer import argument_names

RECIPE_STEP = 1e-5
RECIPE_BOUND = 1e-7
SPEED_TARGET = 1.15
SPEED_FORWARD = 5e-4  # the target is for forwards of 0.5 ms and more; cheaper ones pay the check's own ~20 us a call
MEMORY_GROWTH = 1.1


@dataclass
class Vjp:
    """A case as the anchors take it: inputs, f to a flat output, and the VJP; f's calls counted."""

    inputs: list[np.ndarray]
    output: Callable[[list[np.ndarray]], np.ndarray]
    product: Callable[[list[np.ndarray], np.ndarray], list[np.ndarray]]
    calls: int = 0

    def f(self, xs: list[np.ndarray]) -> np.ndarray:
        self.calls += 1
        return self.output(xs)

    def vjp(self, xs: list[np.ndarray], v: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(g, dtype=np.float64) for g in self.product(xs, v)]


def as_vjp(case: LayerCase) -> Vjp:
    """The case's functions as a flat-output f and its VJP (gradients as the user's code returns them)."""
    if case.entry in ("layer", "loss"):
        call, args = case.functions[0], list(case.args)
        wrt = case.options.get("wrt")
        names = argument_names(call, len(args))
        chosen = ([names.index(w) for w in ((wrt,) if isinstance(wrt, str) else wrt)] if wrt is not None else
                  [k for k, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"])

        def given(xs: list[np.ndarray]) -> list[Any]:
            filled = [a.copy() if isinstance(a, np.ndarray) else dict(a) if isinstance(a, dict) else a for a in args]
            for k, x in zip(chosen, xs):
                filled[k] = x
            return filled

        if case.entry == "loss":
            def output(xs: list[np.ndarray]) -> np.ndarray:
                return np.array([call(*given(xs))[0]])

            def product(xs: list[np.ndarray], v: np.ndarray) -> list[np.ndarray]:
                grads = call(*given(xs))[1]
                return [v[0] * np.asarray(g) for g in (grads if isinstance(grads, tuple) else (grads,))]
        else:
            backward = case.functions[1]

            def output(xs: list[np.ndarray]) -> np.ndarray:
                return np.ravel(call(*given(xs))[0])

            def product(xs: list[np.ndarray], v: np.ndarray) -> list[np.ndarray]:
                out, cache = call(*given(xs))
                grads = backward(v.reshape(np.shape(out)), cache)
                return list(grads) if isinstance(grads, tuple) else [grads]
        return Vjp([np.array(args[k], dtype=float) for k in chosen], output, product)
    f, derivative = case.functions
    several = isinstance(case.args[0], (list, tuple))  # x given as a list of arrays: each is an input
    inputs = [np.asarray(a, dtype=float) for a in case.args[0]] if several else [np.asarray(case.args[0], dtype=float)]

    def point(xs: list[np.ndarray]) -> Any:
        return list(xs) if several else xs[0]

    out_shape = np.shape(f(point(inputs)))

    def flat_f(xs: list[np.ndarray]) -> np.ndarray:
        return np.ravel(f(point(xs)))

    if case.entry == "vjp":
        return Vjp(inputs, flat_f, lambda xs, v: list(derivative(point(xs), v.reshape(out_shape))) if several
                   else [derivative(xs[0], v.reshape(out_shape))])
    x = inputs[0]
    if case.entry == "jvp":
        return Vjp([x], flat_f, lambda xs, v: [np.array([v @ np.ravel(derivative(xs[0], e.reshape(x.shape)))
                                                         for e in np.eye(x.size)]).reshape(x.shape)])
    return Vjp([x], flat_f, lambda xs, v: [(v @ np.asarray(derivative(xs[0])).reshape(v.size, -1)).reshape(x.shape)])


def course_recipe(problem: Vjp) -> bool:
    """A numerical VJP per input and the course's relative error, each below 1e-7."""
    rng = np.random.default_rng(0)
    dout = rng.standard_normal(problem.f(problem.inputs).size)
    analytic = problem.vjp(problem.inputs, dout)
    for k, x in enumerate(problem.inputs):
        numeric = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            moved = [a.copy() for a in problem.inputs]
            moved[k][i] = x[i] + RECIPE_STEP
            plus = problem.f(moved)
            moved[k][i] = x[i] - RECIPE_STEP
            numeric[i] = (plus - problem.f(moved)) @ dout / (2 * RECIPE_STEP)
        error = np.max(np.abs(analytic[k] - numeric) / np.maximum(1e-8, np.abs(analytic[k]) + np.abs(numeric)))
        if not error < RECIPE_BOUND:
            return False
    return True


def torch_gradcheck(problem: Vjp, fast: bool) -> bool:
    import torch

    class NumpyLayer(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *tensors: Any) -> Any:
            ctx.save_for_backward(*tensors)
            return torch.from_numpy(problem.f([t.detach().numpy() for t in tensors]))

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            xs = [t.detach().numpy() for t in ctx.saved_tensors]
            return tuple(torch.from_numpy(g) for g in problem.vjp(xs, grad.numpy().astype(np.float64)))

    inputs = tuple(torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in problem.inputs)
    return bool(torch.autograd.gradcheck(NumpyLayer.apply, inputs, raise_exception=False, fast_mode=fast))


def jax_check_grads(problem: Vjp) -> bool:
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    jax.config.update("jax_enable_x64", True)
    shapes = [jax.ShapeDtypeStruct(x.shape, jnp.float64) for x in problem.inputs]
    out = jax.ShapeDtypeStruct(problem.f(problem.inputs).shape, jnp.float64)

    @jax.custom_vjp
    def layer(*xs: Any) -> Any:
        return jax.pure_callback(lambda *a: problem.f([np.asarray(t) for t in a]), out, *xs)

    def forward(*xs: Any) -> Any:
        return layer(*xs), xs

    def backward(xs: Any, g: Any) -> Any:
        return tuple(jax.pure_callback(lambda *a: tuple(problem.vjp([np.asarray(t) for t in a[:-1]],
                                                                    np.asarray(a[-1]))), tuple(shapes), *xs, g))

    layer.defvjp(forward, backward)
    try:
        check_grads(layer, tuple(jnp.asarray(x) for x in problem.inputs), order=1, modes=("rev",))
    except AssertionError:
        return False
    return True


ANCHORS: dict[str, Callable[[Vjp], bool]] = {
    "course recipe (rel. error < 1e-7)": course_recipe,
    "torch.autograd.gradcheck": lambda p: torch_gradcheck(p, fast=False),
    "torch.autograd.gradcheck (fast_mode)": lambda p: torch_gradcheck(p, fast=True),
    "jax check_grads (rev)": jax_check_grads,
}


def accuracy() -> None:
    cases = [make_layer(name) for name in LAYER_CASES]
    buggy = [c for c in cases if not c.correct]
    explained = [c for c in buggy if c.codes]
    rows: list[tuple[str, ...]] = []
    misses: dict[str, list[str]] = {}

    def tally(name: str, outcomes: list[tuple[LayerCase, str, set[str] | None, int, float]]) -> None:
        row, misses[name] = verdict_row(name, outcomes, gradwidget=name == "gradwidget")
        rows.append(row)

    outcomes = []
    said: dict[str, str] = {}
    for case in cases:
        start = time.perf_counter()
        result = case.run()
        outcomes.append((case, result.verdict, {d.code for d in result.diagnoses}, result.evaluations,
                         time.perf_counter() - start))
        said[case.name] = " ".join(d.message for d in result.diagnoses if d.code in case.codes)
    tally("gradwidget", outcomes)
    by_checker = {"gradwidget": outcomes}
    for name, run in ANCHORS.items():
        outcomes = []
        for case in cases:
            problem = as_vjp(make_layer(case.name))
            start = time.perf_counter()
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                try:
                    verdict = "passed" if run(problem) else "failed"
                except Exception:  # a gradient of the wrong shape: the anchor cannot go on
                    verdict = "failed"
            outcomes.append((case, verdict, None, problem.calls, time.perf_counter() - start))
        tally(name, outcomes)
        by_checker[name] = outcomes
    kinds = ", ".join(f"{sum(c.entry == k for c in cases)} {k}" for k in ("layer", "loss", "vjp", "jvp", "jacobian",
                                                                           "hessian"))
    print(f"{len(cases)} cases ({kinds}): {len(buggy)} buggy ({len(explained)} with a diagnosis to give), "
          f"{len(cases) - len(buggy)} right\n")
    print_table(("checker", "bugs caught", "false alarms", "inconclusive", "right explanations", "calls of f",
                 "seconds"), rows)
    print()
    for name, missed in misses.items():
        if missed:
            print(f"- {name} gets the wrong verdict on: {', '.join(missed)}")
    print()
    patterns(by_checker, said)


def patterns(by_checker: dict[str, list[tuple[LayerCase, str, set[str] | None, int, float]]],
             said: dict[str, str]) -> None:
    """Per pattern of real code: bugs caught and explained (the case's codes and words), misleading, twins passed.

    A bug is explained when gradwidget gives exactly the codes the case calls
    for and its messages say the case's words; misleading, when it gives a
    code the case does not call for (a cause the bug does not have).
    """
    ours = by_checker["gradwidget"]
    names = sorted({case.pattern for case, *_ in ours if case.pattern})
    rows = []
    for pattern in [*names, "all cases"]:
        chosen = [o for o in ours if pattern == "all cases" or o[0].pattern == pattern]
        bugs = [o for o in chosen if not o[0].correct]
        explained = sum(o[1] == "failed" and o[2] == set(o[0].codes)
                        and all(w in said[o[0].name] for w in o[0].words) for o in bugs)
        misleading = sum(bool((o[2] or set()) - set(o[0].codes)) for o in bugs)
        twins = [o for o in chosen if o[0].correct]
        bug_names = {o[0].name for o in bugs}
        anchors = [f"{sum(v == 'failed' for c, v, *_ in by_checker[a] if c.name in bug_names)}/{len(bugs)}"
                   for a in ANCHORS]
        rows.append((pattern, f"{sum(o[1] == 'failed' for o in bugs)}/{len(bugs)}", f"{explained}/{len(bugs)}",
                     str(misleading), f"{sum(o[1] == o[0].verdict for o in twins)}/{len(twins)}", *anchors))
    print_table(("pattern", "gradwidget: caught", "explained", "misleading", "right twins' verdict",
                 *(f"{a}: caught" for a in ANCHORS)), rows)


def speed() -> None:
    """A whole-Jacobian layer check against 2n calls of the forward and m of the backward (interleaved, best of 9)."""
    rows = []
    larger = replace(make_layer("conv-stride-pad"), name="conv 4x3x8x8, 4 filters 3x3",
                     args=(*(np.random.default_rng(1).normal(size=s) for s in ((4, 3, 8, 8), (4, 3, 3, 3), (4,))),
                           {"stride": 1, "pad": 1}))
    for case in [larger, *map(make_layer, ("conv-stride-pad", "lstm", "batchnorm-train", "attention"))]:
        forward, backward = case.functions
        args = list(case.args)
        n = sum(a.size for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f")
        out, cache = forward(*args)
        m = np.size(out)
        dout = np.ones_like(out)
        one_forward = _best(lambda forward=forward, args=args: forward(*args), 50)

        def floor(forward: Any = forward, backward: Any = backward, args: Any = args, n: int = n, m: int = m,
                  dout: Any = dout, cache: Any = cache) -> None:
            for _ in range(2 * n):
                forward(*args)
            for _ in range(m):
                backward(dout, cache)

        floor_time, check_time = _best_of_both(floor, lambda case=case: case.run(progress=False))
        ratio = check_time / floor_time
        rows.append((case.name, f"{one_forward * 1e3:.3f}", str(n), str(m), f"{floor_time * 1e3:.1f}",
                     f"{check_time * 1e3:.1f}", f"{ratio:.2f}",
                     ok(ratio <= SPEED_TARGET) if one_forward >= SPEED_FORWARD else "-"))
    print_table(("layer", "forward (ms)", "n inputs", "m outputs", "2n forward + m backward (ms)", "check_layer (ms)",
                 "ratio", f"<= {SPEED_TARGET} (forward >= {SPEED_FORWARD * 1e3:g} ms)"), rows)


def memory() -> None:
    """Random projections on a layer too large for the whole Jacobian: peak memory against the number of directions."""
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2000, 500)), rng.normal(size=(500, 400)) * 0.05, rng.normal(size=400)
    forward, backward = make_layer("affine").functions
    inputs = x.nbytes + w.nbytes + b.nbytes
    rows = []
    peaks = []
    for directions in (8, 64):
        tracemalloc.start()
        result = gw.check_layer(forward, backward, x, w, b, directions=directions, seed=0, progress=False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peaks.append(peak)
        rows.append((f"affine 2000 x 500 -> 400, directions={directions}", f"{inputs / 1e6:.1f}", result.verdict,
                     f"{peak / inputs:.1f}", ok(peak <= MEMORY_GROWTH * peaks[0])))
    print_table(("layer", "inputs (MB)", "verdict", "peak / inputs' bytes",
                 f"peak <= {MEMORY_GROWTH} x the peak at 8 directions"), rows)


def _best_of_both(first: Callable[[], Any], second: Callable[[], Any], rounds: int = 9) -> tuple[float, float]:
    """The best time of each of two runs, measured in turns (a busy machine slows both alike)."""
    best = [np.inf, np.inf]
    for _ in range(rounds):
        for k, run in enumerate((first, second)):
            start = time.perf_counter()
            run()
            best[k] = min(best[k], time.perf_counter() - start)
    return best[0], best[1]


def _best(run: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    accuracy()
    print()
    speed()
    print()
    memory()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
