"""Directional checks: the group search on a stand-in prober, and the noise-aware prober on a real J."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradwidget._directions import MAX_FOUND, DirectionalSearch, Directions, Prober
from gradwidget._evaluate import Evaluator
from gradwidget._evidence import Probes
from gradwidget._noise import NoiseModel
from gradwidget._params import flatten
from gradwidget._progress import Progress


class WrongAt:
    """A stand-in prober: a direction disagrees when it moves one of the ``wrong`` entries."""

    moves_at_once = 8

    def __init__(self, wrong: list[int], factor: float | None = None) -> None:
        self.wrong, self.factor, self.calls = wrong, factor, 0
        self.reduced = False

    def __call__(self, moves: Directions) -> Probes:
        self.calls += len(moves)
        rows = np.array([moves[k] for k in range(len(moves))]).reshape(len(moves), -1)
        numeric = rows.sum(axis=1)
        everywhere = np.ones(len(moves), bool)
        if self.factor is not None:
            return Probes(self.factor * numeric, numeric, np.full(len(moves), 1e-9), ~everywhere, everywhere)
        agree = ~np.any(rows[:, self.wrong] != 0, axis=1)
        return Probes(numeric + ~agree, numeric, np.full(len(moves), 1e-9), agree, everywhere)


def search(prober: object, layout: object, steps: np.ndarray, count: int) -> object:
    return DirectionalSearch(prober, layout, steps, count, np.random.default_rng(0),  # type: ignore[arg-type]
                             Progress(False), lambda position: None).run()  # no kink: every entry named is wrong


def layout_of(**shapes: tuple[int, ...]) -> object:
    return flatten({name: np.ones(shape) for name, shape in shapes.items()})[0]


def test_all_directions_agree_and_nothing_more_is_probed() -> None:
    layout = layout_of(W=(50, 40))
    prober = WrongAt([])
    found = search(prober, layout, np.full(2000, 1e-5), 8)
    assert found.directions.agree.all() and prober.calls == 8
    assert found.wrong == {} and found.failed_blocks == []


def test_one_wrong_entry_among_thousands_is_named_in_about_2_log2_n_probes() -> None:
    layout = layout_of(W=(100, 100), b=(100,))
    prober = WrongAt([4321])
    found = search(prober, layout, np.full(10_100, 1e-5), 8)
    assert list(found.wrong) == [4321]
    assert found.failed_blocks == ["W"]
    assert found.probes == prober.calls <= 8 + 2 + 2 * math.ceil(math.log2(10_000))


def test_the_search_names_at_most_a_few_entries_one_per_block_first() -> None:
    layout = layout_of(A=(30,), B=(30,))
    prober = WrongAt([1, 2, 3, 4, 5, 6, 7, 35])
    found = search(prober, layout, np.full(60, 1e-5), 4)
    assert len(found.wrong) == MAX_FOUND
    assert 35 in found.wrong and found.failed_blocks == ["A", "B"]


def test_a_factor_shared_by_every_direction_is_read_off() -> None:
    layout = layout_of(W=(10, 10))
    found = search(WrongAt([], factor=2.5), layout, np.full(100, 1e-5), 6)
    assert found.factor == pytest.approx(2.5)
    assert found.failed_blocks == ["W"] and found.wrong == {}


def prober_on(grad_error: float, *, noise: float = 0.0) -> tuple[Prober, np.ndarray]:
    c = np.linspace(-1, 1, 30)
    rng = np.random.default_rng(3)

    def J(x: np.ndarray) -> float:
        return float(c @ np.sin(x) + noise * rng.standard_normal())

    x = np.linspace(-0.5, 0.5, 30)
    analytic = c * np.cos(x)
    analytic[4] *= 1 + grad_error
    layout, point = flatten(x)
    evaluator = Evaluator(J, layout, point)
    return Prober(evaluator, point, analytic, NoiseModel(float(np.finfo(float).eps), J(x)), rng), analytic


def test_prober_agrees_along_directions_of_a_right_gradient() -> None:
    prober, _ = prober_on(0.0)
    probes = prober(Directions.random(np.full(30, 6e-6), [None] * 5, np.random.default_rng(0)))
    assert probes.agree.all()
    assert np.allclose(probes.numeric, probes.analytic, rtol=1e-8)
    assert prober.noise.measured == 0  # nothing disagreed: no need to measure the noise


def test_prober_disagrees_where_the_gradient_is_wrong_and_measures_noise_once() -> None:
    prober, _ = prober_on(1e-3)
    probes = prober(Directions.random(np.full(30, 6e-6), [(4, 5), (5, 6)], np.random.default_rng(0)))
    assert probes.agree.tolist() == [False, True]
    assert prober.noise.measured > 0


def test_prober_moves_closer_where_J_leaves_its_domain() -> None:
    layout, point = flatten(np.array([1e-4, 0.5]))
    evaluator = Evaluator(lambda x: float(np.sum(np.log(x))), layout, point)
    prober = Prober(evaluator, point, 1 / point, NoiseModel(float(np.finfo(float).eps), float(np.sum(np.log(point)))),
                    np.random.default_rng(0))
    with np.errstate(invalid="ignore"):
        probes = prober(Directions.random(np.array([2e-4, 0.0]), [(0, 1)], np.random.default_rng(0)))
    assert prober.reduced and probes.agree.tolist() == [True]
