"""Grades into Canvas and Moodle: the import files, matched to the gradebook's students, on both courses."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from course import COURSE, LAYERS_COURSE, copy_course, solution_cells, with_gradient_bug, with_layer_bug, write_notebook

from gradwidget.grading import export_canvas, export_moodle, grade

pytestmark = pytest.mark.slow

BUGS = {COURSE: lambda: with_gradient_bug("/ m", "/ m / m"),
        LAYERS_COURSE: lambda: with_layer_bug("db = np.sum(dout, axis=0)", "db = np.sum(dout, axis=1)")}
# Canvas's export: identity columns, assignments with their ids, computed scores; a points row, a posting row
GRADEBOOK = [
    ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "HW1 (101)", "Backprop (102)", "Current Score"],
    ["    Points Possible", "", "", "", "", "5", "20", "(read only)"],
    ["Manual Posting", "", "", "", "", "", "", ""],
    ["Doe, Jane", "9001", "S-1", "jdoe", "Sec 1", "5", "", "100"],
    ["Roe, Rick", "9002", "S-2", "rroe", "Sec 1", "4", "", "80"],
    ["Poe, Ed", "9003", "asmith", "epoe", "Sec 2", "3", "", "60"],
    ["Lee, Al", "9004", "S-4", "alee", "Sec 2", "", "", ""],
]


@pytest.fixture(scope="module", params=[COURSE, LAYERS_COURSE], ids=["classic", "layers"])
def graded_class(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class of four graded: right (jdoe), buggy (ASmith, as the file was named), empty (rroe), unknown (zed)."""
    folder = tmp_path_factory.mktemp("lms")
    spec = copy_course(folder, request.param)
    members = folder / "class"
    write_notebook(members / "jdoe.ipynb", solution_cells(request.param))
    write_notebook(members / "ASmith.ipynb", BUGS[request.param]())
    write_notebook(members / "rroe.ipynb", [])
    write_notebook(members / "zed.ipynb", solution_cells(request.param))
    grade(spec, [members], folder / "out", progress=False)
    return folder / "out"


def write_gradebook(path: Path, rows: list[list[str]] = GRADEBOOK) -> Path:
    with open(path, "w", newline="", encoding="utf-8-sig") as file:  # Canvas writes a byte-order mark
        csv.writer(file).writerows(rows)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.reader(file))


def grades_of(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as file:
        return {row["submission"]: row for row in csv.DictReader(file)}


def test_canvas_gets_its_gradebook_with_the_column_filled_matched_by_login_or_sis_id(graded_class: Path,
                                                                                    tmp_path: Path) -> None:
    gradebook = write_gradebook(tmp_path / "gradebook.csv")
    export = export_canvas(graded_class, gradebook, "Backprop (102)", tmp_path / "canvas.csv")
    rows = read_csv(tmp_path / "canvas.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Backprop (102)"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "20"] and rows[2][0] == "Manual Posting"
    scores = {row[0]: row[-1] for row in rows[3:]}
    grades = grades_of(graded_class)
    scale = 20 / float(grades["jdoe"]["max_score"])
    assert scores == {"Doe, Jane": f"{float(grades['jdoe']['score']) * scale:.4g}",
                      "Roe, Rick": "0",  # an empty notebook: graded invalid, zero
                      "Poe, Ed": f"{float(grades['ASmith']['score']) * scale:.4g}",  # by SIS User ID, any case
                      "Lee, Al": ""}  # no submission: left as it is
    assert scores["Doe, Jane"] == "20" and 0 < float(scores["Poe, Ed"]) < 20
    assert export.unmatched == ("zed",) and export.without_submission == ("Lee, Al",)
    assert set(export.written) == {"jdoe", "ASmith", "rroe"}
    assert "scaled" in export.scaled and "zed" in str(export) and "1 student has no submission" in str(export)


def test_moodle_gets_identifier_grade_and_a_one_line_feedback(graded_class: Path, tmp_path: Path) -> None:
    export = export_moodle(graded_class, tmp_path / "moodle.csv", identifier="email", item="Backprop")
    rows = read_csv(tmp_path / "moodle.csv")
    assert rows[0] == ["Email address", "Backprop", "Feedback"]
    grades = grades_of(graded_class)
    assert {row[0]: row[1] for row in rows[1:]} == {name: f"{float(g['score']):.4g}" for name, g in grades.items()}
    feedback = {row[0]: row[2] for row in rows[1:]}
    top = grades["jdoe"]["max_score"]
    assert feedback["jdoe"] == f"{top} of {top} points."
    assert feedback["rroe"].startswith(f"0 of {top} points (invalid): ") and "empty" in feedback["rroe"]
    assert "points lost" in feedback["ASmith"] and "\n" not in feedback["ASmith"]
    assert len(export.written) == 4 and export.not_exported == ()


def test_the_export_command_writes_both_and_says_what_it_could_not_place(graded_class: Path, tmp_path: Path) -> None:
    gradebook = write_gradebook(tmp_path / "gradebook.csv")
    command = [sys.executable, "-m", "gradwidget", "export", str(graded_class)]
    canvas = subprocess.run([*command, "--canvas", str(gradebook), "--column", "Backprop (102)", "-o",
                             str(tmp_path / "canvas.csv")], capture_output=True, text=True, timeout=120)
    assert canvas.returncode == 0, canvas.stderr
    assert "wrote 3 grades" in canvas.stdout and "no student in the gradebook for: zed" in canvas.stdout
    moodle = subprocess.run([*command, "--moodle", "--id", "idnumber", "-o", str(tmp_path / "moodle.csv")],
                            capture_output=True, text=True, timeout=120)
    assert moodle.returncode == 0 and read_csv(tmp_path / "moodle.csv")[0][0] == "ID number"
    missing = subprocess.run([*command, "--canvas", str(gradebook), "-o", str(tmp_path / "x.csv")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "--canvas needs --column" in missing.stderr


# ---------------------------------------------------------------- careless and hostile input, no grading needed

def grades_file(folder: Path, rows: list[list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "grades.csv", "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([["submission", "score", "max_score", "status", "reason"], *rows])
    return folder


def test_a_column_not_in_the_gradebook_names_the_ones_that_are(tmp_path: Path) -> None:
    out = grades_file(tmp_path / "out", [["jdoe", "10", "10", "graded", ""]])
    with pytest.raises(ValueError, match=r"has no column 'Backprop'.*HW1 \(101\), Backprop \(102\)"):
        export_canvas(out, write_gradebook(tmp_path / "g.csv"), "Backprop", tmp_path / "c.csv")


def test_a_file_that_is_not_a_canvas_gradebook_says_so(tmp_path: Path) -> None:
    out = grades_file(tmp_path / "out", [["jdoe", "10", "10", "graded", ""]])
    (tmp_path / "moodle.csv").write_text("Username,Grade\njdoe,10\n")
    with pytest.raises(ValueError, match="is not a Canvas gradebook export"):
        export_canvas(out, tmp_path / "moodle.csv", "Grade", tmp_path / "c.csv")
    with pytest.raises(ValueError, match="does not exist: give the folder"):
        export_moodle(tmp_path / "nowhere", tmp_path / "m.csv")


def test_two_submissions_of_one_student_are_refused_not_one_silently_kept(tmp_path: Path) -> None:
    out = grades_file(tmp_path / "out", [["jdoe", "10", "10", "graded", ""], ["9001", "2", "10", "graded", ""]])
    with pytest.raises(ValueError, match="'jdoe' and '9001' are both Doe, Jane's"):
        export_canvas(out, write_gradebook(tmp_path / "g.csv"), "Backprop (102)", tmp_path / "c.csv")


def test_a_grader_error_is_never_exported_as_a_zero(tmp_path: Path) -> None:
    out = grades_file(tmp_path / "out", [["jdoe", "0", "10", "error", "the grader failed"],
                                         ["rroe", "7", "10", "graded", ""]])
    export = export_canvas(out, write_gradebook(tmp_path / "g.csv"), "Backprop (102)", tmp_path / "c.csv")
    scores = {row[0]: row[-1] for row in read_csv(tmp_path / "c.csv")[3:]}
    assert scores["Doe, Jane"] == "" and scores["Roe, Rick"] == "14"
    assert export.not_exported == ("jdoe",) and "regrade" in str(export)
    moodle = export_moodle(out, tmp_path / "m.csv")
    assert [row[0] for row in read_csv(tmp_path / "m.csv")[1:]] == ["rroe"] and moodle.not_exported == ("jdoe",)


def test_a_text_that_a_spreadsheet_would_run_is_written_as_text(tmp_path: Path) -> None:
    out = grades_file(tmp_path / "out", [["=cmd", "1", "10", "crashed", "@SUM(A1) from the student's error"]])
    export_moodle(out, tmp_path / "m.csv")
    (row,) = read_csv(tmp_path / "m.csv")[1:]
    assert row[0] == "'=cmd" and not row[2].startswith(("=", "+", "-", "@"))


def test_an_unknown_moodle_identifier_is_refused(tmp_path: Path) -> None:
    out = grades_file(tmp_path / "out", [["jdoe", "10", "10", "graded", ""]])
    with pytest.raises(ValueError, match="identifier must be one of username, email, idnumber"):
        export_moodle(out, tmp_path / "m.csv", identifier="name")
