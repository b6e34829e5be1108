"""Diagnoses from hand-made evidence: each pattern, named where it is, worded for a student."""

from __future__ import annotations

import numpy as np
import pytest
from handmade import evidence

from gradwidget._diagnose import diagnose
from gradwidget._verdict import Status

RNG = np.random.default_rng(0)
N = RNG.normal(size=(4, 5))  # a numeric gradient


def codes(ev: object) -> list[str]:
    return [d.code for d in diagnose(ev)]


@pytest.mark.parametrize(("factor", "hint"), [
    (2.0, "grad counts a term twice, or J has a 1/2 grad does not (J = 0.5 * sum(r ** 2), and grad = 2 * ...)?"),
    (0.5, "a lost factor 2 (the derivative of a square)?"),
    (20.0, "dividing by m = 20 (a mean) in one of J and grad but not the other?"),
    (1 / 40, "dividing by m = 40 (a mean) in one of J and grad but not the other?"),
    (1.37, "."),
])
def test_scale_says_the_factor_and_what_usually_causes_it(factor: float, hint: str) -> None:
    (found,) = diagnose(evidence({"W": N * factor}, {"W": N}))
    assert found.code == "scale" and found.block == "W"
    assert found.message.startswith(f"W: the analytic gradient is {factor:.3g} x the numeric one")
    assert found.message.endswith(hint)


def test_sign() -> None:
    (found,) = diagnose(evidence(-N, N))
    assert found.code == "sign" and "wrong sign" in found.message


def test_transpose_of_a_square_block_and_of_a_reshaped_one() -> None:
    square = RNG.normal(size=(3, 3))
    assert codes(evidence({"W": square.T}, {"W": square})) == ["transpose"]
    ev = evidence({"W": N}, {"W": N}, transposed=["W"])
    (found,) = diagnose(ev)
    assert found.code == "transpose" and "grad returned shape (5, 4), expected (4, 5)" in found.message


def test_column_major_unrolling_is_a_permutation() -> None:
    column_major = N.ravel(order="F").reshape(4, 5)  # grad unrolled as Octave's Theta(:), read back row-major
    (found,) = diagnose(evidence({"W": column_major}, {"W": N}))
    assert found.code == "permutation" and "column-major" in found.message


def test_a_wrong_bias_column_is_localized_and_named() -> None:
    a = N.copy()
    a[:, 0] += 0.3
    (found,) = diagnose(evidence({"Theta1": a, "Theta2": N}, {"Theta1": N, "Theta2": N}))
    assert found.code == "localized"
    assert found.message == ("Theta1: 4 of 20 entries wrong: the whole column 0 (the bias column?); "
                             "all other blocks agree.")
    assert found.block == "Theta1" and found.index is not None and found.index[1] == 0


def test_the_same_whole_column_wrong_in_several_blocks_is_said_once() -> None:
    a = N.copy()
    a[:, 0] += 0.3
    three = {"T1": a, "T2": a[:3], "T3": N[:2]}
    (found,) = diagnose(evidence(three, {"T1": N, "T2": N[:3], "T3": N[:2]}))
    assert found.message == ("column 0 of T1, T2 is wrong, and only that column (the bias column?); all other "
                             "blocks agree.")
    (found,) = diagnose(evidence({"T1": a, "T2": a[:3]}, {"T1": N, "T2": N[:3]}))
    assert found.message == "column 0 of every block is wrong, and only that column (the bias column?)."


def test_a_few_wrong_entries_are_named() -> None:
    a = N.copy()
    a[1, 2] += 1.0
    a[3, 4] += 0.1
    (found,) = diagnose(evidence({"W": a}, {"W": N}))
    assert found.message == "W: 2 of 20 entries wrong (W[1, 2], W[3, 4])."
    assert found.index == (1, 2)  # the worst first


def test_the_same_pattern_in_every_block_is_said_once() -> None:
    ev = evidence({"A": 2 * N, "B": 2 * N[:2]}, {"A": N, "B": N[:2]})
    (found,) = diagnose(ev)
    assert found.code == "scale" and found.message.startswith("every block: the analytic gradient is 2 x")


def test_wrong_everywhere_without_a_pattern_is_not_localized() -> None:
    a = N + RNG.normal(size=N.shape)
    assert codes(evidence(a, N)) == []


def test_a_kink_gives_both_slopes() -> None:
    status = np.full(N.size, Status.OK)
    status[7] = Status.KINK
    ev = evidence(N, N, status=status, one_sided={7: (-0.25, 0.75)})
    (found,) = diagnose(ev)
    assert found.code == "kink"
    assert "from the left (-0.25) and from the right (0.75) differ" in found.message
    assert found.index == (1, 2)


def test_mutation_names_who_and_where() -> None:
    ev = evidence(N, N, mutated={"grad": np.array([3, 4])})
    (found,) = diagnose(ev)
    assert found.code == "mutates-input"
    assert found.message.startswith("grad changed theta in place (2 entries, first theta[0, 3])")


def test_nondeterministic_gives_both_costs_and_hides_failure_patterns() -> None:
    ev = evidence(2 * N, N, nondeterministic=True, costs_at_point=(1.0, 1.25))
    (found,) = diagnose(ev)
    assert found.code == "nondeterministic" and "J returned 1 and then 1.25" in found.message


def test_symmetric_points() -> None:
    zeros = {"W": np.zeros((3, 2)), "b": np.array([0.1, 0.2])}
    ev = evidence({"W": N[:3, :2], "b": N[0, :2]}, {"W": N[:3, :2], "b": N[0, :2]}, point=zeros)
    (found,) = diagnose(ev)
    assert found.code == "symmetric-point" and "W are all zero" in found.message
    rows = {"W": np.tile([0.1, -0.3], (3, 1))}
    (found,) = diagnose(evidence({"W": N[:3, :2]}, {"W": N[:3, :2]}, point=rows))
    assert "identical rows in W" in found.message


def test_domain_and_skipped_entries() -> None:
    numeric = N.copy().ravel()
    numeric[5] = np.nan
    status = np.where(np.isnan(numeric), Status.SKIPPED, Status.OK)
    ev = evidence(N, numeric.reshape(N.shape), status=status, step_reduced=np.array([2, 5]))
    (found,) = diagnose(ev)
    assert found.code == "domain"
    assert "the step was made smaller there" in found.message
    assert "1 entry could not be checked and are NaN in numeric" in found.message


def test_noise_floor_in_float32() -> None:
    ev = evidence(N, N, unit=float(np.finfo(np.float32).eps), point=np.linspace(-1, 1, 20).astype(np.float32))
    (found,) = diagnose(ev)
    assert found.code == "noise-floor" and found.message.startswith("theta is float32: rounding in J limits")


def test_ignores_input() -> None:
    (found,) = diagnose(evidence(N, N, ignores_input=["theta"]))
    assert found.code == "ignores-input" and "read a global" in found.message
