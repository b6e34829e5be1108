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


def max_pool_backward_naive(dout, cache, every_tie=False, overwrite=False):
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
            update = (chosen * dout[:, :, i, j][..., None]).reshape(window.shape)
            part = dx[:, :, i * stride:i * stride + size, j * stride:j * stride + size]
            if overwrite:  # `=` where windows overlap: the last window's share replaces the others'
                part[update != 0] = update[update != 0]
            else:
                part += update
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
    pattern: str = ""  # the pattern of real code a bug (or its right twin) stands for
    words: tuple[str, ...] = ()  # what the diagnosis must say, in the user's words

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
               tuple[Any, ...]], correct: bool = True, codes: tuple[str, ...] = (), *, pattern: str = "",
               words: tuple[str, ...] = (), **options: Any) -> None:
    """Register a case whose arguments ``build`` draws from a seeded generator (fresh arrays each time)."""
    def make() -> LayerCase:
        return LayerCase(name, entry, functions, build(np.random.default_rng(7)), correct, frozenset(codes),
                         options, pattern=pattern, words=words)

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


# ---------------------------------------------------------------- patterns of real code
# Each pattern as students write it, several times over, with right twins that must not trigger it.
PENALTY, FACTOR, CONSTANT, FLAT, STATISTICS, SCATTER, DIAGONAL, ARRAY = (
    "penalty", "factor", "constant", "flat forward", "statistics", "scatter", "diagonal and more", "array contract")


def softmax_loss_reg(W, X, y, reg, bug=None):
    """The course's vectorized softmax loss with L2 regularization, and the ways its penalty goes wrong."""
    n = X.shape[0]
    scores = X @ W
    scores = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(n), y]).mean()
    if bug != "penalty-only-in-gradient":
        loss += reg * np.sum(W * W)
    p[np.arange(n), y] -= 1
    dW = X.T @ p / n
    if bug == "penalty-half":
        dW += reg * W
    elif bug == "penalty-over-n":
        dW += 2 * reg * W / n
    elif bug is None or bug == "penalty-only-in-gradient":
        dW += 2 * reg * W
    return loss, dW


def svm_loss_reg(W, X, y, reg, bug=None):
    n = X.shape[0]
    scores = X @ W
    margins = np.maximum(0, scores - scores[np.arange(n), y][:, None] + 1)
    margins[np.arange(n), y] = 0
    loss = margins.sum() / n + 0.5 * reg * np.sum(W * W)
    counts = (margins > 0).astype(float)
    counts[np.arange(n), y] = -counts.sum(axis=1)
    dW = X.T @ counts / n
    if bug != "penalty-missing":
        dW += reg * W
    return loss, dW


def two_layer_loss(W1, b1, W2, b2, X, y, reg, bug=None):
    """A two-layer ReLU net with softmax loss, regularized; one bug regularizes the biases in the loss only."""
    n = X.shape[0]
    h = np.maximum(0, X @ W1 + b1)
    scores = h @ W2 + b2
    scores = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(n), y]).mean() + reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    if bug == "biases-in-loss":
        loss += reg * (np.sum(b1 * b1) + np.sum(b2 * b2))
    p[np.arange(n), y] -= 1
    dscores = p / n
    dW2, db2 = h.T @ dscores + 2 * reg * W2, dscores.sum(axis=0)
    dh = dscores @ W2.T * (h > 0)
    return loss, (X.T @ dh + 2 * reg * W1, dh.sum(axis=0), dW2, db2)


def _scores_problem(r: np.random.Generator, classes: int = 6) -> tuple[Any, ...]:
    return (r.normal(size=(5, classes)) * 0.1, r.normal(size=(12, 5)), r.integers(0, classes, 12), 0.1)


def _two_layer_problem(r: np.random.Generator) -> tuple[Any, ...]:
    return (r.normal(size=(4, 6)) * 0.5, r.normal(size=6) * 0.5, r.normal(size=(6, 3)) * 0.5, r.normal(size=3) * 0.5,
            r.normal(size=(10, 4)), r.integers(0, 3, 10), 0.05)


WEIGHTS = ("W1", "b1", "W2", "b2")
layer_case("softmax-loss-reg", "loss", (softmax_loss_reg,), _scores_problem, wrt="W", pattern=PENALTY)
for bug in ("penalty-half", "penalty-over-n", "penalty-only-in-gradient"):
    layer_case(f"softmax-loss-reg-{bug}", "loss", (lambda W, X, y, reg, bug=bug: softmax_loss_reg(W, X, y, reg, bug),),
               _scores_problem, False, ("missing-term",), wrt="W", pattern=PENALTY,
               words=("x the parameter itself", "penalty"))
layer_case("svm-loss-reg", "loss", (svm_loss_reg,), _scores_problem, wrt="W", pattern=PENALTY)
layer_case("svm-loss-reg-penalty-missing", "loss",
           (lambda W, X, y, reg: svm_loss_reg(W, X, y, reg, "penalty-missing"),), _scores_problem, False,
           ("missing-term",), wrt="W", pattern=PENALTY, words=("-0.1 x the parameter itself",))
layer_case("two-layer-loss", "loss", (two_layer_loss,), _two_layer_problem, wrt=WEIGHTS, pattern=PENALTY)
def two_layer_loss_biases_in_loss(W1, b1, W2, b2, X, y, reg):
    return two_layer_loss(W1, b1, W2, b2, X, y, reg, bug="biases-in-loss")


layer_case("two-layer-loss-biases-regularized-in-loss-only", "loss",
           (two_layer_loss_biases_in_loss,), _two_layer_problem, False, ("missing-term",),
           wrt=WEIGHTS, pattern=PENALTY, words=("b1, b2: ", "-0.1 x the parameter itself", "penalty"))


def cross_entropy(x, y, log=np.log):
    n = x.shape[0]
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dx = p.copy()
    dx[np.arange(n), y] -= 1
    return -log(p[np.arange(n), y]).mean(), dx / n


def squared_error(w, X, y, half=True):
    r = X @ w - y
    return (0.5 if half else 1.0) * float(r @ r), X.T @ r


def affine_forward_bias_twice(x, w, b):
    return x @ w + b + b, (x, w)  # the bias added again where the residual was meant


layer_case("cross-entropy-log10", "loss", (lambda x, y: cross_entropy(x, y, np.log10),),
           lambda r: (r.normal(size=(6, 4)), r.integers(0, 4, 6)), False, ("scale",), pattern=FACTOR,
           words=("ln 10", "log10"))
layer_case("cross-entropy", "loss", (cross_entropy,), lambda r: (r.normal(size=(6, 4)), r.integers(0, 4, 6)),
           pattern=FACTOR)
layer_case("squared-error-without-its-half", "loss", (lambda w, X, y: squared_error(w, X, y, half=False),),
           lambda r: (r.normal(size=3), r.normal(size=(8, 3)), r.normal(size=8)), False, ("scale",), wrt="w",
           pattern=FACTOR, words=("0.5 x", "the derivative of a square"))
layer_case("squared-error", "loss", (squared_error,), lambda r: (r.normal(size=3), r.normal(size=(8, 3)),
                                                                 r.normal(size=8)), wrt="w", pattern=FACTOR)
layer_case("affine-bias-added-twice", "layer", (affine_forward_bias_twice, affine_backward),
           lambda r: (r.normal(size=(4, 3)), r.normal(size=(3, 5)), r.normal(size=5)), False, ("scale",),
           pattern=FACTOR, words=("half the slope", "added twice"))
layer_case("softmax-loss-mean-missing-in-gradient", "loss",
           (lambda x, y: (softmax_loss(x, y)[0], softmax_loss(x, y)[1] * x.shape[0]),),
           lambda r: (r.normal(size=(7, 4)), r.integers(0, 4, 7)), False, ("scale",), pattern=FACTOR,
           words=("7 is the length of axis 0 of x", "a mean"))


def batchnorm_backward_eps(dout, cache, slip):
    """The right formula, with the forward's eps handled differently: left out, added outside, subtracted."""
    xhat, gamma, std, _ = cache
    var = std ** 2 - 1e-5
    std = {"eps-left-out": np.sqrt(var), "eps-outside": np.sqrt(var) + 1e-5,
           "eps-subtracted": np.sqrt(var - 1e-5)}[slip]
    return batchnorm_backward(dout, (xhat, gamma, std, "train"))


def layernorm_backward_eps_left_out(dout, cache):
    xhat_t, gamma, std = cache
    return layernorm_backward(dout, (xhat_t, gamma, np.sqrt(std ** 2 - 1e-5)))


def _BN_ARGS(r: np.random.Generator) -> tuple[Any, ...]:
    return (r.normal(size=(6, 5)), r.normal(size=5), r.normal(size=5), {"mode": "train"})
for slip in ("eps-left-out", "eps-outside", "eps-subtracted"):
    layer_case(f"batchnorm-{slip}", "layer",
               (batchnorm_forward, lambda dout, cache, slip=slip: batchnorm_backward_eps(dout, cache, slip)),
               _BN_ARGS, False, ("missing-term",), pattern=CONSTANT, words=("slightly different function", "eps"))
layer_case("layernorm-eps-left-out", "layer", (layernorm_forward, layernorm_backward_eps_left_out),
           lambda r: (r.normal(size=(4, 6)), r.normal(size=6), r.normal(size=6)), False, ("missing-term",),
           pattern=CONSTANT, words=("slightly different function",))
layer_case("batchnorm-train-unit-variance", "layer", (batchnorm_forward, batchnorm_backward), _BN_ARGS,
           pattern=CONSTANT)


def affine_forward_without_b(x, w, b):
    return x @ w, (x, w)  # b never added


def relu_forward_step(x):
    return (x > 0).astype(float), x  # the step: the derivative, returned as the output


def batchnorm_forward_without_beta(x, gamma, beta, bn_param):
    mu, var = x.mean(axis=0), x.var(axis=0)
    std = np.sqrt(var + 1e-5)
    xhat = (x - mu) / std
    return gamma * xhat, (xhat, gamma, std, "train")  # beta forgotten


def conv_forward_without_bias(x, w, b, conv_param):
    return conv_forward_naive(x, w, np.zeros_like(b), conv_param)[0], (x, w, conv_param)


layer_case("affine-forward-without-b", "layer", (affine_forward_without_b, affine_backward),
           lambda r: (r.normal(size=(4, 3)), r.normal(size=(3, 5)), r.normal(size=5)), False, ("missing-term",),
           pattern=FLAT, words=("does not change with b", "does affine_forward_without_b use b"))
layer_case("relu-forward-returns-its-step", "layer", (relu_forward_step, relu_backward), normal(4, 5), False,
           ("missing-term",), pattern=FLAT, words=("does not change with x",))
layer_case("batchnorm-forward-without-beta", "layer", (batchnorm_forward_without_beta, batchnorm_backward), _BN_ARGS,
           False, ("missing-term",), pattern=FLAT, words=("does not change with beta",))
layer_case("conv-forward-without-bias", "layer", (conv_forward_without_bias, conv_backward_naive),
           lambda r: (r.normal(size=(2, 2, 5, 5)), r.normal(size=(3, 2, 3, 3)), r.normal(size=3),
                      {"stride": 2, "pad": 1}), False, ("missing-term",), pattern=FLAT,
           words=("does not change with b",))


def spatial_batchnorm_backward_count(dout, cache):
    """The per-channel statistics' backward divides by N where N * H * W entries were averaged."""
    (xhat, gamma, std, _), (n, c, h, w) = cache
    d = dout.transpose(0, 2, 3, 1).reshape(-1, c) * gamma
    count = n  # should be n * h * w
    dx = (d - (d.sum(axis=0) + xhat * (d * xhat).sum(axis=0)) / count) / std
    return (dx.reshape(n, h, w, c).transpose(0, 3, 1, 2), (dout.transpose(0, 2, 3, 1).reshape(-1, c) * xhat)
            .sum(axis=0), dout.sum(axis=(0, 2, 3)))


def layernorm_backward_over_batch(dout, cache):
    """Layer norm's backward with its sums taken over the batch axis, as batch norm's are."""
    xhat_t, gamma, std = cache
    xhat, d = xhat_t.T, dout * gamma
    n = d.shape[1]
    dx = (n * d - d.sum(axis=0) - xhat * (d * xhat).sum(axis=0)) / (n * std[:, None])
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def groupnorm_backward_over_channels(dout, cache):
    """Group norm's backward with each group's statistics taken over its channels only (not height and width)."""
    _, xhat, gamma, std, groups = cache
    n, c, h, w = dout.shape
    d = (dout * gamma).reshape(n, groups, c // groups, h * w)
    xg = xhat.reshape(d.shape)
    size = c // groups
    dx = (d - (d.sum(axis=2, keepdims=True) + xg * (d * xg).sum(axis=2, keepdims=True)) / size) \
        / std.reshape(n, groups, 1, 1)
    return (dx.reshape(dout.shape), (dout * xhat).sum(axis=(0, 2, 3), keepdims=True),
            dout.sum(axis=(0, 2, 3), keepdims=True))


layer_case("spatial-batchnorm-count-n", "layer", (spatial_batchnorm_forward, spatial_batchnorm_backward_count),
           lambda r: (r.normal(size=(2, 3, 4, 4)), r.normal(size=3), r.normal(size=3), {"mode": "train"}), False,
           ("missing-term",), pattern=STATISTICS, words=("axes (0, 2, 3)", "32 entries"))
layer_case("layernorm-backward-over-the-batch", "layer", (layernorm_forward, layernorm_backward_over_batch),
           lambda r: (r.normal(size=(5, 6)) * 2 + 1, r.normal(size=6), r.normal(size=6)), False, ("missing-term",),
           pattern=STATISTICS, words=("normalizes over axis 1", "axis 0"))
layer_case("groupnorm-statistics-over-channels-only", "layer", (groupnorm_forward, groupnorm_backward_over_channels),
           lambda r: (r.normal(size=(2, 4, 3, 3)), r.normal(size=(1, 4, 1, 1)), r.normal(size=(1, 4, 1, 1)), 2),
           False, ("missing-term",), pattern=STATISTICS, words=("normalizes over",))
layer_case("spatial-batchnorm-many-rows", "layer", (spatial_batchnorm_forward, spatial_batchnorm_backward),
           lambda r: (r.normal(size=(2, 3, 4, 4)), r.normal(size=3), r.normal(size=3), {"mode": "train"}),
           pattern=STATISTICS)


def conv_backward_scatter(dout, cache, slip):
    """The naive convolution's backward with a scatter slip: overwriting, the stride forgotten, one filter kept."""
    x, w, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + hh), slice(j * stride, j * stride + ww)
            dw += np.tensordot(dout[:, :, i, j], xp[:, :, rows, cols], axes=([0], [0]))
            if slip == "overwrite":
                dxp[:, :, rows, cols] = np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
            elif slip == "stride-forgotten":
                dxp[:, :, i:i + hh, j:j + ww] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    if slip == "last-filter-only":  # a loop over filters, each making dx anew
        for f in range(w.shape[0]):
            dxp = np.zeros_like(xp)
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dxp[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww] += \
                        dout[:, f, i, j][:, None, None, None] * w[f]
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def max_pool_backward_overwrite(dout, cache):
    """Overlapping windows (size 3, stride 2): `=` keeps only the last window's share at a shared maximum."""
    return max_pool_backward_naive(dout, cache, overwrite=True)


def _conv_args(stride: int, pad: int, size: int = 5) -> Callable[[np.random.Generator], tuple[Any, ...]]:
    return lambda r: (r.normal(size=(2, 2, size, size)), r.normal(size=(3, 2, 3, 3)), r.normal(size=3),
                      {"stride": stride, "pad": pad})


def _pool_overlapping(r: np.random.Generator) -> tuple[Any, ...]:
    x = r.normal(size=(1, 2, 7, 7))
    x[0, :, 2, 2] = 5.0  # one maximum shared by overlapping windows
    return (x, {"size": 3, "stride": 2})


for slip, args, said in (("overwrite", _conv_args(1, 1), ("only some of their pairs", "`+=`")),
                         ("stride-forgotten", _conv_args(2, 1, 7), ("stride", "2")),
                         ("last-filter-only", _conv_args(1, 0), ("out[:, 2, :, :]", "the filters?"))):
    layer_case(f"conv-dx-{slip}", "layer",
               (conv_forward_naive, lambda dout, cache, slip=slip: conv_backward_scatter(dout, cache, slip)), args,
               False, ("missing-term",) if slip != "stride-forgotten" else ("permutation",), pattern=SCATTER,
               words=said)
layer_case("max-pool-overlapping-overwrite", "layer", (max_pool_forward_naive, max_pool_backward_overwrite),
           _pool_overlapping, False, ("ignores-dout",), pattern=SCATTER, words=("not linear in dout", "`+=`"))
layer_case("max-pool-overlapping", "layer", (max_pool_forward_naive, max_pool_backward_naive), _pool_overlapping,
           pattern=SCATTER)
layer_case("conv-stride-1-pad-1", "layer", (conv_forward_naive, conv_backward_naive), _conv_args(1, 1),
           pattern=SCATTER)
layer_case("conv-stride-2-pad-1", "layer", (conv_forward_naive, conv_backward_naive), _conv_args(2, 1, 7),
           pattern=SCATTER)


def softmax_backward_diagonal_doubled(dout, s):
    return 2 * dout * s * (1 - s)  # the diagonal only, and twice it


def layernorm_backward_elementwise(dout, cache):
    xhat_t, gamma, std = cache
    return dout * gamma / std[:, None], (dout * xhat_t.T).sum(axis=0), dout.sum(axis=0)  # d xhat / d x as if diagonal


def batchnorm_backward_elementwise(dout, cache):
    xhat, gamma, std, _ = cache
    return dout * gamma / std, (dout * xhat).sum(axis=0), dout.sum(axis=0)


layer_case("softmax-diagonal-only-and-doubled", "layer", (softmax_forward, softmax_backward_diagonal_doubled),
           normal(4, 5), False, ("missing-term",), pattern=DIAGONAL, words=("diagonal only", "2 x the right one"))
layer_case("layernorm-elementwise-derivative", "layer", (layernorm_forward, layernorm_backward_elementwise),
           lambda r: (r.normal(size=(4, 6)) * 2 + 1, r.normal(size=6), r.normal(size=6)), False, ("missing-term",),
           pattern=DIAGONAL, words=("diagonal only", "differs as well"))
layer_case("batchnorm-elementwise-derivative", "layer", (batchnorm_forward, batchnorm_backward_elementwise), _BN_ARGS,
           False, ("missing-term",), pattern=DIAGONAL, words=("diagonal only",))
layer_case("sigmoid-diagonal-jacobian", "layer", (sigmoid_forward, sigmoid_backward), normal(4, 5), pattern=DIAGONAL)


def _two_inputs(r: np.random.Generator) -> tuple[Any, ...]:
    return ([r.normal(size=(3, 3)), r.normal(size=(3, 3))],)


def two_input_map(xs):
    a, b = xs
    return a * np.sin(b)


def two_input_vjp(xs, v, swapped=False):
    a, b = xs
    da, db = v * np.sin(b), v * a * np.cos(b)
    return [db, da] if swapped else [da, db]


def centering(x):
    return x - x.mean(axis=1, keepdims=True)


def centering_vjp(x, v, keepdims=True):
    return v - v.mean(axis=1, keepdims=keepdims)


def normalize_map(x):
    return _B @ x / np.linalg.norm(x)


def normalize_jacobian(x, outer=True):
    r = np.linalg.norm(x)
    return _B / r - (np.outer(_B @ x, x) / r ** 3 if outer else 0)


def least_squares(seed: int = 5):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(12, 4)), rng.normal(size=12) * 2

    def grad(w):
        t = np.tanh(X @ w)
        return X.T @ ((t - y) * (1 - t ** 2))

    def hess(w, gauss_newton=False):
        t = np.tanh(X @ w)
        s1, s2 = 1 - t ** 2, -2 * t * (1 - t ** 2)
        weight = s1 ** 2 + (0 if gauss_newton else (t - y) * s2)
        return (X.T * weight) @ X

    return grad, hess, rng.normal(size=4)


_B = np.random.default_rng(13).normal(size=(3, 4))
_SQUARES = least_squares()
def _TANH(x: np.ndarray) -> np.ndarray:
    return np.tanh(_A @ x)
layer_case("tanh-map-vjp-ignores-cotangent", "vjp", (_TANH, lambda x, v: _A.T @ (1 - np.tanh(_A @ x) ** 2)), _solver,
           False, ("ignores-dout",), pattern=ARRAY, words=("whatever",))
layer_case("tanh-map-vjp-squares-cotangent", "vjp", (_TANH, lambda x, v: _A.T @ (v ** 2 * (1 - np.tanh(_A @ x) ** 2))),
           _solver, False, ("ignores-dout",), pattern=ARRAY, words=("does not scale with",))
layer_case("tanh-map-jvp-normalizes-its-tangent", "jvp",
           (_TANH, lambda x, u: (1 - np.tanh(_A @ x) ** 2) * (_A @ (u / np.linalg.norm(u)))), _solver, False,
           ("ignores-dout",), pattern=ARRAY, words=("tangent",))
layer_case("two-input-vjp", "vjp", (two_input_map, two_input_vjp), _two_inputs, pattern=ARRAY)
layer_case("two-input-vjp-returned-swapped", "vjp",
           (two_input_map, lambda xs, v: two_input_vjp(xs, v, swapped=True)), _two_inputs, False, ("swapped",),
           pattern=ARRAY, words=("swapped",))
layer_case("centering-vjp", "vjp", (centering, centering_vjp), normal(4, 4), pattern=ARRAY)
layer_case("centering-vjp-without-keepdims", "vjp", (centering, lambda x, v: centering_vjp(x, v, keepdims=False)),
           normal(4, 4), False, ("broadcast",), pattern=ARRAY, words=("keepdims=True", "axis 1"))
layer_case("normalize-jacobian", "jacobian", (normalize_map, normalize_jacobian), lambda r: (r.normal(size=4),),
           pattern=ARRAY)
layer_case("normalize-jacobian-missing-its-outer-product", "jacobian",
           (normalize_map, lambda x: normalize_jacobian(x, outer=False)), lambda r: (r.normal(size=4),), False,
           ("missing-term",), pattern=ARRAY, words=("outer product",))
layer_case("solver-residual-jacobian-missing-its-diagonal", "jacobian",
           (lambda u: residual(u, _A, _RHS), lambda u: _A), _solver, False, ("missing-term",), pattern=ARRAY,
           words=("diagonal",))
layer_case("least-squares-hessian", "hessian", _SQUARES[:2], lambda r: (_SQUARES[2],), pattern=ARRAY)
layer_case("least-squares-hessian-gauss-newton", "hessian",
           (_SQUARES[0], lambda w: _SQUARES[1](w, gauss_newton=True)), lambda r: (_SQUARES[2],), False,
           ("missing-term",), pattern=ARRAY, words=("Gauss-Newton",))


def affine_backward_reshaped(dout, cache):
    x, w = cache
    return dout @ w.T, (dout.T @ x).reshape(w.shape), dout.sum(axis=0)  # .reshape where .T was meant


def temporal_affine_backward_reshaped(dout, cache):
    dx, dw, db = temporal_affine_backward(dout, cache)
    return dx, dw.T.reshape(dw.shape), db


def conv_backward_im2col_reshaped(dout, cache):
    dx, dw, db = conv_backward_naive(dout, cache)
    f = dw.shape[0]
    return dx, dw.reshape(f, -1).T.reshape(dw.shape), db  # the (C*HH*WW, F) column matrix reshaped, not transposed


RESHAPED = "reshaped"
layer_case("affine-dw-reshaped-not-transposed", "layer", (affine_forward, affine_backward_reshaped),
           lambda r: (r.normal(size=(4, 3)), r.normal(size=(3, 5)), r.normal(size=5)), False, ("permutation",),
           pattern=RESHAPED, words=("transpose", "reshape"))
layer_case("temporal-affine-dw-reshaped-not-transposed", "layer",
           (temporal_affine_forward, temporal_affine_backward_reshaped),
           lambda r: (r.normal(size=(2, 3, 4)), r.normal(size=(4, 5)), r.normal(size=5)), False, ("permutation",),
           pattern=RESHAPED, words=("transpose", "reshape"))
layer_case("conv-dw-im2col-reshaped-not-transposed", "layer", (conv_forward_naive, conv_backward_im2col_reshaped),
           _conv_args(1, 1), False, ("permutation",), pattern=RESHAPED, words=("transpose", "reshape"))
layer_case("affine-forward-uses-b", "layer", AFFINE,
           lambda r: (r.normal(size=(4, 3)), r.normal(size=(3, 5)), r.normal(size=5)), pattern=FLAT)
layer_case("relu-forward-returns-its-output", "layer", (relu_forward, relu_backward), normal(4, 5), pattern=FLAT)
layer_case("affine-dw-transposed-right", "layer", AFFINE,
           lambda r: (r.normal(size=(4, 3)), r.normal(size=(3, 5)), r.normal(size=5)), pattern=RESHAPED)
layer_case("conv-dw-right", "layer", (conv_forward_naive, conv_backward_naive), _conv_args(1, 1), pattern=RESHAPED)


# solver and physics Jacobians and Hessians
_LAPLACIAN = -2 * np.eye(6) + np.eye(6, k=1) + np.eye(6, k=-1)
_SOURCE = np.random.default_rng(14).normal(size=6)


def reaction_diffusion(u):
    """A discretized reaction-diffusion residual F(u) = L u + u**2 - f."""
    return _LAPLACIAN @ u + u ** 2 - _SOURCE


def chain_energy_gradient(q):
    """A chain of pendulums' energy sum(1 - cos(q_i - q_(i-1))), its gradient."""
    s = np.sin(np.diff(q, prepend=0.0))
    g = s.copy()
    g[:-1] -= s[1:]
    return g


def chain_energy_hessian(q, sign=1.0):
    c = np.cos(np.diff(q, prepend=0.0))
    return np.diag(c + np.append(c[1:], 0)) + sign * (np.diag(-c[1:], 1) + np.diag(-c[1:], -1))


def _six(r: np.random.Generator) -> tuple[Any, ...]:
    return (r.normal(size=6),)


layer_case("reaction-diffusion-jacobian", "jacobian", (reaction_diffusion, lambda u: _LAPLACIAN + 2 * np.diag(u)),
           _six, pattern=ARRAY)
layer_case("reaction-diffusion-jacobian-reaction-halved", "jacobian",
           (reaction_diffusion, lambda u: _LAPLACIAN + np.diag(u)), _six, False, ("missing-term",), pattern=ARRAY,
           words=("diagonal only", "elementwise"))
layer_case("reaction-diffusion-jacobian-without-coupling", "jacobian",
           (reaction_diffusion, lambda u: -2 * np.eye(6) + 2 * np.diag(u)), _six, False, ("missing-term",),
           pattern=ARRAY, words=("restricted to its diagonal only", "couple entries"))
layer_case("chain-energy-hessian", "hessian", (chain_energy_gradient, chain_energy_hessian),
           lambda r: (r.normal(size=5),), pattern=ARRAY)
layer_case("chain-energy-hessian-cross-terms-sign", "hessian",
           (chain_energy_gradient, lambda q: chain_energy_hessian(q, -1.0)), lambda r: (r.normal(size=5),), False,
           ("localized",), pattern=ARRAY, words=("right on its diagonal and wrong off it (the wrong sign)",))
layer_case("robot-arm-jacobian-one-row-wrong", "jacobian",
           (arm_position, lambda q: arm_jacobian(q) * np.array([[1.0], [-1.0]])), lambda r: (r.normal(size=3),),
           False, ("localized",), pattern=ARRAY, words=("row 1 of the Jacobian", "of f's output 1"))
layer_case("robot-arm-jacobian-one-derivative-sign", "jacobian",
           (arm_position, lambda q: arm_jacobian(q) * np.array([[1.0, 1.0, 1.0], [1.0, 1.0, -1.0]])),
           lambda r: (r.normal(size=3),), False, ("localized",), pattern=ARRAY,
           words=("entry [1, 2] of the Jacobian", "the rest of its row and column right",
                  "of f's output 1 with respect to x's entry 2"))


def bend(x: np.ndarray) -> np.ndarray:
    return np.array([x[0] ** 2 - x[1], np.sin(x[0] * x[1])])


def bend_jacobian(x: np.ndarray, slip: bool = False) -> np.ndarray:
    c = np.cos(x[0] * x[1])
    return np.array([[2 * x[0], -1.0], [x[1] * c, (x[1] if slip else x[0]) * c]])


layer_case("bend-jacobian", "jacobian", (bend, bend_jacobian), lambda r: (r.normal(size=2),), pattern=ARRAY)
layer_case("bend-jacobian-variable-slip", "jacobian", (bend, lambda x: bend_jacobian(x, slip=True)),
           lambda r: (r.normal(size=2),), False, ("localized",), pattern=ARRAY,
           words=("entry [1, 1] of the Jacobian", "of f's output 1 with respect to x's entry 1"))


# a cache unpacked in another order than the forward packed it
CACHE_ORDER = "cache order"


def affine_backward_cache_swapped(dout, cache):
    w, x = cache  # the forward packed (x, w)
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def product_forward(a, b):
    return a * b, (a, b)


def product_backward(dout, cache, swapped=False):
    a, b = cache[::-1] if swapped else cache
    return dout * b, dout * a


def bilinear_forward(x, W, y):
    return np.einsum("ni,ij,nj->n", x, W, y), (x, W, y)


def bilinear_backward(dout, cache, swapped=False):
    x, W, y = cache[::-1] if swapped else cache
    return (dout[:, None] * (y @ W.T), np.einsum("n,ni,nj->ij", dout, x, y), dout[:, None] * (x @ W))


def _squares(r: np.random.Generator) -> tuple[Any, ...]:
    return (r.normal(size=(3, 3)), r.normal(size=(3, 3)), r.normal(size=3))


layer_case("affine-square", "layer", AFFINE, _squares, pattern=CACHE_ORDER)
layer_case("affine-square-cache-unpacked-swapped", "layer", (affine_forward, affine_backward_cache_swapped), _squares,
           False, ("swapped",), pattern=CACHE_ORDER, words=("as if x and w were exchanged", "w, x = cache"))
layer_case("product", "layer", (product_forward, product_backward), lambda r: (r.normal(size=(3, 4)),
                                                                               r.normal(size=(3, 4))),
           pattern=CACHE_ORDER)
layer_case("product-cache-unpacked-swapped", "layer",
           (product_forward, lambda dout, cache: product_backward(dout, cache, swapped=True)),
           lambda r: (r.normal(size=(3, 4)), r.normal(size=(3, 4))), False, ("swapped",), pattern=CACHE_ORDER,
           words=("as if a and b were exchanged",))
layer_case("bilinear-cache-unpacked-swapped", "layer",
           (bilinear_forward, lambda dout, cache: bilinear_backward(dout, cache, swapped=True)),
           lambda r: (r.normal(size=(4, 3)), r.normal(size=(3, 3)), r.normal(size=(4, 3))), False,
           ("swapped", "transpose"), pattern=CACHE_ORDER, words=("as if x and y were exchanged", "W: "))
layer_case("bilinear", "layer", (bilinear_forward, bilinear_backward),
           lambda r: (r.normal(size=(4, 3)), r.normal(size=(3, 3)), r.normal(size=(4, 3))), pattern=CACHE_ORDER)
