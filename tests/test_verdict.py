"""The verdict in one place: per-entry judgement, per-block and overall verdict, and the codes table."""

from __future__ import annotations

import numpy as np
import pytest
from handmade import evidence

import gradwidget as gw
from gradwidget._evidence import DirectionalFindings, Probes
from gradwidget._verdict import CODES, Status, Verdict, block_verdict, classic_agrees, judge, overall_verdict, within

DESIGN_CODES = ["scale", "sign", "transpose", "permutation", "localized", "kink", "nondeterministic",
                "mutates-input", "symmetric-point", "domain", "noise-floor", "ignores-input"]
# New codes go at the end: tools match on the old ones.
ADDED_CODES = ["interrupted", "not-subgradient", "precision-loss", "ignores-dout", "broadcast", "swapped",
               "missing-term", "recurrence", "shape"]


def test_the_codes_table_is_the_contract() -> None:
    assert list(CODES) == DESIGN_CODES + ADDED_CODES
    assert {code for code, info in CODES.items() if info.fatal} == {"mutates-input", "nondeterministic",
                                                                   "ignores-input", "not-subgradient",
                                                                   "precision-loss", "ignores-dout", "broadcast",
                                                                   "swapped", "shape"}
    for code in DESIGN_CODES + ADDED_CODES:
        assert getattr(gw, code.upper().replace("-", "_")) == code
    assert gw.CODES is CODES


def test_judge_agrees_within_the_sum_of_errors() -> None:
    look = judge(np.array([1.0, 3.0, 3.5]), np.array([1.0, 1.0, 1.0]), np.array([0.5, 0.5, 0.5]),
                 truncation=np.array([0.0, 1.5, 1.5]))
    assert look.tolerance.tolist() == [1.5, 3.0, 3.0]
    assert look.agree.tolist() == [True, True, False]
    assert not look.settled.any()  # a first look: nothing to compare with


def test_judge_settles_what_a_smaller_step_did_not_move() -> None:
    look = judge(np.array([5.0, 5.0]), np.array([1.0, 1.0]), np.array([0.5, 0.5]), change=np.array([1.0, 2.0]))
    assert look.agree.tolist() == [False, False]
    assert look.settled.tolist() == [True, False]


def test_a_nan_gap_never_agrees() -> None:
    assert not judge(np.array([np.nan]), np.array([1.0]), np.array([1.0])).agree[0]


def test_classic_rule_and_subgradients() -> None:
    assert classic_agrees(np.array([1e-8, 1e-6]), np.array([1.0, 1.0]), np.array([1.0, 1.0]), 1e-7).tolist() == [
        True, False]
    inside = within(np.array([0.0, 2.0, -1.0]), np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0]),
                    np.array([0.0, 0.5, 0.0]))
    assert inside.tolist() == [True, False, True]


def test_block_verdicts() -> None:
    ev = evidence({"W": np.ones((2, 2)), "b": np.ones(2)}, {"W": np.ones((2, 2)), "b": np.array([1.0, 2.0])})
    assert [block_verdict(ev, b) for b in ev.layout.blocks] == [Verdict.PASSED, Verdict.FAILED]


def test_a_transposed_block_fails_whatever_its_values() -> None:
    ev = evidence({"W": np.ones((2, 3))}, {"W": np.ones((2, 3))}, transposed=["W"])
    assert block_verdict(ev, ev.layout.blocks[0]) is Verdict.FAILED


def test_under_tol_a_block_is_judged_by_the_classic_rule() -> None:
    a, n = np.array([1.0, 1.0]), np.array([1.0, 1.0 + 1e-6])
    assert block_verdict(evidence(a, n, tol=1e-5), evidence(a, n).layout.blocks[0]) is Verdict.PASSED
    assert block_verdict(evidence(a, n, tol=1e-8), evidence(a, n).layout.blocks[0]) is Verdict.FAILED


def test_directional_failures_fail_their_blocks() -> None:
    probes = Probes(np.ones(1), np.ones(1), np.ones(1), np.zeros(1, bool), np.ones(1, bool))
    ev = evidence({"a": np.ones(2), "b": np.ones(2)}, {"a": np.full(2, np.nan), "b": np.full(2, np.nan)},
                  directional=DirectionalFindings(probes, failed_blocks=["b"]))
    assert [block_verdict(ev, b) for b in ev.layout.blocks] == [Verdict.PASSED, Verdict.FAILED]


@pytest.mark.parametrize(("fields", "blocks", "codes", "expected"), [
    ({}, [Verdict.PASSED, Verdict.PASSED], [], Verdict.PASSED),
    ({}, [Verdict.PASSED, Verdict.FAILED], ["localized"], Verdict.FAILED),
    ({}, [Verdict.PASSED], ["kink", "noise-floor"], Verdict.PASSED),
    ({}, [Verdict.PASSED], ["mutates-input"], Verdict.FAILED),
    ({"interrupted": "interrupted during the first look"}, [Verdict.PASSED], [], Verdict.INCONCLUSIVE),
    ({"interrupted": "interrupted during the first look"}, [Verdict.FAILED], [], Verdict.FAILED),
    ({}, [Verdict.PASSED, Verdict.INCONCLUSIVE], ["noise-floor"], Verdict.INCONCLUSIVE),
    ({}, [Verdict.INCONCLUSIVE, Verdict.FAILED], ["localized"], Verdict.FAILED),
])
def test_overall_verdict(fields: dict, blocks: list, codes: list, expected: Verdict) -> None:
    ev = evidence(np.ones(4), np.ones(4), **fields)
    assert overall_verdict(ev, blocks, codes) is expected


def test_nothing_checked_is_inconclusive() -> None:
    ev = evidence(np.ones(3), np.full(3, np.nan))
    assert overall_verdict(ev, [Verdict.PASSED], []) is Verdict.INCONCLUSIVE


def test_labels() -> None:
    assert [s.label for s in Status] == ["unchecked", "ok", "wrong", "kink", "skipped", "unresolved"]
    assert [v.label for v in Verdict] == ["passed", "inconclusive", "failed"] and max(Verdict) is Verdict.FAILED
