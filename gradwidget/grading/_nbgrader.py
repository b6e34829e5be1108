"""``gradwidget nbgrader``: grade an nbgrader course's gradient exercise with the isolated grader.

nbgrader runs its test cells inside the student's own kernel, where student
code can patch whatever the tests call. Here the exercise's grade cell tests
nothing in the kernel; after ``nbgrader autograde``, this command grades each
submitted notebook in an isolated worker, against the reference at the
student's own hidden points, and writes the score into the gradebook as the
grade cell's manual score (scaled to the cell's points), with the feedback
page beside nbgrader's own.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from ._grade import grade

__all__ = ["FEEDBACK", "grade_course"]

FEEDBACK = "gradwidget-feedback.html"


def grade_course(spec_path: str | Path, course: str | Path, assignment: str, notebook: str, cell: str,
                 isolation: str = "auto") -> dict[str, float]:
    """Grade ``submitted/*/ASSIGNMENT/NOTEBOOK.ipynb``; set each student's score of grade cell ``cell``.

    Returns
    -------
    dict
        Student id -> the score written into the gradebook.
    """
    if shutil.which("alembic") is None:  # nbgrader's gradebook runs `alembic` by name: find this Python's
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    from nbgrader.api import Gradebook, MissingEntry

    course = Path(course).resolve()
    paths = sorted((course / "submitted").glob(f"*/{assignment}/{notebook}.ipynb"))
    if not paths:
        raise ValueError(f"no submission of {assignment}/{notebook}.ipynb in {course / 'submitted'}")
    students = {str(path): path.parents[1].name for path in paths}
    with tempfile.TemporaryDirectory() as out:
        graded = grade(spec_path, paths, out, isolation=isolation, progress=False, ids=students)
        scores = {}
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
            for path, result in zip(paths, graded):
                student = students[str(path)]
                try:
                    entry = gradebook.find_grade(cell, notebook, assignment, student)
                except MissingEntry:
                    raise ValueError(f"the gradebook has no grade cell {cell!r} of {assignment}/{notebook} for "
                                     f"{student}: run `nbgrader autograde {assignment}` first") from None
                entry.manual_score = round(result.score / result.max_score * entry.max_score, 4)
                entry.needs_manual_grade = False
                scores[student] = entry.manual_score
                feedback = course / "feedback" / student / assignment
                feedback.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(out) / result.id / "feedback.html", feedback / FEEDBACK)
            gradebook.db.commit()
    return scores
