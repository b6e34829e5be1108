"""Autograding hand-written costs and gradients: safely, with partial credit and feedback that teaches.

An instructor writes an assignment spec (TOML) once; ``gradwidget validate``
proves it, ``gradwidget grade`` grades a class, ``gradwidget gradescope``
builds Gradescope's autograder, ``gradwidget export`` writes the grades
as Canvas's or Moodle's import file, ``gradwidget handout`` makes what students
get, and ``gradwidget nbgrader`` writes grades into an nbgrader course. Each
submission runs in an isolated worker that holds no secrets; its cost and
gradient are compared with the instructor's reference at check points of
its own, drawn from a course secret.

Examples
--------
::

    from gradwidget.grading import grade, self_check
    graded = grade("assignment.toml", ["alice.ipynb", "bob.ipynb"], "grades/")
    self_check("assignment.toml", "mine.ipynb")   # in a notebook: the feedback, at the public points
"""

from ._grade import SelfCheck, grade, self_check
from ._lms import Export, export_canvas, export_moodle
from ._scoring import Graded, Item, Part
from ._spec import SPEC_KEYS, Spec, SpecError, load_spec
from ._validate import validate

__all__ = ["SPEC_KEYS", "Export", "Graded", "Item", "Part", "SelfCheck", "Spec", "SpecError", "export_canvas",
           "export_moodle", "grade", "load_spec", "self_check", "validate"]
