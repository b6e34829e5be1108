"""An nbgrader 0.9 course grades the gradient exercise with gradwidget's isolated grader.

The course is made in a temporary folder: the exercise's source notebook
(solution cells and one grade cell that tests nothing in the kernel),
``nbgrader generate_assignment``, two students' submissions, ``nbgrader
autograde``, then ``gradwidget nbgrader``, which writes the isolated grade
into the gradebook and its feedback beside nbgrader's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import REGULARIZED_BIAS_SAYS
from course import ASSIGNMENT, CELL, NOTEBOOK, copy_course, nbgrader, nbgrader_course, solution_cells, with_gradient_bug

from gradwidget.grading._cli import main

pytestmark = [pytest.mark.slow, pytest.mark.notebook]
nbgrader_api = pytest.importorskip("nbgrader.api")

def test_an_nbgrader_course_gets_the_isolated_grade(tmp_path: Path) -> None:
    spec = copy_course(tmp_path)
    right = solution_cells()[:3]
    buggy = with_gradient_bug("G[:, 1:] += lam / m * Theta[:, 1:]", "G += lam / m * Theta")[:3]
    course = nbgrader_course(tmp_path / "nbgrader-course", {"alice": right, "bob": buggy})
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
    assert REGULARIZED_BIAS_SAYS in feedback
