"""gradwidget.check: options, the classic rule, safety, and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gradwidget as gw
from gradwidget.examples import ARTICLE_NAMES, ARTICLE_SHAPES, article_gradient, article_network, linear_regression


def quadratic() -> tuple:
    A = np.array([[3.0, 1.0], [1.0, 2.0]])

    def J(x: np.ndarray) -> float:
        return 0.5 * x @ A @ x + np.sin(x[0])

    def grad(x: np.ndarray) -> np.ndarray:
        return A @ x + np.array([np.cos(x[0]), 0.0])

    return J, grad, np.array([0.3, -0.7])


def test_article_rule_reproduced_exactly() -> None:
    J, grad, theta = article_network()
    result = gw.check(J, grad, theta, eps=1e-4, tol=1e-7, shapes=ARTICLE_SHAPES)
    approx = article_gradient(J, theta, eps=1e-4)
    dvec = grad(theta)
    expected = np.linalg.norm(dvec - approx) / np.linalg.norm(dvec + approx)
    assert np.allclose(result.numeric, approx, rtol=1e-12, atol=1e-15)
    assert result.error == pytest.approx(expected, rel=1e-6)
    assert result.passed is bool(expected < 1e-7)


def test_tol_makes_the_verdict_the_classic_rule() -> None:
    J, grad, theta = linear_regression()
    assert gw.check(J, grad, theta, tol=1e-7).passed
    assert not gw.check(J, lambda b: grad(b) * (1 + 1e-6), theta, tol=1e-7).passed


@pytest.mark.parametrize("method", ["central", "forward", "complex", "richardson"])
def test_every_method_passes_right_and_fails_wrong(method: str) -> None:
    J, grad, theta = quadratic()
    right = gw.check(J, grad, theta, method=method)
    assert right.passed, str(right)
    assert right.method == method
    wrong = gw.check(J, lambda x: grad(x) + np.array([1e-3, 0.0]), theta, method=method)
    assert not wrong.passed


def test_complex_step_is_exact_to_rounding() -> None:
    J, grad, theta = quadratic()
    result = gw.check(J, grad, theta, method="complex")
    assert np.allclose(result.numeric, grad(theta), rtol=1e-14)
    # J at theta twice, then once more at the end; the second point's centre and its one direction
    assert result.evaluations == 3 + theta.size + 1 + 4


def test_complex_step_needs_a_complex_J() -> None:
    with pytest.raises(ValueError, match="method='complex' needs a J that computes with complex"):
        gw.check(lambda x: float(np.sum(np.abs(x) ** 2)), lambda x: 2 * x, np.ones(3), method="complex")


def test_richardson_beats_central_on_truncation() -> None:
    J = lambda x: np.sum(np.exp(3 * x))  # noqa: E731
    grad = lambda x: 3 * np.exp(3 * x)  # noqa: E731
    x = np.linspace(0.5, 1.5, 4)
    central = gw.check(J, grad, x, eps=1e-2, tol=1.0)
    richardson = gw.check(J, grad, x, method="richardson", eps=1e-2, tol=1.0)
    assert richardson.error < central.error / 100


def test_user_eps_is_used_as_given() -> None:
    J, grad, theta = quadratic()
    result = gw.check(J, grad, theta, eps=1e-3, tol=1.0)
    assert np.all(result.evidence.steps == 1e-3)


def test_float32_noise_floor_passes_right_and_fails_one_percent_bug() -> None:
    J, grad, theta = quadratic()
    x32 = theta.astype(np.float32)
    assert gw.check(J, grad, x32).passed
    assert not gw.check(J, lambda x: grad(x) * np.array([1.01, 1.0]), x32).passed


def test_float64_relative_1e4_bug_in_one_entry_fails() -> None:
    J, grad, theta = article_network()

    def slightly_wrong(t: np.ndarray) -> np.ndarray:
        g = grad(t)
        g[57] *= 1 + 1e-4
        return g

    result = gw.check(J, slightly_wrong, theta, shapes=ARTICLE_SHAPES)
    assert not result.passed
    assert [b.wrong for b in result.blocks] == [1, 0, 0]
    assert result.blocks[0].worst == (5, 2)


def test_callers_theta_is_never_modified() -> None:
    theta = {"W": np.arange(6.0).reshape(2, 3) / 10, "b": np.array([0.1, -0.2])}
    before = {k: v.copy() for k, v in theta.items()}

    def J(p: dict) -> float:
        p["W"] *= 2  # a hostile J
        return float(np.sum(p["W"] ** 2) + np.sum(p["b"] ** 2))

    def grad(p: dict) -> dict:
        p["b"][:] = 0
        return {"W": 2 * p["W"], "b": 2 * p["b"]}

    result = gw.check(J, grad, theta)
    for k in theta:
        assert np.array_equal(theta[k], before[k])
    assert {d.code for d in result.diagnoses} >= {"mutates-input"}
    assert not result.passed


def test_j_mutating_during_the_loop_is_caught() -> None:
    calls = {"n": 0}

    def J(x: np.ndarray) -> float:
        calls["n"] += 1
        if calls["n"] == 5:
            x[0] += 1.0  # once, in the middle of the check
        return float(np.sum(x ** 2))

    result = gw.check(J, lambda x: 2 * x, np.array([0.5, -0.25, 0.75]))
    assert "mutates-input" in {d.code for d in result.diagnoses}
    assert not result.passed


def test_exception_in_J_names_the_entry() -> None:
    def J(p: dict) -> float:
        if p["b"][1] > 0.2 + 1e-9:
            raise ZeroDivisionError("boom")
        return float(np.sum(p["W"] ** 2) + np.sum(p["b"] ** 2))

    theta = {"W": np.ones((2, 2)) * 0.3, "b": np.array([0.1, 0.2])}
    with pytest.raises(ZeroDivisionError, match="boom") as info:
        gw.check(J, lambda p: {"W": 2 * p["W"], "b": 2 * p["b"]}, theta)
    assert any("b[1]" in note and "moved by +" in note for note in info.value.__notes__)


def test_interrupt_returns_the_partial_result() -> None:
    calls = {"n": 0}

    def J(x: np.ndarray) -> float:
        calls["n"] += 1
        if calls["n"] > 300:
            raise KeyboardInterrupt
        return float(np.sum(np.sin(x)))

    x = np.linspace(0, 1, 1000)
    result = gw.check(J, np.cos, x)
    assert result.interrupted is not None and "of 1000 entries" in result.interrupted
    assert not result.passed
    numeric = result.numeric
    assert 0 < np.isfinite(numeric).sum() < 1000
    assert np.allclose(numeric[np.isfinite(numeric)], np.cos(x)[np.isfinite(numeric)], atol=1e-8)
    assert "interrupted" in str(result)


def test_nan_in_grad_fails_and_is_named() -> None:
    J, grad, theta = quadratic()
    result = gw.check(J, lambda x: np.array([np.nan, 1.0]) * grad(x), theta)
    assert not result.passed
    assert result.worst_entries()[0]["entry"] == "theta[0]"


def test_pair_J_and_separate_grad_agree() -> None:
    J, grad, theta = quadratic()
    separate = gw.check(J, grad, theta)
    pair = gw.check(lambda x: (J(x), grad(x)), None, theta)
    assert pair.passed and separate.passed
    assert np.array_equal(pair.numeric, separate.numeric)


def test_results_have_theta_structure() -> None:
    theta = {"W": np.ones((2, 3)) * 0.2, "b": np.array([0.1, 0.3])}
    result = gw.check(lambda p: float(np.sum(p["W"] ** 3) + np.sum(p["b"] ** 2)),
                      lambda p: {"W": 3 * p["W"] ** 2, "b": 2 * p["b"]}, theta)
    assert set(result.numeric) == {"W", "b"}
    assert result.numeric["W"].shape == (2, 3)
    assert result.analytic["b"].shape == (2,)
    assert [b.name for b in result.blocks] == ["W", "b"]


def test_to_dict_is_json_safe_and_complete() -> None:
    J, grad, theta = article_network("regularized-bias")
    result = gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, names=["T1", "T2", "T3"])
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["passed"] is False
    assert [b["name"] for b in data["blocks"]] == ["T1", "T2", "T3"]
    assert data["diagnoses"][0]["code"] == "missing-term"
    assert data["worst"][0]["status"] == "wrong"
    assert data["evaluations"] == result.evaluations


def test_text_report_has_verdict_table_diagnoses_and_worst() -> None:
    J, grad, theta = article_network("regularized-bias")
    text = str(gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES))
    first = text.splitlines()[0]
    assert first.startswith("gradwidget: FAILED")
    assert "Theta1  (10, 11)" in text
    assert "Diagnoses" in text and "[missing-term]" in text and "bias column" in text
    assert "Worst entries" in text


def test_assert_gradient_raises_assertion_subclass_with_report() -> None:
    J, grad, theta = linear_regression()
    assert gw.assert_gradient(J, grad, theta).passed
    with pytest.raises(gw.GradientCheckError) as info:
        gw.assert_gradient(J, lambda b: 2 * grad(b), theta)
    assert isinstance(info.value, AssertionError)
    assert "[scale]" in str(info.value)
    assert info.value.result.passed is False


def test_random_init_shapes_range_and_seed() -> None:
    a = gw.random_init([(10, 11), (10, 11), (1, 11)], seed=1)
    b = gw.random_init([(10, 11), (10, 11), (1, 11)], seed=1)
    assert [x.shape for x in a] == [(10, 11), (10, 11), (1, 11)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(np.abs(x).max() <= 0.12 for x in a)
    d = gw.random_init({"W": (3, 2), "b": 2}, epsilon=0.5, seed=0)
    assert d["W"].shape == (3, 2) and d["b"].shape == (2,) and np.abs(d["W"]).max() <= 0.5
    like = gw.random_init({"W": np.zeros((2, 2), np.float32)}, seed=0)
    assert like["W"].dtype == np.float32
    with pytest.raises(ValueError, match="epsilon must be positive"):
        gw.random_init((2, 2), epsilon=0)


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = ("import sys, gradwidget; heavy = [m for m in ('matplotlib', 'ipywidgets', 'anywidget', "
            "'IPython', 'tqdm') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_progress_bar_opened_during_a_phase_counts_each_unit_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long check opens its bar after the first chunk: the bar starts at that chunk, not at twice it."""
    from gradwidget import _progress

    monkeypatch.setattr(_progress, "SHOW_AFTER", 0.0)
    progress = _progress.Progress(None)
    progress.phase(10, "first look")
    progress.update(3)
    progress.update(4)
    assert progress.bar is not None and progress.bar.n == 7 == progress.done
    progress.close()
