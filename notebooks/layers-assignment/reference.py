"""The instructor's reference for the layers assignment: each layer's forward and backward, two losses.

Conventions (the course's): ``out, cache = layer_forward(*inputs)`` and
``dinputs = layer_backward(dout, cache)``, one gradient per input that is
differentiated, in the inputs' order. Losses return ``(loss, gradients)``.
This file is imported by the grader only, never shown to student code.
"""

import numpy as np


def affine_forward(x, w, b):
    """Return x reshaped to (N, D) @ w + b, and the cache."""
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalization in training mode: statistics over the batch axis."""
    eps = bn_param.get("eps", 1e-5)
    mean = x.mean(axis=0)
    inverse_std = 1.0 / np.sqrt(x.var(axis=0) + eps)
    x_hat = (x - mean) * inverse_std
    return gamma * x_hat + beta, (x_hat, gamma, inverse_std)


def batchnorm_backward(dout, cache):
    x_hat, gamma, inverse_std = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dx = inverse_std / n * (n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))
    return dx, dgamma, dbeta


def _windows(x, height, width, stride):
    """All windows of x (N, C, H, W) as an array (N, C, H_out, W_out, height, width) (a view)."""
    n, c, h, w = x.shape
    h_out, w_out = (h - height) // stride + 1, (w - width) // stride + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, c, h_out, w_out, height, width), (s[0], s[1], s[2] * stride, s[3] * stride, s[2], s[3]),
        writeable=False)


def conv_forward_naive(x, w, b, conv_param):
    """A convolution (cross-correlation) of x (N, C, H, W) with filters w (F, C, HH, WW)."""
    stride, pad = conv_param["stride"], conv_param["pad"]
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = _windows(padded, w.shape[2], w.shape[3], stride)
    out = np.einsum("nchwij,fcij->nfhw", windows, w) + b[None, :, None, None]
    return out, (x, w, stride, pad)


def conv_backward_naive(dout, cache):
    x, w, stride, pad = cache
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = _windows(padded, w.shape[2], w.shape[3], stride)
    dw = np.einsum("nchwij,nfhw->fcij", windows, dout)
    db = dout.sum(axis=(0, 2, 3))
    dpadded = np.zeros_like(padded)
    for i in range(w.shape[2]):
        for j in range(w.shape[3]):
            rows = slice(i, i + stride * (dout.shape[2] - 1) + 1, stride)
            cols = slice(j, j + stride * (dout.shape[3] - 1) + 1, stride)
            dpadded[:, :, rows, cols] += np.einsum("nfhw,fc->nchw", dout, w[:, :, i, j])
    dx = dpadded[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    height, width, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    windows = _windows(x, height, width, stride)
    return windows.max(axis=(4, 5)), (x, height, width, stride)


def max_pool_backward_naive(dout, cache):
    """The gradient goes to the first maximum of each window."""
    x, height, width, stride = cache
    windows = _windows(x, height, width, stride)
    n, c, h_out, w_out = dout.shape
    flat = windows.reshape(n, c, h_out, w_out, -1)
    first = flat.argmax(axis=4)
    dx = np.zeros_like(x)
    ni, ci, hi, wi = np.indices((n, c, h_out, w_out))
    rows = hi * stride + first // width
    cols = wi * stride + first % width
    np.add.at(dx, (ni, ci, rows, cols), dout)
    return dx


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    """A vanilla RNN over a sequence x (N, T, D); returns the hidden states h (N, T, H)."""
    steps, h = [], h0
    for t in range(x.shape[1]):
        h, cache = rnn_step_forward(x[:, t], h, Wx, Wh, b)
        steps.append((h, cache))
    return np.stack([h for h, _ in steps], axis=1), [cache for _, cache in steps]


def rnn_backward(dh, cache):
    n, steps, hidden = dh.shape
    x, _, Wx, Wh, _ = cache[0]
    dx = np.zeros((n, steps, x.shape[1]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(hidden)
    dprev = np.zeros((n, hidden))
    for t in reversed(range(steps)):
        dx[:, t], dprev, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev, cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev, dWx, dWh, db


def softmax_loss(x, y):
    """The mean cross-entropy of softmax(x) against the labels y, and its gradient with respect to x."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -log_p[np.arange(n), y].mean()
    dx = np.exp(log_p)
    dx[np.arange(n), y] -= 1
    return loss, dx / n


def two_layer_loss(X, y, W1, b1, W2, b2, reg):
    """Return the loss of affine - relu - affine - softmax with L2 regularization, and its gradients by name."""
    hidden, affine1 = affine_forward(X, W1, b1)
    active, relu = relu_forward(hidden)
    scores, affine2 = affine_forward(active, W2, b2)
    loss, dscores = softmax_loss(scores, y)
    loss += 0.5 * reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    dactive, dW2, db2 = affine_backward(dscores, affine2)
    _, dW1, db1 = affine_backward(relu_backward(dactive, relu), affine1)
    return loss, {"W1": dW1 + reg * W1, "b1": db1, "W2": dW2 + reg * W2, "b2": db2}
