"""Submissions as the grader reads them: code cells, an id, and the modules the code names.

The grader only reads a submission (JSON or text) and never runs it: the
cells go to a worker. Notebook syntax (magics, ``!shell`` lines) is turned
into plain Python by IPython's own text transformer; in the worker, magics
do nothing except those that run their cell (``%%time``, ``%%capture``,
``%%gradcheck``).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_BYTES", "Submission", "class_members", "imported_modules", "read_submissions", "top_level_functions"]

MAX_BYTES = 32 * 2 ** 20  # a larger submission file is not read
SUFFIXES = (".ipynb", ".py")
PERCENT_CELL = re.compile(r"^# ?%%.*$", re.MULTILINE)  # cell markers of a .py file in the percent format


@dataclass(frozen=True)
class Submission:
    """One student's work: an id (the file stem, or the folder's name), its files and code cells.

    ``problem`` says why it could not be read (the cells are then empty).
    """

    id: str
    files: tuple[Path, ...]
    cells: tuple[str, ...]
    problem: str | None = None


def class_members(paths: list[Path], whole: frozenset[Path] = frozenset()) -> list[Path]:
    """The submissions that ``paths`` name: a file is one; a folder is a class of them.

    In a class folder each ``.ipynb`` or ``.py`` file is a submission (its
    stem the id) and each subfolder is one submission made of its files (its
    name the id). Hidden files and folders (``.ipynb_checkpoints``) are left out.
    A folder in ``whole`` (one given an id of its own) is one submission.
    """
    members: list[Path] = []
    for path in paths:
        if not path.is_dir() or path in whole:
            members.append(path)
            continue
        inside = sorted(p for p in path.iterdir() if not p.name.startswith(".")
                        and (p.is_dir() or p.suffix in SUFFIXES))
        if not inside:
            raise ValueError(f"the class folder {path} holds no .ipynb or .py file, nor a folder of them (a "
                             "submission made of several files)")
        members += inside
    return members


def read_submissions(paths: list[Path], ids: dict[str, str] | None = None) -> list[Submission]:
    """Read every submission named (files, or folders of them); ids are unique or it is an error.

    ``ids`` maps a path (as given) to the id to use instead of its stem.
    """
    ids = {str(Path(k).resolve()): v for k, v in (ids or {}).items()}
    submissions = [_read(path, ids.get(str(path.resolve()))) for path in paths]
    seen: dict[str, Path] = {}
    for submission, path in zip(submissions, paths):
        if submission.id in seen:
            raise ValueError(f"two submissions have the id {submission.id!r}: {seen[submission.id]} and {path}; "
                             "rename one (the id is the file's stem or the folder's name)")
        seen[submission.id] = path
    return submissions


def _read(path: Path, given_id: str | None) -> Submission:
    identifier = _safe_id(given_id or (path.stem if path.suffix in SUFFIXES else path.name))
    if not path.exists():
        return Submission(identifier, (), (), f"there is no {path.name} (looked for {path})")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        if not files:
            return Submission(identifier, (), (), f"the folder {path.name} holds no .ipynb or .py file")
    elif path.suffix in SUFFIXES and path.is_file():
        files = [path]
    else:
        return Submission(identifier, (path,), (), f"{path.name} is not a .ipynb or .py file")
    cells: list[str] = []
    defined: dict[str, Path] = {}
    for file in files:
        try:
            own = _cells(file)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            return Submission(identifier, tuple(files), (), f"{file.name} cannot be read: {exc}")
        for name in sorted(top_level_functions(own)):
            if name in defined:
                return Submission(identifier, tuple(files), (), (
                    f"{defined[name].name} and {file.name} in the folder {path.name} both define {name}: the files "
                    "of a folder are one submission; if they are different students', put them in the class "
                    "folder itself, one file each"))
            defined[name] = file
        cells += own
    if not any(cell.strip() for cell in cells):
        return Submission(identifier, tuple(files), (), f"{path.name} holds no code: it is empty")
    return Submission(identifier, tuple(files), tuple(cells))


def top_level_functions(cells: Iterable[str]) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """The functions the cells define at their top level (read, not run): the last definition of each name.

    A cell that does not parse (a magic, a typo) defines nothing here.
    """
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for cell in cells:
        try:
            tree = ast.parse(cell)
        except (SyntaxError, ValueError):
            continue
        found.update({node.name: node for node in tree.body
                      if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)})
    return found


def _safe_id(stem: str) -> str:
    """The id, safe as a file name and a spreadsheet cell: letters, digits, ``.``, ``_``, ``-``.

    It never starts with a dot (a hidden or parent folder) or a minus (a formula).
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:100]
    return "_" + cleaned[1:] if not cleaned or cleaned[0] in ".-" else cleaned


def _cells(file: Path) -> list[str]:
    if file.stat().st_size > MAX_BYTES:
        raise ValueError(f"it is larger than {MAX_BYTES // 2 ** 20} MiB")
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".py":
        parts = PERCENT_CELL.split(text)
        return [part for part in parts if part.strip()]
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"it is not a notebook: its text is not JSON (line {exc.lineno}, column {exc.colno}): a "
                         "script saved as .ipynb, or a notebook cut short?") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError("it is not a notebook (no list of cells)")
    from IPython.core.inputtransformer2 import TransformerManager

    transformer = TransformerManager()
    cells = []
    for cell in notebook["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if not isinstance(source, str):
            raise ValueError("a code cell's source is not text")
        try:
            cells.append(transformer.transform_cell(source))
        except (SyntaxError, ValueError):
            cells.append(source)  # the worker reports its syntax error
    return cells


def imported_modules(cells: tuple[str, ...]) -> set[str]:
    """Modules the code names in import statements, ``__import__`` or ``importlib.import_module`` (read, not run)."""
    found: set[str] = set()
    for cell in cells:
        try:
            tree = ast.parse(cell)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
            elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[0].value, str)
                  and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("__import__", "import_module")):
                found.add(node.args[0].value)
    return found
