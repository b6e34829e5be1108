"""Bad input to check gets a clear error that names what is at fault."""

from __future__ import annotations

import numpy as np
import pytest

import gradwidget as gw


def J(x: np.ndarray) -> float:
    return float(np.sum(x ** 2))


def grad(x: np.ndarray) -> np.ndarray:
    return 2 * x


X = np.array([0.5, -0.3])


def test_bad_callables() -> None:
    with pytest.raises(TypeError, match="J must be callable, got a ndarray"):
        gw.check(X, grad, X)
    with pytest.raises(TypeError, match=r"grad must be callable or None \(when J returns \(cost, grad\)\)"):
        gw.check(J, 3, X)


@pytest.mark.parametrize(("cost", "message"), [
    (lambda x: x ** 2, r"J must return a scalar cost; it returned an array of shape \(2,\)"),
    (lambda x: "cost", "J must return a scalar cost; it returned a str"),
    (lambda x: (J(x), grad(x)), r"it returned a tuple of 2 \(if J returns \(cost, grad\), pass grad=None\)"),
    (lambda x: np.nan, "J\\(theta\\) is nan: the check point must be inside J's domain"),
])
def test_bad_costs(cost: object, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        gw.check(cost, grad, X)


def test_pair_J_must_return_a_pair() -> None:
    with pytest.raises(TypeError, match=r"with grad=None, J must return \(cost, grad\); it returned a float"):
        gw.check(J, None, X)


def test_grad_of_wrong_size_is_a_failed_verdict_naming_both_shapes() -> None:
    result = gw.check(J, lambda x: np.zeros(3), X)
    assert result.verdict == "failed"
    assert [d.code for d in result.diagnoses] == ["shape"]
    assert "grad returned shape (3,) for theta, which has shape (2,)" in str(result)
    assert "shape (3,): not compared" in str(result)  # the block's line says so, not "2 of 2 wrong"


@pytest.mark.parametrize(("returned", "message"), [
    (None, "grad returned None"),
    ({"a": np.zeros(2)}, "grad is a dict: blocks must be arrays"),
    ("two", "grad has dtype <U3; expected a float array"),
])
def test_a_gradient_that_cannot_be_matched_at_all_stays_an_error(returned: object, message: str) -> None:
    with pytest.raises(gw.InputError, match=message):
        gw.check(J, lambda x: returned, X)


def test_cost_types_accepted() -> None:
    for wrap in (float, np.float32, lambda v: np.array(v), lambda v: np.array([v]), lambda v: np.array([[v]])):
        assert gw.check(lambda x, w=wrap: w(J(x)), grad, X).passed


def test_exception_in_grad_is_noted() -> None:
    def broken(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("no gradient today")

    with pytest.raises(RuntimeError, match="no gradient today") as info:
        gw.check(J, broken, X)
    assert "raised by grad at the check point" in info.value.__notes__[0]


def test_nothing_written_to_stderr_on_domain_edges(capfd: pytest.CaptureFixture[str]) -> None:
    p = np.array([1e-9, 0.3])
    result = gw.check(lambda p: np.sum(p * np.log(p)), lambda p: np.log(p) + 1, p)
    assert result.verdict != "failed" and "domain" in {d.code for d in result.diagnoses}
    assert capfd.readouterr().err == ""
