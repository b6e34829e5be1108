"""Grades into the learning management system: the files Canvas's and Moodle's gradebooks import.

Both read a graded folder's ``grades.csv``. Canvas's import is its own
gradebook export with the assignment's column filled in: its identity
columns, then the column, and its "Points Possible" row; a student without
a submission is left empty (Canvas leaves an empty cell's grade as it is).
Moodle's CSV import maps one column to its users (username, email address or
ID number) and the others to a grade item and its feedback, as its own export
names them. A submission graded ``error`` (the grader's fault, not the
student's) is never written as a grade: it is listed to regrade.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._outputs import number

__all__ = ["CANVAS_IDENTITY", "MOODLE_IDENTIFIERS", "Export", "export_canvas", "export_moodle", "read_grades"]

# Canvas's gradebook export: who each row is, before the assignments' columns
CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Root Account", "Section")
CANVAS_MATCHED_BY = ("SIS Login ID", "SIS User ID", "ID")  # a submission's id is one of these, tried in this order
CANVAS_POINTS_ROW = "Points Possible"
# Moodle's user fields as its own grade export heads them, by the --id choice
MOODLE_IDENTIFIERS = {"username": "Username", "email": "Email address", "idnumber": "ID number"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run a cell starting so


@dataclass(frozen=True)
class Grade:
    """One row of grades.csv, as the export needs it."""

    submission: str
    score: float
    max_score: float
    status: str
    reason: str


@dataclass(frozen=True)
class Export:
    """What an export wrote and what it could not place.

    Attributes
    ----------
    path : Path
        The file written.
    written : tuple of str
        Submissions whose grade is in it.
    unmatched : tuple of str
        Submissions no student of the gradebook has (Canvas), to place by hand.
    not_exported : tuple of str
        Submissions the grader itself failed on (status ``error``): regrade them.
    without_submission : tuple of str
        The gradebook's students who have no submission, left empty (Canvas).
    scaled : str
        How scores were scaled to the column's points, or empty.
    """

    path: Path
    written: tuple[str, ...]
    unmatched: tuple[str, ...] = ()
    not_exported: tuple[str, ...] = ()
    without_submission: tuple[str, ...] = ()
    scaled: str = ""

    def __str__(self) -> str:
        lines = [f"wrote {len(self.written)} grades into {self.path}"]
        if self.scaled:
            lines.append(self.scaled)
        if self.unmatched:
            lines.append(f"no student in the gradebook for: {', '.join(self.unmatched)}")
        if self.not_exported:
            lines.append(f"not exported, the grader failed on them (regrade): {', '.join(self.not_exported)}")
        if self.without_submission:
            count = len(self.without_submission)
            lines.append(f"{count} student{' has' if count == 1 else 's have'} no submission: left empty")
        return "\n".join(lines)


def read_grades(out: str | Path) -> list[Grade]:
    """The rows of ``out/grades.csv`` (or of that file itself)."""
    path = Path(out)
    path = path / "grades.csv" if path.is_dir() else path
    if not path.is_file():
        raise ValueError(f"{path} does not exist: give the folder `gradwidget grade --out` wrote")
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    missing = {"submission", "score", "max_score", "status"} - set(rows[0] if rows else {})
    if not rows or missing:
        raise ValueError(f"{path} is not a gradwidget grades.csv: it has no rows or lacks {', '.join(sorted(missing))}")
    return [Grade(r["submission"], float(r["score"]), float(r["max_score"]), r["status"], r.get("reason", ""))
            for r in rows]


def export_canvas(out: str | Path, gradebook: str | Path, column: str, output: str | Path) -> Export:
    """Write Canvas's grade import file: the gradebook's students with ``column`` filled from ``out/grades.csv``.

    Parameters
    ----------
    out : path
        The folder ``gradwidget grade`` wrote (or its grades.csv).
    gradebook : path
        Canvas's gradebook export (Grades > Export): Student, ID, SIS User
        ID, SIS Login ID, Section, the assignments' columns, and a "Points
        Possible" row.
    column : str
        The assignment's column, exactly as headed there, e.g. ``"HW3 (1234)"``.
    output : path
        The CSV to import (Grades > Import).

    Returns
    -------
    Export
        What was written, which submissions match no student, and which
        students have no submission.

    Notes
    -----
    A submission's id is matched, ignoring case, with a student's SIS Login
    ID, else SIS User ID, else Canvas ID. Scores are scaled to the column's
    points possible where they differ from the assignment's.
    """
    header, points_rows, students = _canvas_gradebook(Path(gradebook), column)
    identity = [name for name in header if name in CANVAS_IDENTITY]
    grades = read_grades(out)
    by_student = _match(grades, students, Path(gradebook))
    possible = _points_possible(points_rows, column)
    scale, scaled = _scale(grades, possible, column)
    output = Path(output)
    with open(output, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([*identity, column])
        for row in points_rows:
            writer.writerow([*(row.get(name, "") for name in identity), row.get(column, "")])
        for k, student in enumerate(students):
            grade = by_student.get(k)
            value = "" if grade is None or grade.status == "error" else number(grade.score * scale)
            writer.writerow([*(_cell(student.get(name, "")) for name in identity), value])
    matched = {g.submission for g in by_student.values()}
    return Export(output, tuple(g.submission for g in grades if g.submission in matched and g.status != "error"),
                  unmatched=tuple(g.submission for g in grades if g.submission not in matched),
                  not_exported=tuple(g.submission for g in grades if g.status == "error"),
                  without_submission=tuple(s.get("Student", "") for k, s in enumerate(students)
                                           if k not in by_student),
                  scaled=scaled)


def export_moodle(out: str | Path, output: str | Path, identifier: str = "username", item: str = "Grade") -> Export:
    """Write Moodle's grade import CSV: the student's identifier, the grade, and a one-line feedback.

    Parameters
    ----------
    out : path
        The folder ``gradwidget grade`` wrote (or its grades.csv).
    output : path
        The CSV to import (Grades > Import > CSV file).
    identifier : {"username", "email", "idnumber"}
        What the submissions' ids are; at import, map this column to the
        user field of that name (Username, useremail, useridnumber).
    item : str
        The grade column's heading (map it to the grade item at import; its
        feedback column is "Feedback").

    Returns
    -------
    Export
        What was written, and which submissions the grader failed on.
    """
    if identifier not in MOODLE_IDENTIFIERS:
        raise ValueError(f"identifier must be one of {', '.join(MOODLE_IDENTIFIERS)}, not {identifier!r}")
    grades = read_grades(out)
    output = Path(output)
    with open(output, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([MOODLE_IDENTIFIERS[identifier], item, "Feedback"])
        for g in grades:
            if g.status != "error":
                writer.writerow([_cell(g.submission), number(g.score), _cell(_feedback(g))])
    return Export(output, tuple(g.submission for g in grades if g.status != "error"),
                  not_exported=tuple(g.submission for g in grades if g.status == "error"))


def _feedback(grade: Grade) -> str:
    """A short text for the gradebook: the score, and why points were lost (the full feedback is feedback.html)."""
    said = f"{number(grade.score)} of {number(grade.max_score)} points"
    if grade.status != "graded":
        said += f" ({grade.status})"
    return f"{said}: {grade.reason}" if grade.reason else f"{said}."


def _canvas_gradebook(path: Path, column: str) -> tuple[list[str], list[dict[str, str]], list[dict[str, str]]]:
    """The gradebook's header, its rows that are not students (points possible, posting), and its students."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            rows = list(csv.reader(file))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the Canvas gradebook {path}: {exc}") from None
    header = rows[0] if rows else []
    if not {"Student", "ID", "Section"} <= set(header):
        raise ValueError(f"{path} is not a Canvas gradebook export: its first row must head the columns Student, "
                         f"ID, SIS Login ID, Section and the assignments (it heads {', '.join(header[:6]) or 'none'})")
    if column not in header:
        assignments = [name for name in header if name not in CANVAS_IDENTITY]
        raise ValueError(f"{path} has no column {column!r}: its assignments are {', '.join(assignments) or 'none'} "
                         "(give one exactly as headed, with its number in parentheses)")
    records = [dict(zip(header, row, strict=False)) for row in rows[1:] if any(cell.strip() for cell in row)]
    extra = [r for r in records if not r.get("ID", "").strip()]  # "Points Possible", "Manual Posting": no Canvas ID
    return header, extra, [r for r in records if r.get("ID", "").strip()]


def _match(grades: Sequence[Grade], students: list[dict[str, str]], path: Path) -> dict[int, Grade]:
    """Student index -> the submission whose id is their SIS Login ID, SIS User ID or ID."""
    index: dict[str, set[int]] = {}
    for k, student in enumerate(students):
        for name in CANVAS_MATCHED_BY:
            value = student.get(name, "").strip().casefold()
            if value:
                index.setdefault(value, set()).add(k)
    found: dict[int, Grade] = {}
    for grade in grades:
        hits = index.get(grade.submission.strip().casefold(), set())
        if len(hits) > 1:
            names = " and ".join(students[k].get("Student", "?") for k in sorted(hits))
            raise ValueError(f"submission {grade.submission!r} matches more than one student of {path.name}: {names}")
        if hits:
            (k,) = hits
            if k in found:
                raise ValueError(f"submissions {found[k].submission!r} and {grade.submission!r} are both "
                                 f"{students[k].get('Student', '?')}'s in {path.name}: keep one")
            found[k] = grade
    return found


def _points_possible(points_rows: list[dict[str, str]], column: str) -> float | None:
    for row in points_rows:
        if row.get("Student", "").strip() == CANVAS_POINTS_ROW:
            try:
                return float(row.get(column, ""))
            except ValueError:
                return None
    return None


def _scale(grades: Sequence[Grade], possible: float | None, column: str) -> tuple[float, str]:
    """The factor from the assignment's points to the column's, and a line saying so (1 and nothing if equal)."""
    maxima = {g.max_score for g in grades if g.status != "error"}
    if possible is None or len(maxima) != 1 or not possible > 0:
        return 1.0, ""
    (most,) = maxima
    if most <= 0 or abs(most - possible) <= 1e-9 * possible:
        return 1.0, ""
    return possible / most, f"scores scaled from {number(most)} to the {number(possible)} points of {column!r}"


def _cell(text: str) -> str:
    """A text cell a spreadsheet will show, not run (a leading =, +, - or @ would be a formula)."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
