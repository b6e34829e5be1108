"""Cost modes: sampled, directional, vectorized, executors; progress and interrupts."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
import remote
from corpus import CASES, make

import gradwidget as gw
from gradwidget._verdict import Status
from gradwidget.examples import ARTICLE_SHAPES, article_network, one_wrong_entry

# Diagnoses that do not need every entry's numeric value: reduced modes must still give them.
SETUP_CODES = {"mutates-input", "nondeterministic", "ignores-input", "symmetric-point", "noise-floor"}


@pytest.mark.parametrize("mode", [{"sample": 5}, {"directions": 8}], ids=["sample", "directions"])
@pytest.mark.parametrize("name", list(CASES))
def test_reduced_modes_get_every_corpus_verdict(name: str, mode: dict) -> None:
    case = make(name)
    result = gw.check(case.J, case.grad, case.theta, seed=0, **mode, **case.options)
    codes = {d.code for d in result.diagnoses}
    # A direction moves every entry: where one entry sits at J's domain edge, the whole probe moves
    # closer to theta, and rounding may then keep it from resolving 1e-6.
    edge = "directions" in mode and "domain" in case.codes and case.verdict == "passed"
    assert result.verdict == ("inconclusive" if edge else case.verdict), str(result)
    assert case.codes & SETUP_CODES <= codes
    # Patterns that need every entry (transpose, permutation, a block's scale, kinks) may
    # show as `localized` instead; nothing else may appear.
    assert codes <= case.codes | {"localized"} | ({"noise-floor"} if edge else set()), str(result)


def test_sample_checks_k_entries_per_block_repeatably() -> None:
    J, grad, theta = article_network()
    first = gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, sample=4, seed=3)
    again = gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, sample=4, seed=3)
    checked = np.isfinite(first.numeric)
    assert checked.sum() == 12
    assert [int(checked[b.slice].sum()) for b in first.evidence.layout.blocks] == [4, 4, 4]
    assert np.array_equal(checked, np.isfinite(again.numeric))
    assert "12 of 231 entries sampled" in str(first)
    assert first.evaluations == 3 + 2 * 12 + 1 + 4 * 3  # and the second point: its centre, a direction per block


def test_sample_cannot_see_a_bug_outside_the_sample() -> None:
    J, grad, theta = article_network()

    def one_wrong(t: np.ndarray) -> np.ndarray:
        g = grad(t)
        g[0] += 1.0
        return g

    result = gw.check(J, one_wrong, theta, shapes=ARTICLE_SHAPES, sample=4, seed=3)
    assert not np.isfinite(result.numeric[0])  # entry 0 was not drawn...
    assert result.passed  # ...so sampling cannot see its bug: the documented limit


def test_directions_find_one_wrong_entry_in_20000_cheaply() -> None:
    J, grad, x = one_wrong_entry(20_000, wrong=12_345)
    result = gw.check(J, grad, x, directions=8, seed=1)
    assert not result.passed
    assert list(result.evidence.directional.wrong) == [12_345]
    assert result.evaluations <= 0.01 * 2 * 20_000
    localized = [d for d in result.diagnoses if d.code == "localized"]
    assert localized[0].index == (12_345,) and "theta[12345]" in localized[0].message


def test_directions_read_a_global_factor() -> None:
    J, grad, theta = article_network()
    result = gw.check(J, lambda t: 2 * grad(t), theta, shapes=ARTICLE_SHAPES, directions=4, seed=0)
    assert [d.code for d in result.diagnoses] == ["scale"]
    assert "2 x the numeric one" in result.diagnoses[0].message
    assert result.evaluations <= 3 + 2 * 4 + 48 + 2 * 4  # at theta, directions, noise, one second look


def test_vectorized_matches_serial_with_few_calls() -> None:
    J_batch, grad, theta = article_network(batched=True)
    J, _, _ = article_network()
    batched = gw.check(J_batch, grad, theta, shapes=ARTICLE_SHAPES, vectorized=True)
    serial = gw.check(J, grad, theta, shapes=ARTICLE_SHAPES)
    assert batched.passed and serial.passed
    assert np.allclose(batched.numeric, serial.numeric, rtol=1e-8, atol=1e-13)
    assert batched.evaluations < 12  # a few batched calls, not 464


def test_vectorized_gives_each_block_a_batch_axis() -> None:
    seen = []

    def J(p: dict) -> np.ndarray:
        seen.append((p["W"].shape, p["b"].shape))
        return np.sum(p["W"] ** 2, axis=(1, 2)) + np.sum(p["b"] ** 3, axis=1)

    theta = {"W": np.full((2, 3), 0.5), "b": np.array([0.2, -0.1])}
    result = gw.check(J, lambda p: {"W": 2 * p["W"], "b": 3 * p["b"] ** 2}, theta, vectorized=True)
    assert result.passed
    assert all(w[1:] == (2, 3) and b[1:] == (2,) for w, b in seen)
    assert max(w[0] for w, _ in seen) > 2


def test_vectorized_check_calls_J_at_theta_inside_its_batches() -> None:
    """Three calls of a vectorized J for a right gradient: theta twice, every move with theta again last, the second
    point."""
    batches = []

    def J(rows: np.ndarray) -> np.ndarray:
        batches.append(rows.copy())
        return np.sum(np.sin(rows), axis=1)

    theta = np.linspace(-1, 1, 7)
    result = gw.check(J, np.cos, theta, vectorized=True)
    assert result.passed and result.evaluations == len(batches) == 3
    assert np.array_equal(batches[0], [theta, theta])
    assert batches[1].shape == (2 * theta.size + 1, theta.size) and np.array_equal(batches[1][-1], theta)
    assert batches[2].shape == (6, theta.size)  # two steps each way along one direction, the second point, theta


def test_vectorized_pair_and_wrong_return() -> None:
    def pair(x: np.ndarray) -> tuple:
        return np.sum(x ** 2, axis=1), 2 * x

    assert gw.check(pair, None, np.array([0.3, -0.4]), vectorized=True).passed
    with pytest.raises(TypeError, match="a vectorized J must return one cost per row: for a batch of 2 "):
        gw.check(lambda x: np.sum(x ** 2), lambda x: 2 * x, np.array([0.3, -0.4]), vectorized=True)


def test_process_pool_matches_serial() -> None:
    x = np.linspace(-1, 1, 40)
    serial = gw.check(remote.cost, remote.wrong_gradient, x)
    with ProcessPoolExecutor(2) as pool:
        parallel = gw.check(remote.cost, remote.wrong_gradient, x, executor=pool)
    assert not parallel.passed
    assert np.flatnonzero(parallel.evidence.status == Status.WRONG).tolist() == [7]
    assert np.allclose(parallel.numeric, serial.numeric, rtol=1e-12)


def test_unpicklable_J_gets_one_clear_sentence() -> None:
    weights = remote.WEIGHTS

    def local_cost(x: np.ndarray) -> float:
        return float(weights @ np.sin(x))

    with ProcessPoolExecutor(1) as pool, pytest.raises(TypeError) as info:
        gw.check(local_cost, lambda x: weights * np.cos(x), np.zeros(40), executor=pool)
    message = str(info.value)
    assert message.startswith("J cannot be sent to the executor's worker processes because it cannot be pickled")
    assert "define J at module level" in message and "cloudpickle" in message


def test_thread_pool_and_directions_on_an_executor() -> None:
    x = np.linspace(-1, 1, 40)
    with ThreadPoolExecutor(2) as pool:
        assert gw.check(remote.cost, remote.gradient, x, executor=pool).passed
        result = gw.check(remote.cost, remote.wrong_gradient, x, executor=pool, directions=4, seed=0)
    assert list(result.evidence.directional.wrong) == [7]


@pytest.mark.slow
def test_dask_local_cluster() -> None:
    distributed = pytest.importorskip("distributed")
    x = np.linspace(-1, 1, 40)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        right = gw.check(remote.cost, remote.gradient, x, executor=client)
        wrong = gw.check(lambda t: remote.cost(t), remote.wrong_gradient, x, executor=client)  # cloudpickle
    assert right.passed
    assert not wrong.passed
    assert np.flatnonzero(wrong.evidence.status == Status.WRONG).tolist() == [7]


def test_progress_bar_only_when_asked_or_long(capsys: pytest.CaptureFixture[str]) -> None:
    J, grad, theta = article_network()
    gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, progress=True)
    assert "gradcheck" in capsys.readouterr().err
    gw.check(J, grad, theta, shapes=ARTICLE_SHAPES)  # fast: no bar
    gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, progress=False)
    assert capsys.readouterr().err == ""


def test_progress_callback_counts_and_can_stop_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    import time

    def slow(x: np.ndarray) -> float:
        time.sleep(0.0005)
        return float(np.sum(x ** 2))

    seen: list[tuple[int, int]] = []
    gw.check(slow, lambda x: 2 * x, np.linspace(0, 1, 300), progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (300, 300) and len(seen) > 1
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    def cancel(done: int, total: int) -> None:
        if done >= 50:
            raise KeyboardInterrupt

    partial = gw.check(slow, lambda x: 2 * x, np.linspace(0, 1, 300), progress=cancel)
    assert partial.interrupted.startswith("interrupted during the first look, after ")
    assert 50 <= partial.checked < 300 and not partial.passed
    assert capsys.readouterr().err == ""  # a callback replaces the bar


def test_long_check_shows_a_bar_by_itself(capsys: pytest.CaptureFixture[str]) -> None:
    import time

    def slow(x: np.ndarray) -> float:
        time.sleep(0.002)
        return float(np.sum(x ** 2))

    gw.check(slow, lambda x: 2 * x, np.linspace(0, 1, 300))
    assert "gradcheck" in capsys.readouterr().err


@pytest.mark.parametrize(("options", "message"), [
    ({"sample": 0}, "sample=0 is not accepted: sample must be None or a positive whole number"),
    ({"directions": 2.5}, "directions=2.5 is not accepted: directions must be None or a positive whole number"),
    ({"sample": 3, "directions": 3}, "sample= and directions= do not combine: they are two ways to check less"),
    ({"directions": 3, "method": "forward"}, "directions= uses central differences"),
    ({"vectorized": True, "executor": ThreadPoolExecutor(1)}, "vectorized= and executor= do not combine"),
    ({"executor": object()}, "executor=<object object at .*> is not accepted: executor must be None or a "
                             "concurrent.futures.Executor"),
])
def test_bad_mode_options(options: dict, message: str) -> None:
    with pytest.raises(gw.OptionError, match=message):
        gw.check(remote.cost, remote.gradient, np.zeros(40), **options)


def test_a_vectorized_J_whose_rows_depend_on_each_other_is_named() -> None:
    """A mean over the batch axis makes theta's cost depend on the batch: said, not passed."""
    theta = np.linspace(-1, 1, 6)
    result = gw.check(lambda rows: np.sum(np.sin(rows), axis=1) + 0.01 * np.mean(rows), np.cos, theta,
                      vectorized=True)
    assert result.verdict == "failed" and [d.code for d in result.diagnoses] == ["nondeterministic"]
    assert "depends on the other rows" in result.diagnoses[0].message
    serial = gw.check(lambda x: float(np.sum(np.sin(x)) + 0.1), np.cos, theta)
    assert "other rows" not in str(serial)


def test_a_vectorized_J_that_keeps_state_or_changes_its_rows_is_caught() -> None:
    theta = np.linspace(-1, 1, 6)
    calls = []

    def drifting(rows: np.ndarray) -> np.ndarray:
        calls.append(rows.shape[0])
        return np.sum(np.sin(rows), axis=1) + (1e-3 if len(calls) > 1 else 0.0)

    assert "nondeterministic" in {d.code for d in gw.check(drifting, np.cos, theta, vectorized=True).diagnoses}

    def writes(rows: np.ndarray) -> np.ndarray:
        out = np.sum(np.sin(rows), axis=1)
        rows[:, 0] += 1.0
        return out

    result = gw.check(writes, np.cos, theta, vectorized=True)
    assert result.verdict == "failed" and "mutates-input" in {d.code for d in result.diagnoses}
    assert theta[0] == -1.0
