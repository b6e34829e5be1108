"""What a worker wrote, read as untrusted numbers.

Every file is opened without following links (relative to a folder opened
the same way), must be a small regular file, is loaded with
``allow_pickle=False`` and must have the dtype and shape it should; anything
else counts as not written. Nothing from the worker is ever imported,
unpickled or shown to a student unescaped.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import _worker as w

__all__ = ["Outcome", "ProblemOutcome", "read_outcome"]

MAX_FILE = 64 * 2 ** 20
FORMS = {w.FORM_ARRAY, w.FORM_SEQUENCE, w.FORM_MAPPING}


@dataclass(frozen=True)
class Outcome:
    """One worker's results: per cell, and per problem.

    Attributes
    ----------
    cells, cell_errors : ndarray
        Each cell's status (``_worker`` codes) and error line.
    problems : tuple of ProblemOutcome
    imports : tuple of str
        Modules imported while the student's code ran.
    finished : bool
        The worker wrote its last file.
    gave_up, error : str
        What ignored its time limit in a cell; what broke the worker itself.
    """

    cells: np.ndarray
    cell_errors: np.ndarray
    problems: tuple[ProblemOutcome, ...]
    imports: tuple[str, ...]
    finished: bool
    gave_up: str
    error: str

    def first(self, count: int) -> Outcome:
        """The outcome at the first ``count`` check points of each problem (the scored ones)."""
        return replace(self, problems=tuple(p.first(count) for p in self.problems))

    @property
    def calls_made(self) -> int:
        """Calls of the student's functions that were made (whatever came of them)."""
        return sum(int(np.sum(p.calls != w.CALL_NOT_RUN)) for p in self.problems)


@dataclass(frozen=True)
class ProblemOutcome:
    """One problem's results: per point, its value function's and derivative function's.

    Attributes
    ----------
    calls, call_errors, call_seconds : ndarray
        Shape (points, 2): the value function, the derivative function.
    values : list
        Per point, the value (an array) or None.
    derivatives : list
        Per point, the derivative as it came back (an array, a tuple of
        arrays, or a dict of them by part name), or None.
    probe : object
        The backward's answer at twice the first dout, or None.
    ended, gave_up : str
        How the process that ran the problem ended, when it did not end
        normally; what went on past its time limit.
    """

    calls: np.ndarray
    call_errors: np.ndarray
    call_seconds: np.ndarray
    values: list[np.ndarray | None]
    derivatives: list[Any]
    probe: Any
    ended: str = ""
    gave_up: str = ""

    def first(self, count: int) -> ProblemOutcome:
        """The results at the first ``count`` check points."""
        return replace(self, calls=self.calls[:count], call_errors=self.call_errors[:count],
                       call_seconds=self.call_seconds[:count], values=self.values[:count],
                       derivatives=self.derivatives[:count])


def read_outcome(workdir: Path, task: dict[str, Any]) -> Outcome:
    """Read ``workdir/out`` against the task the worker was given (safe against links and forged files)."""
    reader = _Reader(workdir)
    try:
        count = len(task["cells"])
        cells = reader.array(w.CELLS, "i", (count,), np.full(count, w.CELL_NOT_RUN))
        cells = np.where((cells >= 0) & (cells <= w.CELL_NOT_RUN), cells, w.CELL_NOT_RUN)
        problems = tuple(_problem(reader, j, problem) for j, problem in enumerate(task["problems"]))
        imports = {str(m) for name in [w.IMPORTS, *(w.result_file(j, "imports") for j in range(len(problems)))]
                   for m in reader.text(name, None)}
        return Outcome(cells=cells, cell_errors=reader.text(w.CELL_ERRORS, (count,)), problems=problems,
                       imports=tuple(sorted(imports)), finished=reader.load(w.DONE) is not None,
                       gave_up=reader.line(w.GAVE_UP), error=reader.line(w.ERROR))
    finally:
        reader.close()


def _problem(reader: _Reader, j: int, task: dict[str, Any]) -> ProblemOutcome:
    count, parts, limit = task["points"], task["parts"], task["limit"]
    calls = reader.array(w.result_file(j, "calls"), "i", (count, 2), np.full((count, 2), w.CALL_NOT_RUN))
    calls = np.where((calls >= 0) & (calls <= w.CALL_SKIPPED), calls, w.CALL_NOT_RUN)
    values = []
    for k in range(count):
        value = reader.load(w.result_file(j, "value", k))
        values.append(value if value is not None and value.dtype.kind == "f" and value.size <= limit else None)
    return ProblemOutcome(
        calls, reader.text(w.result_file(j, "call_errors"), (count, 2)),
        reader.array(w.result_file(j, "call_seconds"), "f", (count, 2), np.full((count, 2), np.nan)), values,
        [reader.parts(j, k, parts, limit) for k in range(count)], reader.parts(j, "probe", parts, limit),
        reader.line(w.result_file(j, "ended")), reader.line(w.result_file(j, "gave_up")))


class _Reader:
    """Opens the out folder once, without following links, and reads files relative to it."""

    def __init__(self, workdir: Path) -> None:
        self.folder: int | None = None
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        try:
            parent = os.open(workdir, flags)
            try:
                self.folder = os.open(w.OUT, flags, dir_fd=parent)
            finally:
                os.close(parent)
        except OSError:
            self.folder = None

    def close(self) -> None:
        if self.folder is not None:
            os.close(self.folder)

    def load(self, name: str) -> np.ndarray | None:
        if self.folder is None:
            return None
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=self.folder)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE:
                return None
            try:
                return np.load(file, allow_pickle=False)
            except Exception:  # a forged or truncated file: as if not written
                return None

    def array(self, name: str, kind: str, shape: tuple[int, ...], default: np.ndarray) -> np.ndarray:
        value = self.load(name)
        if value is None or value.dtype.kind not in kind or value.shape != shape:
            return default
        return value

    def text(self, name: str, shape: tuple[int, ...] | None) -> np.ndarray:
        """A text array of ``shape`` (None: any 1-d one), cut to `MESSAGE_LENGTH`; empty texts if missing."""
        value = self.load(name)
        if value is None or value.dtype.kind != "U" or (shape is not None and value.shape != shape) or (
                shape is None and (value.ndim != 1 or value.size > 10_000)):
            return np.full(shape if shape is not None else (0,), "", dtype=f"<U{w.MESSAGE_LENGTH}")
        return value.astype(f"<U{w.MESSAGE_LENGTH}")

    def line(self, name: str) -> str:
        """A 0-d text array's text ("" if missing or not one)."""
        value = self.load(name)
        return str(value)[:w.MESSAGE_LENGTH] if value is not None and value.dtype.kind == "U" and value.shape == () \
            else ""

    def parts(self, j: int, point: int | str, names: list[str], limit: int) -> Any:
        """A derivative as it came back: one array, a tuple of them, or a dict of them by name; or None.

        Its ``form`` file announces the form and the number of float arrays
        (at most one more than ``names``, ``limit`` numbers in all).
        """
        form = self.load(w.result_file(j, "form", point))
        if form is None or form.dtype.kind != "i" or form.shape != (2,):
            return None
        kind, count = int(form[0]), int(form[1])
        if kind not in FORMS or not 1 <= count <= len(names) + 1 or (kind == w.FORM_MAPPING and count != len(names)):
            return None
        parts = [self.load(w.result_file(j, f"g{n}", point)) for n in range(count)]
        arrays = [p for p in parts if p is not None and p.dtype.kind == "f"]
        if len(arrays) < count or sum(a.size for a in arrays) > limit:
            return None
        if kind == w.FORM_ARRAY:
            return arrays[0]
        return dict(zip(names, arrays)) if kind == w.FORM_MAPPING else tuple(arrays)
