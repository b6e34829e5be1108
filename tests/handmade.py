"""Hand-made evidence: what a check would have measured, written out, for the tests of verdict, diagnose, result."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwidget._evidence import Evidence
from gradwidget._noise import NoiseModel
from gradwidget._params import flatten
from gradwidget._verdict import Status

UNIT = float(np.finfo(float).eps)


def evidence(analytic: Any, numeric: Any, *, tolerance: float = 1e-8, point: Any = None, unit: float = UNIT,
             cost: float = 1.0, **fields: Any) -> Evidence:
    """Evidence for gradients given in any theta structure.

    Each entry's status follows from its gap and ``tolerance`` (UNCHECKED
    where ``numeric`` is NaN) unless ``status`` is given; theta is an
    asymmetric point of the same structure unless ``point`` is given.
    """
    layout, a = flatten(analytic)
    n = layout.flatten_like(numeric, "numeric")[0]
    a = a.astype(np.float64)
    if point is None:
        point = np.linspace(0.1, 0.9, layout.size) * np.where(np.arange(layout.size) % 2, 1.0, -1.0)
    else:
        point = flatten(point)[1]
    tolerances = np.where(np.isfinite(n), tolerance, np.nan)
    status = fields.pop("status", None)
    if status is None:
        status = np.where(np.isnan(n), Status.UNCHECKED, np.where(np.abs(a - n) <= tolerance, Status.OK,
                                                                    Status.WRONG))
    fields.setdefault("costs_at_point", (cost, cost))
    return Evidence(layout, point, "central", a, n, np.full(layout.size, 1e-5), tolerances,
                    np.asarray(status, dtype=np.int8), NoiseModel(unit, cost), **fields)
