"""A class is a folder: each notebook or script in it a submission, each subfolder one submission of several files."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from course import LAYERS_COURSE, copy_course, solution_cells, with_gradient_bug, write_notebook

from gradwidget.grading import grade
from gradwidget.grading._submission import class_members

pytestmark = pytest.mark.slow


def split_in_two(folder: Path, cells: list[str]) -> Path:
    """A submission made of two files: the setup in a script, the rest in a notebook."""
    folder.mkdir(parents=True)
    (folder / "setup.py").write_text(cells[0])
    write_notebook(folder / "work.ipynb", cells[1:])
    return folder


def test_a_class_folder_grades_each_file_and_each_subfolder_as_a_submission(tmp_path: Path) -> None:
    spec = copy_course(tmp_path)
    class_folder = tmp_path / "class"
    write_notebook(class_folder / "alice.ipynb", solution_cells())
    write_notebook(class_folder / "bob.ipynb", with_gradient_bug("/ m", "/ m / m"))
    (class_folder / "carol.py").write_text("\n# %%\n".join(solution_cells()))
    split_in_two(class_folder / "dan", solution_cells())
    write_notebook(class_folder / ".ipynb_checkpoints" / "alice-checkpoint.ipynb", solution_cells())
    (class_folder / "notes.txt").write_text("not a submission")
    graded = grade(spec, [class_folder], tmp_path / "out", progress=False)
    assert [(g.id, g.score, g.status) for g in graded] == [("alice", 10, "graded"), ("bob", 2, "graded"),
                                                           ("carol", 10, "graded"), ("dan", 10, "graded")]
    rows = (tmp_path / "out" / "grades.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["alice", "bob", "carol", "dan"]


def test_a_subfolder_whose_files_define_the_same_functions_is_refused_with_what_to_do(tmp_path: Path) -> None:
    spec = copy_course(tmp_path, LAYERS_COURSE)
    class_folder = tmp_path / "class"
    write_notebook(class_folder / "right.ipynb", solution_cells(LAYERS_COURSE))
    for student in ("erin", "frank"):  # a class put one level too deep: every file defines every function
        write_notebook(class_folder / "section-a" / f"{student}.ipynb", solution_cells(LAYERS_COURSE))
    graded = grade(spec, [class_folder], tmp_path / "out", progress=False)
    assert [(g.id, g.status) for g in graded] == [("right", "graded"), ("section-a", "invalid")]
    assert graded[0].score == graded[0].max_score and graded[1].score == 0
    reason = graded[1].reason
    assert "erin.ipynb and frank.ipynb in the folder section-a both define" in reason
    assert "put them in the class folder itself, one file each" in reason


def test_a_folder_given_an_id_is_one_submission_as_gradescope_gives_it(tmp_path: Path) -> None:
    spec = copy_course(tmp_path)
    submission = split_in_two(tmp_path / "submission", solution_cells())
    (graded,) = grade(spec, [submission], tmp_path / "out", progress=False, ids={str(submission): "12345"})
    assert (graded.id, graded.score, graded.status) == ("12345", 10, "graded")


def test_an_empty_class_folder_is_an_error_that_says_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "readme.txt").write_text("")
    with pytest.raises(ValueError, match=r"holds no \.ipynb or \.py file, nor a folder of them"):
        class_members([tmp_path / "class"])


def test_the_command_grades_a_class_folder_and_says_so_in_its_help(tmp_path: Path) -> None:
    spec = copy_course(tmp_path)
    write_notebook(tmp_path / "class" / "alice.ipynb", solution_cells())
    write_notebook(tmp_path / "class" / "template.ipynb", [solution_cells()[0]])
    command = [sys.executable, "-m", "gradwidget", "grade"]
    helped = subprocess.run([*command, "--help"], capture_output=True, text=True, check=True).stdout
    assert "class folder" in " ".join(helped.split())
    done = subprocess.run([*command, str(spec), str(tmp_path / "class"), "--out", str(tmp_path / "out"),
                           "--no-progress"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "out" / "grades.csv").read_text().splitlines()[1:]
    assert [row.split(",")[:2] for row in rows] == [["alice", "10"], ["template", "0"]]


def reasons(out: Path) -> dict[str, tuple[str, str]]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as file:
        return {row["submission"]: (row["status"], row["reason"]) for row in csv.DictReader(file)}


def test_every_row_says_why_in_one_line(tmp_path: Path) -> None:
    spec = copy_course(tmp_path)
    class_folder = tmp_path / "class"
    write_notebook(class_folder / "alice.ipynb", solution_cells())
    write_notebook(class_folder / "bob.ipynb", with_gradient_bug("/ m", "/ m / m"))
    write_notebook(class_folder / "empty.ipynb", ["", "   \n"])
    (class_folder / "renamed.ipynb").write_text("def cost(theta, X, y, lam):\n    return 0.0\n")
    grade(spec, [class_folder], tmp_path / "out", progress=False)
    found = reasons(tmp_path / "out")
    assert found["alice"] == ("graded", "")
    status, why = found["bob"]
    assert status == "graded" and why.startswith("8 points lost: ") and "\n" not in why
    assert found["empty"] == ("invalid", "empty.ipynb holds no code: it is empty")
    status, why = found["renamed"]
    assert status == "invalid" and "is not a notebook" in why and "Expecting value" not in why


def test_a_layers_row_names_the_problem_that_cost_the_most_points(tmp_path: Path) -> None:
    spec = copy_course(tmp_path, LAYERS_COURSE)
    cells = solution_cells(LAYERS_COURSE)
    (hit,) = [k for k, cell in enumerate(cells) if "dx = dout.copy()" in cell]
    cells[hit] = cells[hit].replace("dx = dout.copy()", "dx = np.ones_like(dout)")
    write_notebook(tmp_path / "class" / "gina.ipynb", cells)
    grade(spec, [tmp_path / "class"], tmp_path / "out", progress=False)
    status, why = reasons(tmp_path / "out")["gina"]
    # relu's backward is used by two_layer too: two_layer lost 2 points, relu 1
    assert status == "graded" and why.startswith("two_layer: 2 points lost: W1: 20 of 24 entries wrong"), why
