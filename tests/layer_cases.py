"""Layers written in numpy the way a course writes them, right and buggy, and Jacobian, JVP, VJP and Hessian cases.

Each case states the verdict and the exact set of diagnosis codes the
matching entry point must give with default options (and ``seed=0``).
``benchmarks/layers.py`` runs the same cases through other checkers, as a
`Vjp`: one function from the inputs to the output and one from a cotangent
to the inputs' gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import gradwidget as gw

# ---------------------------------------------------------------- layers


def affine_forward(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, x):
    return dout * (x > 0)


def leaky_relu_forward(x, slope):
    return np.where(x > 0, x, slope * x), (x, slope)


def leaky_relu_backward(dout, cache):
    x, slope = cache
    return dout * np.where(x > 0, 1.0, slope)


def sigmoid_forward(x):
    s = 1 / (1 + np.exp(-x))
    return s, s


def sigmoid_backward(dout, s):
    return dout * s * (1 - s)


def tanh_forward(x):
    t = np.tanh(x)
    return t, t


def tanh_backward(dout, t):
    return dout * (1 - t ** 2)


GELU_C = np.sqrt(2 / np.pi)


def gelu_forward(x):
    t = np.tanh(GELU_C * (x + 0.044715 * x ** 3))
    return 0.5 * x * (1 + t), (x, t)


def gelu_backward(dout, cache):
    x, t = cache
    return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * GELU_C * (1 + 3 * 0.044715 * x ** 2))


def softmax_forward(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    s = e / e.sum(axis=1, keepdims=True)
    return s, s


def softmax_backward(dout, s):
    return s * (dout - (dout * s).sum(axis=1, keepdims=True))


def softmax_backward_diagonal(dout, s):
    return dout * s * (1 - s)


def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    if bn_param["mode"] == "test":
        std = np.sqrt(bn_param["running_var"] + eps)
        xhat = (x - bn_param["running_mean"]) / std
        return gamma * xhat + beta, (xhat, gamma, std, "test")
    mu, var = x.mean(axis=0), x.var(axis=0)
    std = np.sqrt(var + eps)
    xhat = (x - mu) / std
    return gamma * xhat + beta, (xhat, gamma, std, "train")


def batchnorm_backward(dout, cache):
    xhat, gamma, std, mode = cache
    dxhat = dout * gamma
    if mode == "test":
        dx = dxhat / std
    else:
        n = dout.shape[0]
        dx = (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)) / (n * std)
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def batchnorm_backward_no_mean_path(dout, cache):
    xhat, gamma, std, _ = cache
    dxhat = dout * gamma
    n = dout.shape[0]
    dx = (n * dxhat - xhat * (dxhat * xhat).sum(axis=0)) / (n * std)
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def layernorm_forward(x, gamma, beta):
    xhat_t, _, std = _normalized(x.T)
    return gamma * xhat_t.T + beta, (xhat_t, gamma, std)


def layernorm_backward(dout, cache):
    xhat_t, gamma, std = cache
    dxhat_t = (dout * gamma).T
    n = dxhat_t.shape[0]
    dx_t = (n * dxhat_t - dxhat_t.sum(axis=0) - xhat_t * (dxhat_t * xhat_t).sum(axis=0)) / (n * std)
    return dx_t.T, (dout * xhat_t.T).sum(axis=0), dout.sum(axis=0)


def _normalized(x, eps=1e-5):
    mu, var = x.mean(axis=0), x.var(axis=0)
    std = np.sqrt(var + eps)
    return (x - mu) / std, mu, std


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    n, c, h, w = x.shape
    out, cache = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, c), gamma, beta, bn_param)
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2), (cache, x.shape)


def spatial_batchnorm_backward(dout, cache):
    inner, (n, c, h, w) = cache
    dx, dgamma, dbeta = batchnorm_backward(dout.transpose(0, 2, 3, 1).reshape(-1, c), inner)
    return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2), dgamma, dbeta


def groupnorm_forward(x, gamma, beta, groups):
    n = x.shape[0]
    xhat_t, _, std = _normalized(x.reshape(n * groups, -1).T)
    xhat = xhat_t.T.reshape(x.shape)
    return gamma * xhat + beta, (xhat_t, xhat, gamma, std, groups)


def groupnorm_backward(dout, cache):
    xhat_t, xhat, gamma, std, groups = cache
    n = dout.shape[0]
    dxhat_t = (dout * gamma).reshape(n * groups, -1).T
    size = dxhat_t.shape[0]
    dx_t = (size * dxhat_t - dxhat_t.sum(axis=0) - xhat_t * (dxhat_t * xhat_t).sum(axis=0)) / (size * std)
    return (dx_t.T.reshape(dout.shape), (dout * xhat).sum(axis=(0, 2, 3), keepdims=True),
            dout.sum(axis=(0, 2, 3), keepdims=True))


def dropout_forward(x, dropout_param):
    p = dropout_param["p"]
    rng = np.random.default_rng(dropout_param.get("seed"))
    mask = (rng.random(x.shape) < p) / p
    return x * mask, mask


def dropout_backward(dout, mask):
    return dout * mask


def dropout_backward_no_rescale(dout, mask):
    return dout * (mask > 0)


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    n, _, h, wd = x.shape
    f, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = 1 + (h + 2 * pad - hh) // stride, 1 + (wd + 2 * pad - ww) // stride
    out = np.zeros((n, f, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, conv_param)


def conv_backward_naive(dout, cache, flip=False):
    x, w, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    kernel = w[:, :, ::-1, ::-1] if flip else w
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + hh), slice(j * stride, j * stride + ww)
            dw += np.tensordot(dout[:, :, i, j], xp[:, :, rows, cols], axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], kernel, axes=([1], [0]))
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def conv_backward_flipped(dout, cache):
    return conv_backward_naive(dout, cache, flip=True)


def max_pool_forward_naive(x, pool_param):
    size, stride = pool_param["size"], pool_param["stride"]
    n, c, h, w = x.shape
    ho, wo = 1 + (h - size) // stride, 1 + (w - size) // stride
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache, every_tie=False):
    x, pool_param = cache
    size, stride = pool_param["size"], pool_param["stride"]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size]
            flat = window.reshape(*window.shape[:2], -1)
            if every_tie:
                chosen = (flat == flat.max(axis=2, keepdims=True)).astype(float)
            else:
                chosen = np.zeros_like(flat)
                np.put_along_axis(chosen, flat.argmax(axis=2)[..., None], 1.0, axis=2)
            dx[:, :, i * stride:i * stride + size, j * stride:j * stride + size] += (
                chosen * dout[:, :, i, j][..., None]).reshape(window.shape)
    return dx


def max_pool_backward_every_tie(dout, cache):
    return max_pool_backward_naive(dout, cache, every_tie=True)


def avg_pool_forward(x, size):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // size, size, w // size, size).mean(axis=(3, 5)), (x.shape, size)


def avg_pool_backward(dout, cache):
    _, size = cache
    return np.repeat(np.repeat(dout, size, axis=2), size, axis=3) / size ** 2


def avg_pool_backward_no_mean(dout, cache):
    _, size = cache
    return np.repeat(np.repeat(dout, size, axis=2), size, axis=3)


def rnn_forward(x, h0, Wx, Wh, b):
    n, t, _ = x.shape
    h = np.zeros((n, t, h0.shape[1]))
    prev = h0
    for step in range(t):
        prev = np.tanh(x[:, step] @ Wx + prev @ Wh + b)
        h[:, step] = prev
    return h, (x, h0, Wx, Wh, h)


def rnn_backward(dh, cache, carry=True):
    x, h0, Wx, Wh, h = cache
    dx, dWx, dWh, db = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wx.shape[1])
    dnext = np.zeros_like(h0)
    for step in reversed(range(x.shape[1])):
        prev = h[:, step - 1] if step > 0 else h0
        draw = (dh[:, step] + (dnext if carry else 0)) * (1 - h[:, step] ** 2)
        dx[:, step] = draw @ Wx.T
        dWx += x[:, step].T @ draw
        dWh += prev.T @ draw
        db += draw.sum(axis=0)
        dnext = draw @ Wh.T
    return dx, dnext, dWx, dWh, db


def rnn_backward_no_carry(dh, cache):
    return rnn_backward(dh, cache, carry=False)


def lstm_forward(x, h0, Wx, Wh, b):
    n, t, _ = x.shape
    hidden = h0.shape[1]
    h, c = h0, np.zeros_like(h0)
    hs, steps = np.zeros((n, t, hidden)), []
    for step in range(t):
        a = x[:, step] @ Wx + h @ Wh + b
        i, f, o = (1 / (1 + np.exp(-a[:, k * hidden:(k + 1) * hidden])) for k in range(3))
        g = np.tanh(a[:, 3 * hidden:])
        c_next = f * c + i * g
        tc = np.tanh(c_next)
        steps.append((x[:, step], h, c, i, f, o, g, tc))
        h, c = o * tc, c_next
        hs[:, step] = h
    return hs, (steps, Wx, Wh)


def lstm_backward(dhs, cache, carry_cell=True, gates=(0, 1, 2, 3)):
    steps, Wx, Wh = cache
    dx = np.zeros((dhs.shape[0], dhs.shape[1], Wx.shape[0]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wx.shape[1])
    dh_next, dc_next = np.zeros(dhs[:, 0].shape), np.zeros(dhs[:, 0].shape)
    for step in reversed(range(dhs.shape[1])):
        x, h_prev, c_prev, i, f, o, g, tc = steps[step]
        dh = dhs[:, step] + dh_next
        dc = dh * o * (1 - tc ** 2) + (dc_next if carry_cell else 0)
        parts = [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dh * tc * o * (1 - o), dc * i * (1 - g ** 2)]
        da = np.hstack([parts[k] for k in gates])
        dx[:, step] = da @ Wx.T
        dWx += x.T @ da
        dWh += h_prev.T @ da
        db += da.sum(axis=0)
        dh_next, dc_next = da @ Wh.T, dc * f
    return dx, dh_next, dWx, dWh, db


def lstm_backward_no_cell_carry(dhs, cache):
    return lstm_backward(dhs, cache, carry_cell=False)


def lstm_backward_gates_swapped(dhs, cache):
    return lstm_backward(dhs, cache, gates=(1, 0, 2, 3))  # the forget gate's gradient in the input gate's place


def embedding_forward(ids, W):
    return W[ids], (ids, W.shape)


def embedding_backward(dout, cache):
    ids, shape = cache
    dW = np.zeros(shape)
    np.add.at(dW, ids, dout)
    return dW


def embedding_backward_fancy_index(dout, cache):
    ids, shape = cache
    dW = np.zeros(shape)
    dW[ids] += dout  # repeated ids keep only one of their rows
    return dW


def temporal_affine_forward(x, w, b):
    return x @ w + b, (x, w)


def temporal_affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, np.einsum("ntd,ntm->dm", x, dout), dout.sum(axis=(0, 1))


def attention_forward(q, k, v):
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return p @ v, (q, k, v, p)


def attention_backward(dout, cache, transpose_dv=False):
    q, k, v, p = cache
    dv = p.transpose(0, 2, 1) @ dout
    dp = dout @ v.transpose(0, 2, 1)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) / np.sqrt(q.shape[-1])
    return ds @ k, ds.transpose(0, 2, 1) @ q, dv


def residual_forward(x, w):
    return x + np.tanh(x @ w), (x, w)


def residual_backward(dout, cache, skip=True):
    x, w = cache
    draw = dout * (1 - np.tanh(x @ w) ** 2)
    return (dout if skip else 0) + draw @ w.T, x.T @ draw


def residual_backward_no_skip(dout, cache):
    return residual_backward(dout, cache, skip=False)


def softmax_loss(x, y):
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    dx = np.exp(log_p)
    dx[np.arange(n), y] -= 1
    return -log_p[np.arange(n), y].mean(), dx / n


def svm_loss(x, y):
    n = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(n), y][:, None] + 1)
    margins[np.arange(n), y] = 0
    dx = (margins > 0).astype(float)
    dx[np.arange(n), y] -= dx.sum(axis=1)
    return margins.sum() / n, dx / n


def temporal_softmax_loss(x, y, mask):
    n, t, v = x.shape
    flat, ys, ms = x.reshape(n * t, v), y.reshape(-1), mask.reshape(-1)
    p = np.exp(flat - flat.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.sum(ms * np.log(p[np.arange(n * t), ys])) / n
    dx = p.copy()
    dx[np.arange(n * t), ys] -= 1
    return loss, (dx / n * ms[:, None]).reshape(x.shape)


# ---------------------------------------------------------------- Jacobians, JVPs, VJPs and Hessians


def residual(u, A, rhs):
    """A nonlinear solver's residual F(u) = A u + u**3 - rhs."""
    return A @ u + u ** 3 - rhs


def arm_position(q, lengths=(1.0, 0.7, 0.4)):
    """A planar arm's hand position from its joint angles."""
    angles = np.cumsum(q)
    return np.array([np.sum(lengths * np.cos(angles)), np.sum(lengths * np.sin(angles))])


def arm_jacobian(q, lengths=(1.0, 0.7, 0.4)):
    angles = np.cumsum(q)
    reach_x, reach_y = np.asarray(lengths) * np.sin(angles), np.asarray(lengths) * np.cos(angles)
    return np.array([[-reach_x[k:].sum() for k in range(q.size)], [reach_y[k:].sum() for k in range(q.size)]])


def lorenz(y, sigma=10.0, rho=28.0, beta=8 / 3):
    return np.array([sigma * (y[1] - y[0]), y[0] * (rho - y[2]) - y[1], y[0] * y[1] - beta * y[2]])


def lorenz_jacobian(y, sigma=10.0, rho=28.0, beta=8 / 3):
    return np.array([[-sigma, sigma, 0.0], [rho - y[2], -1.0, -y[0]], [y[1], y[0], -beta]])


def rosenbrock_gradient(x):
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def rosenbrock_hessian(x, factor=1.0):
    n = x.size
    H = np.zeros((n, n))
    H[np.arange(n - 1), np.arange(n - 1)] = 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    H[np.arange(1, n), np.arange(1, n)] += 200
    off = -400 * x[:-1] * factor
    H[np.arange(n - 1), np.arange(1, n)] = off
    H[np.arange(1, n), np.arange(n - 1)] = -400 * x[:-1]
    return H


def logistic_problem(seed=0, m=40, d=5):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(m, d)), (rng.random(m) < 0.5).astype(float)

    def grad(w):
        p = 1 / (1 + np.exp(-X @ w))
        return X.T @ (p - y) / m

    def hess(w, mean=True):
        p = 1 / (1 + np.exp(-X @ w))
        return (X.T * (p * (1 - p))) @ X / (m if mean else 1)

    def hvp(w, u):
        return hess(w) @ u

    return grad, hess, hvp, rng.normal(size=d) * 0.5


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class LayerCase:
    """One check of an array-valued function, with the verdict and codes it must get."""

    name: str
    entry: str  # "layer", "loss", "vjp", "jvp", "jacobian" or "hessian"
    functions: tuple[Callable[..., Any], ...]
    args: tuple[Any, ...]
    correct: bool
    codes: frozenset[str] = frozenset()
    options: dict[str, Any] = field(default_factory=dict)
    resolvable: bool = True

    @property
    def verdict(self) -> str:
        return "failed" if not self.correct else "passed" if self.resolvable else "inconclusive"

    def run(self, **options: Any) -> gw.CheckResult:
        given = {"seed": 0, **self.options, **options}
        check = ENTRIES[self.entry]
        if self.entry in ("layer", "loss"):
            return check(*self.functions, *self.args, **given)
        return check(*self.functions, self.args[0], **given)


ENTRIES: dict[str, Callable[..., gw.CheckResult]] = {
    "layer": gw.check_layer, "loss": gw.check_loss, "vjp": gw.check_vjp, "jvp": gw.check_jvp,
    "jacobian": gw.check_jacobian, "hessian": gw.check_hessian}

LAYER_CASES: dict[str, Callable[[], LayerCase]] = {}


def layer_case(name: str, entry: str, functions: tuple[Callable[..., Any], ...], build: Callable[[np.random.Generator],
               tuple[Any, ...]], correct: bool = True, codes: tuple[str, ...] = (), **options: Any) -> None:
    """Register a case whose arguments ``build`` draws from a seeded generator (fresh arrays each time)."""
    def make() -> LayerCase:
        return LayerCase(name, entry, functions, build(np.random.default_rng(7)), correct, frozenset(codes),
                         options)

    LAYER_CASES[name] = make


def make_layer(name: str) -> LayerCase:
    return LAYER_CASES[name]()


def normal(*shape: int) -> Callable[[np.random.Generator], tuple[np.ndarray]]:
    return lambda rng: (rng.normal(size=shape),)


def _bn_test_param(rng: np.random.Generator) -> dict[str, Any]:
    return {"mode": "test", "running_mean": rng.normal(size=5), "running_var": rng.random(5) + 0.5}


def _pool_input(rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(size=(2, 2, 4, 4)).round(1)
    x[0, 0, :2, :2] = 0.7  # a window of four tied maxima
    return x


def _rnn_args(rng: np.random.Generator, gates: int = 1) -> tuple[Any, ...]:
    return (rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 5)) * 0.5, rng.normal(size=(3, gates * 5)) * 0.4,
            rng.normal(size=(5, gates * 5)) * 0.4, rng.normal(size=gates * 5) * 0.2)


def _ids(rng: np.random.Generator) -> tuple[Any, ...]:
    return (np.array([[0, 3, 3, 1], [2, 3, 0, 0]]), rng.normal(size=(5, 3)))


AFFINE = (affine_forward, affine_backward)
layer_case("affine", "layer", AFFINE, lambda r: (r.normal(size=(4, 2, 3)), r.normal(size=(6, 5)), r.normal(size=5)))
layer_case("relu-exact-zeros", "layer", (relu_forward, relu_backward),
           lambda r: (np.where(r.random((4, 5)) < 0.3, 0.0, r.normal(size=(4, 5))),), True, ("kink",))
layer_case("leaky-relu", "layer", (leaky_relu_forward, leaky_relu_backward), lambda r: (r.normal(size=(4, 5)), 0.01))
layer_case("sigmoid", "layer", (sigmoid_forward, sigmoid_backward), normal(4, 5))
layer_case("tanh", "layer", (tanh_forward, tanh_backward), normal(4, 5))
layer_case("gelu", "layer", (gelu_forward, gelu_backward), normal(4, 5))
layer_case("softmax", "layer", (softmax_forward, softmax_backward), normal(4, 5))
layer_case("batchnorm-train", "layer", (batchnorm_forward, batchnorm_backward),
           lambda r: (r.normal(size=(6, 5)) * 2 + 1, r.normal(size=5), r.normal(size=5), {"mode": "train"}))
layer_case("batchnorm-test", "layer", (batchnorm_forward, batchnorm_backward),
           lambda r: (r.normal(size=(6, 5)), r.normal(size=5), r.normal(size=5), _bn_test_param(r)))
layer_case("layernorm", "layer", (layernorm_forward, layernorm_backward),
           lambda r: (r.normal(size=(4, 6)) * 2 + 1, r.normal(size=6), r.normal(size=6)))
layer_case("spatial-batchnorm", "layer", (spatial_batchnorm_forward, spatial_batchnorm_backward),
           lambda r: (r.normal(size=(2, 3, 3, 3)), r.normal(size=3), r.normal(size=3), {"mode": "train"}))
layer_case("groupnorm", "layer", (groupnorm_forward, groupnorm_backward),
           lambda r: (r.normal(size=(2, 4, 3, 3)), r.normal(size=(1, 4, 1, 1)), r.normal(size=(1, 4, 1, 1)), 2))
layer_case("dropout-seeded", "layer", (dropout_forward, dropout_backward),
           lambda r: (r.normal(size=(4, 5)), {"p": 0.6, "seed": 3}))
layer_case("conv-stride-pad", "layer", (conv_forward_naive, conv_backward_naive),
           lambda r: (r.normal(size=(2, 3, 5, 5)), r.normal(size=(2, 3, 3, 3)), r.normal(size=2),
                      {"stride": 2, "pad": 1}))
layer_case("max-pool-ties", "layer", (max_pool_forward_naive, max_pool_backward_naive),
           lambda r: (_pool_input(r), {"size": 2, "stride": 2}), True, ("kink",))
layer_case("avg-pool", "layer", (avg_pool_forward, avg_pool_backward), lambda r: (r.normal(size=(2, 2, 4, 4)), 2))
layer_case("rnn", "layer", (rnn_forward, rnn_backward), _rnn_args)
layer_case("lstm", "layer", (lstm_forward, lstm_backward), lambda r: _rnn_args(r, gates=4))
layer_case("embedding-repeated-ids", "layer", (embedding_forward, embedding_backward), _ids)
layer_case("temporal-affine", "layer", (temporal_affine_forward, temporal_affine_backward),
           lambda r: (r.normal(size=(2, 3, 4)), r.normal(size=(4, 5)), r.normal(size=5)))
layer_case("attention", "layer", (attention_forward, attention_backward),
           lambda r: (r.normal(size=(2, 3, 4)), r.normal(size=(2, 5, 4)), r.normal(size=(2, 5, 3))))
layer_case("residual", "layer", (residual_forward, residual_backward),
           lambda r: (r.normal(size=(4, 5)), r.normal(size=(5, 5)) * 0.5))
layer_case("softmax-loss", "loss", (softmax_loss,), lambda r: (r.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2])))
layer_case("svm-loss", "loss", (svm_loss,), lambda r: (r.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2])))
layer_case("temporal-softmax-loss-masked", "loss", (temporal_softmax_loss,),
           lambda r: (r.normal(size=(2, 3, 4)), np.array([[0, 3, 1], [2, 2, 0]]),
                      np.array([[True, True, False], [True, False, False]])))

# the bugs layer code has
layer_case("affine-db-not-summed", "layer", (affine_forward, lambda dout, c: (*affine_backward(dout, c)[:2], dout)),
           lambda r: (r.normal(size=(4, 3)), r.normal(size=(3, 5)), r.normal(size=5)), False, ("broadcast",))
layer_case("affine-db-wrong-axis", "layer",
           (affine_forward, lambda dout, c: (*affine_backward(dout, c)[:2], dout.sum(axis=1))),
           lambda r: (r.normal(size=(5, 3)), r.normal(size=(3, 5)), r.normal(size=5)), False, ("broadcast",))
layer_case("affine-dw-transposed", "layer",
           (affine_forward, lambda dout, c: (affine_backward(dout, c)[0], dout.T @ c[0], dout.sum(axis=0))),
           lambda r: (r.normal(size=(4, 3)), r.normal(size=(3, 5)), r.normal(size=5)), False, ("transpose",))
def affine_backward_transposed(dout, cache):
    return affine_backward(dout, cache)[0], dout.T @ cache[0], dout.sum(axis=0)


layer_case("affine-dw-transposed-square", "layer", (affine_forward, affine_backward_transposed),
           lambda r: (r.normal(size=(4, 3)), r.normal(size=(3, 3)), r.normal(size=3)), False, ("transpose",))
layer_case("affine-returns-in-another-order", "layer",
           (affine_forward, lambda dout, c: affine_backward(dout, c)[::-1]),
           lambda r: (r.normal(size=(4, 3)), r.normal(size=(3, 5)), r.normal(size=5)), False, ("swapped",))
layer_case("affine-dx-dw-swapped", "layer",
           (affine_forward, lambda dout, c: (affine_backward(dout, c)[1], affine_backward(dout, c)[0],
                                             dout.sum(axis=0))),
           lambda r: (r.normal(size=(3, 3)), r.normal(size=(3, 3)), r.normal(size=3)), False, ("swapped",))
layer_case("relu-ignores-dout", "layer", (relu_forward, lambda dout, x: (x > 0).astype(float)), normal(4, 5), False,
           ("ignores-dout",))
layer_case("sigmoid-ignores-dout", "layer", (sigmoid_forward, lambda dout, s: s * (1 - s)), normal(4, 5), False,
           ("ignores-dout",))
layer_case("tanh-dout-squared", "layer", (tanh_forward, lambda dout, t: dout ** 2 * (1 - t ** 2)), normal(4, 5),
           False, ("ignores-dout",))
layer_case("softmax-diagonal-only", "layer", (softmax_forward, softmax_backward_diagonal), normal(4, 5), False,
           ("missing-term",))
layer_case("batchnorm-mean-path-missing", "layer", (batchnorm_forward, batchnorm_backward_no_mean_path),
           lambda r: (r.normal(size=(6, 5)) * 2 + 1, r.normal(size=5), r.normal(size=5), {"mode": "train"}),
           False, ("missing-term",))
layer_case("residual-skip-missing", "layer", (residual_forward, residual_backward_no_skip),
           lambda r: (r.normal(size=(4, 5)), r.normal(size=(5, 5)) * 0.5), False, ("missing-term",))
layer_case("rnn-next-step-dropped", "layer", (rnn_forward, rnn_backward_no_carry), _rnn_args, False,
           ("recurrence",))
layer_case("lstm-cell-carry-dropped", "layer", (lstm_forward, lstm_backward_no_cell_carry),
           lambda r: _rnn_args(r, gates=4), False, ("recurrence",))
layer_case("lstm-step-gates-in-another-order", "layer", (lstm_forward, lstm_backward_gates_swapped),
           lambda r: (r.normal(size=(2, 1, 3)), *_rnn_args(r, gates=4)[1:]), False, ("localized", "permutation"))
layer_case("affine-drops-an-output-column", "layer",
           (affine_forward, lambda dout, c: (affine_backward(dout * (np.arange(dout.shape[1]) != 3), c)[0],
                                             *affine_backward(dout, c)[1:])),
           lambda r: (r.normal(size=(4, 3)), r.normal(size=(3, 5)), r.normal(size=5)), False, ("localized",))
layer_case("dropout-unseeded", "layer", (dropout_forward, dropout_backward),
           lambda r: (r.normal(size=(4, 5)), {"p": 0.6}), False, ("nondeterministic",))
layer_case("dropout-forgets-1-over-p", "layer", (dropout_forward, dropout_backward_no_rescale),
           lambda r: (r.normal(size=(4, 5)), {"p": 0.5, "seed": 3}), False, ("scale",))
layer_case("avg-pool-forgets-mean", "layer", (avg_pool_forward, avg_pool_backward_no_mean),
           lambda r: (r.normal(size=(2, 2, 4, 4)), 2), False, ("scale",))
layer_case("conv-flipped-kernel", "layer", (conv_forward_naive, conv_backward_flipped),
           lambda r: (r.normal(size=(2, 3, 5, 5)), r.normal(size=(2, 3, 3, 3)), r.normal(size=2),
                      {"stride": 1, "pad": 0}), False, ("permutation",))
layer_case("max-pool-every-tie", "layer", (max_pool_forward_naive, max_pool_backward_every_tie),
           lambda r: (_pool_input(r), {"size": 2, "stride": 2}), False, ("kink", "not-subgradient"))
layer_case("embedding-fancy-index", "layer", (embedding_forward, embedding_backward_fancy_index), _ids, False,
           ("missing-term",))
layer_case("softmax-loss-forgets-mean", "loss", (lambda x, y: (softmax_loss(x, y)[0], softmax_loss(x, y)[1] * 5),),
           lambda r: (r.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2])), False, ("scale",))


# Jacobians, JVPs, VJPs and Hessians
def _solver(r: np.random.Generator) -> tuple[Any, ...]:
    return (r.normal(size=4),)


_A = np.random.default_rng(11).normal(size=(4, 4))
_RHS = np.random.default_rng(12).normal(size=4)
layer_case("solver-residual-jacobian", "jacobian",
           (lambda u: residual(u, _A, _RHS), lambda u: _A + np.diag(3 * u ** 2)), _solver)
layer_case("solver-residual-jacobian-transposed", "jacobian",
           (lambda u: residual(u, _A, _RHS), lambda u: (_A + np.diag(3 * u ** 2)).T), _solver, False, ("transpose",))
layer_case("robot-arm-jacobian", "jacobian", (arm_position, arm_jacobian), lambda r: (r.normal(size=3),))
layer_case("robot-arm-jacobian-returned-transposed", "jacobian", (arm_position, lambda q: arm_jacobian(q).T),
           lambda r: (r.normal(size=3),), False, ("transpose",))
layer_case("lorenz-jacobian", "jacobian", (lorenz, lorenz_jacobian), lambda r: (r.normal(size=3) * 5,))
layer_case("lorenz-jacobian-sign", "jacobian",
           (lorenz, lambda y: lorenz_jacobian(y) * np.array([[1, 1, 1], [1, 1, -1], [1, 1, 1]])),
           lambda r: (r.normal(size=3) * 5,), False, ("localized",))
layer_case("tanh-map-vjp", "vjp", (lambda x: np.tanh(_A @ x), lambda x, v: _A.T @ (v * (1 - np.tanh(_A @ x) ** 2))),
           _solver)
layer_case("tanh-map-vjp-is-a-jvp", "vjp",
           (lambda x: np.tanh(_A @ x), lambda x, v: (1 - np.tanh(_A @ x) ** 2) * (_A @ v)), _solver, False,
           ("transpose",))
layer_case("softmax-jvp", "jvp", (lambda x: softmax_forward(x[None])[0][0],
                                  lambda x, u: softmax_backward(u[None], softmax_forward(x[None])[0])[0]),
           lambda r: (r.normal(size=5),))
layer_case("softmax-jvp-diagonal-only", "jvp", (lambda x: softmax_forward(x[None])[0][0],
                                                lambda x, u: softmax_backward_diagonal(u[None],
                                                                                       softmax_forward(x[None])[0])[0]),
           lambda r: (r.normal(size=5),), False, ("missing-term",))
layer_case("rosenbrock-hessian", "hessian", (rosenbrock_gradient, rosenbrock_hessian), lambda r: (r.normal(size=5),))
layer_case("rosenbrock-hessian-asymmetric", "hessian",
           (rosenbrock_gradient, lambda x: rosenbrock_hessian(x, factor=0.5)), lambda r: (r.normal(size=5),), False,
           ("localized",))
_LOGISTIC = logistic_problem()
layer_case("logistic-hessian", "hessian", _LOGISTIC[:2], lambda r: (_LOGISTIC[3],))
layer_case("logistic-hessian-forgets-mean", "hessian", (_LOGISTIC[0], lambda w: _LOGISTIC[1](w, mean=False)),
           lambda r: (_LOGISTIC[3],), False, ("scale",))
layer_case("newton-step-hvp", "jvp", (_LOGISTIC[0], _LOGISTIC[2]), lambda r: (_LOGISTIC[3],))
layer_case("newton-step-hvp-sign", "jvp", (_LOGISTIC[0], lambda w, u: -_LOGISTIC[2](w, u)),
           lambda r: (_LOGISTIC[3],), False, ("sign",))
