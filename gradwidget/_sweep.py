"""The error against the step: central differences of a few entries over many steps.

For a right gradient the error falls like h**2 as the step shrinks
(truncation) until rounding, which grows like 1/h, takes over: a V on a
log-log plot. For a wrong gradient the curve flattens at the size of the
bug. This is the picture behind the checker's second look.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._differences import representable_steps
from ._evaluate import Evaluator, make_evaluator

if TYPE_CHECKING:
    from ._result import CheckResult

__all__ = ["Sweep", "sweep", "sweep_result"]

SWEEP_STEPS = np.logspace(-13, -1, 25)  # relative to max(|theta_i|, 1)
SWEPT_BY_DEFAULT = 4  # blocks whose worst entry is swept when none is named


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


def sweep_result(result: CheckResult, entries: Any = None) -> Sweep:
    """The sweep of ``entries`` of a result (names or positions; by default each block's worst entry)."""
    call = result.require_call()
    ev = result.evidence
    if entries is None:
        positions = np.array([p for p in result.worst_positions() if p is not None][:SWEPT_BY_DEFAULT], dtype=int)
    else:
        positions = ev.layout.positions(entries)
    evaluator = make_evaluator(call.J, ev.layout, ev.point, pair=call.grad is None, vectorized=call.options.vectorized)
    return sweep(evaluator, ev.point, ev.analytic, positions)
