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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _worker as w
from ._spec import Spec

__all__ = ["Outcome", "ProblemOutcome", "read_outcome"]

MAX_FILE = 64 * 2 ** 20
FORMS = {w.FORM_ARRAY, w.FORM_SEQUENCE, w.FORM_MAPPING}


@dataclass(frozen=True)
class Outcome:
    """One worker's results: per cell, and per check point for the cost and the gradient.

    Attributes
    ----------
    cells, cell_errors : ndarray
        Each cell's status (``_worker`` codes) and error line.
    calls, call_errors, call_seconds : ndarray
        Shape (points, 2): cost, gradient.
    costs : ndarray
        Per point; NaN where none came back.
    gradients : list
        Per point, the gradient as it came back (an array, a list, or a dict
        by block name), or None.
    imports : tuple of str
        Modules imported while the student's code ran.
    finished : bool
        The worker wrote its last file.
    gave_up, error : str
        What ignored its time limit; what broke the worker itself.
    """

    cells: np.ndarray
    cell_errors: np.ndarray
    calls: np.ndarray
    call_errors: np.ndarray
    call_seconds: np.ndarray
    costs: np.ndarray
    gradients: list[Any]
    imports: tuple[str, ...]
    finished: bool
    gave_up: str
    error: str
    problems: tuple[ProblemOutcome, ...] = ()


@dataclass(frozen=True)
class ProblemOutcome:
    """One problem's results (a spec of problems): per point, its value function's and derivative's.

    Attributes
    ----------
    calls, call_errors, call_seconds : ndarray
        Shape (points, 2): the value function, the derivative function.
    values : list
        Per point, the value (an array) or None.
    derivatives : list
        Per point, the parts the derivative came back in (an array, or a
        tuple of arrays), or None.
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


def read_outcome(workdir: Path, spec: Spec, cell_count: int, point_count: int,
                 limits: tuple[int, ...] = ()) -> Outcome:
    """Read ``workdir/out`` (safe against links and forged files, whoever owns the folder).

    ``limits`` caps, per problem, the numbers a value or a derivative may hold.
    """
    reader = _Reader(workdir)
    try:
        cells = reader.array("cells.npy", "i", (cell_count,), np.full(cell_count, w.CELL_NOT_RUN))
        cells = np.where((cells >= 0) & (cells <= w.CELL_NOT_RUN), cells, w.CELL_NOT_RUN)
        problems = tuple(_problem(reader, f"q{j}_", point_count, len(problem.wrt), limit)
                         for j, (problem, limit) in enumerate(zip(spec.problems, limits)))
        calls, errors, seconds = reader.calls("", 0 if problems else point_count)
        costs = np.array([reader.number(f"p{k}_cost.npy") for k in range(point_count)] if not problems else [])
        return Outcome(
            cells=cells, cell_errors=reader.text("cell_errors.npy", (cell_count,)),
            calls=np.concatenate([calls, *(p.calls for p in problems)]), call_errors=errors, call_seconds=seconds,
            costs=costs, gradients=[reader.gradient(k, spec) for k in range(len(costs))],
            imports=tuple(str(m) for m in reader.text("imports.npy", None)),
            finished=reader.load("done.npy") is not None,
            gave_up=reader.line("gave_up.npy"), error=reader.line("error.npy"), problems=problems)
    finally:
        reader.close()


def _problem(reader: _Reader, prefix: str, count: int, names: int, limit: int) -> ProblemOutcome:
    calls, errors, seconds = reader.calls(prefix, count)
    values = []
    for k in range(count):
        value = reader.load(f"{prefix}p{k}_value.npy")
        values.append(value if value is not None and value.dtype.kind == "f" and value.size <= limit else None)
    return ProblemOutcome(calls, errors, seconds, values,
                          [reader.parts(f"{prefix}p{k}", names, limit) for k in range(count)],
                          reader.parts(f"{prefix}probe", names, limit), reader.line(f"{prefix}ended.npy"),
                          reader.line(f"{prefix}gave_up.npy"))


class _Reader:
    """Opens the out folder once, without following links, and reads files relative to it."""

    def __init__(self, workdir: Path) -> None:
        self.folder: int | None = None
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        try:
            parent = os.open(workdir, flags)
            try:
                self.folder = os.open("out", flags, dir_fd=parent)
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

    def calls(self, prefix: str, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """How each call went (codes beyond the known ones count as not run), its error and its seconds."""
        calls = self.array(f"{prefix}calls.npy", "i", (count, 2), np.full((count, 2), w.CALL_NOT_RUN))
        calls = np.where((calls >= 0) & (calls <= w.CALL_SKIPPED), calls, w.CALL_NOT_RUN)
        return (calls, self.text(f"{prefix}call_errors.npy", (count, 2)),
                self.array(f"{prefix}call_seconds.npy", "f", (count, 2), np.full((count, 2), np.nan)))

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

    def number(self, name: str) -> float:
        value = self.load(name)
        return float(value) if value is not None and value.dtype.kind == "f" and value.shape == () else np.nan

    def gradient(self, k: int, spec: Spec) -> Any:
        """The gradient at point k in the form it came back in, or None."""
        found = self.form_and_parts(f"p{k}", len(spec.shapes), 4 * spec.size + 16)
        if found is None:
            return None
        kind, parts = found
        if kind == w.FORM_ARRAY:
            return parts[0]
        if kind == w.FORM_MAPPING:
            return dict(zip(spec.names, parts)) if len(parts) == len(spec.names) else None
        return parts

    def parts(self, prefix: str, names: int, limit: int) -> Any:
        """A derivative as it came back: one array, or a tuple of them (a dict's, in the names' order); or None."""
        found = self.form_and_parts(prefix, names, limit)
        if found is None:
            return None
        kind, parts = found
        return parts[0] if kind == w.FORM_ARRAY else tuple(parts)

    def form_and_parts(self, prefix: str, names: int, limit: int) -> tuple[int, list[np.ndarray]] | None:
        """``prefix_form.npy`` and the float arrays it announces (at most ``names + 1``, ``limit`` numbers)."""
        form = self.load(f"{prefix}_form.npy")
        if form is None or form.dtype.kind != "i" or form.shape != (2,):
            return None
        kind, count = int(form[0]), int(form[1])
        if kind not in FORMS or not 1 <= count <= names + 1:
            return None
        parts = [self.load(f"{prefix}_g{j}.npy") for j in range(count)]
        arrays = [p for p in parts if p is not None and p.dtype.kind == "f"]
        if len(arrays) < count or sum(a.size for a in arrays) > limit:
            return None
        return kind, arrays
