"""The schemes: their stencils are exact to their order."""

from __future__ import annotations

import numpy as np
import pytest

from gradwidget._differences import STENCILS, default_steps, representable_steps


@pytest.mark.parametrize("name", list(STENCILS))
def test_stencil_is_exact_for_polynomials_up_to_its_order(name: str) -> None:
    stencil = STENCILS[name]
    offsets, weights = np.array(stencil.offsets), np.array(stencil.weights)
    for degree in range(stencil.order + 1):  # d/dx x**degree at 0, with h = 1
        expected = 1.0 if degree == 1 else 0.0
        assert weights @ offsets ** degree == pytest.approx(expected, abs=1e-12)
    assert weights @ offsets ** (stencil.order + 1) != pytest.approx(0.0, abs=1e-12)


def test_steps_balance_truncation_and_rounding() -> None:
    x = np.array([0.0, 0.5, -3.0, 1e4])
    unit = np.finfo(float).eps
    assert default_steps("central", x, unit) == pytest.approx(unit ** (1 / 3) * np.array([1, 1, 3, 1e4]))
    assert default_steps("forward", x, unit)[0] == pytest.approx(unit ** 0.5)
    assert default_steps("richardson", x, unit)[0] == pytest.approx(unit ** 0.2)
    assert default_steps("central", x, np.finfo(np.float32).eps)[0] == pytest.approx(4.9e-3, rel=0.01)


def test_representable_steps_make_theta_plus_h_exact() -> None:
    x = np.array([0.1, 0.7, 123.456], dtype=np.float32)
    h = representable_steps(x, np.full(3, 4.9e-3))
    assert np.all((x + h.astype(np.float32)).astype(np.float64) - x.astype(np.float64) == h)
