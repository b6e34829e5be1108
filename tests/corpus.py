"""A corpus of realistic cost/gradient pairs, right and wrong.

Each case states whether its gradient is right and the exact set of
diagnosis codes a check with default options must give. The tests run
every case; ``benchmarks/accuracy.py`` runs the same cases through other
checkers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradwidget.examples import ARTICLE_NAMES, ARTICLE_SHAPES, article_network, linear_regression, sigmoid


@dataclass(frozen=True)
class Case:
    """One J/grad pair at one point, with the verdict it must get."""

    name: str
    J: Callable[[Any], Any]
    grad: Callable[[Any], Any] | None
    theta: Any
    correct: bool
    codes: frozenset[str] = frozenset()
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    resolvable: bool = True  # False: the gradient is right but no check can resolve it here

    @property
    def verdict(self) -> str:
        """The verdict the case must get."""
        return "failed" if not self.correct else "passed" if self.resolvable else "inconclusive"


CASES: dict[str, Callable[[], Case]] = {}


def case(build: Callable[[], Case]) -> Callable[[], Case]:
    CASES[build.__name__.replace("_", "-")] = build
    return build


def make(name: str) -> Case:
    """Build the case called ``name`` (fresh closures, fresh arrays)."""
    return CASES[name]()


# ---------------------------------------------------------------- linear regression


@case
def linreg() -> Case:
    J, grad, beta = linear_regression()
    return Case("linreg", J, grad, beta, True, note="the R article's 20 points at beta=(2, 3)")


@case
def linreg_int_theta() -> Case:
    J, grad, _ = linear_regression()
    return Case("linreg-int-theta", J, grad, [2, 3], True, note="theta given as a list of ints")


@case
def linreg_row_gradient() -> Case:
    J, grad, beta = linear_regression()
    return Case("linreg-row-gradient", J, lambda b: grad(b)[None, :], beta, True,
                note="grad returns a 1x2 row, as the R article's matrix product does")


@case
def linreg_missing_mean() -> Case:
    J, grad, beta = linear_regression()
    return Case("linreg-missing-mean", J, lambda b: 20 * grad(b), beta, False, frozenset({"scale"}),
                note="grad forgets the 1/n")


@case
def linreg_sign() -> Case:
    J, grad, beta = linear_regression()
    return Case("linreg-sign", J, lambda b: -grad(b), beta, False, frozenset({"sign"}),
                note="(y - X b) where (X b - y) was meant")


@case
def linreg_reads_global() -> Case:
    J, grad, beta = linear_regression()
    frozen = beta.copy()
    return Case("linreg-reads-global", J, lambda b: grad(frozen), beta, False,
                frozenset({"ignores-input"}), note="grad uses a global beta, not its argument")


@case
def linear_cost() -> Case:
    c = np.linspace(-1, 2, 7)
    return Case("linear-cost", lambda x: float(c @ x) + 3.0, lambda x: c.copy(), np.ones(7) * 0.3 +
                np.arange(7) * 0.01, True, note="a linear J: its gradient is legitimately constant")


# ---------------------------------------------------------------- logistic regression


def _logistic(m: int = 50, lam: float = 1.0, seed: int = 1, dtype: Any = np.float64) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    X = np.hstack([np.ones((m, 1)), rng.normal(size=(m, 3))]).astype(dtype)
    y = (rng.random(m) < 0.4).astype(dtype)

    def J(t: np.ndarray) -> float:
        h = sigmoid(X @ t)
        reg = lam / (2 * m) * np.sum(t[1:] ** 2)
        return -np.mean(y * np.log(h) + (1 - y) * np.log(1 - h)) + reg

    def grad(t: np.ndarray, *, bias_reg: bool = False) -> np.ndarray:
        g = X.T @ (sigmoid(X @ t) - y) / m
        reg = lam / m * t
        if not bias_reg:
            reg = np.concatenate([[0], reg[1:]]).astype(t.dtype)
        return g + reg

    theta = (rng.random(4) * 0.24 - 0.12).astype(dtype)
    return J, grad, theta, X, y


@case
def logistic() -> Case:
    J, grad, theta, *_ = _logistic()
    return Case("logistic", J, grad, theta, True, note="regularized, bias not regularized")


@case
def logistic_bias_regularized() -> Case:
    J, grad, theta, *_ = _logistic()
    return Case("logistic-bias-regularized", J, lambda t: grad(t, bias_reg=True), theta, False,
                frozenset({"localized"}), note="grad regularizes theta[0], J does not")


@case
def logistic_aliasing() -> Case:
    J, _, theta, X, y = _logistic()

    def grad(t: np.ndarray) -> np.ndarray:
        g = X.T @ (sigmoid(X @ t) - y) / 50
        reg = t  # meant as a copy, as in Octave
        reg[0] = 0
        return g + reg / 50
    return Case("logistic-aliasing", J, grad, theta, False, frozenset({"mutates-input"}),
                note="`reg = theta; reg[0] = 0` zeroes theta's bias in place")


@case
def logistic_at_minimum() -> Case:
    J, grad, theta, X, _y = _logistic()
    for _ in range(30):  # Newton's method to the optimum
        h = sigmoid(X @ theta)
        H = (X.T * (h * (1 - h))) @ X / 50 + np.diag([0, 1, 1, 1]) / 50
        theta = theta - np.linalg.solve(H, grad(theta))
    return Case("logistic-at-minimum", J, grad, theta, True, frozenset({"noise-floor"}), resolvable=False,
                note="at the optimum the gradient is ~1e-17: relative errors mean nothing there")


@case
def logistic_float32() -> Case:
    J, grad, theta, *_ = _logistic(dtype=np.float32)
    return Case("logistic-float32", J, grad, theta, True, frozenset({"noise-floor"}))


@case
def logistic_zero_init() -> Case:
    J, grad, theta, *_ = _logistic()
    return Case("logistic-zero-init", J, grad, np.zeros_like(theta), True,
                frozenset({"symmetric-point"}), note="checked at theta = 0")


# ---------------------------------------------------------------- the article's network


@case
def network() -> Case:
    J, grad, theta = article_network()
    return Case("network", J, grad, theta, True, options={"shapes": ARTICLE_SHAPES,
                "names": ARTICLE_NAMES})


@case
def network_list() -> Case:
    J, grad, theta = article_network()
    cuts = np.cumsum([110, 110])

    def as_list(f: Callable[[np.ndarray], Any]) -> Callable[[list[np.ndarray]], Any]:
        return lambda ts: f(np.concatenate([t.ravel() for t in ts]))

    thetas = [p.reshape(s) for p, s in zip(np.split(theta, cuts), ARTICLE_SHAPES)]
    return Case("network-list", as_list(J), lambda ts: [g.reshape(s) for g, s in zip(
        np.split(as_list(grad)(ts), cuts), ARTICLE_SHAPES)], thetas, True)


def _network_bug(bug: str, code: str) -> Case:
    J, grad, theta = article_network(bug)
    return Case(f"network-{bug}", J, grad, theta, False, frozenset({code}),
                options={"shapes": ARTICLE_SHAPES, "names": ARTICLE_NAMES})


@case
def network_regularized_bias() -> Case:
    return _network_bug("regularized-bias", "localized")


@case
def network_no_sigmoid_gradient() -> Case:
    return _network_bug("no-sigmoid-gradient", "localized")


@case
def network_column_major() -> Case:
    return _network_bug("column-major", "permutation")


@case
def network_symmetric_init() -> Case:
    J, grad, theta = article_network()
    return Case("network-symmetric-init", J, grad, np.full_like(theta, 0.05), True,
                frozenset({"symmetric-point"}), options={"shapes": ARTICLE_SHAPES})


# ---------------------------------------------------------------- softmax regression


def _softmax(d: int = 4, k: int = 4, m: int = 30, seed: int = 2) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d))
    Y = np.eye(k)[rng.integers(0, k, m)]

    def probabilities(p: dict[str, np.ndarray]) -> np.ndarray:
        z = X @ p["W"] + p["b"]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def J(p: dict[str, np.ndarray]) -> float:
        return -np.sum(Y * np.log(probabilities(p))) / m

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        G = (probabilities(p) - Y) / m
        return {"W": X.T @ G, "b": G.sum(axis=0)}

    theta = {"W": rng.normal(scale=0.1, size=(d, k)), "b": rng.normal(scale=0.1, size=k)}
    return J, grad, theta, X, Y, probabilities


@case
def softmax() -> Case:
    J, grad, theta, *_ = _softmax()
    return Case("softmax", J, grad, theta, True)


@case
def softmax_pair() -> Case:
    J, grad, theta, *_ = _softmax()
    return Case("softmax-pair", lambda p: (J(p), grad(p)), None, theta, True,
                note="J returns (cost, grad)")


@case
def softmax_transposed() -> Case:
    J, _grad, theta, X, Y, probabilities = _softmax()

    def bad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        G = (probabilities(p) - Y) / 30
        return {"W": G.T @ X, "b": G.sum(axis=0)}
    return Case("softmax-transposed", J, bad, theta, False, frozenset({"transpose"}),
                note="dW = G.T @ X: square W, so the shape still fits")


@case
def softmax_transposed_shape() -> Case:
    J, _grad, theta, X, Y, probabilities = _softmax(d=5, k=3)

    def bad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        G = (probabilities(p) - Y) / 30
        return {"W": G.T @ X, "b": G.sum(axis=0)}
    return Case("softmax-transposed-shape", J, bad, theta, False, frozenset({"transpose"}),
                note="dW comes back (3, 5) for a (5, 3) W")


@case
def softmax_bias_forgets_labels() -> Case:
    J, _grad, theta, X, Y, probabilities = _softmax()

    def bad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        G = (probabilities(p) - Y) / 30
        return {"W": X.T @ G, "b": probabilities(p).sum(axis=0) / 30}
    return Case("softmax-bias-forgets-labels", J, bad, theta, False, frozenset({"localized"}),
                note="db = sum(P) instead of sum(P - Y)")


# ---------------------------------------------------------------- a tanh MLP


def _mlp(dtype: Any = np.float64, seed: int = 3, m: int = 40) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 8)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, m)]

    def forward(p: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        H = np.tanh(X @ p["W1"] + p["b1"])
        z = H @ p["W2"] + p["b2"]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return H, e / e.sum(axis=1, keepdims=True)

    def J(p: dict[str, np.ndarray]) -> Any:
        return -np.sum(Y * np.log(forward(p)[1])) / m

    def grad(p: dict[str, np.ndarray], bug: str | None = None) -> dict[str, np.ndarray]:
        H, P = forward(p)
        G = (P - Y) / m
        back = G @ p["W2"].T
        D = back if bug == "no-tanh-gradient" else back * (1 - H ** 2)
        g = {"W1": X.T @ D, "b1": D.sum(axis=0), "W2": H.T @ G, "b2": G.sum(axis=0)}
        if bug == "doubled-W2":
            g["W2"] = 2 * g["W2"]
        return g

    theta = {"W1": rng.normal(scale=0.3, size=(8, 16)), "b1": rng.normal(scale=0.1, size=16),
             "W2": rng.normal(scale=0.3, size=(16, 3)), "b2": rng.normal(scale=0.1, size=3)}
    return J, grad, {k: v.astype(dtype) for k, v in theta.items()}, forward, X, Y


@case
def mlp() -> Case:
    J, grad, theta, *_ = _mlp()
    return Case("mlp", J, grad, theta, True)


@case
def mlp_no_tanh_gradient() -> Case:
    J, grad, theta, *_ = _mlp()
    return Case("mlp-no-tanh-gradient", J, lambda p: grad(p, "no-tanh-gradient"), theta, False,
                frozenset({"localized"}), note="W1 and b1 wrong, W2 and b2 right")


@case
def mlp_float32() -> Case:
    J, grad, theta, *_ = _mlp(np.float32)
    return Case("mlp-float32", J, grad, theta, True, frozenset({"noise-floor"}))


@case
def mlp_float32_doubled() -> Case:
    J, grad, theta, *_ = _mlp(np.float32)
    return Case("mlp-float32-doubled", J, lambda p: grad(p, "doubled-W2"), theta, False,
                frozenset({"scale", "noise-floor"}))


@case
def mlp_off_by_1e4() -> Case:
    J, grad, theta, *_ = _mlp()
    return Case("mlp-off-by-1e4", J, lambda p: {k: v * 1.0001 for k, v in grad(p).items()}, theta,
                False, frozenset({"scale"}), note="every entry 1e-4 too large")


@case
def mlp_jitter_1e4() -> Case:
    J, grad, theta, *_ = _mlp()
    def bad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(14)  # the same jitter on every call (and mixed signs in every block)
        return {k: v * (1 + 1e-4 * rng.choice([-1.0, 1.0], v.shape)) for k, v in grad(p).items()}
    return Case("mlp-jitter-1e4", J, bad, theta, False,
                note="every entry off by a relative 1e-4, no pattern")


@case
def mlp_dropout_unseeded() -> Case:
    _J, grad, theta, _forward, X, Y = _mlp()

    def noisy(p: dict[str, np.ndarray]) -> float:
        H = np.tanh(X @ p["W1"] + p["b1"]) * (np.random.default_rng().random((40, 16)) < 0.9) / 0.9
        z = H @ p["W2"] + p["b2"]
        z = z - z.max(axis=1, keepdims=True)
        return -np.sum(Y * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))) / 40
    return Case("mlp-dropout-unseeded", noisy, grad, theta, False, frozenset({"nondeterministic"}),
                note="dropout with a fresh unseeded generator on every call")


@case
def relu_mlp() -> Case:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 5))
    y = rng.normal(size=30)

    def J(p: dict[str, np.ndarray]) -> float:
        H = np.maximum(X @ p["W"] + p["b"], 0)
        return 0.5 * np.mean((H @ p["v"] - y) ** 2)

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        Z = X @ p["W"] + p["b"]
        H = np.maximum(Z, 0)
        r = (H @ p["v"] - y) / 30
        D = np.outer(r, p["v"]) * (Z > 0)
        return {"W": X.T @ D, "b": D.sum(axis=0), "v": H.T @ r}

    theta = {"W": rng.normal(scale=0.5, size=(5, 6)), "b": rng.normal(scale=0.1, size=6),
             "v": rng.normal(scale=0.5, size=6)}
    return Case("relu-mlp", J, grad, theta, True, note="ReLU units at a random point")


# ---------------------------------------------------------------- kinks, scale, domains


@case
def lasso_at_zeros() -> Case:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(25, 6))
    y = rng.normal(size=25)
    lam = 0.3

    def J(w: np.ndarray) -> float:
        return 0.5 * np.mean((X @ w - y) ** 2) + lam * np.sum(np.abs(w))

    def grad(w: np.ndarray) -> np.ndarray:
        return X.T @ (X @ w - y) / 25 + lam * np.sign(w)

    w = np.array([0.4, 0.0, -0.2, 0.0, 0.1, 0.0])
    return Case("lasso-at-zeros", J, grad, w, True, frozenset({"kink"}),
                note="L1 penalty at exact zeros, as lasso solutions have; sign(0) = 0 is a subgradient")


@case
def badly_scaled() -> Case:
    s = np.logspace(-6, 4, 11)
    x = s * (1 + 0.3 * np.linspace(-1, 1, 11))
    return Case("badly-scaled", lambda x: np.sum((x / s) ** 3) + np.sum(np.log(x)),
                lambda x: 3 * x ** 2 / s ** 3 + 1 / x, x, True, frozenset({"domain"}),
                note="entries from 1e-6 to 1e4; a step of 1e-5 would leave log's domain")


@case
def log_near_zero() -> Case:
    p = np.array([3e-9, 1e-7, 2e-6, 5e-4, 0.3])
    return Case("log-near-zero", lambda p: np.sum(p * np.log(p)), lambda p: np.log(p) + 1, p, True,
                frozenset({"domain", "noise-floor"}), resolvable=False,
                note="entropy terms p log p at tiny positive p: p = 3e-9 changes J by less than J's rounding can "
                     "resolve to 1e-6")


@case
def high_curvature() -> Case:
    x = np.linspace(-0.1, 0.12, 9)
    return Case("high-curvature", lambda x: np.sum(np.sin(300 * x)), lambda x: 300 * np.cos(300 * x),
                x, True, note="sin(300 x)")


def all_cases() -> list[Case]:
    return [make(name) for name in CASES]
