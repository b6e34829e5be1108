"""The schemes: their stencils are exact to their order."""

from __future__ import annotations

import numpy as np
import pytest

from gradwidget._differences import (
    STENCILS,
    PartialDifferences,
    default_steps,
    differences,
    point_scales,
    representable_steps,
    smaller_steps,
)
from gradwidget._evaluate import Evaluator
from gradwidget._params import flatten


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
    scale = point_scales(x, [slice(0, 4)])
    unit = np.finfo(float).eps
    assert default_steps("central", scale, unit) == pytest.approx(unit ** (1 / 3) * np.array([1, 1, 3, 1e4]))
    assert default_steps("forward", scale, unit)[0] == pytest.approx(unit ** 0.5)
    assert default_steps("richardson", scale, unit)[0] == pytest.approx(unit ** 0.2)
    assert default_steps("central", scale, np.finfo(np.float32).eps)[0] == pytest.approx(4.9e-3, rel=0.01)


def test_a_block_far_below_one_gets_steps_of_its_own_scale() -> None:
    x = np.array([1.3e-6, -0.7e-6, 2.1e-6, 1.2e4, -0.8e4])
    scale = point_scales(x, [slice(0, 3), slice(3, 5)])
    rms = np.sqrt(np.mean(x[:3] ** 2))
    assert scale[:3] == pytest.approx(np.maximum(np.abs(x[:3]), 10 * rms))
    assert scale[3:] == pytest.approx(np.abs(x[3:]))
    assert np.all(default_steps("central", scale, np.finfo(float).eps)[:3] < 1e-9)  # far below each entry


def test_representable_steps_make_theta_plus_h_exact() -> None:
    x = np.array([0.1, 0.7, 123.456], dtype=np.float32)
    h = representable_steps(x, np.full(3, 4.9e-3))
    assert np.all((x + h.astype(np.float32)).astype(np.float64) - x.astype(np.float64) == h)


@pytest.mark.parametrize("method", ["central", "forward", "richardson", "complex"])
def test_differences_estimate_the_derivative_along_each_entry(method: str) -> None:
    x = np.array([0.3, -1.2, 2.0])
    dtype = np.complex128 if method == "complex" else None
    layout, flat = flatten(x)
    evaluator = Evaluator(lambda v: np.sum(np.sin(v)), layout, flat, dtype=dtype)
    steps = np.full(3, 1e-20 if method == "complex" else 1e-5)
    estimates, values = differences(evaluator, method, np.arange(3), steps, float(np.sum(np.sin(x))))
    assert estimates == pytest.approx(np.cos(x), rel=1e-4 if method == "forward" else 1e-8)
    width = 1 if method == "complex" else len(STENCILS[method].offsets)
    assert values.shape == (3, width)


def test_an_interrupt_keeps_the_entries_whose_calls_all_returned() -> None:
    layout, flat = flatten(np.linspace(0, 1, 10))
    calls = {"n": 0}

    def J(v: np.ndarray) -> float:
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return float(np.sum(v ** 2))

    with pytest.raises(PartialDifferences) as info:
        differences(Evaluator(J, layout, flat), "central", np.arange(10), np.full(10, 1e-4), float(np.sum(flat ** 2)))
    assert info.value.count == 3  # seven calls returned: three whole entries
    assert info.value.estimates == pytest.approx(2 * flat[:3])


def test_smaller_steps_go_relative_then_shrink() -> None:
    x = np.array([1e-9, 0.5, 3.0])
    got = smaller_steps(x, np.full(3, 1e-4))
    assert got[0] == pytest.approx(1e-13, rel=1e-3)  # relative to |x|: stays inside x > 0
    assert got[1] == pytest.approx(1e-4 / 16) and got[2] == pytest.approx(1e-4 / 16, rel=1e-6)
