"""The evaluator: scalar costs, no copies per call, and mutation."""

from __future__ import annotations

import numpy as np
import pytest

from gradwidget._evaluate import Evaluator, scalar_cost
from gradwidget._params import flatten


@pytest.mark.parametrize("value", [1.5, np.float32(1.5), np.array(1.5), np.array([1.5]), np.array([[1.5]]), 3])
def test_scalar_costs(value: object) -> None:
    assert scalar_cost(value) == pytest.approx(float(np.asarray(value).ravel()[0]))


def test_complex_cost_only_when_allowed() -> None:
    assert scalar_cost(np.complex128(1 + 2j), allow_complex=True) == 1 + 2j
    with pytest.raises(TypeError, match="J returned a complex cost"):
        scalar_cost(1 + 2j)


def test_along_moves_one_entry_and_restores_it() -> None:
    layout, flat = flatten({"a": np.array([1.0, 2.0]), "b": np.array([3.0])})
    seen = []

    def J(p: dict) -> float:
        seen.append(np.concatenate([p["a"], p["b"]]).copy())
        return float(p["a"].sum() + 10 * p["b"].sum())

    ev = Evaluator(J, layout, flat)
    out = ev.along(np.array([0, 2, 2]), np.array([0.5, 1.0, -1.0]), np.empty(3))
    assert out.tolist() == [33.5, 43.0, 23.0]
    assert [s.tolist() for s in seen] == [[1.5, 2, 3], [1, 2, 4], [1, 2, 2]]
    assert ev.calls == 3 and ev.drifted().size == 0


def test_fresh_copies_after_mutation() -> None:
    layout, flat = flatten(np.array([1.0, 2.0]))
    ev = Evaluator(lambda x: float(x.sum()), layout, flat)
    ev.fresh_copies = True
    ids = set()
    ev.J = lambda x: ids.add(id(x)) or 0.0
    ev.along(np.array([0, 1]), np.array([0.1, 0.1]), np.empty(2))
    assert len(ids) == 2  # a new array for every call
