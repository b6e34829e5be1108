"""The job folder a worker is given: the student's code, what to call, and each problem's arguments.

Only numbers and the student's own code cross into it: the cells, and per
problem the names of the functions to call, how they are linked, limits, and
the arguments (drawn ones at each point, data once, literals as JSON) with
dout for a layer or a VJP. The reference's answers stay with the grader. The
task written here is also what the grader reads the worker's files against.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._reference import ProblemAnswers
from .._spec import Spec
from ._worker import ARGUMENTS, TASK, argument_file, cotangent_file

__all__ = ["entry_limit", "job_sizes", "write_job"]

HEADER = 128  # bytes of an .npy file's header


def entry_limit(answers: ProblemAnswers) -> int:
    """The numbers a value or derivative of the problem may hold: generous, but no huge files."""
    largest = max((max(p.value.size, sum(d.size for d in p.derivatives)) for p in answers.points), default=0)
    return 4 * largest + 16


def job_sizes(spec: Spec, cells: tuple[str, ...], answers: list[ProblemAnswers]) -> tuple[int, int]:
    """Bytes for the job folder (the worker's own writes included) and, apart, for its results."""
    inputs = sum(len(cell) for cell in cells) + sum(a.value.nbytes + HEADER for a in spec.data_files.values())
    inputs += sum(array.nbytes + HEADER for _, array in _argument_files(answers))
    results = 1024 * len(cells) + 2 ** 20 + sum(
        (len(expected.points) + 1) * (16 * entry_limit(expected) + 8192) for expected in answers)
    return spec.limits.output + inputs + 2 ** 20, results


def write_job(workdir: Path, spec: Spec, cells: tuple[str, ...], answers: list[ProblemAnswers],
              limits: dict[str, int]) -> dict[str, Any]:
    """Fill ``workdir`` (made, with its out folder, by `job_folder`); returns the task it holds."""
    for folder in (workdir / "tmp", workdir / ARGUMENTS):
        folder.mkdir(mode=0o700)
    task = {"cells": list(cells), "cell_seconds": spec.limits.cell, "limits": limits,
            "problems": [_problem_task(spec, expected) for expected in answers]}
    (workdir / TASK).write_text(json.dumps(task), encoding="utf-8")
    for name, array in _argument_files(answers):
        np.save(workdir / ARGUMENTS / name, array, allow_pickle=False)
    for relative, argument in spec.data_files.items():  # where the student's notebook loads them from
        target = (workdir / relative).resolve()
        if workdir in target.parents:
            target.parent.mkdir(parents=True, exist_ok=True)
            np.save(target, argument.value, allow_pickle=False)
    return task


def _argument_files(answers: list[ProblemAnswers]) -> list[tuple[str, np.ndarray]]:
    """Each problem's array arguments (at each point, or once when the same at every point) and its douts."""
    files = []
    for j, expected in enumerate(answers):
        for i, argument in enumerate(expected.problem.arguments):
            if argument.kind == "data":
                files.append((argument_file(j, i), np.asarray(argument.value)))
            elif argument.kind != "value":
                files += [(argument_file(j, i, k), np.asarray(point.arguments[i]))
                          for k, point in enumerate(expected.points)]
        files += [(cotangent_file(j, k), point.cotangent) for k, point in enumerate(expected.points)
                  if point.cotangent is not None]
    return files


def _problem_task(spec: Spec, expected: ProblemAnswers) -> dict[str, Any]:
    """What the worker calls for one problem, and how."""
    problem = expected.problem
    arguments: list[dict[str, Any]] = []
    for argument in problem.arguments:
        if argument.kind == "value":
            arguments.append({"source": "literal", "literal": json.dumps(argument.value)})
        elif argument.kind == "data":
            arguments.append({"source": "fixed"})
        elif argument.kind == "parameters":
            arguments.append({"source": "point", "parameters": {
                "layout": argument.layout, "names": [name for name, _ in argument.blocks],
                "shapes": [list(shape) for _, shape in argument.blocks]}})
        else:
            arguments.append({"source": "point"})
    return {"first": problem.functions[0], "second": problem.functions[1], "link": problem.link,
            "points": len(expected.points), "parts": list(problem.blocks), "limit": entry_limit(expected),
            "call_seconds": problem.call_seconds or spec.limits.call, "scalar": problem.kind == "gradient",
            "arguments": arguments}
