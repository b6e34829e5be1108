"""The error against the step: central differences of a few entries over many steps.

For a right gradient the error falls like h**2 as the step shrinks
(truncation) until rounding, which grows like 1/h, takes over: a V on a
log-log plot. For a wrong gradient the curve flattens at the size of the
bug. This is the picture behind the checker's second look.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .differences import representable_steps
from .evaluate import Evaluator

__all__ = ["Sweep", "sweep"]

SWEEP_STEPS = np.logspace(-13, -1, 25)  # relative to max(|theta_i|, 1)


@dataclass(frozen=True)
class Sweep:
    """Central differences of ``positions`` at each of ``steps`` (rows: steps)."""

    positions: np.ndarray
    steps: np.ndarray  # (len(SWEEP_STEPS), len(positions))
    numeric: np.ndarray  # same shape as steps
    analytic: np.ndarray  # per position

    @property
    def error(self) -> np.ndarray:
        """|numeric - analytic| / max(|analytic|, tiny), per step and position."""
        scale = np.maximum(np.abs(self.analytic), np.finfo(float).tiny)
        return np.abs(self.numeric - self.analytic) / scale


def sweep(evaluator: Evaluator, point: np.ndarray, analytic: np.ndarray, positions: np.ndarray,
          relative_steps: np.ndarray = SWEEP_STEPS) -> Sweep:
    """Measure the central difference of each entry in ``positions`` over a range of steps."""
    positions = np.asarray(positions, dtype=int)
    scale = np.maximum(np.abs(point[positions].astype(np.float64)), 1.0)
    steps = relative_steps[:, None] * scale[None, :]
    steps = np.stack([representable_steps(point[positions], row) for row in steps])
    plus = np.full(steps.shape, np.nan)
    minus = np.full(steps.shape, np.nan)
    repeated = np.tile(positions, len(relative_steps))
    evaluator.along(repeated, steps.ravel(), plus.reshape(-1))
    evaluator.along(repeated, -steps.ravel(), minus.reshape(-1))
    return Sweep(positions, steps, (plus - minus) / (2 * steps), analytic[positions])
