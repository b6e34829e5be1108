"""The checkers gradwidget is measured against, each with the verdict rule it is given.

Every anchor takes a cost and a gradient on one flat float64 vector and
returns True when its rule passes the gradient:

- scipy.optimize.check_grad: forward differences with step sqrt(eps);
  pass when its ||grad - approx|| < 1e-5 * max(1, ||grad||).
- torch.autograd.gradcheck, float64, default tolerances (eps=1e-6,
  atol=1e-5, rtol=1e-3), full and fast_mode; grad is wrapped as the
  backward of a custom autograd Function.
- numdifftools.Gradient (adaptive central differences with Richardson
  extrapolation); pass when np.allclose(a, n, rtol=1e-6, atol=1e-9).
- The gradient-checking article: central, eps=1e-4, pass when
  ||a - n|| / ||a + n|| < 1e-7.
- The R article: central, eps=1e-8, pass when every element-wise relative
  error |n - a| / |n| < 1e-6.

They need ``pip install -e .[bench]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradwidget._params import flatten
from gradwidget.examples import article_gradient


class Counted:
    """A corpus case's J and grad on one flat float64 vector, as the anchors take them; J's calls counted."""

    def __init__(self, case: Any) -> None:
        self.layout, self.x0 = flatten(case.theta, case.options.get("shapes"), case.options.get("names"))
        self.case = case
        self.calls = 0

    def cost(self, x: np.ndarray) -> float:
        self.calls += 1
        value = self.case.J(self.layout.views(np.array(x, dtype=self.x0.dtype)))
        if self.case.grad is None:
            value = value[0]
        return float(np.asarray(value).reshape(()))

    def grad(self, x: np.ndarray) -> np.ndarray:
        point = self.layout.views(np.array(x, dtype=self.x0.dtype))
        g = self.case.J(point)[1] if self.case.grad is None else self.case.grad(point)
        # Unrolled as a user of these tools would: each array raveled as it came back.
        parts = [g[k] for k in self.layout.keys] if isinstance(g, dict) else g
        if self.layout.kind in ("dict", "list", "tuple"):
            return np.concatenate([np.ravel(p) for p in parts]).astype(np.float64)
        return np.ravel(parts).astype(np.float64)


Cost = Callable[[np.ndarray], float]
Gradient = Callable[[np.ndarray], np.ndarray]


def scipy_check_grad(cost: Cost, grad: Gradient, x0: np.ndarray) -> bool:
    from scipy.optimize import check_grad

    return bool(check_grad(cost, grad, x0) < 1e-5 * max(1.0, float(np.linalg.norm(grad(x0)))))


def torch_gradcheck(cost: Cost, grad: Gradient, x0: np.ndarray, fast: bool = False) -> bool:
    import torch

    class Wrapped(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(x)
            return torch.tensor(cost(x.detach().numpy()), dtype=torch.float64)

        @staticmethod
        def backward(ctx: Any, out: torch.Tensor) -> torch.Tensor:
            (x,) = ctx.saved_tensors
            return out * torch.from_numpy(np.asarray(grad(x.detach().numpy()), dtype=np.float64))

    x = torch.tensor(x0.astype(np.float64), requires_grad=True)
    return bool(torch.autograd.gradcheck(Wrapped.apply, (x,), raise_exception=False, fast_mode=fast))


def numdifftools_gradient(cost: Cost, grad: Gradient, x0: np.ndarray) -> bool:
    import numdifftools as nd

    numeric = np.atleast_1d(nd.Gradient(cost)(x0.astype(np.float64)))
    return bool(np.allclose(grad(x0), numeric, rtol=1e-6, atol=1e-9))


def article_rule(cost: Cost, grad: Gradient, x0: np.ndarray) -> bool:
    a, n = grad(x0), article_gradient(cost, x0, 1e-4)
    return bool(np.linalg.norm(a - n) / np.linalg.norm(a + n) < 1e-7)


def r_article_rule(cost: Cost, grad: Gradient, x0: np.ndarray) -> bool:
    a, n = grad(x0), article_gradient(cost, x0, 1e-8)
    with np.errstate(divide="ignore", invalid="ignore"):
        return bool(np.all(np.abs((n - a) / n) < 1e-6))


ANCHORS: dict[str, Callable[[Cost, Gradient, np.ndarray], bool]] = {
    "scipy check_grad": scipy_check_grad,
    "torch gradcheck": torch_gradcheck,
    "torch gradcheck fast": lambda cost, grad, x0: torch_gradcheck(cost, grad, x0, fast=True),
    "numdifftools": numdifftools_gradient,
    "article: 1e-4, <1e-7": article_rule,
    "R article: 1e-8, rel": r_article_rule,
}
