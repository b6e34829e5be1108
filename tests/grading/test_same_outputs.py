"""A class of each example course grades exactly as it always has: grades.csv, results.json and feedback.

The classes and the masking are in ``tests/golden.py``; the outputs they
must give are in ``golden/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from golden import CLASSES, GOLDEN, grade_class, outputs

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("course", list(CLASSES))
def test_a_class_grades_to_the_same_bytes(course: str, tmp_path: Path) -> None:
    expected = {str(p.relative_to(GOLDEN / course)): p.read_bytes().decode("utf-8")
                for p in sorted((GOLDEN / course).rglob("*")) if p.is_file()}
    found = outputs(grade_class(course, tmp_path))
    assert sorted(found) == sorted(expected)
    for relative, text in expected.items():
        assert found[relative] == text, relative
