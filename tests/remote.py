"""Module-level functions that worker processes can import (executor tests)."""

from __future__ import annotations

import numpy as np

WEIGHTS = np.linspace(-1.0, 1.0, 40)


def cost(x: np.ndarray) -> float:
    return float(WEIGHTS @ np.sin(x) + 0.5 * x @ x)


def gradient(x: np.ndarray) -> np.ndarray:
    return WEIGHTS * np.cos(x) + x


def wrong_gradient(x: np.ndarray) -> np.ndarray:
    g = gradient(x)
    g[7] += 1e-3
    return g
