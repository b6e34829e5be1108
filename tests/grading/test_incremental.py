"""Regrading what changed: a grade is reused only while every input it was computed from is the same."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from course import COURSE, LAYERS_COURSE, copy_course, solution_cells, with_gradient_bug, with_layer_bug, write_notebook

import gradwidget.grading._record as record
from gradwidget.grading import grade

pytestmark = pytest.mark.slow

BUGS = {COURSE: lambda: with_gradient_bug("/ m", "/ m / m"),
        LAYERS_COURSE: lambda: with_layer_bug("db = np.sum(dout, axis=0)", "db = np.sum(dout, axis=1)")}


class Class(NamedTuple):
    spec: Path
    members: Path
    out: Path
    source: Path  # the course it was copied from


@pytest.fixture(params=[COURSE, LAYERS_COURSE], ids=["classic", "layers"])
def course(request: pytest.FixtureRequest, tmp_path: Path) -> Class:
    """A course's spec, a class of three (right, buggy, right as a script) and its first full grading."""
    spec = copy_course(tmp_path, request.param)
    members = tmp_path / "class"
    write_notebook(members / "ann.ipynb", solution_cells(request.param))
    write_notebook(members / "ben.ipynb", BUGS[request.param]())
    (members / "cat.py").write_text("\n# %%\n".join(solution_cells(request.param)))
    grade(spec, [members], tmp_path / "out", progress=False)
    return Class(spec, members, tmp_path / "out", request.param)


def regrade(spec: Path, members: Path, out: Path) -> dict[str, bool]:
    """Grade incrementally; which submissions were reused."""
    return {g.id: g.reused for g in grade(spec, [members], out, progress=False, incremental=True)}


def test_nothing_changed_reuses_every_grade_and_writes_the_same_grades_byte_for_byte(
        course: Class) -> None:
    spec, members, out, _ = course
    before = (out / "grades.csv").read_bytes()
    feedback = (out / "ben" / "feedback.html").read_bytes()
    assert regrade(spec, members, out) == {"ann": True, "ben": True, "cat": True}
    assert (out / "grades.csv").read_bytes() == before
    assert (out / "ben" / "feedback.html").read_bytes() == feedback
    assert "points lost" in before.decode()  # ben's reason, kept without its diagnoses


def test_a_changed_submission_is_regraded_and_only_it(course: Class) -> None:
    spec, members, out, source = course
    write_notebook(members / "ben.ipynb", solution_cells(source))  # ben fixed his bug
    assert regrade(spec, members, out) == {"ann": True, "ben": False, "cat": True}
    rows = dict(line.split(",")[:2] for line in (out / "grades.csv").read_text().splitlines()[1:])
    assert rows["ben"] == rows["ann"]


def test_a_new_submission_in_the_class_is_graded_and_the_others_reused(course: Class) -> None:
    spec, members, out, source = course
    write_notebook(members / "dee.ipynb", solution_cells(source))
    assert regrade(spec, members, out) == {"ann": True, "ben": True, "cat": True, "dee": False}


@pytest.mark.parametrize("change", ["spec", "reference", "secret", "version"])
def test_a_change_to_what_every_grade_depends_on_regrades_them_all(course: Class, change: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    spec, members, out, _ = course
    folder = spec.parent
    if change == "spec":
        spec.write_text(spec.read_text().replace("title = ", "title = 'Renamed' #", 1))
    elif change == "reference":
        (folder / "reference.py").write_text((folder / "reference.py").read_text() + "\n# a comment\n")
    elif change == "secret":
        (folder / "secret.txt").write_text("another term's secret")
    else:
        monkeypatch.setattr(record, "__version__", "99.0")
    assert not any(regrade(spec, members, out).values())


def test_a_changed_data_file_regrades_them_all(tmp_path: Path) -> None:
    spec = copy_course(tmp_path)  # the classic course loads X and y from files
    write_notebook(tmp_path / "class" / "ann.ipynb", solution_cells())
    grade(spec, [tmp_path / "class"], tmp_path / "out", progress=False)
    y = spec.parent / "data" / "y.npy"
    np.save(y, np.load(y)[::-1].copy())
    assert regrade(spec, tmp_path / "class", tmp_path / "out") == {"ann": False}


def test_a_run_that_stopped_half_way_resumes_from_its_whole_records(course: Class) -> None:
    spec, members, out, _ = course
    (out / "ann" / "record.json").unlink()  # stopped before ann's record was written
    (out / "ann" / ".record.json.partial").write_text("{")  # and a record cut short
    shutil.rmtree(out / "cat")  # never started
    (out / "grades.csv").unlink()  # grades.csv is written at the end
    assert regrade(spec, members, out) == {"ann": False, "ben": True, "cat": False}
    assert len((out / "grades.csv").read_text().splitlines()) == 4


def test_a_grader_error_and_a_damaged_record_are_regraded(course: Class) -> None:
    spec, members, out, _ = course
    ann = json.loads((out / "ann" / "record.json").read_text())
    (out / "ann" / "record.json").write_text(json.dumps({**ann, "status": "error"}))
    (out / "ben" / "record.json").write_text(json.dumps({**ann, "items": "not a list"}))
    (out / "cat" / "feedback.html").unlink()  # an output missing: the grade is not whole
    assert not any(regrade(spec, members, out).values())


def test_a_submission_cannot_forge_a_record(course: Class) -> None:
    spec, members, out, source = course
    ann = json.loads((out / "ann" / "record.json").read_text())
    zero = {**ann, "items": [[name, top, 0, checked] for name, top, _, checked in ann["items"]]}
    cells = BUGS[source]()  # ben, graded after ann, tries to give ann zero (with ann's own digest) and himself all
    cells.append("import json, pathlib\n"
                 f"for where, text in [({str(out / 'ann' / 'record.json')!r}, {json.dumps(zero)!r}), "
                 f"({str(out / 'ben' / 'record.json')!r}, {json.dumps({**ann, 'id': 'ben'})!r})]:\n"
                 "    try:\n        pathlib.Path(where).write_text(text)\n    except OSError:\n        pass\n")
    write_notebook(members / "ben.ipynb", cells)
    first = {g.id: (g.reused, g.score) for g in grade(spec, [members], out, progress=False, incremental=True)}
    assert first["ben"][0] is False and 0 < first["ben"][1] < first["ann"][1]
    again = {g.id: (g.reused, g.score) for g in grade(spec, [members], out, progress=False, incremental=True)}
    assert again == {name: (True, score) for name, (_, score) in first.items()}  # the records the grader wrote


def test_the_command_says_which_grades_were_reused(course: Class) -> None:
    spec, members, out, source = course
    write_notebook(members / "ann.ipynb", BUGS[source]())
    done = subprocess.run([sys.executable, "-m", "gradwidget", "grade", str(spec), str(members), "--out", str(out),
                           "--incremental", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert "reused" not in lines["ann"] and "reused" in lines["ben"] and "reused" in lines["cat"]
    assert "(2 reused: their inputs are unchanged)" in done.stdout
