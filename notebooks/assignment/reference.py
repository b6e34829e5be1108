"""The instructor's reference: cost and gradient of the 3-layer network, with backpropagation.

Theta1 (10 x 11), Theta2 (10 x 11) and Theta3 (1 x 11) map 10 features
through two hidden layers of 10 sigmoid units to one sigmoid output; the
cost is the regularized cross-entropy (bias columns not regularized), and
theta arrives unrolled, row-major, one Theta after the other. Never shown to
student code: the grader imports it in its own process only.
"""

import numpy as np

SHAPES = [(10, 11), (10, 11), (1, 11)]


def unroll(theta):
    sizes = np.cumsum([rows * cols for rows, cols in SHAPES])[:-1]
    return [block.reshape(shape) for block, shape in zip(np.split(theta, sizes), SHAPES)]


def feed_forward(thetas, X):
    """Each layer's input (with its bias column of ones) and the output."""
    inputs, a = [], X
    for Theta in thetas:
        a = np.column_stack([np.ones(len(a)), a])
        inputs.append(a)
        a = 1 / (1 + np.exp(-a @ Theta.T))
    return inputs, a[:, 0]


def cost(theta, X, y, lam):
    thetas = unroll(theta)
    _, h = feed_forward(thetas, X)
    m = len(y)
    data = -(y @ np.log(h) + (1 - y) @ np.log(1 - h)) / m
    return data + lam / (2 * m) * sum(np.sum(Theta[:, 1:] ** 2) for Theta in thetas)


def gradient(theta, X, y, lam):
    thetas = unroll(theta)
    inputs, h = feed_forward(thetas, X)
    m = len(y)
    delta = (h - y)[:, None]
    grads = [None] * len(thetas)
    for layer in reversed(range(len(thetas))):
        grads[layer] = delta.T @ inputs[layer] / m
        grads[layer][:, 1:] += lam / m * thetas[layer][:, 1:]
        if layer:
            a = inputs[layer][:, 1:]
            delta = (delta @ thetas[layer])[:, 1:] * a * (1 - a)
    return np.concatenate([g.ravel() for g in grads])
