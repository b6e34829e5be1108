"""The two starting articles' problems, ready to check.

`article_network` is the 3-layer network of the gradient-checking article
(Theta1 10x11, Theta2 10x11, Theta3 1x11, sigmoid units, cross-entropy with
regularization), with its backpropagation written out and an optional,
typical bug. `linear_regression` is the 20-point least-squares problem of the
numerical-gradient-checks article, checked at beta = (2, 3).
`one_wrong_entry` is a large problem whose gradient is wrong in one place,
for directional checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._params import random_init

__all__ = ["ARTICLE_NAMES", "ARTICLE_SHAPES", "NETWORK_BUGS", "article_gradient", "article_network",
           "linear_regression", "one_wrong_entry", "sigmoid"]

ARTICLE_SHAPES = [(10, 11), (10, 11), (1, 11)]
ARTICLE_NAMES = ["Theta1", "Theta2", "Theta3"]
NETWORK_BUGS = {
    None: "correct backpropagation",
    "regularized-bias": "the bias columns are regularized in grad (but not in J)",
    "no-sigmoid-gradient": "the hidden delta forgets the sigmoid gradient g'(z)",
    "column-major": "grad unrolls each Theta column-major, as Octave's Theta(:) does",
}


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-z))."""
    return 1.0 / (1.0 + np.exp(-z))


def article_network(bug: str | None = None, samples: int = 20, lam: float = 1.0,
                    seed: int = 0, batched: bool = False) -> tuple[Callable[[np.ndarray], Any],
                                                                   Callable[[np.ndarray], np.ndarray], np.ndarray]:
    """Cost, gradient and a random unrolled theta of the article's network.

    Parameters
    ----------
    bug : str, optional
        One of `NETWORK_BUGS`' keys; None for a correct gradient.
    samples : int
        Training examples (10 features each, binary labels).
    lam : float
        Regularization strength (the bias columns are not regularized).
    seed : int
        Data and initial point.
    batched : bool
        J takes a batch: a 2-D array, one unrolled theta per row, and returns
        one cost per row (for ``check(..., vectorized=True)``).

    Returns
    -------
    J, grad : callables on the unrolled vector of 231 entries
    theta : ndarray
        The article's random initialization in [-0.12, 0.12], unrolled
        row-major; check with ``shapes=ARTICLE_SHAPES``.
    """
    if bug not in NETWORK_BUGS:
        raise ValueError(f"bug={bug!r} is not one of {list(NETWORK_BUGS)}")
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, 10))
    y = (rng.random(samples) < 0.5).astype(float)
    sizes = [int(np.prod(s)) for s in ARTICLE_SHAPES]
    cuts = np.cumsum(sizes)[:-1]

    def unroll(theta: np.ndarray) -> list[np.ndarray]:
        return [part.reshape(shape) for part, shape in zip(np.split(theta, cuts), ARTICLE_SHAPES)]

    def forward(thetas: list[np.ndarray]) -> list[np.ndarray]:
        activations = [X]
        for T in thetas:
            with_bias = np.hstack([np.ones((samples, 1)), activations[-1]])
            activations[-1] = with_bias
            activations.append(sigmoid(with_bias @ T.T))
        return activations

    def J(theta: np.ndarray) -> float:
        thetas = unroll(theta)
        h = forward(thetas)[-1][:, 0]
        data = -np.mean(y * np.log(h) + (1 - y) * np.log(1 - h))
        return data + lam / (2 * samples) * sum(np.sum(T[:, 1:] ** 2) for T in thetas)

    def grad(theta: np.ndarray) -> np.ndarray:
        thetas = unroll(theta)
        acts = forward(thetas)
        delta = acts[-1] - y[:, None]
        grads: list[np.ndarray] = []
        for layer in range(len(thetas) - 1, -1, -1):
            grads.insert(0, delta.T @ acts[layer] / samples)
            if layer:
                back = (delta @ thetas[layer])[:, 1:]
                a = acts[layer][:, 1:]
                delta = back if bug == "no-sigmoid-gradient" and layer == 1 else back * a * (1 - a)
        for T, G in zip(thetas, grads):
            G[:, 1:] += lam / samples * T[:, 1:]
            if bug == "regularized-bias":
                G[:, 0] += lam / samples * T[:, 0]
        return np.concatenate([G.ravel(order="F" if bug == "column-major" else "C") for G in grads])

    def J_batch(thetas: np.ndarray) -> np.ndarray:
        count = thetas.shape[0]
        layers = [p.reshape(count, *shape) for p, shape in zip(np.split(thetas, cuts, axis=1), ARTICLE_SHAPES)]
        a = np.broadcast_to(X, (count, *X.shape))
        for T in layers:
            with_bias = np.concatenate([np.ones((count, samples, 1)), a], axis=2)
            a = sigmoid(with_bias @ T.transpose(0, 2, 1))
        h = a[:, :, 0]
        data = -np.mean(y * np.log(h) + (1 - y) * np.log(1 - h), axis=1)
        return data + lam / (2 * samples) * sum(np.sum(T[:, :, 1:] ** 2, axis=(1, 2)) for T in layers)

    theta = np.concatenate([T.ravel() for T in random_init(ARTICLE_SHAPES, seed=rng)])
    return (J_batch if batched else J), grad, theta


def article_gradient(J: Callable[[np.ndarray], float], theta: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """The gradient-checking article's numerical gradient: its Octave loop, one entry at a time.

    ``(J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)`` for every entry
    of a flat ``theta``, exactly as the article computes ``gradApprox``.
    """
    approx = np.empty(theta.size)
    for i in range(theta.size):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += eps
        minus[i] -= eps
        approx[i] = (J(plus) - J(minus)) / (2 * eps)
    return approx


def linear_regression(seed: int = 0) -> tuple[Callable[[Any], float], Callable[[Any], np.ndarray],
                                              np.ndarray]:
    """Least squares on 20 points in R^2, as in the numerical-gradient article.

    Returns ``loss(beta) = ||y - X beta||^2 / (2n)``, its gradient
    ``-(y - X beta)^T X / n`` and the check point beta = (2, 3).
    """
    rng = np.random.default_rng(seed)
    n = 20
    X = rng.normal(size=(n, 2))
    y = rng.normal(size=n)

    def loss(beta: Any) -> float:
        resid = y - X @ beta
        return float(resid @ resid / (2 * n))

    def grad(beta: Any) -> np.ndarray:
        return -(y - X @ beta) @ X / n

    return loss, grad, np.array([2.0, 3.0])


def one_wrong_entry(size: int = 20_000, wrong: int = 12_345, error: float = 1e-3,
                    seed: int = 0) -> tuple[Callable[[np.ndarray], float], Callable[[np.ndarray], np.ndarray],
                                            np.ndarray]:
    """``J(x) = c . sin(x) + |x|^2 / 2`` with entry ``wrong`` of the gradient off by a relative ``error``.

    Returns J, the (wrong) gradient and a random point in [-1, 1]^size.
    """
    rng = np.random.default_rng(seed)
    c = rng.normal(size=size)

    def J(x: np.ndarray) -> float:
        return float(c @ np.sin(x) + 0.5 * x @ x)

    def grad(x: np.ndarray) -> np.ndarray:
        g = c * np.cos(x) + x
        g[wrong] *= 1 + error
        return g

    return J, grad, rng.uniform(-1, 1, size)
