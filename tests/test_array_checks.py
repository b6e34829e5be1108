"""check_layer, check_loss, check_vjp, check_jvp, check_jacobian, check_hessian: the layer corpus, hostile input."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from layer_cases import (
    AFFINE,
    LAYER_CASES,
    affine_backward,
    affine_backward_transposed,
    affine_forward,
    make_layer,
    relu_forward,
    softmax_forward,
)

import gradwidget as gw

LAYER_CODES = {"ignores-dout", "broadcast", "swapped", "missing-term", "recurrence"}


@pytest.fixture
def affine_args() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=5)


@pytest.mark.parametrize("name", list(LAYER_CASES))
def test_case_gets_its_verdict_and_codes(name: str) -> None:
    case = make_layer(name)
    result = case.run()
    assert result.verdict == case.verdict, str(result)
    assert {d.code for d in result.diagnoses} == set(case.codes), str(result)


@pytest.mark.parametrize("name", [n for n in LAYER_CASES if make_layer(n).words])
def test_a_case_of_a_real_code_pattern_is_explained_in_the_users_words(name: str) -> None:
    case = make_layer(name)
    said = " ".join(d.message for d in case.run().diagnoses if d.code in case.codes)
    assert all(word in said for word in case.words), said


def test_every_pattern_of_real_code_has_three_bugs_and_a_right_twin() -> None:
    cases = [make_layer(name) for name in LAYER_CASES]
    patterns = {c.pattern for c in cases if c.pattern}
    assert len(patterns) >= 9
    for pattern in patterns:
        ours = [c for c in cases if c.pattern == pattern]
        assert sum(not c.correct for c in ours) >= 3 and any(c.correct for c in ours), pattern


def test_every_layer_code_explains_at_least_two_cases_and_every_entry_point_is_covered() -> None:
    cases = [make_layer(name) for name in LAYER_CASES]
    assert len(cases) >= 60
    for code in LAYER_CODES:
        assert sum(code in c.codes for c in cases) >= 2, code
    for entry in ("layer", "loss", "vjp", "jvp", "jacobian", "hessian"):
        assert {c.correct for c in cases if c.entry == entry} == {True, False}, entry


@pytest.mark.parametrize("name", [n for n in LAYER_CASES if make_layer(n).correct])
def test_right_cases_pass_at_other_seeds(name: str) -> None:
    case = make_layer(name)
    assert {case.run(seed=seed).verdict for seed in range(1, 4)} == {case.verdict}


def test_a_right_layer_costs_2n_forward_calls_and_m_backward_calls(affine_args) -> None:
    calls = {"backward": 0}

    def backward(dout, cache):
        calls["backward"] += 1
        return affine_backward(dout, cache)

    result = gw.check_layer(affine_forward, backward, *affine_args, seed=0)
    n, m = sum(a.size for a in affine_args), 4 * 5
    assert result.passed
    assert result.evaluations <= 2 * n + 3 + 1 + 4 * 3
    # m one-hot rows, and the engine's, the second point's and the contract's few calls
    assert m <= calls["backward"] <= m + 12
    pairs = result.evidence.pairs
    assert pairs is not None and pairs.analytic.shape == (m, n) and not pairs.wrong.any()
    assert np.allclose(pairs.analytic, pairs.numeric, atol=1e-8)


def test_the_whole_jacobian_locates_a_diagonal_only_softmax() -> None:
    result = make_layer("softmax-diagonal-only").run()
    pairs = result.evidence.pairs
    assert pairs is not None
    wrong = np.argwhere(pairs.wrong)
    # output (sample i, class j) against input (sample k, class l): wrong pairs stay in a sample, off the diagonal
    assert wrong.size and all(o // 5 == i // 5 and o != i for o, i in wrong)


def test_blocks_are_named_after_the_forward_and_the_report_says_what_was_checked(affine_args) -> None:
    result = gw.check_layer(affine_forward, affine_backward, *affine_args, seed=0)
    assert [b.name for b in result.blocks] == ["x", "w", "b"]
    text = str(result)
    assert "affine_backward against affine_forward: dx, dw, db; dout random, seed 0" in text
    assert "calls of affine_forward" in text and "calls of J" not in text and "theta" not in text
    assert "affine_backward against affine_forward" in result._repr_html_()


def test_pass_through_arguments_are_named_in_the_report() -> None:
    result = make_layer("conv-stride-pad").run()
    assert "conv_param is a dict: it is passed through, not differentiated" in str(result)


def test_wrt_picks_arguments_by_name_or_position_and_the_backward_may_return_them_all(affine_args) -> None:
    by_name = gw.check_layer(affine_forward, affine_backward, *affine_args, wrt="x, b", seed=0)
    by_position = gw.check_layer(affine_forward, affine_backward, *affine_args, wrt=(0, 2), seed=0)
    only_w = gw.check_layer(affine_forward, lambda d, c: affine_backward(d, c)[1], *affine_args, wrt="w", seed=0)
    assert [b.name for b in by_name.blocks] == [b.name for b in by_position.blocks] == ["x", "b"]
    assert by_name.passed and by_position.passed and only_w.passed


@pytest.mark.parametrize(("backward", "message"), [
    (lambda d, c: affine_backward(d, c)[:2], "returned 2 arrays, but affine_forward has 3 floating-point "
                                             "arguments to differentiate (x, w, b): return dx, dw, db, or pass "
                                             "wrt=('x', 'w')"),
    (lambda d, c: (*affine_backward(d, c), d), "returned 4 arrays"),
    (lambda d, c: (None, *affine_backward(d, c)[1:]), "returned None for dx"),
    (lambda d, c: None, "returned 1 array"),
    (lambda d, c: (affine_backward(d, c)[0], "dw", affine_backward(d, c)[2]), "returned dw of dtype <U2"),
    (lambda d, c: dict(zip("xwb", affine_backward(d, c))), "returned a dict (keys x, w, b); return the gradients as "
                                                            "a tuple in affine_forward's order: dx, dw, db"),
])
def test_a_backward_returning_the_wrong_things_gets_a_clear_error(affine_args, backward, message) -> None:
    with pytest.raises(gw.InputError, match=None) as caught:
        gw.check_layer(affine_forward, backward, *affine_args)
    assert message in str(caught.value)


def test_lists_and_float32_gradients_are_accepted_and_nan_fails(affine_args) -> None:
    as_lists = gw.check_layer(affine_forward, lambda d, c: [g.tolist() for g in affine_backward(d, c)], *affine_args)
    as_float32 = gw.check_layer(affine_forward, lambda d, c: tuple(g.astype(np.float32) for g in
                                                                   affine_backward(d, c)), *affine_args)

    def with_nan(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        dw[0, 0] = np.nan
        return dx, dw, db

    assert as_lists.passed and as_float32.verdict != "failed"
    nan = gw.check_layer(affine_forward, with_nan, *affine_args)
    assert nan.verdict == "failed" and nan.blocks[1].wrong >= 1


def test_bad_arguments_and_douts_are_named(affine_args) -> None:
    x, w, b = affine_args
    with pytest.raises(gw.InputError, match=r"dout.*shape"):
        gw.check_layer(affine_forward, affine_backward, x, w, b, dout=np.ones((5, 4)))
    with pytest.raises(gw.InputError, match="must return \\(out, cache\\); it returned an array of shape"):
        gw.check_layer(lambda x, w, b: x @ w + b, affine_backward, x, w, b)
    with pytest.raises(gw.InputError, match="ids is an int64 array: only floating-point arrays"):
        gw.check_layer(lambda ids, W: (W[ids], ids), lambda d, c: d, np.array([0, 1]), np.ones((2, 2)), wrt="ids")
    with pytest.raises(gw.OptionError, match="no argument named 'v'"):
        gw.check_layer(affine_forward, affine_backward, x, w, b, wrt="v")
    with pytest.raises(gw.OptionError, match="vectorized"):
        gw.check_layer(affine_forward, affine_backward, x, w, b, vectorized=True)
    dout = np.ones((4, 5))
    dout[0, 0] = np.nan
    with pytest.raises(gw.InputError, match="dout has NaN or inf in 1 entry"):
        gw.check_layer(affine_forward, affine_backward, x, w, b, dout=dout)
    with pytest.raises(gw.InputError, match="no floating-point array argument"):
        gw.check_layer(lambda n: (np.ones(n), None), lambda d, c: d, 3)


def test_a_given_dout_is_used_as_given_and_nothing_of_the_callers_changes(affine_args) -> None:
    x, w, b = affine_args
    dout = np.arange(20.0).reshape(4, 5)
    kept = [a.copy() for a in (x, w, b, dout)]

    def writes_everywhere(dout, cache):
        grads = affine_backward(dout, cache)
        dout *= 0
        cache[0][...] = 0
        return grads

    result = gw.check_layer(affine_forward, writes_everywhere, x, w, b, dout=dout)
    assert all(np.array_equal(a, k) for a, k in zip((x, w, b, dout), kept))
    assert np.array_equal(result.evidence.subject.cotangent, kept[3].ravel())
    assert "dout given" in str(result)


def test_a_backward_whose_writes_change_its_next_answer_is_named(affine_args) -> None:
    def scales_dout_in_place(dout, cache):
        dout *= 2  # the caller's dout doubles every call; so does the next answer
        return affine_backward(dout / 2, cache)

    harmless = gw.check_layer(affine_forward, scales_dout_in_place, *affine_args, seed=0)
    assert "mutates-input" in {d.code for d in harmless.diagnoses}
    assert "writes into dout" in str(harmless)

    def relu_backward_in_place(dout, x):
        dout[x <= 0] = 0  # writes into dout, but the same answer again: harmless
        return dout

    fine = gw.check_layer(relu_forward, relu_backward_in_place, np.random.default_rng(1).normal(size=(3, 4)))
    assert fine.passed, str(fine)


def test_cost_modes_and_an_executor_check_layers_without_the_whole_jacobian(affine_args) -> None:
    bug = make_layer("affine-dw-transposed-square")
    with ThreadPoolExecutor(2) as pool:
        for options in ({"directions": 8}, {"sample": 3}, {"executor": pool}):
            right = gw.check_layer(*AFFINE, *affine_args, seed=0, **options)
            wrong = bug.run(**options)
            assert right.passed, options
            assert wrong.verdict == "failed", options
            pairs = right.evidence.pairs
            if "sample" in options:  # the columns of the sampled entries only
                assert pairs is not None and np.isfinite(pairs.numeric).all(axis=0).sum() == 3 * 3
            else:
                assert pairs is None, options


def test_float32_layer_inputs_are_checked_in_float64_when_the_layer_follows_their_dtype(affine_args) -> None:
    x, w, b = (a.astype(np.float32) for a in affine_args)
    result = gw.check_layer(affine_forward, affine_backward, x, w, b, seed=0)
    assert result.passed, str(result)
    assert result.precision == {"checked_in": "float64", "theta": "float32", "agreement": pytest.approx(0, abs=1e-6)}


def test_assert_layer_raises_with_the_report(affine_args) -> None:
    assert gw.assert_layer(affine_forward, affine_backward, *affine_args).passed
    with pytest.raises(gw.GradientCheckError, match="broadcast"):
        gw.assert_layer(affine_forward, lambda d, c: (*affine_backward(d, c)[:2], d), *affine_args)


def test_results_of_array_checks_serialize_and_plot(affine_args) -> None:
    import json

    result = make_layer("softmax-diagonal-only").run()
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["verdict"] == "failed" and summary["diagnoses"][0]["code"] == "missing-term"
    assert summary["checked_what"] == {
        "kind": "layer", "function": "softmax_forward", "derivative": "softmax_backward_diagonal",
        "title": "softmax_backward_diagonal against softmax_forward: dx; dout random, seed 0", "notes": [],
        "jacobian_pairs": 400, "wrong_pairs": 80}
    assert gw.check(lambda t: float(t @ t), lambda t: 2 * t, np.ones(2) * 0.3).to_dict()["checked_what"]["kind"] == (
        "gradient")
    assert result.widget() is result.widget()
    figure = result.plot()
    assert len(figure.axes) >= 1


def test_the_hessian_says_whether_it_is_symmetric() -> None:
    right = make_layer("rosenbrock-hessian").run()
    wrong = make_layer("rosenbrock-hessian-asymmetric").run()
    assert "the analytic Hessian is symmetric" in str(right)
    assert "the analytic Hessian is not symmetric: H[3, 4] = 178.118 but H[4, 3] = 356.237" in str(wrong)


def test_check_loss_needs_a_value_and_gradients() -> None:
    x, y = np.random.default_rng(0).normal(size=(3, 2)), np.array([0, 1, 1])
    with pytest.raises(gw.InputError, match="must return \\(loss, grads\\); it returned a float"):
        gw.check_loss(lambda x, y: float(np.sum(x)), x, y)
    assert "y is an int64 array: it is passed through" in str(gw.check_loss(
        lambda x, y: (float(np.sum(x ** 2)), 2 * x), x, y))


def test_a_jacobian_of_the_wrong_shape_is_named() -> None:
    with pytest.raises(gw.InputError, match=r"jac returned shape \(3,\); expected \(2, 3\)"):
        gw.check_jacobian(lambda x: x[:2] * 2, lambda x: np.ones(3), np.ones(3))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2 ** 16), st.data())
def test_linear_maps_pass_and_one_wrong_pair_is_found(m: int, n: int, seed: int, data: st.DataObject) -> None:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, n))
    x = rng.normal(size=n)
    assert gw.check_jacobian(lambda v: A @ v, lambda v: A, x, seed=0).passed
    i, j = data.draw(st.integers(0, m - 1)), data.draw(st.integers(0, n - 1))
    wrong = A.copy()
    wrong[i, j] += 1e-3 * max(1.0, float(np.abs(A).max()))
    result = gw.check_jacobian(lambda v: A @ v, lambda v: wrong, x, seed=0)
    assert result.verdict == "failed"
    pairs = result.evidence.pairs
    assert pairs is not None and [tuple(p) for p in np.argwhere(pairs.wrong)] == [(i, j)]


def test_softmax_forward_is_the_tests_own() -> None:
    s, _ = softmax_forward(np.zeros((1, 4)))
    assert np.allclose(s, 0.25)


def test_the_dot_product_test_catches_a_jvp_that_is_not_the_vjps_transpose() -> None:
    A = np.random.default_rng(3).normal(size=(3, 4))
    x = np.random.default_rng(4).normal(size=4)

    def f(v):
        return np.tanh(A @ v)

    def vjp(v, w):
        return A.T @ (w * (1 - f(v) ** 2))

    def jvp(v, u):
        return (1 - f(v) ** 2) * (A @ u)

    assert gw.check_vjp(f, vjp, x, jvp=jvp, seed=0).passed
    result = gw.check_vjp(f, vjp, x, jvp=lambda v, u: A @ u, seed=0)
    assert result.verdict == "failed" and [d.code for d in result.diagnoses] == ["transpose"]
    assert "<lambda>" not in str(result) and "jvp and vjp are not each other's transposes" in str(result)


def test_an_interrupt_while_the_backward_gives_the_rows_keeps_the_check(affine_args) -> None:
    calls = {"n": 0}

    def stops_late(dout, cache):
        calls["n"] += 1
        if calls["n"] > 12:  # past the contract and the engine's calls: in the one-hot rows
            raise KeyboardInterrupt
        return affine_backward(dout, cache)

    result = gw.check_layer(affine_forward, stops_late, *affine_args, seed=0)
    assert result.passed and result.evidence.pairs is None
    assert "the whole Jacobian was not compared: interrupted while stops_late gave its rows" in str(result)


def test_an_interrupt_during_the_first_look_keeps_what_was_measured(affine_args) -> None:
    calls = {"n": 0}

    def stops(x, w, b):
        calls["n"] += 1
        if calls["n"] > 20:
            raise KeyboardInterrupt
        return affine_forward(x, w, b)

    result = gw.check_layer(stops, affine_backward, *affine_args, seed=0)
    assert result.verdict == "inconclusive" and result.interrupted
    assert 0 < result.checked < sum(a.size for a in affine_args)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: gw.check_layer(relu_forward, lambda d, x: d, np.zeros((0, 3))), "x is empty: there is nothing to check"),
    (lambda: gw.check_layer(relu_forward, lambda d, x: d, [[1.0, -2.0]]), "x is a list: pass np.asarray(x)"),
    (lambda: gw.check_layer(relu_forward, lambda d, x: d, np.array([1.0, np.inf])),
     "x has inf at x[1]: the check point must be finite"),
    (lambda: gw.check_layer(lambda x: (x * np.nan, x), lambda d, c: d, np.ones(2)),
     "forward's output at the given point: it has nan at out[0]"),
    (lambda: gw.check_hessian(lambda x: 2 * x, lambda x: 2.0, np.ones(1)),
     "hess returned shape (); expected (1, 1) (grad(x).shape + x.shape)"),
    (lambda: gw.check_vjp(lambda x: x, lambda x, v: None, np.ones(2)), "vjp returned None"),
    (lambda: gw.check_vjp(lambda x: "a", lambda x, v: v, np.ones(2)), "f must return an array; it returned a str"),
])
def test_hostile_inputs_get_errors_in_the_checks_own_words(call, message) -> None:
    with pytest.raises(gw.InputError) as caught:
        call()
    assert message in str(caught.value)
    assert "theta" not in str(caught.value) and "grad returned" not in str(caught.value)


def test_an_exception_in_the_forward_says_where_it_happened(affine_args) -> None:
    def forward(x, w, b):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom") as caught:
        gw.check_layer(forward, affine_backward, *affine_args)
    assert "raised by forward at the given arguments" in "".join(getattr(caught.value, "__notes__", [])) + str(
        caught.value.args)


def test_the_random_dout_is_not_the_data_a_notebook_drew_with_the_same_seed() -> None:
    rng = np.random.default_rng(0)  # the data and the check both "seed 0": dout must still be independent of x
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)
    result = gw.check_layer(affine_forward, lambda d, c: (d @ c[1].T, d.T @ c[0], d.sum(axis=0)), x, w, b, seed=0)
    assert result.verdict == "failed" and [d.code for d in result.diagnoses] == ["transpose"]
    assert not np.allclose(result.evidence.subject.cotangent[:12], x.ravel())


def test_a_process_pool_checks_a_layer_of_module_level_functions(affine_args) -> None:
    from concurrent.futures import ProcessPoolExecutor

    bug = make_layer("affine-dw-transposed-square")
    with ProcessPoolExecutor(2) as pool:
        right = gw.check_layer(affine_forward, affine_backward, *affine_args, executor=pool, seed=0)
        wrong = gw.check_layer(*bug.functions[:1], affine_backward_transposed, *bug.args, executor=pool, seed=0)
    assert right.passed and wrong.verdict == "failed"


def test_a_forward_that_writes_into_its_input_is_named_and_the_callers_array_is_kept() -> None:
    def centering_forward(x):
        x -= x.mean()
        return np.maximum(x, 0), x

    x = np.random.default_rng(3).normal(size=(3, 4))
    kept = x.copy()
    result = gw.check_layer(centering_forward, lambda dout, x: dout * (x > 0), x, seed=1)
    assert np.array_equal(x, kept)
    writes = [d.message for d in result.diagnoses if d.code == "mutates-input"]
    assert len(writes) == 1 and writes[0].startswith("centering_forward changed the point in place")
    assert "`t = theta; t[0] = 0`" in writes[0]  # code in a message is left as written


def test_the_jacobians_rows_report_progress_and_never_make_the_identity(affine_args) -> None:
    seen: list[tuple[int, int]] = []
    gw.check_layer(affine_forward, affine_backward, *affine_args, seed=0, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (20, 20) and (0, 20) in seen  # the last phase: one row per output entry
    import tracemalloc

    m = 4000  # the m x m identity takes 128 MB
    scale = np.linspace(0.5, 1.5, m)
    tracemalloc.start()
    result = gw.check_vjp(lambda x: np.sin(x[0] * scale), lambda x, v: np.array([v @ (scale * np.cos(x[0] * scale))]),
                          np.array([0.3]), seed=0, progress=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.passed and result.evidence.pairs is not None and result.evidence.pairs.analytic.shape == (m, 1)
    assert peak < m * m * 8 / 4


def test_a_jvp_too_large_for_its_jacobian_is_refused_with_what_to_do() -> None:
    with pytest.raises(gw.InputError, match="more than 1,000,000: check jvp on a smaller x, or check the matching "
                                            "VJP with check_vjp"):
        gw.check_jvp(lambda x: np.concatenate([x, x]), lambda x, u: np.concatenate([u, u]), np.ones(800))


def test_exceptions_say_which_function_raised_and_complex_x_is_named() -> None:
    def notes(call) -> str:
        with pytest.raises(Exception) as caught:
            call()
        return " ".join(getattr(caught.value, "__notes__", []))

    x = np.array([0.3, 0.5])

    def failing_backward(dout, cache):
        raise KeyError("a")

    def forward_failing_away_from_x(x):
        if x[0] > 0.3 + 1e-9:
            raise ValueError("boom")
        return x * 2, x

    assert "raised by failing_backward" in notes(lambda: gw.check_layer(lambda x: (x * 2, x), failing_backward, x))
    noted = notes(lambda: gw.check_layer(forward_failing_away_from_x, lambda d, c: 2 * d, x, seed=0))
    assert "raised by forward_failing_away_from_x" in noted and "backward" not in noted.split("raised by")[1][:30]
    with pytest.raises(gw.InputError, match=r"^x is complex"):
        gw.check_vjp(lambda v: v * 2, lambda v, c: 2 * c, np.array([1 + 1j, 2.0]))
