"""Real functions: piecewise constant, locally linear, jumps, kinks and gradients below what a check can see.

Each test failed on the engine before it: `ignores-input` claimed where J's
gradient is constant or zero, jumps hidden as noise, and tiny gradients
passed with no word of what the check could not resolve.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import gradwidget as gw

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 5)) * 2
W = RNG.normal(size=(4, 5))
ONE = (np.arange(X.size) == 3).reshape(X.shape)  # the entry a buggy gradient gets wrong


def codes(result: gw.CheckResult) -> set[str]:
    return {d.code for d in result.diagnoses}


@pytest.mark.parametrize("op", [np.floor, np.ceil, np.round, np.trunc], ids=lambda f: f.__name__)
def test_1_a_piecewise_constant_cost_with_its_zero_gradient_passes(op: np.ufunc) -> None:
    for seed in range(6):
        x = np.random.default_rng(seed).normal(size=(4, 5)) * 2
        result = gw.check(lambda x: float(np.sum(op(x) * W)), np.zeros_like, x, seed=seed)
        assert result.verdict == "passed" and "ignores-input" not in codes(result), str(result)


def test_1_frac_is_locally_linear_and_its_constant_gradient_passes() -> None:
    for seed in range(6):
        x = np.random.default_rng(seed).normal(size=(4, 5)) * 2
        result = gw.check(lambda x: float(np.sum((x - np.floor(x)) * W)), lambda x: W.copy(), x, seed=seed)
        assert result.verdict == "passed" and codes(result) == set(), str(result)


@pytest.mark.parametrize(("J", "grad"), [
    (lambda x: float(np.sum(x * W)), lambda x: W * (1 + 1e-2 * ONE)),
    (lambda x: float(np.sum(np.abs(x) * W)), lambda x: np.sign(x) * W * (1 + 1e-2 * ONE)),
    (lambda x: 3.0 * float(np.sum(x.reshape(-1)[::2])), lambda x: np.where(
        np.arange(x.size).reshape(x.shape) % 2 == 0, 3.0, 0.0) + 0.03 * ONE),
], ids=["linear", "abs", "slice-sum"])
def test_1_a_bug_in_a_locally_linear_cost_is_not_blamed_on_a_global(J: object, grad: object) -> None:
    result = gw.check(J, grad, X)
    assert result.verdict == "failed"
    assert codes(result) == {"localized"} and "theta[0, 3]" in result.diagnoses[0].message, str(result)


def test_1_a_gradient_that_reads_a_global_is_still_caught() -> None:
    frozen = X.copy()
    J = lambda x: float(np.sum(np.sin(x) * W))  # noqa: E731
    result = gw.check(J, lambda x: np.cos(frozen) * W, X)
    assert result.verdict == "failed" and "ignores-input" in codes(result), str(result)
    constant = gw.check(lambda x: float(np.sum(x ** 2)), lambda x: 2 * frozen, X)
    assert "ignores-input" in codes(constant), str(constant)


def corner(weights: np.ndarray, relative: float) -> tuple[object, object]:
    """sum(w * x) with each slope made (1 + relative) times larger left of 0: a corner at 0; grad takes the right."""
    def J(x: np.ndarray) -> float:
        return float(np.sum(np.where(x > 0, weights * x, weights * (1 + relative) * x)))

    def grad(x: np.ndarray) -> np.ndarray:
        return np.where(x >= 0, weights, weights * (1 + relative))

    return J, grad


def printed_slopes(message: str) -> tuple[str, str]:
    left, right = re.search(r"from the left \(([^)]*)\) and from the right \(([^)]*)\)", message).groups()
    return left, right


@pytest.mark.parametrize("relative", [1e-3, 1e-5, 1e-6])
def test_2_a_kink_is_claimed_only_with_distinct_one_sided_slopes_and_printed_so(relative: float) -> None:
    J, grad = corner(np.array([5.679e-06, -1.3e-6, 0.4e-6]), relative)
    result = gw.check(J, grad, np.array([0.0, 0.3, -0.2]), seed=1)
    assert result.passed and codes(result) == {"kink"}, str(result)
    left, right = result.evidence.one_sided[0]
    assert abs(right - left) > result.evidence.tolerance[0]
    shown = printed_slopes(result.diagnoses[0].message)
    assert shown[0] != shown[1], result.diagnoses[0].message  # "(5.679e-06) and (5.679e-06)" said nothing
    printed = [float(v) for v in shown]
    assert np.sign(printed[1] - printed[0]) == np.sign(right - left)  # the digits that tell them apart are right
    assert max(abs(printed[0] - left), abs(printed[1] - right)) < abs(printed[1] - printed[0])


def test_2_slopes_within_their_tolerance_are_no_kink() -> None:
    J, grad = corner(np.array([5.679e-06, -1.3e-6, 0.4e-6]), 1e-9)
    result = gw.check(J, grad, np.array([0.0, 0.3, -0.2]), seed=1)
    assert result.passed and not codes(result), str(result)


@pytest.mark.parametrize("seed", range(10))
def test_2_a_corner_at_theta_is_not_taken_for_a_grad_that_ignores_its_input(seed: int) -> None:
    """J locally linear on each side of a corner at theta: the slope across it is no evidence at a second point."""
    J, grad = corner(np.array([0.7, -1.3, 0.4, 0.2, 1.1]), 1e-3)
    result = gw.check(J, grad, np.array([0.0, 0.3, -0.2, 0.0, 0.5]), seed=seed)
    assert result.passed and codes(result) == {"kink"}, str(result)


def test_1_a_hinge_whose_cost_rounds_more_than_its_size_is_not_taken_for_a_global() -> None:
    """J = sum(w * relu(1 - s * x)): its terms cancel, so J rounds well above u * |J|; both slopes still agree."""
    S = np.sign(np.arange(20.0) - 9.5).reshape(4, 5)
    x = np.random.default_rng(0).normal(size=(4, 5))
    w = np.random.default_rng(1000).normal(size=(4, 5))
    for seed in range(60):  # a second point in 25 missed that, before
        result = gw.check(lambda x: float(np.sum(np.maximum(1 - x * S, 0) * w)),
                          lambda x: np.where(1 - x * S > 0, -S * w, 0.0), x, seed=seed)
        assert result.passed and not codes(result), (seed, str(result))


@pytest.mark.parametrize(("size", "cost"), [(6e-11, 1.4), (1e-13, 1.4e3)])
def test_3_a_gradient_below_what_the_check_resolves_is_never_a_silent_pass(size: float, cost: float) -> None:
    J = lambda x: cost + size * float(np.sum(np.sin(x)))  # noqa: E731
    right = gw.check(J, lambda x: size * np.cos(x), X)
    wrong = gw.check(J, lambda x: 1.01 * size * np.cos(x), X)
    for result in (right, wrong):
        assert result.verdict != "passed" and "noise-floor" in codes(result), str(result)
        message = next(d.message for d in result.diagnoses if d.code == "noise-floor")
        assert "resolve" in message and ("subtract a constant" in message or "check the terms" in message)


def test_3_a_zero_gradient_where_the_slope_is_not_measurably_different_from_zero_passes() -> None:
    assert gw.check(lambda x: 1.4 + 0.0 * float(np.sum(x)), np.zeros_like, X).verdict == "passed"
    flat = gw.check(lambda x: 1.4 + 1e-30 * float(np.sum(x)), np.zeros_like, X)
    assert flat.verdict == "passed", str(flat)


@pytest.mark.parametrize(("J", "grad", "point", "entries"), [
    (lambda x: float(np.count_nonzero(x)) + float(np.sum(x ** 2)), lambda x: 2 * x, "zero", "theta[0, 0]"),
    (lambda x: float(np.sum(np.round(x))), np.zeros_like, "halves", "theta[0], theta[2]"),
], ids=["count-nonzero", "round-at-half"])
def test_4_a_jump_of_J_is_called_a_discontinuity_whose_gradient_is_a_convention(
        J: object, grad: object, point: str, entries: str) -> None:
    if point == "zero":
        x = X.copy()
        x[0, 0] = 0.0
    else:
        x = np.array([0.5, 1.2, 2.5])
    result = gw.check(J, grad, x)
    assert result.verdict == "passed" and codes(result) == {"kink"}, str(result)
    message = result.diagnoses[0].message
    assert "discontinuous" in message and "convention" in message and entries in message
    assert "kink" not in message and "slope from the left" not in message
    assert "at a kink or jump" in str(result)


@pytest.mark.parametrize("mode", [{}, {"directions": 4}, {"sample": 3}, {"method": "forward"}, {"method": "complex"},
                                  {"eps": 1e-300}, {"vectorized": True}, {"executor": "process"}, {"pair": True}],
                         ids=["central", "directions", "sample", "forward", "complex", "tiny-eps", "vectorized",
                              "process-pool", "pair"])
def test_1_a_global_is_caught_in_every_mode(mode: dict) -> None:
    import remote

    y = np.linspace(-1, 1, 40)
    stale = remote.gradient(y)
    J, grad = (remote.cost, lambda x: stale)
    options = dict(mode)
    if options.pop("pair", False):
        J, grad = (lambda x: (remote.cost(x), stale)), None
    if options.get("vectorized"):
        J = lambda X: np.array([remote.cost(row) for row in np.atleast_2d(X)])  # noqa: E731
    if options.get("method") == "complex":
        J = lambda x: remote.WEIGHTS @ np.sin(x) + 0.5 * x @ x  # noqa: E731
    if options.get("executor"):
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(2) as pool:
            result = gw.check(J, grad, y, executor=pool)
    else:
        result = gw.check(J, grad, y, **options)
    assert result.verdict == "failed" and "ignores-input" in codes(result), str(result)


def test_an_interrupt_at_the_second_point_says_so_and_keeps_the_verdict_inconclusive() -> None:
    calls = []

    def J(x: np.ndarray) -> float:
        calls.append(1)
        if len(calls) > 2 * X.size + 2:  # J at theta twice, the first look: then J at theta once more
            raise KeyboardInterrupt
        return float(np.sum(np.sin(x) * W))

    result = gw.check(J, lambda x: np.cos(x) * W, X)
    assert result.interrupted == "interrupted during the last calls, at theta and at a second point"
    assert result.verdict == "inconclusive"
