"""The example course, copied for a test, with submissions made from its solution notebook.

Submissions are the solution's code cells with changes: a classic bug
written into its gradient, or hostile cells added around it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from gradwidget.grading import Graded, grade

COURSE = Path(__file__).resolve().parent.parent / "notebooks" / "assignment"
SECRET = "a test course's secret"
# Short limits, so that loops and bombs cost a test seconds, not minutes.
LIMITS = '[limits]\nwall = 30\ncell = 1.5\ncall = 3\nmemory = "1 GiB"\nprocesses = 32\n'


def copy_course(folder: Path) -> Path:
    """The course in ``folder/course`` with its own secret and short limits; returns the spec's path."""
    course = folder / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (course / "secret.txt").write_text(SECRET)
    spec = course / "assignment.toml"
    text = spec.read_text()
    spec.write_text(text[:text.index("[limits]")] + LIMITS + text[text.index("[files]"):])
    return spec


def solution_cells() -> list[str]:
    """The solution's code cells: setup, forward and cost, gradient, then the self-check cells."""
    notebook = json.loads((COURSE / "solution.ipynb").read_text())
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


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
