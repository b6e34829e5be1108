"""Every corpus case gets its verdict and exactly its diagnosis codes."""

from __future__ import annotations

import numpy as np
import pytest
from corpus import CASES, all_cases, make

import gradwidget as gw

ALL_CODES = set(gw.CODES) - {"interrupted"}  # a corpus case is never interrupted


@pytest.mark.parametrize("name", list(CASES))
def test_case_gets_its_verdict_and_codes(name: str) -> None:
    case = make(name)
    result = gw.check(case.J, case.grad, case.theta, **case.options)
    assert result.verdict == case.verdict, str(result)
    assert {d.code for d in result.diagnoses} == set(case.codes), str(result)


def test_corpus_is_large_and_covers_every_code() -> None:
    cases = all_cases()
    assert len(cases) >= 60
    assert sum(not c.correct for c in cases) >= 28
    covered = set().union(*(c.codes for c in cases))
    assert covered == ALL_CODES


@pytest.mark.parametrize("name", ["network", "mlp", "softmax"])
def test_right_gradient_costs_about_2n_calls(name: str) -> None:
    case = make(name)
    result = gw.check(case.J, case.grad, case.theta, **case.options)
    n = sum(np.size(a) for a in (case.theta.values() if isinstance(case.theta, dict) else [case.theta]))
    assert result.evaluations <= 2 * n + 3  # and J at theta three times: twice first, once at the end


def test_case_names_match_their_keys() -> None:
    assert [make(name).name for name in CASES] == list(CASES)
