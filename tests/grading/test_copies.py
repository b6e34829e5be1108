"""Copies flagged for review: the same code up to renaming and formatting, or the same odd wrong answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from course import COURSE, LAYERS_COURSE, copy_course, solution_cells, write_notebook
from planted import disguise, planted_class, planted_layers_class, submission

from gradwidget.grading import grade
from gradwidget.grading._copies import COMMON_ANSWER, canonical_forms, code_prints, copy_flags

GRADIENT = solution_cells(COURSE)[2]
TEMPLATE = [re.sub(r"(\n    \"\"\".*\"\"\"\n).*", r"\1    raise NotImplementedError\n", cell, flags=re.DOTALL)
            for cell in solution_cells(COURSE)[:3]]


def own(cells: list[str]) -> frozenset[str]:
    return code_prints(cells, canonical_forms(TEMPLATE))


# ---------------------------------------------------------------- the code's canonical form, no grading needed

def test_renaming_reformatting_comments_docstrings_and_prints_leave_the_code_the_same() -> None:
    original = submission("loop")
    copied = disguise(original, "x")
    copied[2] = copied[2].replace('"""The gradient', '"""My own gradient').replace(
        "    return np", "    print('done')\n    return np")
    assert own(original) and own(copied) == own(original)


def test_another_operation_or_a_fix_is_other_code() -> None:
    original = submission("loop", "twice")
    assert own(submission("loop")) != own(original)
    assert own(submission("unrolled")) != own(submission("loop"))


def test_the_templates_own_functions_and_short_code_are_not_compared() -> None:
    assert own(TEMPLATE) == frozenset()
    short = [TEMPLATE[0], "def cost(theta, X, y, lam):\n    return 0.0\n", "def gradient(theta, X, y, lam):\n"
             "    return np.zeros_like(theta)\n"]
    assert own(short) == frozenset()


def test_a_cell_that_does_not_parse_is_left_out_not_an_error() -> None:
    cells = [*submission("loop"), "%load_ext gradwidget", "def broken(:\n    pass"]
    assert own(cells) == own(submission("loop"))


def test_one_long_function_shared_is_a_pair_on_its_own() -> None:
    mine = submission("loop")
    theirs = [mine[0], submission("unrolled")[1], mine[2], mine[3]]  # their own cost, the same gradient
    assert own(mine) & own(theirs)


def test_flags_go_both_ways_and_a_wrong_answer_shared_by_many_is_a_common_bug() -> None:
    code = {"a": frozenset({"p"}), "b": frozenset({"p"}), "c": frozenset()}
    common = {f"s{k}": ("w",) for k in range(COMMON_ANSWER)}
    flags = copy_flags(code, {"a": ("",), "b": ("",), "c": ("odd",), "d": ("odd",), **common})
    assert flags == {"a": ("copy-of:b",), "b": ("copy-of:a",), "c": ("copy-of:d",), "d": ("copy-of:c",)}


def test_a_large_group_names_three_and_counts_the_rest() -> None:
    flags = copy_flags({f"s{k}": frozenset({"leaked"}) for k in range(9)}, {})
    assert flags["s0"] == ("copy-of:s1", "copy-of:s2", "copy-of:s3", "copy-of:+5")


# ---------------------------------------------------------------- graded classes, both courses

@pytest.mark.slow
def test_the_planted_classic_class_gives_its_copies_and_no_other_pair(tmp_path: Path) -> None:
    members, pairs = planted_class()
    spec = copy_course(tmp_path)
    for name, cells in members.items():
        write_notebook(tmp_path / "class" / f"{name}.ipynb", cells)
    graded = grade(spec, [tmp_path / "class"], tmp_path / "out", workers=2, progress=False)
    found = {frozenset((g.id, flag.split(":", 1)[1])) for g in graded for flag in g.flags
             if flag.startswith("copy-of:")}
    assert found == pairs
    by_id = {g.id: g for g in graded}
    assert by_id["ines"].shared_answers == by_id["indexed-1-odd"].shared_answers != ("",)  # only the answers tell
    assert not own(members["ines"]) & own(members["indexed-1-odd"])
    results = json.loads((tmp_path / "out" / "lars" / "results.json").read_text())
    integrity = results["tests"][-1]
    assert integrity["output"] == "copy-of:indexed-0-twice" and integrity["visibility"] == "hidden"
    assert "copy-of:indexed-0-twice" in (tmp_path / "out" / "grades.csv").read_text()
    (alone,) = grade(spec, [tmp_path / "class" / "lars.ipynb"], tmp_path / "alone", progress=False)
    assert alone.flags == () and alone.score == by_id["lars"].score  # a flag never changes a score
    assert "copy-of" not in (tmp_path / "out" / "lars" / "feedback.html").read_text()  # nor shows to the student


@pytest.mark.slow
def test_the_layers_course_flags_a_renamed_copy_and_an_odd_answer_not_a_common_bug(tmp_path: Path) -> None:
    spec = copy_course(tmp_path, LAYERS_COURSE)
    members, pairs = planted_layers_class()
    for name, cells in members.items():
        write_notebook(tmp_path / "class" / f"{name}.ipynb", cells)
    graded = grade(spec, [tmp_path / "class"], tmp_path / "out", workers=2, progress=False)
    found = {frozenset((g.id, flag.split(":", 1)[1])) for g in graded for flag in g.flags
             if flag.startswith("copy-of:")}
    assert found == pairs == {frozenset(("ann", "tess")), frozenset(("oz", "otto"))}
    by_id = {g.id: g for g in graded}
    assert by_id["otto"].score < by_id["otto"].max_score and by_id["cy"].score < by_id["cy"].max_score


@pytest.mark.slow
def test_a_self_check_runs_no_shared_point_and_flags_nothing(tmp_path: Path) -> None:
    spec = copy_course(tmp_path)
    for name in ("a", "b"):
        write_notebook(tmp_path / "class" / f"{name}.ipynb", submission("loop", "odd"))
    graded = grade(spec, [tmp_path / "class"], tmp_path / "out", public=True, progress=False)
    assert [g.flags for g in graded] == [(), ()] and [g.shared_answers for g in graded] == [(), ()]


@pytest.mark.slow
def test_a_submission_cannot_forge_a_copy_flag(tmp_path: Path) -> None:
    spec = copy_course(tmp_path)
    forger = submission("unrolled")
    forger.append("print('copy-of:victim')\nraise SystemExit('flags: copy-of:victim')\n")
    write_notebook(tmp_path / "class" / "victim.ipynb", submission("einsum"))
    write_notebook(tmp_path / "class" / "x;copy-of:victim.ipynb", forger)  # a file name made to look like a flag
    graded = grade(spec, [tmp_path / "class"], tmp_path / "out", progress=False)
    assert [(g.id, g.flags) for g in graded] == [("victim", ()), ("x_copy-of_victim", ())]
    row = (tmp_path / "out" / "grades.csv").read_text().splitlines()[2].split(",")
    assert row[0] == "x_copy-of_victim" and row[5] == ""
