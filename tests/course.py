"""The example course, copied for a test, with submissions made from its solution notebook.

Submissions are the solution's code cells with changes: a classic bug
written into its gradient, or hostile cells added around it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from gradwidget.grading import Graded, grade

COURSE = Path(__file__).resolve().parent.parent / "notebooks" / "assignment"
LAYERS_COURSE = COURSE.parent / "layers-assignment"
SECRET = "a test course's secret"
# Short limits, so that loops and bombs cost a test seconds, not minutes.
LIMITS = '[limits]\nwall = 30\ncell = 1.5\ncall = 3\nmemory = "1 GiB"\nprocesses = 32\n'


def copy_course(folder: Path, source: Path = COURSE) -> Path:
    """The course in ``folder/course`` with its own secret and short limits; returns the spec's path."""
    course = folder / "course"
    shutil.copytree(source, course, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (course / "secret.txt").write_text(SECRET)
    spec = course / "assignment.toml"
    text = spec.read_text()
    spec.write_text(text[:text.index("[limits]")] + LIMITS + text[text.index("[files]"):])
    return spec


def solution_cells(source: Path = COURSE) -> list[str]:
    """The solution's code cells (the 3-layer course: setup, forward and cost, gradient, then self-checks)."""
    notebook = json.loads((source / "solution.ipynb").read_text())
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


def with_layer_bug(old: str, new: str) -> list[str]:
    """The layers course's solution with ``old`` replaced by ``new`` in the one cell that holds it."""
    cells = solution_cells(LAYERS_COURSE)
    (hit,) = [k for k, cell in enumerate(cells) if old in cell]
    cells[hit] = cells[hit].replace(old, new)
    return cells


def with_gradient_bug(old: str, new: str) -> list[str]:
    """The solution with ``old`` replaced by ``new`` in its gradient cell."""
    cells = solution_cells()
    assert old in cells[2], old
    cells[2] = cells[2].replace(old, new)
    return cells


def write_notebook(path: Path, cells: list[str]) -> Path:
    notebook = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                           "source": source} for source in cells],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook))
    return path


def grade_cells(spec: Path, folder: Path, name: str, cells: list[str], **options: Any) -> Graded:
    """Grade a notebook of ``cells`` called ``name`` (in ``folder/submissions``) on its own."""
    path = write_notebook(folder / "submissions" / f"{name}.ipynb", cells)
    (graded,) = grade(spec, [path], folder / "out", progress=False, **options)
    return graded


# ---------------------------------------------------------------- an nbgrader course of the same exercise

ASSIGNMENT, NOTEBOOK, CELL = "backprop", "backprop", "gradient-grade"


def nbgrader_cell(source: str, **metadata: object) -> dict[str, object]:
    return {"cell_type": "code", "execution_count": None, "outputs": [], "source": source,
            "metadata": {"nbgrader": {"schema_version": 3, "solution": False, "grade": False, "locked": False,
                                      "task": False, **metadata}}}


def source_notebook(answers: list[str] | None = None) -> dict[str, object]:
    """nbgrader's source notebook: a locked setup cell, one solution cell per answer, the grade cell.

    The answers default to the 3-layer course's setup, cost and gradient cells.
    """
    setup, *solutions = answers or solution_cells()[:3]
    cells = [nbgrader_cell(setup, grade_id="setup", locked=True),
             *(nbgrader_cell(f"### BEGIN SOLUTION\n{source}\n### END SOLUTION", grade_id=f"answer-{k}", solution=True)
               for k, source in enumerate(solutions)),
             nbgrader_cell("# Graded by gradwidget, in an isolated worker, after nbgrader autograde:\n"
                           "# gradwidget nbgrader assignment.toml --course . --assignment backprop --notebook "
                           "backprop --cell gradient-grade", grade_id=CELL, grade=True, locked=True, points=10)]
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                        "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}


def submission(cells: list[str], answers: list[str] | None = None) -> dict[str, object]:
    released = source_notebook(answers)
    for cell, source in zip(released["cells"], cells):  # type: ignore[call-overload]
        cell["source"] = source
    return released


def nbgrader(course: Path, *args: str) -> None:
    """Run an nbgrader command in the course."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # nbgrader runs `alembic` by name
    subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, check=True, capture_output=True,
                   timeout=300, env={**os.environ, "PATH": path})


def nbgrader_course(folder: Path, submissions: dict[str, list[str]], answers: list[str] | None = None) -> Path:
    """An nbgrader course in ``folder``: the exercise generated, and each student's cells submitted.

    ``answers`` are the source notebook's cells (see `source_notebook`).
    """
    (folder / "source" / ASSIGNMENT).mkdir(parents=True)
    (folder / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.root = {str(folder)!r}\n"
                                               "c.CourseDirectory.course_id = 'demo'\n")
    (folder / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb").write_text(json.dumps(source_notebook(answers)))
    nbgrader(folder, "generate_assignment", ASSIGNMENT, "--force")
    for student, cells in submissions.items():
        where = folder / "submitted" / student / ASSIGNMENT
        where.mkdir(parents=True)
        (where / f"{NOTEBOOK}.ipynb").write_text(json.dumps(submission(cells, answers)))
        (where / "timestamp.txt").write_text("2026-11-24 12:00:00.000000 UTC")
    return folder
