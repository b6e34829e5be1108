"""Precision and the last holes: float32 checked in float64, J's real precision, a global read for part of grad."""

from __future__ import annotations

import numpy as np
import pytest
from corpus import _casting_mlp, _mlp, make

import gradwidget as gw


def test_float32_code_that_follows_its_dtype_is_checked_in_float64() -> None:
    J, grad, theta, *_ = _mlp(np.float32)
    before = {k: v.copy() for k, v in theta.items()}
    result = gw.check(J, grad, theta, seed=0)
    assert result.verdict == "passed" and not result.diagnoses
    assert result.precision["checked_in"] == "float64" and result.precision["theta"] == "float32"
    assert 0 < result.precision["agreement"] < 1e-5
    assert result.to_dict()["precision"] == result.precision
    assert "checked in float64 (float32 theta: J and grad follow its dtype" in str(result)
    assert all(np.array_equal(theta[k], before[k]) and theta[k].dtype == np.float32 for k in theta)
    # a float64 error of 1e-5 in one entry: far below float32's claim, caught in float64
    moved = gw.check(J, lambda p: {**grad(p), "b2": grad(p)["b2"] * np.array([1 + 1e-5, 1, 1])}, theta, seed=0)
    assert moved.verdict == "failed"


def test_as_given_checks_in_theta_s_own_dtype() -> None:
    J, grad, theta, *_ = _mlp(np.float32)
    result = gw.check(J, grad, theta, precision="as-given", seed=0)
    assert result.precision == {"checked_in": "float32", "theta": "float32"}
    with pytest.raises(gw.OptionError, match="precision='float64' is not accepted"):
        gw.check(J, grad, theta, precision="float64")


def test_code_that_casts_to_float32_itself_is_checked_in_float32() -> None:
    J, grad, theta = _casting_mlp()
    result = gw.check(J, grad, theta, seed=1)
    assert result.precision["checked_in"] == "float32"
    assert result.verdict != "failed"


def test_a_float32_only_overflow_is_its_own_diagnosis() -> None:
    case = make("logistic-float32-overflow")
    result = gw.check(case.J, case.grad, case.theta)
    assert result.verdict == "failed"
    (found,) = result.diagnoses
    assert found.code == gw.PRECISION_LOSS and "right in float64" in found.message
    assert "differs from its float64 value: see precision-loss" in str(result)


def test_a_float32_cost_returned_as_a_python_float_is_judged_as_float32() -> None:
    case = make("mlp-float32-cost")
    result = gw.check(case.J, case.grad, case.theta, seed=2)
    assert result.verdict == "passed"
    (floor,) = result.diagnoses
    assert "J computes in about float32 precision" in floor.message
    assert result.evidence.noise.claim == pytest.approx(6e-3, rel=0.05)
    wrong = gw.check(case.J, lambda p: {**case.grad(p), "b2": 1.05 * case.grad(p)["b2"]}, case.theta, seed=2)
    assert wrong.verdict == "failed"


def test_a_layer_backward_that_reads_the_global_w_for_dx_fails_naming_x() -> None:
    rng = np.random.default_rng(5)
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=5)
    dout = rng.normal(size=(4, 5))
    global_w = w.copy()  # the notebook's w from an earlier cell

    def J(p: dict) -> float:
        return float(np.sum(dout * (p["x"] @ p["w"] + p["b"])))

    def grad(p: dict, global_read: bool = True) -> dict:
        used = global_w if global_read else p["w"]
        return {"x": dout @ used.T, "w": p["x"].T @ dout, "b": dout.sum(axis=0)}

    theta = {"x": x, "w": w, "b": b}
    result = gw.check(J, grad, theta, seed=0)
    assert result.verdict == "failed"
    (found,) = result.diagnoses
    assert found.code == gw.IGNORES_INPUT and found.block == "x" and "for x:" in found.message
    assert gw.check(J, lambda p: grad(p, False), theta, seed=0).verdict == "passed"


def test_a_right_gradient_of_a_piecewise_constant_or_linear_J_is_not_taken_for_a_global_read() -> None:
    x = np.linspace(-1, 1, 9) + 0.05
    assert gw.check(lambda v: float(np.sum(np.floor(3 * v))), np.zeros_like, x, seed=0).verdict != "failed"
    c = np.arange(9.0)
    assert gw.check(lambda v: float(c @ v), lambda v: c.copy(), x, seed=0).verdict == "passed"


def test_a_tie_doubling_max_pool_backward_is_no_subgradient() -> None:
    right, doubled = make("max-pooling-ties"), make("max-pooling-ties-every-tied-maximum")
    assert gw.check(right.J, right.grad, right.theta, seed=0).verdict == "passed"
    result = gw.check(doubled.J, doubled.grad, doubled.theta, seed=0)
    assert result.verdict == "failed"
    (found,) = [d for d in result.diagnoses if d.code == gw.NOT_SUBGRADIENT]
    assert "2 x that slope" in found.message and "every tied maximum" in found.message
    (kink,) = [d for d in result.diagnoses if d.code == gw.KINK]
    assert "Not a bug in grad" not in kink.message


def test_code_that_refuses_float64_or_returns_a_pair_is_checked_as_given_or_promoted() -> None:
    J, grad, theta, *_ = _mlp(np.float32)

    def strict(p: dict) -> float:
        if p["W1"].dtype != np.float32:
            raise TypeError("float32 only")
        return J(p)

    result = gw.check(strict, grad, theta, seed=0)
    assert result.precision["checked_in"] == "float32" and result.verdict != "failed"
    paired = gw.check(lambda p: (J(p), grad(p)), None, theta, seed=0)
    assert paired.precision["checked_in"] == "float64" and paired.verdict == "passed"
    with pytest.raises(gw.InputError, match=r"with grad=None, J must return \(cost, grad\)"):
        gw.check(J, None, theta)


def test_float32_code_that_casts_itself_is_resolved_at_nine_points_in_ten() -> None:
    J, grad, theta = _casting_mlp()
    verdicts = []
    for seed in range(20):  # points near the case's own, as the sensitivity benchmark draws them
        rng = np.random.default_rng(seed)
        moved = {k: (v * (1 + 0.1 * rng.normal(size=v.shape))).astype(np.float32) for k, v in theta.items()}
        verdicts.append(gw.check(J, grad, moved, seed=0).verdict)
    assert "failed" not in verdicts
    assert verdicts.count("inconclusive") <= 2, verdicts


def test_a_global_read_is_named_the_same_when_an_executor_takes_the_second_point_in_parts() -> None:
    from concurrent.futures import ThreadPoolExecutor

    case = make("mlp-reads-global-W2")
    with ThreadPoolExecutor(2) as pool:
        result = gw.check(case.J, case.grad, case.theta, executor=pool, seed=0)
    serial = gw.check(case.J, case.grad, case.theta, seed=0)
    assert result.verdict == serial.verdict == "failed"
    assert [d.message for d in result.diagnoses] == [d.message for d in serial.diagnoses]
    assert "for W1, b1:" in serial.diagnoses[0].message


def test_a_right_gradient_at_a_tie_interrupted_after_the_first_look_is_not_failed() -> None:
    case = make("max-pooling-ties")
    calls = [0]

    def progress(done: int, total: int) -> None:
        calls[0] += 1
        if calls[0] >= 3:  # the first look is complete, the second looks have not run
            raise KeyboardInterrupt

    result = gw.check(case.J, case.grad, case.theta, seed=0, progress=progress)
    assert result.interrupted and result.verdict != "failed"
