"""The verdict without holes: every known way to get a wrong PASSED, a wrong FAILED, a wrong explanation or a crash.

One test (or a few) per item of the list these came from; each failed on the
engine before the three-valued verdict.
"""

from __future__ import annotations

import json
import os
import pickle
from collections import namedtuple
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import remote

import gradwidget as gw
import gradwidget.examples


def cosines(x: np.ndarray) -> float:
    return float(np.sum(np.cos(x)))


def cosines_grad(x: np.ndarray) -> np.ndarray:
    return -np.sin(x)


X = np.linspace(0.2, 1.4, 7)


def scaled_entry(grad: object, position: int, factor: float) -> object:
    def wrong(theta: np.ndarray) -> np.ndarray:
        g = np.array(grad(theta), dtype=float)  # type: ignore[operator]
        g.ravel()[position] *= factor
        return g
    return wrong


def codes(result: gw.CheckResult) -> set[str]:
    return {d.code for d in result.diagnoses}


# ---------------------------------------------------------------- the third verdict


def test_the_verdict_has_three_values_and_passed_is_only_passed() -> None:
    assert gw.check(cosines, cosines_grad, X).verdict == "passed"
    assert gw.check(cosines, lambda x: 2 * cosines_grad(x), X).verdict == "failed"
    stopped = gw.check(cosines, cosines_grad, X, progress=_stop_after(3))
    assert stopped.verdict == "inconclusive" and not stopped.passed and not bool(stopped)
    assert "interrupted" in codes(stopped)
    with pytest.raises(gw.GradientCheckError):
        gw.assert_gradient(cosines, cosines_grad, X, progress=_stop_after(3))
    assert gw.assert_gradient(cosines, cosines_grad, X, progress=_stop_after(3),
                              allow_inconclusive=True).verdict == "inconclusive"
    assert json.loads(json.dumps(stopped.to_dict()))["verdict"] == "inconclusive"
    assert str(stopped).startswith("gradwidget: INCONCLUSIVE")


def _stop_after(count: int) -> object:
    def progress(done: int, total: int) -> None:
        if done >= count:
            raise KeyboardInterrupt
    return progress


# ---------------------------------------------------------------- wrong PASSED


@pytest.mark.parametrize("value", [np.inf, 1e200])
def test_1_an_infinite_or_enormous_entry_fails_and_is_named(value: float) -> None:
    def grad(x: np.ndarray) -> np.ndarray:
        g = cosines_grad(x)
        g[3] = value
        return g

    result = gw.check(cosines, grad, X)
    assert result.verdict == "failed"
    assert codes(result) == {"localized"} and "theta[3]" in result.diagnoses[0].message
    assert result.error == np.inf or result.error > 0.5


def test_2_a_step_too_small_to_resolve_anything_is_never_a_pass() -> None:
    wrong = lambda x: 2 * cosines_grad(x)  # noqa: E731
    for options in ({"eps": 1e-300, "tol": 1e-7}, {"eps": 1e-16}):
        result = gw.check(cosines, wrong, X, **options)
        assert result.verdict != "passed", (options, str(result))
        right = gw.check(cosines, cosines_grad, X, **options)
        assert right.verdict == "inconclusive", (options, str(right))
        assert "noise-floor" in codes(right) and "eps" in next(d.message for d in right.diagnoses
                                                              if d.code == "noise-floor")


def test_2_a_large_user_step_does_not_hide_a_one_percent_error() -> None:
    result = gw.check(cosines, scaled_entry(cosines_grad, 2, 1.01), X, eps=1.0)
    assert result.verdict == "failed" and result.blocks[0].worst == (2,)


def test_3_noise_that_starts_after_the_first_calls_is_caught() -> None:
    rng = np.random.default_rng(0)
    calls = [0]

    def J(x: np.ndarray) -> float:
        calls[0] += 1
        return cosines(x) + (1e-3 * rng.standard_normal() if calls[0] > 2 else 0.0)

    result = gw.check(J, lambda x: 2 * cosines_grad(x), X)
    assert result.verdict != "passed"
    assert "nondeterministic" in codes(result)


def test_4_a_huge_cost_catches_a_one_percent_error_and_says_what_it_cannot_resolve() -> None:
    J = lambda x: 1e8 + cosines(x)  # noqa: E731
    wrong = gw.check(J, scaled_entry(cosines_grad, 4, 1.01), X)
    assert wrong.verdict == "failed" and wrong.blocks[0].worst == (4,)
    assert "localized" in codes(wrong)
    right = gw.check(J, cosines_grad, X)  # rounding of 1e8 leaves about 1e-5 of each entry unseen
    assert right.verdict == "inconclusive"
    (floor,) = [d for d in right.diagnoses if d.code == "noise-floor"]
    assert "subtract a constant from J" in floor.message
    cancelled = gw.check(lambda x: J(x) - 1e8, cosines_grad, X)  # small, but still rounded as 1e8 is
    assert cancelled.verdict == "inconclusive" and "noisy" in str(cancelled)


def test_5_parameters_far_below_one_get_steps_of_their_own_scale() -> None:
    small, large = np.array([1.3e-6, -0.7e-6, 2.1e-6]), np.array([1.2e4, -0.8e4])

    def J(p: dict) -> float:
        return float(np.sum(np.sin(p["small"] * 1e6)) + np.sum((p["large"] / 1e4) ** 3))

    def grad(p: dict, flip: bool = False) -> dict:
        g = 1e6 * np.cos(p["small"] * 1e6)
        return {"small": -g if flip else g, "large": 3 * p["large"] ** 2 / 1e12}

    theta = {"small": small, "large": large}
    right = gw.check(J, grad, theta)
    assert right.verdict == "passed" and codes(right) == set(), str(right)
    flipped = gw.check(J, lambda p: grad(p, flip=True), theta)
    assert flipped.verdict == "failed" and "kink" not in codes(flipped), str(flipped)


def test_6_a_gradient_that_accumulates_into_a_buffer_is_caught() -> None:
    buffer = np.zeros(7)

    def grad(x: np.ndarray) -> np.ndarray:
        buffer[:] += cosines_grad(x)  # never zeroed: right on the first call only
        return buffer.copy()

    result = gw.check(cosines, grad, X)
    assert result.verdict == "failed"
    (found,) = [d for d in result.diagnoses if d.code == "nondeterministic"]
    assert found.message.startswith("grad returned different gradients when called twice at theta")


def _float32_mlp(seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    X32 = rng.normal(size=(30, 6)).astype(np.float32)
    y32 = rng.normal(size=30).astype(np.float32)

    def J(p: dict) -> np.float32:
        h = np.tanh(X32 @ p["W"])
        return np.float32(0.5) * np.mean((h @ p["v"] - y32) ** 2)

    def grad(p: dict) -> dict:
        h = np.tanh(X32 @ p["W"])
        r = (h @ p["v"] - y32) / np.float32(30)
        return {"W": X32.T @ (np.outer(r, p["v"]) * (1 - h ** 2)), "v": h.T @ r}

    theta = {"W": rng.normal(scale=0.5, size=(6, 5)).astype(np.float32),
             "v": rng.normal(scale=0.5, size=5).astype(np.float32)}
    return J, grad, theta


def test_7_float32_models_catch_errors_of_one_percent() -> None:
    J, grad, theta = _float32_mlp(0)
    assert gw.check(J, grad, theta, seed=0).verdict == "passed"

    def one_entry(factor: float, at: tuple[int, int]):  # type: ignore[no-untyped-def]
        def wrong(p: dict) -> dict:
            g = grad(p)
            g["W"][at] *= factor
            return g
        return wrong

    assert gw.check(J, one_entry(1.09, (2, 3)), theta, seed=0).verdict == "failed"
    fixed = largest = 0
    for seed in range(20):
        J, grad, theta = _float32_mlp(seed)
        top = np.unravel_index(np.argmax(np.abs(grad(theta)["W"])), (6, 5))
        largest += gw.check(J, one_entry(1.01, top), theta, seed=seed).verdict == "failed"
        fixed += gw.check(J, one_entry(1.01, (2, 3)), theta, seed=seed).verdict == "failed"
    assert largest == 20  # the claim: 6e-3 of max(|g_i|, the block's RMS) is sure to show
    assert fixed >= 15  # one fixed entry: missed only where it is far below its block's size


# ---------------------------------------------------------------- wrong FAILED


def test_8_a_right_gradient_returned_or_computed_in_float32_passes() -> None:
    returned = gw.check(cosines, lambda x: cosines_grad(x).astype(np.float32), X)
    assert returned.verdict == "passed", str(returned)
    rng = np.random.default_rng(0)
    data, target = rng.normal(size=(30, 6)), rng.normal(size=30)

    def J(p: dict) -> float:  # float64 throughout
        return 0.5 * float(np.mean((np.tanh(data @ p["W"]) @ p["v"] - target) ** 2))

    def grad(p: dict) -> dict:  # the same model, computed in float32
        X32, y32 = data.astype(np.float32), target.astype(np.float32)
        W, v = p["W"].astype(np.float32), p["v"].astype(np.float32)
        h = np.tanh(X32 @ W)
        r = (h @ v - y32) / np.float32(30)
        return {"W": X32.T @ (np.outer(r, v) * (1 - h ** 2)), "v": h.T @ r}

    theta = {"W": rng.normal(scale=0.5, size=(6, 5)), "v": rng.normal(scale=0.5, size=5)}
    computed = gw.check(J, grad, theta)
    assert computed.verdict == "passed", str(computed)
    wrong = gw.check(J, lambda p: {**grad(p), "v": grad(p)["v"] * 1.001}, theta)  # 1e-3 is still seen
    assert wrong.verdict == "failed"


def _as_python_float(J: object, grad: object) -> tuple:
    """J and grad computing in float32 on float64 parameters, J returning a Python float."""
    def single(p: dict) -> dict:
        return {k: v.astype(np.float32) for k, v in p.items()}

    return (lambda p: float(J(single(p))),  # type: ignore[operator]
            lambda p: {k: v.astype(np.float64) for k, v in grad(single(p)).items()})  # type: ignore[operator]


def test_9_a_cost_computed_in_float32_and_returned_as_a_python_float_is_never_failed() -> None:
    verdicts = []
    for seed in range(10):
        J, grad, theta = _float32_mlp(seed)
        cost, gradient = _as_python_float(J, grad)
        result = gw.check(cost, gradient, {k: v.astype(np.float64) for k, v in theta.items()}, seed=seed)
        assert result.evidence.unit == np.finfo(np.float32).eps  # seen in the values, not their type
        assert codes(result) <= {"noise-floor"}, str(result)
        verdicts.append(result.verdict)
    assert "failed" not in verdicts and verdicts.count("passed") >= 7


def test_10_duplicate_block_names_are_refused() -> None:
    with pytest.raises(gw.OptionError, match="names"):
        gw.check(cosines, cosines_grad, np.ones(4), shapes=[(2,), (2,)], names=["a", "a"])
    with pytest.raises(gw.InputError, match=r"theta's keys 1 and '1' both name a block '1'"):
        gw.check(lambda p: 0.0, lambda p: p, {1: np.ones(2), "1": np.ones(2)})


# ---------------------------------------------------------------- wrong explanations


def test_11_one_wrong_entry_in_a_large_block_is_localized() -> None:
    rng = np.random.default_rng(1)
    c = rng.normal(size=(200, 100))
    x = rng.normal(size=(200, 100))
    J = lambda w: float(np.sum(c * np.sin(w)))  # noqa: E731
    grad = lambda w: c * np.cos(w)  # noqa: E731
    result = gw.check(J, scaled_entry(grad, 4321, -1.0), x, progress=False)  # -g has near twins among 20000
    assert codes(result) == {"localized"}
    assert "theta[43, 21]" in result.diagnoses[0].message


def test_12_two_swapped_blocks_are_a_permutation_naming_both() -> None:
    rng = np.random.default_rng(2)
    c = {k: rng.normal(size=(3, 4)) for k in ("W1", "W2", "W3")}
    J = lambda p: float(sum(np.sum(c[k] * np.sin(p[k])) for k in p))  # noqa: E731

    def swapped(p: dict) -> dict:
        g = {k: c[k] * np.cos(p[k]) for k in p}
        g["W1"], g["W3"] = g["W3"], g["W1"]
        return g

    theta = {k: rng.normal(size=(3, 4)) for k in c}
    result = gw.check(J, swapped, theta)
    assert codes(result) == {"permutation"}
    assert "W1 and W3" in result.diagnoses[0].message and "swapped" in result.diagnoses[0].message


def test_13_a_one_entry_block_and_a_wholly_wrong_block_are_said_plainly() -> None:
    rng = np.random.default_rng(3)
    theta = {"W": rng.normal(size=(6, 8)), "b": np.array([0.3])}
    offsets = {"W": rng.normal(size=(6, 8)), "b": np.array([0.7])}
    J = lambda p: float(np.sum(np.sin(p["W"])) + np.sum(np.exp(p["b"])))  # noqa: E731

    def grad(p: dict, wrong: str) -> dict:
        g = {"W": np.cos(p["W"]), "b": np.exp(p["b"])}
        g[wrong] = g[wrong] + offsets[wrong]
        return g

    one = gw.check(J, lambda p: grad(p, "b"), theta)
    assert codes(one) == {"localized"} and "b: its one entry is wrong" in one.diagnoses[0].message
    whole = gw.check(J, lambda p: grad(p, "W"), theta)
    assert "W: the whole block (48 entries) is wrong" in whole.diagnoses[0].message


# ---------------------------------------------------------------- crashes and unclear errors


def test_14_a_nan_entry_reports_and_raises_cleanly() -> None:
    nan = lambda x: np.where(np.arange(7) == 1, np.nan, cosines_grad(x))  # noqa: E731
    result = gw.check(cosines, nan, X)
    assert result.verdict == "failed" and "theta[1]" in str(result) and "theta[1]" in result._repr_html_()
    with pytest.raises(gw.GradientCheckError):
        gw.assert_gradient(cosines, nan, X)
    inf = lambda x: np.where(np.arange(7) == 1, np.inf, cosines_grad(x))  # noqa: E731
    assert gw.check(cosines, inf, X, tol=1e-7).verdict == "failed"


class Tensor:
    """A stand-in for a framework's 0-d tensor: a number only through __float__, .item() or __array__."""

    dtype = "framework.float64"  # a dtype that is not numpy's

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value

    def __float__(self) -> float:
        return self.value

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        return np.array(self.value, dtype=dtype)


class Number:
    """A framework's number that numpy cannot read: only __float__ says what it is."""

    dtype = "framework.float64"

    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return self.value


def test_15_a_cost_returned_as_a_framework_tensor_is_accepted() -> None:
    assert gw.check(lambda x: Tensor(cosines(x)), cosines_grad, X).verdict == "passed"
    assert gw.check(lambda x: Number(cosines(x)), cosines_grad, X).verdict == "passed"


def test_16_empty_and_zero_size_blocks_and_namedtuples() -> None:
    with pytest.raises(gw.InputError, match="theta is an empty dict"):
        gw.check(cosines, cosines_grad, {})
    theta = {"W": np.ones((0, 3)), "b": np.array([0.2, 0.4])}
    result = gw.check(lambda p: float(np.sum(p["b"] ** 2)), lambda p: {"W": np.zeros((0, 3)), "b": 2 * p["b"]},
                      theta)
    assert result.verdict == "passed"
    assert "W" in result._repr_html_() and result.plot() is not None
    Params = namedtuple("Params", "w b")
    seen = []

    def J(p: Params) -> float:
        seen.append(type(p).__name__)
        return float(np.sum(p.w ** 2) + np.sum(p.b ** 2))

    result = gw.check(J, lambda p: Params(2 * p.w, 2 * p.b), Params(np.ones(2) * 0.3, np.ones(1) * 0.5))
    assert result.verdict == "passed" and set(seen) == {"Params"}
    assert type(result.analytic).__name__ == "Params"


def test_18_results_are_json_safe_and_pickle_without_their_functions() -> None:
    result = gw.check(lambda x: cosines(x), lambda x: cosines_grad(x), X, tol=np.float32(1e-3))
    json.dumps(result.to_dict(), allow_nan=False)
    again = pickle.loads(pickle.dumps(result))
    assert again.verdict == result.verdict and again.call is None
    assert np.array_equal(again.numeric, result.numeric)


X40 = np.linspace(-1, 1, 40)


def _dies(x: np.ndarray) -> float:
    if x[27] != X40[27]:  # the worker dies when theta[27] is moved
        os._exit(3)
    return remote.cost(x)


def test_19_a_dying_worker_keeps_the_partial_result_and_names_the_entry() -> None:
    x = X40
    with ProcessPoolExecutor(2) as pool:
        result = gw.check(_dies, remote.gradient, x, executor=pool)
    assert result.verdict == "inconclusive"
    assert "a worker died" in result.interrupted and "theta[" in result.interrupted


def test_20_recursion_through_check_is_one_error_with_one_note() -> None:
    def J(x: np.ndarray) -> float:
        return gw.check(J, cosines_grad, x).error

    with pytest.raises(RecursionError) as info:
        gw.check(J, cosines_grad, X)
    assert len(getattr(info.value, "__notes__", [])) <= 2


# ---------------------------------------------------------------- interrupts and progress


def test_21_every_phase_reports_progress_and_can_be_stopped() -> None:
    J, grad, x = gw.examples.one_wrong_entry(2000, wrong=1234)
    seen: list[tuple[int, int]] = []
    result = gw.check(J, grad, x, directions=6, seed=0, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]
    stopped = gw.check(J, grad, x, directions=6, seed=0, progress=_stop_after(4))
    assert stopped.verdict != "passed" and stopped.interrupted
    refined: list[tuple[int, int]] = []
    gw.check(cosines, scaled_entry(cosines_grad, 2, 1.01), X, progress=lambda d, t: refined.append((d, t)))
    assert len({t for _, t in refined}) >= 2  # the first look, then the second looks
    assert result.verdict == "failed"


def test_22_interrupt_messages_say_how_far_each_phase_got() -> None:
    J, grad, x = gw.examples.one_wrong_entry(400, wrong=123)
    stopped = gw.check(J, grad, x, directions=6, seed=0, progress=_stop_after(3))
    assert "random directions, after 3 of them" in stopped.interrupted
    assert stopped.evidence.directional is not None
    during = gw.check(cosines, scaled_entry(cosines_grad, 2, 1.01), X, progress=_stop_in_phase(2))
    assert during.interrupted == "interrupted during the second looks at 1 entry"
    assert during.verdict == "failed"  # the first look had already judged theta[2] wrong


def _stop_in_phase(number: int) -> object:
    """A progress callable that stops the check as phase ``number`` starts."""
    phases = [0]

    def progress(done: int, total: int) -> None:
        phases[0] += done == 0
        if phases[0] == number:
            raise KeyboardInterrupt
    return progress


def test_23_a_block_whose_entries_were_all_skipped_is_not_ok() -> None:
    def J(p: dict) -> float:
        return float(np.sum(np.log(p["a"])) + np.sum(p["b"] ** 2)) if np.all(p["a"] == 0.0) or True else 0.0

    theta = {"a": np.array([0.0, 0.0]), "b": np.array([0.3, 0.2])}
    result = gw.check(lambda p: float(np.sum(np.sqrt(p["a"])) + np.sum(p["b"] ** 2)),
                      lambda p: {"a": np.zeros(2), "b": 2 * p["b"]}, theta)
    assert result.blocks[0].verdict != "passed" and result.verdict != "passed"
    assert J is not None


def test_24_a_zero_derivative_left_as_the_rounding_of_a_large_theta_is_unresolved_not_wrong() -> None:
    """grad computes a derivative that is 0 as a difference of theta-sized terms (as `x - logsumexp(x)` at large
    x): its values are ulps of theta_i, and J, flat bit for bit, cannot tell them from 0 nor from a bug that small."""
    rng = np.random.default_rng(3)
    theta = {"x": 1e4 + rng.uniform(0, 1, 6), "w": rng.normal(size=4)}

    def J(p: dict) -> float:
        return float(np.sum(np.sin(p["w"])) + 0.0 * np.sum(p["x"] > 0))

    def grad(p: dict, extra: float = 0.0) -> dict:
        x = p["x"]
        return {"x": (x * 3.0) / 3.0 - x + (x + 0.1) - (x + 0.2) + 0.1 + extra * p["x"], "w": np.cos(p["w"])}

    assert np.any(grad(theta)["x"] != 0)  # the rounding is there
    result = gw.check(J, grad, theta, progress=False)
    assert result.verdict == "inconclusive" and result.blocks[1].verdict == "passed", str(result)
    assert "`x - logsumexp(x)`" in str(result)
    for extra in (1e-6, 1e-13):  # a term J does not have, of 1e-2 and of 1e-9: beyond the rounding of 1e4
        decayed = gw.check(J, lambda p, extra=extra: grad(p, extra), theta, progress=False)
        assert decayed.verdict == "failed" and decayed.blocks[0].verdict == "failed", str(decayed)


def test_25_a_cross_entropy_at_confident_logits_is_never_failed_and_its_bugs_still_are() -> None:
    """A softmax cross-entropy at logits of 40 to 1000 is about 1e-12 to exactly 0: the rounding of the logits
    (noise of float16's size, which is not a float16 J) or an exact cancellation. Right, it is never failed;
    a bug that moves the gradient visibly (the target left out, or on another class) fails at every scale."""
    target = np.array([1.0, 0.0, 0.0, 0.0])

    def J(z: np.ndarray) -> float:
        logsumexp = z.max() + np.log(np.sum(np.exp(z - z.max())))
        return float(-(target @ (z - logsumexp)))

    def probabilities(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max())
        return e / e.sum()

    for scale in (40.0, 80.0, 200.0, 1000.0):
        z = np.array([1.0, 0.3, -0.2, 0.1]) * scale
        right = gw.check(J, lambda v: probabilities(v) - target, z, progress=False)
        assert right.verdict == "inconclusive" and "float16" not in str(right), (scale, str(right))
        assert "cancel" in str(right) or "saturated" in str(right), str(right)  # the cause, named
        for wrong in (probabilities, lambda v: probabilities(v) - np.roll(target, 1)):
            assert gw.check(J, wrong, z, progress=False).verdict == "failed", scale


def test_26_a_flat_cost_with_a_gradient_too_small_to_move_it_is_said_to_be_possibly_saturated() -> None:
    """J constant at 1 and grad of 1e-8: failed (J could show 1e-8), with the remark that J may be saturated;
    a J that ignores theta with a gradient of ordinary size gets no such remark."""
    x = np.array([0.3, 1.2, 2.0])
    tiny = gw.check(lambda z: 1.0, lambda z: np.full(3, 1e-8), x, progress=False)
    assert tiny.verdict == "failed" and "Or J is saturated here" in str(tiny), str(tiny)
    blind = gw.check(lambda z: 0.0, lambda z: np.cos(z), x, progress=False)
    assert "missing-term" in {d.code for d in blind.diagnoses} and "saturated" not in str(blind)
