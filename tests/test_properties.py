"""Property tests: random smooth functions with known gradients."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import gradwidget as gw
from gradwidget._verdict import Status

FUNCTIONS = {  # f, f' applied entry-wise; J = sum(c * f(x))
    "sin": (np.sin, np.cos),
    "exp": (np.exp, np.exp),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "cube": (lambda x: x ** 3, lambda x: 3 * x ** 2),
    "softplus": (lambda x: np.log1p(np.exp(x)), lambda x: 1 / (1 + np.exp(-x))),
}


@st.composite
def problems(draw: st.DrawFn) -> tuple:
    n = draw(st.integers(1, 12))
    name = draw(st.sampled_from(sorted(FUNCTIONS)))
    seed = draw(st.integers(0, 2 ** 31))
    scale = draw(st.sampled_from([1e-3, 1.0, 10.0]))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, n)
    c = rng.uniform(0.5, 2.0, n) * rng.choice([-1, 1], n) * scale
    A = rng.normal(size=(n, n)) / np.sqrt(n)
    return name, x, c, A


def make(name: str, c: np.ndarray, A: np.ndarray) -> tuple:
    f, df = FUNCTIONS[name]

    def J(x: np.ndarray) -> float:  # couples the entries through A
        return c @ f(A @ x)

    def grad(x: np.ndarray) -> np.ndarray:
        return A.T @ (c * df(A @ x))

    return J, grad


@settings(max_examples=60, deadline=None)
@given(problems(), st.sampled_from([np.float64, np.float32]))
def test_right_gradients_pass(problem: tuple, dtype: type) -> None:
    name, x, c, A = problem
    J, grad = make(name, c, A)
    result = gw.check(J, grad, x.astype(dtype), seed=0)
    assert result.passed, str(result)


@settings(max_examples=60, deadline=None)
@given(problems(), st.integers(0, 11), st.sampled_from([1e-3, 1e-2, 0.5]))
def test_errors_well_above_the_noise_fail(problem: tuple, which: int, size: float) -> None:
    name, x, c, A = problem
    J, grad = make(name, c, A)
    i = which % x.size
    bump = np.zeros_like(x)
    right = grad(x)
    bump[i] = size * max(abs(right[i]), np.sqrt(np.mean(right ** 2)))

    result = gw.check(J, lambda t: grad(t) + bump, x, seed=0)
    assert not result.passed, str(result)
    assert result.evidence.status[i] == Status.WRONG


@settings(max_examples=40, deadline=None)
@given(problems(), st.sampled_from(["central", "forward", "richardson", "complex"]))
def test_every_method_passes_right_gradients(problem: tuple, method: str) -> None:
    name, x, c, A = problem
    J, grad = make(name, c, A)
    result = gw.check(J, grad, x, method=method, seed=0)
    # A forward difference resolves about sqrt(u): it may be unable to promise 1e-6, never wrong.
    assert result.passed or (method == "forward" and result.verdict == "inconclusive"), str(result)


@st.composite
def piecewise_linear(draw: st.DrawFn) -> tuple:
    """sum(w * slope(x) * x), slopes changing at corners; some entries exactly at a corner, some near one."""
    n = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    x = rng.uniform(-2, 2, n)
    corners = x + rng.choice([0.0, 0.0, 1e-3, 0.1, 1.0], n) * rng.choice([-1, 1], n)
    left, right = rng.normal(size=n), rng.normal(size=n)
    right = np.where(rng.uniform(size=n) < 0.3, left * (1 + 10.0 ** rng.uniform(-8, -1, n)), right)
    return x, corners, left, right, draw(st.integers(0, 2 ** 31))


@settings(max_examples=150, deadline=None)
@given(piecewise_linear())
def test_a_right_gradient_of_a_piecewise_linear_J_never_fails(problem: tuple) -> None:
    """Kinks at theta and near it, corners crossed by the second point: never a failed verdict, never ignores-input."""
    x, corners, left, right, seed = problem

    def J(v: np.ndarray) -> float:
        return float(np.sum(np.where(v > corners, right * (v - corners), left * (v - corners))))

    def grad(v: np.ndarray) -> np.ndarray:
        return np.where(v >= corners, right, left)

    result = gw.check(J, grad, x, seed=seed)
    assert result.verdict != "failed", str(result)
    assert "ignores-input" not in {d.code for d in result.diagnoses}
