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
    return Case("linreg-row-gradient", J, lambda b: grad(b)[None, :], beta, True, frozenset({"broadcast"}),
                note="grad returns a 1x2 row, as the R article's matrix product does: right, with a warning")


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
    return Case("logistic-float32", J, grad, theta, True,
                note="float32 code that follows its dtype: checked in float64 (precision='auto')")


@case
def logistic_float32_overflow() -> Case:
    rng = np.random.default_rng(21)
    X = rng.normal(size=(30, 4)).astype(np.float32)
    X[0] *= 1000  # one far-away example: |x.w| well above 88.7, where exp overflows in float32
    y = np.where(rng.random(30) < 0.5, -1.0, 1.0).astype(np.float32)
    w = rng.normal(size=4).astype(np.float32)
    y[0] = -np.sign(X[0] @ w)  # and misclassified: exp(-y x.w) is exp(+100)

    def J(v: np.ndarray) -> Any:
        return np.mean(np.logaddexp(0, -y * (X @ v)))

    def grad(v: np.ndarray) -> Any:
        with np.errstate(over="ignore", invalid="ignore"):  # the tests turn warnings into errors
            e = np.exp(-y * (X @ v))  # inf in float32 beyond 88.7; fine in float64
            return X.T @ (-y * e / (1 + e)) / 30

    return Case("logistic-float32-overflow", J, grad, w, False, frozenset({"precision-loss"}),
                note="exp(-y x.w) / (1 + exp(...)) overflows to inf / inf in float32 only")


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
    return _network_bug("regularized-bias", "missing-term")


REGULARIZED_BIAS_SAYS = "on the entries found wrong (column 0, the bias column?): a penalty (regularization)"
"""What the diagnosis of the article network's regularized bias column says (in checks, feedback and notebooks)."""


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
        elif bug == "b1-not-summed":
            g["b1"] = D
        elif bug == "W1-with-bias-row":  # an Octave habit: the bias unit's row kept in W1's gradient
            g["W1"] = np.hstack([np.ones((m, 1), dtype=X.dtype), X]).T @ D
        elif bug == "b2-keepdims":
            g["b2"] = G.sum(axis=0, keepdims=True)
        return g

    theta = {"W1": rng.normal(scale=0.3, size=(8, 16)), "b1": rng.normal(scale=0.1, size=16),
             "W2": rng.normal(scale=0.3, size=(16, 3)), "b2": rng.normal(scale=0.1, size=3)}
    return J, grad, {k: v.astype(dtype) for k, v in theta.items()}, forward, X, Y


@case
def mlp() -> Case:
    J, grad, theta, *_ = _mlp()
    return Case("mlp", J, grad, theta, True)


@case
def mlp_b1_not_summed() -> Case:
    J, grad, theta, *_ = _mlp()
    return Case("mlp-b1-not-summed", J, lambda p: grad(p, "b1-not-summed"), theta, False, frozenset({"broadcast"}),
                note="db1 of shape (40, 16): the batch axis not summed")


@case
def mlp_W1_with_bias_row() -> Case:
    J, grad, theta, *_ = _mlp()
    return Case("mlp-W1-with-bias-row", J, lambda p: grad(p, "W1-with-bias-row"), theta, False, frozenset({"shape"}),
                note="dW1 of shape (9, 16) for W1 (8, 16): a wrong gradient, not an error")


@case
def mlp_b2_keepdims() -> Case:
    J, grad, theta, *_ = _mlp()
    return Case("mlp-b2-keepdims", J, lambda p: grad(p, "b2-keepdims"), theta, True, frozenset({"broadcast"}),
                note="db2 of shape (1, 3) for b2 (3,): right values, reported as a warning")


@case
def mlp_no_tanh_gradient() -> Case:
    J, grad, theta, *_ = _mlp()
    return Case("mlp-no-tanh-gradient", J, lambda p: grad(p, "no-tanh-gradient"), theta, False,
                frozenset({"localized"}), note="W1 and b1 wrong, W2 and b2 right")


@case
def mlp_float32() -> Case:
    J, grad, theta, *_ = _mlp(np.float32)
    return Case("mlp-float32", J, grad, theta, True,
                note="float32 numpy code that follows its dtype: checked in float64, the float32 gradient compared")


@case
def mlp_float32_doubled() -> Case:
    J, grad, theta, *_ = _mlp(np.float32)
    return Case("mlp-float32-doubled", J, lambda p: grad(p, "doubled-W2"), theta, False, frozenset({"scale"}))


def casting(J: Callable[[Any], Any], grad: Callable[..., Any], theta: Any) -> tuple[Any, ...]:
    """A float32 model written to compute in float32 whatever theta's dtype: it casts its parameters itself."""

    def cast(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, np.float32) for k, v in p.items()}

    return (lambda p: J(cast(p))), (lambda p, bug=None: grad(cast(p), bug)), theta


def _casting_mlp(seed: int = 3, m: int = 40) -> tuple[Any, ...]:
    """The MLP written to compute in float32 whatever theta's dtype."""
    J, grad, theta, *_ = _mlp(np.float32, seed, m)
    return casting(J, grad, theta)


@case
def mlp_float32_casts() -> Case:
    J, grad, theta = _casting_mlp()
    return Case("mlp-float32-casts", J, grad, theta, True, frozenset({"noise-floor"}),
                note="float32 code that casts its parameters to float32 itself: checked in float32")


@case
def mlp_float32_casts_doubled() -> Case:
    J, grad, theta = _casting_mlp()
    return Case("mlp-float32-casts-doubled", J, lambda p: grad(p, "doubled-W2"), theta, False,
                frozenset({"scale", "noise-floor"}), note="W2's gradient doubled, in code that casts to float32")


@case
def mlp_float32_cost() -> Case:
    _J, grad, theta, _forward, X, Y = _mlp()
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)

    def J(p: dict[str, np.ndarray]) -> float:
        H = np.tanh(X32 @ p["W1"].astype(np.float32) + p["b1"].astype(np.float32))
        z = H @ p["W2"].astype(np.float32) + p["b2"].astype(np.float32)
        z = z - z.max(axis=1, keepdims=True)
        loss = -np.sum(Y32 * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))) / 40
        return float(loss) + 1e-3 * float(np.sum(p["W1"] ** 2))  # a float64 penalty: the sum is no float32 number

    def penalized(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        g = grad(p)
        g["W1"] = g["W1"] + 2e-3 * p["W1"]
        return g

    return Case("mlp-float32-cost", J, penalized, theta, True, frozenset({"noise-floor"}),
                note="J computes in float32 and returns a Python float (theta float64): judged to float32's claim")


@case
def mlp_reads_global_W2() -> Case:
    _J, _grad, theta, forward, X, Y = _mlp()
    W2 = theta["W2"].copy()  # the notebook's global from an earlier cell

    def J(p: dict[str, np.ndarray]) -> float:
        return -np.sum(Y * np.log(forward(p)[1])) / 40

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        H, P = forward(p)
        G = (P - Y) / 40
        D = (G @ W2.T) * (1 - H ** 2)
        return {"W1": X.T @ D, "b1": D.sum(axis=0), "W2": H.T @ G, "b2": G.sum(axis=0)}

    return Case("mlp-reads-global-W2", J, grad, theta, False, frozenset({"ignores-input"}),
                note="the backward pass uses the global W2 for W1's and b1's gradients: right at theta only")


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



# ---------------------------------------------------------------- right and buggy twins


def twins(name: str, build: Callable[[], tuple[Any, ...]], note: str, bug: str, codes: set[str], bug_note: str,
          both: set[str] | None = None, buggy_name: str | None = None) -> None:
    """Register a case whose gradient is right and its twin with ``grad(theta, bug)``.

    ``build`` returns ``(J, grad, theta)``, where ``grad`` takes the bug's
    name as its second argument; ``codes`` are the buggy twin's diagnoses,
    ``both`` codes both cases get (a float32 model's noise floor).
    """
    both = both or set()
    buggy_name = buggy_name or f"{name}-{bug}"

    def right() -> Case:
        J, grad, theta = build()
        return Case(name, J, grad, theta, True, frozenset(both), note=note)

    def buggy() -> Case:
        J, grad, theta = build()
        return Case(buggy_name, J, lambda p: grad(p, bug), theta, False, frozenset(codes | both), note=bug_note)

    CASES[name], CASES[buggy_name] = right, buggy


# ---------------------------------------------------------------- normalization layers


def _normalized(axis: int, seed: int = 6, m: int = 12, d: int = 5) -> tuple[Any, ...]:
    """``tanh(gamma * normalize(X W) + beta)`` against targets; batch norm (axis 0) or layer norm (axis 1)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 4))
    T = rng.normal(size=(m, d))

    def forward(p: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        Z = X @ p["W"]
        std = np.sqrt(Z.var(axis=axis, keepdims=True) + 1e-5)
        Zhat = (Z - Z.mean(axis=axis, keepdims=True)) / std
        return Zhat, std, np.tanh(p["gamma"] * Zhat + p["beta"])

    def J(p: dict[str, np.ndarray]) -> float:
        return float(np.sum(T * forward(p)[2])) / m

    def grad(p: dict[str, np.ndarray], bug: str | None = None) -> dict[str, np.ndarray]:
        Zhat, std, H = forward(p)
        dout = T * (1 - H ** 2) / m
        dZhat = dout * p["gamma"]
        spread = Zhat * np.mean(dZhat * Zhat, axis=axis, keepdims=True)
        if bug == "statistics-constant":
            dZ = dZhat / std
        elif bug == "no-mean-term":
            dZ = (dZhat - spread) / std
        else:
            dZ = (dZhat - dZhat.mean(axis=axis, keepdims=True) - spread) / std
        return {"W": X.T @ dZ, "gamma": np.sum(dout * Zhat, axis=0), "beta": dout.sum(axis=0)}

    theta = {"W": rng.normal(scale=0.5, size=(4, d)), "gamma": 1 + 0.1 * rng.normal(size=d),
             "beta": 0.1 * rng.normal(size=d)}
    return J, grad, theta


twins("batch-norm", lambda: _normalized(axis=0), "batch normalization before a tanh",
      "statistics-constant", {"localized"}, "backward treats the batch mean and variance as constants")
twins("layer-norm", lambda: _normalized(axis=1), "layer normalization before a tanh",
      "no-mean-term", {"localized"}, "backward drops the term that goes through the mean")


# ---------------------------------------------------------------- convolution and pooling


def _convolution(seed: int = 7) -> tuple[Any, ...]:
    """A 3x3 kernel slid over three 8x8 images (cross-correlation), a bias, a tanh."""
    rng = np.random.default_rng(seed)
    windows = np.lib.stride_tricks.sliding_window_view(rng.normal(size=(3, 8, 8)), (3, 3), axis=(1, 2))
    T = rng.normal(size=(3, 6, 6))

    def forward(p: dict[str, np.ndarray]) -> np.ndarray:
        return np.tanh(np.einsum("nijkl,kl->nij", windows, p["K"]) + p["b"])

    def J(p: dict[str, np.ndarray]) -> float:
        return float(np.sum(T * forward(p))) / 3

    def grad(p: dict[str, np.ndarray], bug: str | None = None) -> dict[str, np.ndarray]:
        D = T * (1 - forward(p) ** 2) / 3
        dK = np.einsum("nijkl,nij->kl", windows, D)
        return {"K": dK[::-1, ::-1] if bug == "flipped-kernel" else dK, "b": np.array([D.sum()])}

    theta = {"K": rng.normal(scale=0.3, size=(3, 3)), "b": np.array([0.1])}
    return J, grad, theta


twins("convolution", _convolution, "3x3 kernel over 8x8 images",
      "flipped-kernel", {"permutation"}, "backward convolves where forward correlates: dK flipped")


def _max_pooling(seed: int = 8) -> tuple[Any, ...]:
    """2x2 max pooling of a 6x6 feature map (the parameter), squared against weights."""
    rng = np.random.default_rng(seed)
    T = rng.normal(size=(3, 3))

    def windows(A: np.ndarray) -> np.ndarray:
        return A.reshape(3, 2, 3, 2).transpose(0, 2, 1, 3).reshape(3, 3, 4)

    def J(A: np.ndarray) -> float:
        return float(np.sum(T * windows(A).max(axis=2) ** 2)) / 2

    def grad(A: np.ndarray, bug: str | None = None) -> np.ndarray:
        w = windows(A)
        top = np.zeros_like(w)
        where = np.zeros((3, 3), dtype=int) if bug == "top-left" else w.argmax(axis=2)
        np.put_along_axis(top, where[..., None], (T * w.max(axis=2))[..., None], axis=2)
        return top.reshape(3, 3, 2, 2).transpose(0, 2, 1, 3).reshape(6, 6)

    return J, grad, rng.normal(size=(6, 6))


twins("max-pooling", _max_pooling, "the gradient goes to each window's maximum",
      "top-left", {"permutation"}, "backward sends each window's gradient to its first entry, not to its maximum")


def _max_pooling_ties(seed: int = 8) -> tuple[Any, ...]:
    """Max pooling where two windows hold tied maxima (as ReLU outputs or duplicated pixels give)."""
    J, first_maximum, A = _max_pooling(seed)
    A[0, 0] = A[0, 1] = A[0:2, 0:2].max() + 0.5
    A[2, 2] = A[3, 3] = A[2:4, 2:4].max() + 0.3

    def grad(B: np.ndarray, bug: str | None = None) -> np.ndarray:
        if bug != "every-tied-maximum":
            return first_maximum(B)
        w = B.reshape(3, 2, 3, 2).transpose(0, 2, 1, 3).reshape(3, 3, 4)
        upstream = first_maximum(B).reshape(3, 2, 3, 2).transpose(0, 2, 1, 3).reshape(3, 3, 4).sum(axis=2)
        top = (w == w.max(axis=2, keepdims=True)) * upstream[..., None]
        return top.reshape(3, 3, 2, 2).transpose(0, 2, 1, 3).reshape(6, 6)

    return J, grad, A


twins("max-pooling-ties", _max_pooling_ties, "tied maxima: the gradient goes to the first of them (a subgradient)",
      "every-tied-maximum", {"not-subgradient"}, "backward gives each window's whole gradient to every tied maximum",
      both={"kink"})


# ---------------------------------------------------------------- recurrent cells


def _lstm(seed: int = 9, steps: int = 3, D: int = 3, H: int = 4) -> tuple[Any, ...]:
    """An LSTM unrolled over three steps; the last hidden state against a target."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, D))
    target = rng.normal(size=H)

    def forward(p: dict[str, np.ndarray]) -> tuple[np.ndarray, list[tuple[np.ndarray, ...]]]:
        h, c, cache = np.zeros(H), np.zeros(H), []
        for x in xs:
            v = np.concatenate([x, h])
            a = p["W"] @ v + p["b"]
            i, f, o, g = sigmoid(a[:H]), sigmoid(a[H:2 * H]), sigmoid(a[2 * H:3 * H]), np.tanh(a[3 * H:])
            cache.append((v, c, i, f, o, g))
            c = f * c + i * g
            h = o * np.tanh(c)
        return h, cache

    def J(p: dict[str, np.ndarray]) -> float:
        return 0.5 * float(np.sum((forward(p)[0] - target) ** 2))

    def grad(p: dict[str, np.ndarray], bug: str | None = None) -> dict[str, np.ndarray]:
        h, cache = forward(p)
        dh, dc = h - target, np.zeros(H)
        dW, db = np.zeros_like(p["W"]), np.zeros_like(p["b"])
        for v, c_prev, i, f, o, g in reversed(cache):
            tc = np.tanh(f * c_prev + i * g)
            dc = dc + dh * o * (1 - tc ** 2)
            da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dh * tc * o * (1 - o),
                                 dc * i * (1 - g ** 2)])
            dW += np.outer(da, v)
            db += da
            dh = (p["W"].T @ da)[D:]
            dc = np.zeros(H) if bug == "cell-gradient-dropped" else dc * f
        return {"W": dW, "b": db}

    theta = {"W": rng.normal(scale=0.4, size=(4 * H, D + H)), "b": rng.normal(scale=0.1, size=4 * H)}
    return J, grad, theta


twins("lstm", _lstm, "backpropagation through three LSTM steps",
      "cell-gradient-dropped", {"localized"}, "the cell state's gradient is not carried to the previous step")


def _gru(seed: int = 10, D: int = 3, H: int = 4) -> tuple[Any, ...]:
    """One GRU step from a given hidden state; the new state against a target."""
    rng = np.random.default_rng(seed)
    x, h0, target = rng.normal(size=D), rng.normal(size=H), rng.normal(size=H)

    def forward(p: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        v = np.concatenate([x, h0])
        z, r = sigmoid(p["Wz"] @ v), sigmoid(p["Wr"] @ v)
        u = np.concatenate([x, r * h0])
        n = np.tanh(p["Wn"] @ u)
        return v, z, r, u, n, (1 - z) * n + z * h0

    def J(p: dict[str, np.ndarray]) -> float:
        return 0.5 * float(np.sum((forward(p)[-1] - target) ** 2))

    def grad(p: dict[str, np.ndarray], bug: str | None = None) -> dict[str, np.ndarray]:
        v, z, r, u, n, h = forward(p)
        dh = h - target
        dz = dh * (n - h0) if bug == "gate-sign" else dh * (h0 - n)
        dan = dh * (1 - z) * (1 - n ** 2)
        dr = (p["Wn"].T @ dan)[D:] * h0
        return {"Wz": np.outer(dz * z * (1 - z), v), "Wr": np.outer(dr * r * (1 - r), v), "Wn": np.outer(dan, u)}

    theta = {k: rng.normal(scale=0.5, size=(H, D + H)) for k in ("Wz", "Wr", "Wn")}
    return J, grad, theta


twins("gru", _gru, "one GRU step",
      "gate-sign", {"sign"}, "the update gate's gradient uses n - h where h = (1 - z) n + z h0 needs h0 - n")


# ---------------------------------------------------------------- attention and embeddings


def _attention(dtype: Any = np.float64, seed: int = 11, m: int = 5, d: int = 4) -> tuple[Any, ...]:
    """Single-head self-attention, ``softmax(Q K^T / sqrt(d)) V``, through a tanh."""
    rng = np.random.default_rng(seed)
    X, T = rng.normal(size=(m, d)).astype(dtype), rng.normal(size=(m, d)).astype(dtype)
    root = np.sqrt(d).astype(dtype)

    def forward(p: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        Q, K, V = X @ p["Wq"], X @ p["Wk"], X @ p["Wv"]
        S = Q @ K.T / root
        A = np.exp(S - S.max(axis=1, keepdims=True))
        A /= A.sum(axis=1, keepdims=True)
        return Q, K, V, A, np.tanh(A @ V)

    def J(p: dict[str, np.ndarray]) -> Any:
        return np.sum(T * forward(p)[-1])

    def grad(p: dict[str, np.ndarray], bug: str | None = None) -> dict[str, np.ndarray]:
        Q, K, V, A, out = forward(p)
        dO = T * (1 - out ** 2)
        dA = dO @ V.T
        dS = A * (dA - np.sum(dA * A, axis=1, keepdims=True))
        if bug != "unscaled-scores":
            dS = dS / root
        return {"Wq": X.T @ (dS @ K), "Wk": X.T @ (dS.T @ Q), "Wv": X.T @ (A.T @ dO)}

    theta = {k: rng.normal(scale=0.5, size=(d, d)).astype(dtype) for k in ("Wq", "Wk", "Wv")}
    return J, grad, theta


twins("attention", _attention, "single-head self-attention",
      "unscaled-scores", {"scale"}, "backward forgets the 1/sqrt(d) of the scores: Wq and Wk 2x")
twins("attention-float32", lambda: _attention(np.float32), "the same attention computed in float32",
      "unscaled-scores", {"scale"}, "the float32 attention with the 1/sqrt(d) forgotten")
twins("attention-float32-casts", lambda: casting(*_attention(np.float32)),
      "the float32 attention written to cast its parameters to float32 itself: checked in float32",
      "unscaled-scores", {"scale"}, "the casting float32 attention with the 1/sqrt(d) forgotten",
      both={"noise-floor"})


def _embedding(seed: int = 12, V: int = 10, d: int = 3) -> tuple[Any, ...]:
    """An embedding table looked up with repeated ids, then a linear read-out."""
    rng = np.random.default_rng(seed)
    ids = np.array([1, 4, 4, 7, 1, 2, 4, 9])
    y = rng.normal(size=ids.size)

    def J(p: dict[str, np.ndarray]) -> float:
        return 0.5 * float(np.mean((np.tanh(p["E"][ids]) @ p["w"] - y) ** 2))

    def grad(p: dict[str, np.ndarray], bug: str | None = None) -> dict[str, np.ndarray]:
        H = np.tanh(p["E"][ids])
        r = (H @ p["w"] - y) / ids.size
        dH = np.outer(r, p["w"]) * (1 - H ** 2)
        dE = np.zeros_like(p["E"])
        if bug == "overwrites-repeats":
            dE[ids] += dH  # buffered: a repeated id keeps only its last row
        else:
            np.add.at(dE, ids, dH)
        return {"E": dE, "w": H.T @ r}

    return J, grad, {"E": rng.normal(scale=0.5, size=(V, d)), "w": rng.normal(size=d)}


twins("embedding", _embedding, "ids 1 and 4 repeat; rows never looked up stay 0",
      "overwrites-repeats", {"localized"}, "dE[ids] += dH does not add repeated ids: np.add.at does")


# ---------------------------------------------------------------- statistical models


def _poisson(seed: int = 13, m: int = 60) -> tuple[Any, ...]:
    """Poisson regression with the log link: the negative log-likelihood (without log y!)."""
    rng = np.random.default_rng(seed)
    X = np.hstack([np.ones((m, 1)), rng.normal(scale=0.5, size=(m, 3))])
    y = rng.poisson(np.exp(X @ np.array([0.5, 0.3, -0.2, 0.1]))).astype(float)

    def J(b: np.ndarray) -> float:
        return float(np.mean(np.exp(X @ b) - y * (X @ b)))

    def grad(b: np.ndarray, bug: str | None = None) -> np.ndarray:
        mean = X @ b if bug == "gaussian-formula" else np.exp(X @ b)
        return X.T @ (mean - y) / m

    return J, grad, rng.normal(scale=0.1, size=4)


twins("poisson-glm", _poisson, "log link, counts as data",
      "gaussian-formula", set(), "X^T (X b - y) / m, least squares' gradient, where exp(X b) was needed")


def _mixture(seed: int = 14, m: int = 80, k: int = 3) -> tuple[Any, ...]:
    """The negative log-likelihood of a 1-D Gaussian mixture in (logits, means, log sigmas)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(-2, 0.5, m // 2), rng.normal(1, 1.0, m - m // 2)])[:, None]

    def parts(p: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        s = np.exp(p["log_sigma"])
        u = (x - p["mu"]) / s
        logp = p["logits"] - np.log(np.sum(np.exp(p["logits"])))
        joint = logp - 0.5 * u ** 2 - p["log_sigma"] - 0.5 * np.log(2 * np.pi)
        top = joint.max(axis=1, keepdims=True)
        total = top + np.log(np.sum(np.exp(joint - top), axis=1, keepdims=True))
        return u, s, np.exp(logp), np.exp(joint - total), total

    def J(p: dict[str, np.ndarray]) -> float:
        return -float(np.mean(parts(p)[-1]))

    def grad(p: dict[str, np.ndarray], bug: str | None = None) -> dict[str, np.ndarray]:
        u, s, pi, R, _ = parts(p)
        spread = u ** 2 if bug == "sigma-without-minus-one" else u ** 2 - 1
        return {"logits": -np.mean(R - pi, axis=0), "mu": -np.mean(R * u / s, axis=0),
                "log_sigma": -np.mean(R * spread, axis=0)}

    theta = {"logits": rng.normal(scale=0.3, size=k), "mu": rng.normal(size=k),
             "log_sigma": rng.normal(scale=0.2, size=k)}
    return J, grad, theta


twins("gaussian-mixture", _mixture, "three components, log-sum-exp",
      "sigma-without-minus-one", {"localized"}, "d/d log sigma of -log sigma forgotten")


# ---------------------------------------------------------------- physics


def _lennard_jones(seed: int = 15) -> tuple[Any, ...]:
    """The Lennard-Jones energy of eight atoms near a cube of side 1.1."""
    rng = np.random.default_rng(seed)
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float)
    upper = np.triu_indices(8, 1)

    def pairs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        diff = x[:, None, :] - x[None, :, :]
        return diff, np.sqrt(np.sum(diff ** 2, axis=2) + np.eye(8))

    def J(x: np.ndarray) -> float:
        r = pairs(x)[1][upper]
        return float(np.sum(4 * (r ** -12 - r ** -6)))

    def grad(x: np.ndarray, bug: str | None = None) -> np.ndarray:
        diff, r = pairs(x)
        slope = 4 * (-12 * r ** -13 + 6 * r ** -7) * (1 - np.eye(8))
        g = np.sum((slope / r)[:, :, None] * diff, axis=1)
        return -g if bug == "forces" else g

    return J, grad, 1.1 * corners + rng.normal(scale=0.05, size=(8, 3))


twins("lennard-jones", _lennard_jones, "eight atoms, all pairs",
      "forces", {"sign"}, "grad returns the forces, -dE/dx")


def _springs(seed: int = 16) -> tuple[Any, ...]:
    """A chain of ten unit springs of rest length 1 in the plane."""
    rng = np.random.default_rng(seed)

    def J(x: np.ndarray) -> float:
        stretch = np.linalg.norm(np.diff(x, axis=0), axis=1) - 1
        return 0.5 * float(np.sum(stretch ** 2))

    def grad(x: np.ndarray, bug: str | None = None) -> np.ndarray:
        d = np.diff(x, axis=0)
        length = np.linalg.norm(d, axis=1, keepdims=True)
        pull = (length - 1) * d / length * (2 if bug == "no-half" else 1)
        g = np.zeros_like(x)
        g[1:] += pull
        g[:-1] -= pull
        return g

    x = np.column_stack([np.arange(11) * 1.1, np.zeros(11)]) + rng.normal(scale=0.1, size=(11, 2))
    return J, grad, x


twins("spring-chain", _springs, "eleven masses, ten springs",
      "no-half", {"scale"}, "the gradient of (1/2) k s^2 written as 2 k s")


# ---------------------------------------------------------------- mixed scales


def _decay(seed: int = 17) -> tuple[Any, ...]:
    """Two exponential decays and an offset fitted to data over 5e5 seconds: rates near 1e-6, amplitudes
    near 1e4, an offset near 1 in one theta."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 5e5, 40)

    def model(p: dict[str, np.ndarray]) -> np.ndarray:
        return p["amplitude"] @ np.exp(-np.outer(p["rate"], t)) + p["offset"]

    data = model({"rate": np.array([2e-6, 9e-6]), "amplitude": np.array([3e4, 1e4]),
                  "offset": np.array([1.5])}) + rng.normal(scale=50, size=t.size)

    def J(p: dict[str, np.ndarray]) -> float:
        return 0.5 * float(np.mean((model(p) - data) ** 2))

    def grad(p: dict[str, np.ndarray], bug: str | None = None) -> dict[str, np.ndarray]:
        r = (model(p) - data) / t.size
        decay = np.exp(-np.outer(p["rate"], t))
        d_rate = (decay * t) @ r * p["amplitude"]
        return {"rate": d_rate if bug == "rate-sign" else -d_rate, "amplitude": decay @ r,
                "offset": np.array([r.sum()])}

    theta = {"rate": np.array([2.4e-6, 7e-6]), "amplitude": np.array([2.7e4, 1.2e4]), "offset": np.array([1.2])}
    return J, grad, theta


twins("decay-mixed-scales", _decay, "parameters from 1e-6 to 3e4 in one theta",
      "rate-sign", {"sign"}, "d/dk exp(-k t) written as t exp(-k t): the rates' gradient has the wrong sign",
      buggy_name="decay-rate-sign")


def all_cases() -> list[Case]:
    return [make(name) for name in CASES]
