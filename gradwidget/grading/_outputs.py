"""What grading leaves in the output folder: grades.csv, and per submission results.json and feedback.html.

Feedback for students speaks of the reference and of check points but never
shows the hidden points, the reference's values or its code, nor the
integrity flags (those are in grades.csv, and in results.json as a test
hidden from students).
"""

from __future__ import annotations

import base64
import csv
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._params import Block
from .._result import CheckResult
from .._verdict import Diagnosis, Status
from ._scoring import Graded, Item
from ._spec import Spec

__all__ = ["CSV_COLUMNS", "feedback_html", "feedback_markdown", "number", "results_json", "write_flags",
           "write_grades", "write_submission"]

CSV_COLUMNS = ("submission", "score", "max_score", "status", "reason", "flags", "seconds", "isolation")
INTEGRITY_TEST = "integrity review (instructors only)"  # results.json's hidden test that holds the flags
REASON_LENGTH = 240  # characters of grades.csv's reason: one line in a spreadsheet
STATUS_COLOURS = {"graded": "#1a7f37", "timeout": "#9a6700", "crashed": "#cf222e", "invalid": "#cf222e",
                  "error": "#6e7781"}


def write_grades(spec: Spec, graded: Sequence[Graded], path: Path) -> None:
    """grades.csv: one row per submission, then one column per scored item."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([*CSV_COLUMNS, *spec.items])
        for g in graded:
            writer.writerow([g.id, number(g.score), number(g.max_score), g.status, row_reason(g), ";".join(g.flags),
                             f"{g.seconds:.2f}", g.isolation, *(number(item.points) for item in g.items)])


def row_reason(graded: Graded) -> str:
    """Why a status is not ``graded``, or what cost the most points: one line for grades.csv (empty: full marks)."""
    if graded.reason or graded.summary:
        return _one_line(graded.reason or graded.summary)
    lost = [(sum(item.max_points - item.points for item in section.items), section) for section in _sections(graded)]
    points, worst = max(lost, key=lambda pair: pair[0], default=(0.0, None))
    if worst is None or points <= 0:
        return ""
    diagnoses = worst.diagnoses or (worst.comparison.diagnoses if worst.comparison is not None else [])
    why = worst.notes[0] if worst.notes else diagnoses[0].message if diagnoses else "differs from the reference"
    where = f"{worst.problem}: " if worst.problem else ""
    return _one_line(f"{where}{number(points)} points lost: {why}")


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= REASON_LENGTH else line[:REASON_LENGTH - 3] + "..."


def write_submission(spec: Spec, graded: Graded, folder: Path) -> None:
    """``folder/results.json`` (Gradescope's schema) and ``folder/feedback.html``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results_json(spec, graded), indent=1), encoding="utf-8")
    (folder / "feedback.html").write_text(feedback_html(spec, graded), encoding="utf-8")


def write_flags(folder: Path, flags: tuple[str, ...]) -> None:
    """Set the integrity flags in ``folder/results.json`` (class-wide ones are known once every grade is)."""
    path = folder / "results.json"
    results = json.loads(path.read_text(encoding="utf-8"))
    for test in results["tests"]:
        if test["name"] == INTEGRITY_TEST:
            test["output"] = ", ".join(flags) or "nothing flagged"
    path.write_text(json.dumps(results, indent=1), encoding="utf-8")


@dataclass(frozen=True)
class _Section:
    """What feedback shows for one problem (or for a one-problem spec, for everything)."""

    problem: str | None
    items: tuple[Item, ...]
    notes: tuple[str, ...]
    diagnoses: tuple[Diagnosis, ...]
    comparison: CheckResult | None


def _sections(graded: Graded) -> list[_Section]:
    """The feedback's sections: one for a grade of one unnamed problem; else the cells' notes, then each problem.

    A named problem's section says how often its value differs (an unnamed
    problem's items say it).
    """
    if not any(part.problem for part in graded.parts):
        return [_Section(None, graded.items, graded.notes, graded.diagnoses, graded.comparison)]
    found = [_Section(None, (), graded.notes, (), None)] if graded.notes else []
    for part in graded.parts:
        items = tuple(item for item in graded.items if item.name.startswith(f"{part.problem}."))
        notes = part.notes + ((part.value_note,) if part.value_note else ())
        found.append(_Section(part.problem, items, notes, part.diagnoses, part.comparison))
    return found


def _item_lines(item: Item, section: _Section) -> list[str]:
    """results.json's output for one item: how often it agrees, and the diagnoses about it."""
    lines = [f"Agrees with the reference at {item.agreed} of {item.checked} check points."]
    short = item.name.split(".", 1)[1] if section.problem else item.name
    if short in ("cost", "forward") or item.agreed == item.checked:
        return lines
    block = short[1:] if section.problem and short.startswith("d") else short
    lines += [f"- {d.message}" for d in section.diagnoses if d.block in (block, None)]
    if section.problem:
        lines += [f"- `{note.replace('`', chr(39))}`" for note in section.notes]
    return lines


def results_json(spec: Spec, graded: Graded) -> dict[str, Any]:
    """The grade in Gradescope's autograder results format: one test per scored item."""
    tests: list[dict[str, Any]] = []
    for section in _sections(graded):
        for item in section.items:
            if section.problem:
                name = item.name.replace(".", ": ", 1)
            else:
                name = "cost" if item.name == "cost" else f"gradient: {item.name}"
            tests.append({"name": name, "score": round(item.points, 4), "max_score": item.max_points,
                          "status": "passed" if item.agreed == item.checked and item.checked else "failed",
                          "output": "\n".join(_item_lines(item, section)), "output_format": "md",
                          "visibility": "visible"})
    tests.append({"name": INTEGRITY_TEST, "score": 0, "max_score": 0,
                  "output": ", ".join(graded.flags) or "nothing flagged", "visibility": "hidden"})
    return {"score": round(graded.score, 4), "execution_time": round(graded.seconds, 2),
            "output": feedback_markdown(spec, graded), "output_format": "md", "tests": tests}


def _points_of(items: tuple[Item, ...]) -> str:
    return f"{number(sum(i.points for i in items))} of {number(sum(i.max_points for i in items))} points"


def feedback_markdown(spec: Spec, graded: Graded) -> str:
    """The feedback as markdown (Gradescope's overall output)."""
    lines = [f"**{spec.title}**: {number(graded.score)} of {number(graded.max_score)} points."]
    if graded.reason:
        lines.append(f"\n{graded.reason}.")
    for section in _sections(graded):
        if section.problem:
            lines += ["", f"**{section.problem}**: {_points_of(section.items)}."]
        if section.notes:  # they quote the student's own error messages: as code, never as Markdown
            lines += ["", *(f"- `{note.replace('`', chr(39))}`" for note in section.notes)]
        if section.diagnoses:
            lines += ["", f"How your {'derivatives differ' if section.problem else 'gradient differs'} from the "
                      "reference:", *(f"- {d.message}" for d in section.diagnoses)]
    return "\n".join(lines)


def feedback_html(spec: Spec, graded: Graded) -> str:
    """A self-contained page: score, status, the items, what went wrong, and heatmaps of the discrepancy."""
    esc = html.escape
    colour = STATUS_COLOURS.get(graded.status, "#6e7781")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(spec.title)}: feedback for {esc(graded.id)}</title>",
        "<style>body{font-family:sans-serif;font-size:14px;max-width:60em;margin:1em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left}"
        ".status{color:white;padding:2px 8px;border-radius:4px;font-weight:bold}</style></head><body>",
        f"<h1>{esc(spec.title)}</h1>",
        f"<p><span class='status' style='background:{colour}'>{esc(graded.status.upper())}</span> "
        f"{esc(graded.id)}: <b>{number(graded.score)} of {number(graded.max_score)} points</b></p>",
    ]
    if graded.reason:
        parts.append(f"<p class='reason'>{esc(graded.reason)}.</p>")
    if not any(part.problem for part in graded.parts):
        parts.append(_items_table(graded.items))
    parts.append(f"<p>Each item is checked at {graded.items[0].checked if graded.items else 0} points of your own "
                 "that no one else gets.</p>")
    for section in _sections(graded):
        parts.append(_section_html(section))
    parts.append("</body></html>")
    return "\n".join(parts)


def _section_html(section: _Section) -> str:
    from ..display._report import with_code  # a diagnosis's `formulas` as code, as the report shows them

    esc = html.escape
    level, what = ("h3", "derivatives differ") if section.problem else ("h2", "gradient differs")
    parts = []
    if section.problem:
        parts.append(f"<h2 data-problem='{esc(section.problem)}'>{esc(section.problem)}: "
                     f"{_points_of(section.items)}</h2>" + _items_table(section.items))
    if section.notes:
        parts.append(f"<{level}>What went wrong</{level}><ul class='notes'>"
                     + "".join(f"<li>{esc(note)}</li>" for note in section.notes) + "</ul>")
    if section.diagnoses:
        parts.append(f"<{level}>How your {what} from the reference</{level}><ul class='diagnoses'>"
                     + "".join(f"<li data-code='{esc(d.code)}'><code>{esc(d.code)}</code> {with_code(d.message)}</li>"
                               for d in section.diagnoses) + "</ul>")
    if section.comparison is not None:
        # Where it agrees everywhere, heatmaps would say nothing. A problem shows its blocks that disagree; a
        # gradient, every block (which ones agree is part of where).
        blocks = section.comparison.evidence.layout.blocks
        failing = [b for b in blocks if (section.comparison.evidence.status[b.slice] == Status.WRONG).any()]
        if failing:
            parts.append(_heatmaps(section.comparison, level, failing if section.problem else blocks))
    return "\n".join(parts)


def _items_table(items: tuple[Item, ...]) -> str:
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(item.name)}</td><td>{number(item.points)} / {number(item.max_points)}</td>"
                   f"<td>{item.agreed} of {item.checked}</td></tr>" for item in items)
    return ("<table class='items'><thead><tr><th>item</th><th>points</th><th>agrees with the reference at</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _heatmaps(result: CheckResult, level: str, blocks: Sequence[Block]) -> str:
    from ..display._plot import block_png

    figures = []
    for block in blocks:
        data = base64.b64encode(block_png(result, block)).decode("ascii")
        figures.append(f"<figure style='display:inline-block;margin:4px' data-block='{html.escape(block.name)}'>"
                       f"<img src='data:image/png;base64,{data}' alt='{html.escape(block.name)}: relative "
                       "discrepancy with the reference'/></figure>")
    return (f"<{level}>Where (relative discrepancy with the reference at one check point; crosses: wrong)</{level}>"
            + "".join(figures))


def number(value: float) -> str:
    """A score as grades.csv and feedback write it: four significant digits."""
    return f"{value:.4g}"
