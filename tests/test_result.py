"""CheckResult and BlockReport from hand-made evidence: verdicts, summaries, JSON, and what they refuse."""

from __future__ import annotations

import json

import numpy as np
import pytest
from handmade import evidence

import gradwidget as gw
from gradwidget._diagnose import diagnose
from gradwidget._result import BlockReport, CheckResult

W = np.arange(1.0, 7.0).reshape(2, 3)
B = np.array([0.5, -0.5])


def result_of(analytic: dict, numeric: dict, **fields: object) -> CheckResult:
    ev = evidence(analytic, numeric, **fields)
    return CheckResult(ev, diagnose(ev))


def test_blocks_report_their_figures_and_verdicts() -> None:
    wrong = W.copy()
    wrong[1, 2] += 0.6
    result = result_of({"W": wrong, "b": B}, {"W": W, "b": B})
    report, bias = result.blocks
    assert isinstance(report, BlockReport)
    assert (report.name, report.shape, report.verdict, report.passed) == ("W", (2, 3), "failed", False)
    assert (report.checked, report.wrong, report.kinks, report.worst) == (6, 1, 0, (1, 2))
    assert report.max_abs == pytest.approx(0.6) and report.max_rel == pytest.approx(0.6 / 6.6)
    assert bias.verdict == "passed" and bias.error == 0
    assert result.verdict == "failed" and not result.passed and not result
    assert result.checked == 8


def test_a_passing_result() -> None:
    result = result_of({"W": W}, {"W": W + 1e-12})
    assert result.verdict == "passed" and result.passed and bool(result)
    assert repr(result).startswith("<CheckResult passed error=")
    assert result.analytic["W"].shape == (2, 3)


def test_the_result_arrays_are_read_only_views_of_its_evidence() -> None:
    result = result_of({"W": W}, {"W": W + 1e-12})
    for tree in (result.analytic, result.numeric):
        assert np.shares_memory(tree["W"], result.evidence.analytic if tree is result.analytic
                                else result.evidence.numeric)
        with pytest.raises(ValueError, match="read-only"):
            tree["W"][0, 0] = 99.0
    assert result.verdict == "passed" and result.evidence.analytic[0] == W[0, 0]


def test_worst_entries_list_wrong_ones_first_and_only_them() -> None:
    wrong = W.copy()
    wrong[0, 0] += 0.1
    wrong[1, 1] += 1.0
    result = result_of({"W": wrong}, {"W": W})
    assert [row["entry"] for row in result.worst_entries()] == ["W[1, 1]", "W[0, 0]"]
    assert result.entry(4) == {"block": "W", "index": [1, 1], "position": 4, "entry": "W[1, 1]", "analytic": 6.0,
                               "numeric": 5.0,
                               "abs_error": 1.0, "rel_error": pytest.approx(1 / 6), "status": "wrong"}
    assert result.worst_positions() == [4]


def test_to_dict_is_json_safe_with_nan_as_null() -> None:
    numeric = {"W": W.copy()}
    numeric["W"][0, 1] = np.nan
    data = result_of({"W": W}, numeric).to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["verdict"] == "passed"
    assert data["blocks"][0]["checked"] == 5 and data["entries"] == 6


def test_nothing_checked_has_no_figures() -> None:
    result = result_of({"W": W}, {"W": np.full((2, 3), np.nan)})
    assert result.blocks[0].worst is None and np.isnan(result.blocks[0].max_abs)
    assert result.worst_entries() == [] and result.verdict == "inconclusive"
    assert result.blocks[0].verdict == "inconclusive" and "nothing checked" in str(result)


def test_a_result_without_its_call_cannot_be_measured_again() -> None:
    result = result_of({"W": W}, {"W": W})
    with pytest.raises(ValueError, match="does not carry its J"):
        result.require_call()
    with pytest.raises(ValueError, match="does not carry its J"):
        result.plot_eps_sweep()


def test_a_checked_result_carries_its_call() -> None:
    result = gw.check(lambda x: float(x @ x), lambda x: 2 * x, np.array([0.3, 0.4]), seed=2)
    problem = result.require_call()
    assert problem.options.seed == 2 and problem.grad is not None
