"""The noise model: each rounding, truncation, floor and precision estimate, and the noise measurement."""

from __future__ import annotations

import numpy as np
import pytest

import gradwidget as gw
from gradwidget._differences import STENCILS
from gradwidget._evaluate import Evaluator
from gradwidget._noise import (
    MEASURED_TRUST,
    NOISE_MARGIN,
    TRUNCATION_MARGIN,
    NoiseModel,
    measure_noise,
    returned_precision,
)
from gradwidget._params import flatten

U = float(np.finfo(float).eps)
CENTRAL = STENCILS["central"]


def test_rounding_is_the_noise_of_J_over_the_step_with_its_margin() -> None:
    model = NoiseModel(U, cost=2.0)
    values = np.array([[1.0, 3.0], [4.0, -1.0]])
    got = model.rounding(values, np.array([1e-5, 1e-3]), CENTRAL)
    expected = NOISE_MARGIN * U * np.array([3.0, 4.0]) * CENTRAL.noise_gain / np.array([1e-5, 1e-3])
    assert got == pytest.approx(expected)


def test_rounding_uses_measured_noise_when_it_is_larger_and_ignores_nan() -> None:
    model = NoiseModel(U, cost=1.0, measured=1e-9)
    got = model.rounding(np.array([[1.0, np.nan]]), 1e-4, CENTRAL)
    assert got == pytest.approx(NOISE_MARGIN * 1e-9 * CENTRAL.noise_gain / 1e-4)


def test_complex_step_has_no_rounding() -> None:
    assert NoiseModel(U, 1.0).rounding(np.ones((3, 1)), 1e-20, None).tolist() == [0.0, 0.0, 0.0]


def test_floor_is_relative_sqrt_u_of_the_smaller_plus_ulps_of_the_scale() -> None:
    model = NoiseModel(U, 1.0)
    got = model.floor(np.array([2.0, 0.0, 1e200]), np.array([1.0, -3.0, 0.5]), np.array([10.0, 0.0, 0.0]))
    assert got == pytest.approx([np.sqrt(U) * 1 + NOISE_MARGIN * U * 10, 0.0, np.sqrt(U) * 0.5])


def test_a_measured_noise_replaces_the_modelled_rounding_down_to_a_quarter_of_it() -> None:
    values = np.array([[1.0, 1.0]])
    modelled = NoiseModel(U, 1.0).rounding(values, 1e-5, CENTRAL)
    assert NoiseModel(U, 1.0, measured=0.5 * U).rounding(values, 1e-5, CENTRAL) == pytest.approx(modelled / 2)
    assert NoiseModel(U, 1.0, measured=1e-3 * U).rounding(values, 1e-5, CENTRAL) == pytest.approx(
        MEASURED_TRUST * modelled)


def test_the_claim_is_2e_6_in_float64_and_6e_3_in_float32() -> None:
    assert NoiseModel(U, 1.0).claim == pytest.approx(2e-6, rel=0.02)
    assert NoiseModel(float(np.finfo(np.float32).eps), 1.0).claim == pytest.approx(6e-3, rel=0.03)


def test_an_entry_is_resolved_only_when_an_error_above_the_claim_is_sure_to_show() -> None:
    """The estimate may be off by one tolerance toward grad: an error shows for sure beyond two tolerances."""
    noise = NoiseModel(U, 1.0)
    scale = np.array([1.0, 1.0, 0.0])
    tolerance = np.array([0.49, 0.51, 7.0]) * noise.claim
    assert noise.resolves(tolerance, scale).tolist() == [True, False, True]


@pytest.mark.parametrize(("order", "divisor"), [(1, 3), (2, 15), (4, 255)])
def test_truncation_is_richardsons_estimate(order: int, divisor: int) -> None:
    assert NoiseModel.truncation(np.array([1.0]), order)[0] == pytest.approx(TRUNCATION_MARGIN / divisor)


def test_repeatable_allows_a_few_ulps_and_nothing_more() -> None:
    model = NoiseModel(U, 1.0)
    assert model.repeatable(1.0, 1.0 + 2 * U)
    assert not model.repeatable(1.0, 1.0 + 1e-12)
    assert not model.repeatable(1.0, float("nan"))


def test_precision_is_the_units_or_the_measured_relative_noise() -> None:
    assert NoiseModel(U, 10.0).precision == U
    assert NoiseModel(U, 10.0, measured=1e-6).precision == pytest.approx(1e-7)
    assert NoiseModel(U, 0.0, measured=1e-6).precision > 1


def test_with_measured_keeps_the_rest() -> None:
    model = NoiseModel(1e-7, 3.0).with_measured(2e-5)
    assert (model.unit, model.cost, model.measured) == (1e-7, 3.0, 2e-5)


@pytest.mark.parametrize(("value", "expected"), [
    (1.5, U), (np.float32(1), np.finfo(np.float32).eps), ((np.float32(1), None), np.finfo(np.float32).eps),
    (np.float16(1), np.finfo(np.float16).eps), (3, U), (np.array(1.0, np.float32), np.finfo(np.float32).eps),
])
def test_returned_precision_follows_the_type_of_the_cost(value: object, expected: float) -> None:
    assert returned_precision(value) == expected


@pytest.mark.parametrize("value", [1e6, 0.5, 3.0, -1024.25])
def test_a_round_cost_is_no_evidence_of_float32(value: float) -> None:
    assert returned_precision(value) == U  # a python float: float32 only if it shows float32 rounding
    assert returned_precision(float(np.float32(np.pi) * 1e3)) == np.finfo(np.float32).eps


def test_a_cost_of_exactly_a_million_at_theta_is_checked_as_float64() -> None:
    J = lambda x: 1e6 + float(np.sum(np.sin(x) + x ** 2))  # noqa: E731
    wrong = gw.check(J, lambda x: (np.cos(x) + 2 * x) * (1 + 1e-4 * (np.arange(5) == 2)), np.zeros(5))
    assert wrong.evidence.noise.unit == U  # not taken for float32 because J(theta) is a round number
    assert wrong.verdict == "failed" and "theta[2]" in str(wrong), str(wrong)


@pytest.mark.parametrize("level", [1e-10, 1e-7])
def test_measure_noise_finds_the_order_of_injected_noise(level: float) -> None:
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, 10)

    def noisy(v: np.ndarray) -> float:
        return float(np.sum(np.sin(v)) + level * rng.standard_normal())

    layout, point = flatten(x)
    evaluator = Evaluator(noisy, layout, point)
    estimates = [measure_noise(evaluator, point, NoiseModel(U, noisy(x)), np.random.default_rng(s)).measured
                 for s in range(25)]
    assert evaluator.calls == 48 * 25  # two spacings for float64's rounding, one for float32's
    assert level / 2 < np.median(estimates) < 1.5 * level  # the estimator's median is about 0.8 sigma


def test_measure_noise_sees_a_J_that_casts_theta_to_float32_beside_a_float64_term() -> None:
    x = np.linspace(-1, 1, 10)

    def J(v: np.ndarray) -> float:  # the float64 penalty moves at float64's spacing, the rest only at float32's
        return float(np.sum(np.sin(v.astype(np.float32)))) + 1e-3 * float(v @ v)

    layout, point = flatten(x)
    found = measure_noise(Evaluator(J, layout, point), point, NoiseModel(U, J(x)), np.random.default_rng(0)).measured
    assert found > 0.1 * np.finfo(np.float32).eps  # float32's rounding of terms of about 1 (float64's: 1e-16)


def test_measure_noise_of_a_smooth_J_is_rounding() -> None:
    x = np.linspace(-1, 1, 10)
    layout, point = flatten(x)
    cost = float(np.sum(np.sin(x)) + 100)
    found = measure_noise(Evaluator(lambda v: float(np.sum(np.sin(v)) + 100), layout, point), point,
                          NoiseModel(U, cost), np.random.default_rng(0)).measured
    assert found < 10 * U * cost


@pytest.mark.parametrize(("relative_noise", "named"), [(3.6e-8, "float32"), (1e-9, None), (3e-6, None), (1e-14, None),
                                                       (2.9e-4, None), (2.3e-3, None)])  # float16's, bfloat16's size:
# far more often large terms that cancel (see NAMED_PRECISIONS)
def test_measured_noise_names_the_precision_j_computes_in_only_near_a_real_one(relative_noise: float,
                                                                              named: str | None) -> None:
    noise = NoiseModel(U, -2.0, measured=2.0 * relative_noise)
    assert noise.computed_in == named
    if named is None:  # large terms that cancel, kinks crossed by the measurement: float64's claim stays
        assert noise.computed_unit == U and noise.claim == NoiseModel(U, -2.0).claim
    else:
        assert noise.claim == NoiseModel(noise.computed_unit, -2.0).claim > 1e-3
