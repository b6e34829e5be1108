"""Code as students write it: right code is never crashed on or misdescribed, and a wrong gradient is a verdict.

Each test is a pattern seen in real implementations (written here, in the
same shape), with right twins that must not trigger it.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradwidget as gw

RNG = np.random.default_rng(29)


def codes(result: gw.CheckResult) -> list[str]:
    return [d.code for d in result.diagnoses]


def message(result: gw.CheckResult, code: str) -> str:
    return next(d.message for d in result.diagnoses if d.code == code)


# ---------------------------------------------------------------- a backward that consumes or returns its cache


def rnn_forward(x, h0, Wx, Wh, b):
    h, steps = h0, []
    for t in range(x.shape[1]):
        nxt = np.tanh(x[:, t] @ Wx + h @ Wh + b)
        steps.append((x[:, t], h, nxt, Wx, Wh))
        h = nxt
    return np.stack([s[2] for s in steps], axis=1), steps


def rnn_backward_popping(dout, cache, scale=1.0):
    """Right (scale 1), and it empties its cache: ``cache.pop()`` walks back in time."""
    dprev, dxs = np.zeros_like(dout[:, 0]), []
    dWx = dWh = db = 0.0
    for t in reversed(range(dout.shape[1])):
        xt, hprev, h, Wx, Wh = cache.pop()
        da = (dout[:, t] + dprev) * (1 - h ** 2) * scale
        dxs.append(da @ Wx.T)
        dWx, dWh, db = dWx + xt.T @ da, dWh + hprev.T @ da, db + da.sum(axis=0)
        dprev = da @ Wh.T
    return np.stack(dxs[::-1], axis=1), dprev, dWx, dWh, db


def rnn_backward_clearing(dout, cache):
    answer = rnn_backward_popping(dout, list(cache))
    del cache[:]  # "free the memory"
    return answer


def rnn_args():
    return (RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 5)) * 0.5, RNG.normal(size=(4, 5)) * 0.4,
            RNG.normal(size=(5, 5)) * 0.4, RNG.normal(size=5) * 0.2)


def affine_forward_dict(x, w, b):
    return x @ w + b, {"x": x, "w": w}


def affine_backward_popping_dict(dout, cache):
    x, w = cache.pop("x"), cache.pop("w")
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


@pytest.mark.parametrize(("forward", "backward", "args"), [
    (rnn_forward, rnn_backward_popping, rnn_args),
    (rnn_forward, rnn_backward_clearing, rnn_args),
    (affine_forward_dict, affine_backward_popping_dict,
     lambda: (RNG.normal(size=(4, 3)), RNG.normal(size=(3, 2)), RNG.normal(size=2))),
], ids=["pop", "del", "dict-pop"])
def test_a_backward_that_consumes_its_cache_is_checked_and_the_write_is_a_warning(forward, backward, args) -> None:
    result = gw.check_layer(forward, backward, *args(), seed=0)
    assert result.verdict == "passed", str(result)
    assert codes(result) == ["mutates-input"]
    assert result.diagnoses[0].warning
    assert "consumes the cache" in result.diagnoses[0].message and "raises" in result.diagnoses[0].message


def test_a_wrong_backward_that_consumes_its_cache_gets_its_verdict() -> None:
    result = gw.check_layer(rnn_forward, lambda d, c: rnn_backward_popping(d, c, 2.0), *rnn_args(), seed=0)
    assert result.verdict == "failed"
    assert "mutates-input" in codes(result)


def sigmoid_forward(x):
    s = 1 / (1 + np.exp(-x))
    return s, s * (1 - s)  # the local derivative, kept for the backward


def sigmoid_backward_in_cache(dout, cache):
    dx = cache
    dx *= dout  # the returned array is the cache itself
    return dx


def tanh_forward(x):
    t = np.tanh(x)
    return t, t


def tanh_backward_in_dout(dout, t):
    dx = dout
    dx *= 1 - t ** 2  # writes into dout, and returns it
    return dx


@pytest.mark.parametrize(("forward", "backward", "written"), [
    (sigmoid_forward, sigmoid_backward_in_cache, "the cache"),
    (tanh_forward, tanh_backward_in_dout, "dout"),
])
def test_a_backward_that_returns_the_array_it_writes_into_passes_with_the_write_named(forward, backward,
                                                                                      written) -> None:
    result = gw.check_layer(forward, backward, RNG.normal(size=(4, 5)), seed=0)
    assert result.passed, str(result)
    assert codes(result) == ["mutates-input"] and "ignores-dout" not in str(result)
    assert message(result, "mutates-input").startswith(f"{backward.__name__} writes into {written}")


def test_a_right_backward_that_writes_nothing_gets_no_warning() -> None:
    result = gw.check_layer(sigmoid_forward, lambda dout, local: dout * local, RNG.normal(size=(4, 5)), seed=0)
    assert result.passed and codes(result) == []


# ---------------------------------------------------------------- gradients of the wrong shape or size


def conv_same_forward(x, w):
    """A 3x3 convolution, padded by 1 and of stride 1: the output has the input's height and width."""
    n, _, height, width = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], height, width))
    for i in range(height):
        for j in range(width):
            out[:, :, i, j] = np.tensordot(padded[:, :, i:i + 3, j:j + 3], w, axes=([1, 2, 3], [1, 2, 3]))
    return out, (x, w)


def conv_same_backward(dout, cache, crop=True, dx_zero=False):
    x, w = cache
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dpadded, dw = np.zeros_like(padded), np.zeros_like(w)
    for i in range(x.shape[2]):
        for j in range(x.shape[3]):
            dw += np.tensordot(dout[:, :, i, j], padded[:, :, i:i + 3, j:j + 3], axes=([0], [0]))
            dpadded[:, :, i:i + 3, j:j + 3] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    dx = dpadded[:, :, 1:-1, 1:-1] if crop else dpadded
    return (np.zeros_like(x) if dx_zero else dx), dw


CONV_ARGS = (RNG.normal(size=(2, 2, 4, 4)), RNG.normal(size=(2, 2, 3, 3)))


def test_an_unfinished_backward_is_said_to_give_zero_not_a_diagonal() -> None:
    result = gw.check_layer(conv_same_forward, lambda d, c: conv_same_backward(d, c, dx_zero=True), *CONV_ARGS,
                            seed=0)
    assert result.verdict == "failed" and codes(result) == ["missing-term"]
    said = message(result, "missing-term")
    assert said.startswith("dx is zero everywhere, while conv_same_forward's output moves with x")
    assert "diagonal" not in said
    assert [b.verdict for b in result.blocks] == ["failed", "passed"]


def test_a_zero_block_in_a_gradient_is_named_and_a_diagonal_only_jacobian_still_is() -> None:
    X, y = RNG.normal(size=(8, 3)), RNG.normal(size=8)

    def J(p):
        return 0.5 * float(np.sum((X @ p["w"] + p["b"] - y) ** 2))

    def grad(p):
        r = X @ p["w"] + p["b"] - y
        return {"w": X.T @ r, "b": np.zeros(1)}  # db never filled in

    result = gw.check(J, grad, {"w": RNG.normal(size=3), "b": RNG.normal(size=1) + 1}, seed=0)
    assert codes(result) == ["localized"]  # one entry: nothing to say beyond "wrong" there
    softmax = gw.check_layer(*_softmax_layer(diagonal=True), RNG.normal(size=(3, 4)), seed=0)
    assert codes(softmax) == ["missing-term"] and "diagonal only" in softmax.diagnoses[0].message


def _softmax_layer(diagonal: bool):
    def forward(x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        return p, p

    def backward(dout, p):
        if diagonal:
            return dout * p * (1 - p)
        return p * (dout - (dout * p).sum(axis=1, keepdims=True))

    return forward, backward


def layernorm_forward(x, gamma, beta):
    mu, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + 1e-5)
    return gamma * xhat + beta, (xhat, gamma, np.sqrt(var + 1e-5))


def layernorm_backward(dout, cache, bug=None):
    xhat, gamma, std = cache
    d = xhat.shape[1]
    dxhat = dout * gamma
    dx = (d * dxhat - dxhat.sum(axis=1, keepdims=True) - xhat * (dxhat * xhat).sum(axis=1, keepdims=True)) / (d * std)
    dgamma, dbeta = (dout * xhat).sum(axis=0), dout.sum(axis=0)
    if bug == "outer-product":
        dgamma = dout.T @ xhat
    elif bug == "wrong-axis":
        dgamma = (dout * xhat).sum(axis=1)
    elif bug == "beta-not-summed":
        dbeta = dout
    elif bug == "keepdims":
        dbeta = dout.sum(axis=0, keepdims=True)
    elif bug == "placeholder":
        dx = 0.0
    return dx, dgamma, dbeta


LN_ARGS = (RNG.normal(size=(4, 5)) * 2 + 1, RNG.normal(size=5), RNG.normal(size=5))


def test_a_gradient_with_an_extra_axis_is_described_and_its_fix_named_only_where_it_is_right() -> None:
    outer = gw.check_layer(layernorm_forward, lambda d, c: layernorm_backward(d, c, "outer-product"), *LN_ARGS,
                           seed=0)
    assert outer.verdict == "failed" and codes(outer) == ["shape"]
    said = message(outer, "shape")
    assert "shape (5, 5) for gamma, which has shape (5,)" in said and "its diagonal does" in said
    assert "dout.sum(axis=0)" not in said
    unsummed = gw.check_layer(layernorm_forward, lambda d, c: layernorm_backward(d, c, "beta-not-summed"),
                              *LN_ARGS, seed=0)
    assert codes(unsummed) == ["broadcast"]
    assert "Summed over axis 0 it agrees" in message(unsummed, "broadcast")


@pytest.mark.parametrize(("bug", "block", "words"), [
    ("wrong-axis", "gamma", "shape (4,) for gamma, which has shape (5,): it has one entry per index of axis 0"),
    ("placeholder", "x", "shape () for x, which has shape (4, 5): it is a single number (0)"),
])
def test_a_gradient_of_another_size_is_a_failed_verdict_and_the_others_are_still_checked(bug, block, words) -> None:
    result = gw.check_layer(layernorm_forward, lambda d, c: layernorm_backward(d, c, bug), *LN_ARGS, seed=0)
    assert result.verdict == "failed" and codes(result) == ["shape"]
    assert words in message(result, "shape")
    verdicts = {b.name: b.verdict for b in result.blocks}
    assert verdicts.pop(block) == "failed" and set(verdicts.values()) == {"passed"}
    assert "not compared" in str(result)


def test_a_padded_dx_never_cropped_is_named_with_the_crop_that_fixes_it() -> None:
    result = gw.check_layer(conv_same_forward, lambda d, c: conv_same_backward(d, c, crop=False), *CONV_ARGS,
                            seed=0)
    assert result.verdict == "failed" and codes(result) == ["shape"]
    said = message(result, "shape")
    assert "shape (2, 2, 6, 6) for x, which has shape (2, 2, 4, 4)" in said
    assert "`dx[:, :, 1:-1, 1:-1]` is right: the padding is not cropped" in said
    assert result.blocks[1].passed  # dw is checked and shown


def test_a_gradient_of_another_size_in_a_plain_check_is_a_verdict_too() -> None:
    X, y = RNG.normal(size=(8, 3)), RNG.normal(size=8)

    def J(p):
        return 0.5 * float(np.sum((X @ p["W"][1:] + p["W"][0] - y) ** 2))

    def grad_with_extra_row(p):
        r = X @ p["W"][1:] + p["W"][0] - y
        ones = np.hstack([np.ones((8, 1)), np.ones((8, 1)), X])  # one column too many
        return {"W": ones.T @ r}

    result = gw.check(J, grad_with_extra_row, {"W": RNG.normal(size=4)}, seed=0)
    assert result.verdict == "failed" and codes(result) == ["shape"]
    assert "grad returned shape (5,) for W, which has shape (4,)" in result.diagnoses[0].message


@pytest.mark.parametrize("backward", [
    lambda d, c: None,
    lambda d, c: (None, d.sum(axis=0), d.sum(axis=0)),
])
def test_a_backward_that_returns_nothing_usable_stays_an_error(backward) -> None:
    with pytest.raises(gw.InputError, match="returned"):
        gw.check_layer(layernorm_forward, backward, *LN_ARGS)


def test_a_forward_that_raises_stays_its_own_error() -> None:
    def broken_forward(x, gamma, beta):
        raise ZeroDivisionError("no forward today")

    with pytest.raises(ZeroDivisionError, match="no forward today"):
        gw.check_layer(broken_forward, layernorm_backward, *LN_ARGS)


@pytest.mark.parametrize("entry", ["check", "check_layer", "check_loss"])
def test_right_values_in_another_shape_are_a_warning_in_every_entry_point(entry: str) -> None:
    x, w, b = RNG.normal(size=(4, 3)), RNG.normal(size=(3, 2)), RNG.normal(size=2)
    if entry == "check":
        result = gw.check(lambda p: float(np.sum(np.tanh(x @ p["w"] + p["b"]))),
                          lambda p: {"w": x.T @ (1 - np.tanh(x @ p["w"] + p["b"]) ** 2),
                                     "b": (1 - np.tanh(x @ p["w"] + p["b"]) ** 2).sum(axis=0, keepdims=True)},
                          {"w": w, "b": b}, seed=0)
    elif entry == "check_layer":
        result = gw.check_layer(lambda x, w, b: (x @ w + b, (x, w)),
                                lambda d, c: (d @ c[1].T, c[0].T @ d, d.sum(axis=0, keepdims=True)), x, w, b, seed=0)
    else:
        def loss(x, w, b):
            z = x @ w + b
            return 0.5 * float(np.sum(z ** 2)), (z @ w.T, x.T @ z, z.sum(axis=0, keepdims=True))
        result = gw.check_loss(loss, x, w, b, seed=0)
    assert result.passed, str(result)
    assert codes(result) == ["broadcast"] and result.diagnoses[0].warning
    assert "shape (1, 2) for b, which has shape (2,)" in result.diagnoses[0].message
    assert "`b -= lr * db` raises" in result.diagnoses[0].message


def test_wrong_values_in_another_shape_fail() -> None:
    x, w, b = RNG.normal(size=(4, 3)), RNG.normal(size=(3, 2)), RNG.normal(size=2)
    result = gw.check_layer(lambda x, w, b: (x @ w + b, (x, w)),
                            lambda d, c: (d @ c[1].T, c[0].T @ d, 2 * d.sum(axis=0, keepdims=True)), x, w, b, seed=0)
    assert result.verdict == "failed" and "broadcast" in codes(result)


# ---------------------------------------------------------------- statements that must hold with the evidence


def softmax_problem():
    X, y, reg = RNG.normal(size=(20, 8)), RNG.integers(0, 10, 20), 0.1

    def loss(W):
        s = X @ W
        s = s - s.max(axis=1, keepdims=True)
        p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
        return -np.log(p[np.arange(20), y]).mean() + reg * np.sum(W * W)

    def grad(W, factor=2.0):
        s = X @ W
        s = s - s.max(axis=1, keepdims=True)
        p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
        p[np.arange(20), y] -= 1
        return X.T @ p / 20 + factor * reg * W

    return loss, grad


def test_a_penalty_off_by_a_factor_at_a_zero_weight_is_not_blamed_on_a_global() -> None:
    loss, grad = softmax_problem()
    W = RNG.normal(size=(8, 10)) * 0.01
    W[2, 3] = 0.0  # the one entry where the penalty's error c * W vanishes
    result = gw.check(loss, lambda W: grad(W, 1.0), W, seed=0)
    assert result.verdict == "failed" and "ignores-input" not in codes(result), str(result)
    assert gw.check(loss, grad, W, seed=0).passed


def test_a_factor_is_claimed_only_where_analytic_is_that_factor_times_numeric() -> None:
    x = RNG.normal(size=6)
    unrelated = gw.check(lambda t: 1e-9 * float(t @ t), lambda t: np.random.default_rng(5).normal(size=t.shape), x,
                         seed=0)
    assert unrelated.verdict == "failed" and "scale" not in codes(unrelated), str(unrelated)
    tripled = gw.check(lambda t: 1e-9 * float(t @ t), lambda t: 6e-9 * t, x, seed=0)
    assert codes(tripled) == ["scale"] and "is 3 x the numeric one" in tripled.diagnoses[0].message


def test_a_forward_returning_its_cache_unpacked_gets_one_line_naming_out_and_cache() -> None:
    def affine_forward_three(x, w):
        return x @ w, x, w

    def affine_backward(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout

    with pytest.raises(gw.InputError) as caught:
        gw.check_layer(affine_forward_three, affine_backward, RNG.normal(size=(4, 3)), RNG.normal(size=(3, 2)))
    said = str(caught.value)
    assert said.startswith("affine_forward_three returned 3 values, but affine_backward takes (dout, cache)")
    assert "the first (an array of shape (4, 2)) would be out" in said and "`return out, (a, b)`" in said
    assert "theta" not in said and "\n" not in said


def test_a_forward_with_two_outputs_and_its_backward_still_check() -> None:
    def split_forward(x, w):
        out = x @ w
        return out, np.tanh(out), (x, w, out)

    def split_backward(dout1, dout2, cache):
        x, w, out = cache
        d = dout1 + dout2 * (1 - np.tanh(out) ** 2)
        return d @ w.T, x.T @ d

    assert gw.check_layer(split_forward, split_backward, RNG.normal(size=(4, 3)), RNG.normal(size=(3, 2)),
                          seed=0).passed


# ---------------------------------------------------------------- the noise model on smooth, stepped and large J


@pytest.mark.parametrize("seed", range(4))
def test_a_right_gradient_of_a_fast_oscillating_J_passes(seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=10)
    result = gw.check(lambda x: float(np.sum(np.sin(300 * x))), lambda x: 300 * np.cos(300 * x), x, seed=seed)
    assert result.passed, str(result)


@pytest.mark.parametrize("decimals", [2, 3, 4])
def test_a_staircase_with_its_zero_gradient_is_never_failed(decimals: int) -> None:
    verdicts = []
    for seed in range(12):
        x = np.random.default_rng(seed).normal(size=(6, 6))
        result = gw.check_vjp(lambda x: np.round(x, decimals), lambda x, v: np.zeros_like(x), x, seed=seed)
        verdicts.append(result.verdict)
        assert "ignores-input" not in codes(result)
    assert "failed" not in verdicts and verdicts.count("passed") >= 10, verdicts


def test_a_staircase_is_told_apart_from_a_gradient_that_misses_its_slope() -> None:
    x = np.random.default_rng(1).normal(size=(6, 6))
    wrong = gw.check_vjp(lambda x: np.round(x, 3), lambda x, v: 0.5 * v, x, seed=1)  # the trend, halved
    assert wrong.verdict == "failed"


def logcumsumexp(x, axis):
    return np.logaddexp.accumulate(x, axis=axis)


def logcumsumexp_vjp(x, v, axis):
    """d/dx_j of sum_i v_i lcse_i = sum_{i >= j} v_i exp(x_j - lcse_i), each exponent at most 0."""
    xs, vs = np.moveaxis(x, axis, -1), np.moveaxis(v, axis, -1)
    out = logcumsumexp(xs, -1)
    later = np.tril(np.ones((xs.shape[-1],) * 2, bool))  # [i, j]: j <= i
    pairs = np.where(later, np.exp(np.minimum(xs[..., None, :] - out[..., :, None], 0.0)), 0.0)
    return np.moveaxis(np.einsum("...i,...ij->...j", vs, pairs), -1, axis)


def test_a_cumulative_log_sum_exp_of_large_values_along_a_middle_axis_passes() -> None:
    x = np.random.default_rng(3).normal(size=(5, 5, 5)) * 3
    x[np.random.default_rng(4).random((5, 5, 5)) < 0.2] = 1e4  # large, tied values: J is about 1e4 to 1e5
    verdicts = [gw.check_vjp(lambda x: logcumsumexp(x, 1), lambda x, v: logcumsumexp_vjp(x, v, 1), x,
                             seed=seed).verdict for seed in range(6)]
    assert verdicts == ["passed"] * 6, verdicts


# ---------------------------------------------------------------- reduced modes and interrupts at ties


def test_a_wrong_gradient_interrupted_after_the_first_look_is_still_failed() -> None:
    x = RNG.normal(size=12)
    calls = [0]

    def progress(done: int, total: int) -> None:
        calls[0] += 1
        if calls[0] >= 3:
            raise KeyboardInterrupt

    result = gw.check(lambda x: float(np.sum(x ** 3)), lambda x: 3 * x ** 2 + (np.arange(12) == 4),
                      x, seed=0, progress=progress)
    assert result.interrupted and result.verdict == "failed", str(result)


def test_part_of_a_gradient_and_a_missing_block_are_told_apart() -> None:
    theta = [RNG.normal(size=(3, 2)), RNG.normal(size=2)]

    def J(t):
        return float(np.tanh(t[0]).sum() + np.sum(t[1] ** 2))

    partial = gw.check(J, lambda t: [1 - np.tanh(t[0]) ** 2, 2 * t[1][:1]], theta, seed=0)
    assert codes(partial) == ["shape"] and "it has one entry" in partial.diagnoses[0].message
    with pytest.raises(gw.InputError, match=r"grad returned None for block 'theta\[0\]'; expected an array of shape"):
        gw.check(J, lambda t: [None, 2 * t[1]], theta)
