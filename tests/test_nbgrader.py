"""An nbgrader 0.9 course grades the gradient exercise with gradwidget's isolated grader.

The course is made in a temporary folder: the exercise's source notebook
(solution cells and one grade cell that tests nothing in the kernel),
``nbgrader generate_assignment``, two students' submissions, ``nbgrader
autograde``, then ``gradwidget nbgrader``, which writes the isolated grade
into the gradebook and its feedback beside nbgrader's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from course import copy_course, solution_cells, with_gradient_bug

from gradwidget.grading._cli import main

pytestmark = [pytest.mark.slow, pytest.mark.notebook]
nbgrader_api = pytest.importorskip("nbgrader.api")

ASSIGNMENT, NOTEBOOK, CELL = "backprop", "backprop", "gradient-grade"


def nbgrader_cell(source: str, **metadata: object) -> dict[str, object]:
    return {"cell_type": "code", "execution_count": None, "outputs": [], "source": source,
            "metadata": {"nbgrader": {"schema_version": 3, "solution": False, "grade": False, "locked": False,
                                      "task": False, **metadata}}}


def source_notebook() -> dict[str, object]:
    setup, cost, gradient = solution_cells()[:3]
    cells = [nbgrader_cell(setup, grade_id="setup", locked=True),
             nbgrader_cell(f"### BEGIN SOLUTION\n{cost}\n### END SOLUTION", grade_id="cost", solution=True),
             nbgrader_cell(f"### BEGIN SOLUTION\n{gradient}\n### END SOLUTION", grade_id="gradient", solution=True),
             nbgrader_cell("# Graded by gradwidget, in an isolated worker, after nbgrader autograde:\n"
                           "# gradwidget nbgrader assignment.toml --course . --assignment backprop --notebook "
                           "backprop --cell gradient-grade", grade_id=CELL, grade=True, locked=True, points=10)]
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                        "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}


def submission(cells: list[str]) -> dict[str, object]:
    released = source_notebook()
    for cell, source in zip(released["cells"], cells):  # type: ignore[call-overload]
        cell["source"] = source
    return released


def nbgrader(course: Path, *args: str) -> None:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # nbgrader runs `alembic` by name
    subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, check=True, capture_output=True,
                   timeout=300, env={**os.environ, "PATH": path})


def test_an_nbgrader_course_gets_the_isolated_grade(tmp_path: Path) -> None:
    spec = copy_course(tmp_path)
    course = tmp_path / "nbgrader-course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\n"
                                               "c.CourseDirectory.course_id = 'demo'\n")
    (course / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb").write_text(json.dumps(source_notebook()))
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    right = solution_cells()[:3]
    buggy = with_gradient_bug("G[:, 1:] += lam / m * Theta[:, 1:]", "G += lam / m * Theta")[:3]
    for student, cells in (("alice", right), ("bob", buggy)):
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / f"{NOTEBOOK}.ipynb").write_text(json.dumps(submission(cells)))
        (folder / "timestamp.txt").write_text("2026-11-24 12:00:00.000000 UTC")
    nbgrader(course, "autograde", ASSIGNMENT, "--create")
    with nbgrader_api.Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        # What nbgrader alone gives: full points to any grade cell that ran without an error.
        assert gradebook.find_grade(CELL, NOTEBOOK, ASSIGNMENT, "bob").score == 10
    assert main(["nbgrader", str(spec), "--course", str(course), "--assignment", ASSIGNMENT, "--notebook",
                 NOTEBOOK, "--cell", CELL]) == 0
    with nbgrader_api.Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {s: gradebook.find_grade(CELL, NOTEBOOK, ASSIGNMENT, s).score for s in ("alice", "bob")}
        assert not gradebook.find_grade(CELL, NOTEBOOK, ASSIGNMENT, "bob").needs_manual_grade
    assert scores == {"alice": 10, "bob": 2}
    feedback = (course / "feedback" / "bob" / ASSIGNMENT / "gradwidget-feedback.html").read_text()
    assert "column 0 of every block is wrong, and only that column (the bias column?)" in feedback
