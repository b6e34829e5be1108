"""Grading a class: each submission run by an isolated worker, scored against the reference, written out.

The trusted side (this module, in the grader's process or its pool's) takes
each submission through the pipeline: the spec's problems, the check points
drawn for it, the reference's answers there, a job folder holding only the
student's code and the problems' arguments, the worker's run in the sandbox,
its outcome read as untrusted numbers, the score, and the outputs.
Submissions run one per worker process, several at a time with
``workers=N`` (a process pool) or on a dask.distributed cluster.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from ._outputs import feedback_html, row_reason, write_grades, write_submission
from ._points import hidden_seed, public_seed, read_secret
from ._record import course_digest, read_record, submission_digest, write_record
from ._reference import ProblemAnswers, load_answers, problem_answers
from ._scoring import Graded, score, unscored
from ._spec import Spec, SpecError, load_spec
from ._submission import Submission, class_members, imported_modules, read_submissions
from .sandbox import WORKER, Isolation, job_folder, job_sizes, probe, read_outcome, rlimits, run_worker, write_job

__all__ = ["Context", "SelfCheck", "grade", "grade_one", "self_check"]


@dataclass(frozen=True)
class Context:
    """What every grading job shares (it travels to pool processes and dask workers)."""

    spec_path: Path
    out: Path
    public: bool
    isolation: str
    secret: bytes | None
    protected: tuple[Path, ...]  # every submission's files, hidden from every worker
    course: str  # the digest of what every grade depends on (spec, reference, data, secret, version)
    incremental: bool = False  # reuse a grade whose record says its inputs are unchanged


def grade(spec_path: str | Path, submissions: Iterable[str | Path], out: str | Path, *, workers: int = 1,
          dask: str | None = None, public: bool = False, isolation: str = "auto", progress: bool = True,
          ids: dict[str, str] | None = None, incremental: bool = False) -> list[Graded]:
    """Grade submissions; write ``out/grades.csv`` and ``out/<id>/{results.json,feedback.html,record.json}``.

    Parameters
    ----------
    spec_path : path
        The assignment spec (TOML).
    submissions : paths
        ``.ipynb`` or ``.py`` files, or class folders: in a folder each such
        file is a submission (its stem the id) and each subfolder one
        submission made of its files. A folder named in ``ids`` is one
        submission.
    out : path
        The output folder (made if missing).
    workers : int
        Submissions graded at once on a process pool.
    dask : str, optional
        A dask.distributed scheduler's address to grade on instead (the spec,
        the submissions and ``out`` must be at the same paths there).
    public : bool
        Grade at the public points only (a self-check; no secret needed).
    isolation : str
        ``"auto"`` (the strongest available), or one of ``full``,
        ``user-namespace``, ``limits``.
    progress : bool
        A progress bar over submissions.
    ids : dict, optional
        Submission path -> id, instead of the file's stem.
    incremental : bool
        Reuse ``out``'s grade of each submission whose inputs are unchanged
        (its files and id; the spec, reference, answers, data, secret and
        gradwidget's version, as ``record.json`` holds their digest); grade
        the rest. A run that stopped half-way resumes so.

    Returns
    -------
    list of Graded
        In the order given. Every submission gets one, whatever it did;
        ``reused`` says which were read back from ``out``.
    """
    if sys.platform == "emscripten":
        raise RuntimeError("grading runs each submission in a process of its own, and this Python (Pyodide, as in "
                           "JupyterLite) cannot start processes: grade on a machine with CPython (pip install "
                           "gradwidget; gradwidget grade SPEC SUBMISSIONS --out DIR)")
    spec = load_spec(spec_path)
    if not public and spec.reference_file is None:
        raise SpecError(f"{spec.path.name} holds the reference's answers at the public points only (a handout's "
                        "spec): grading at hidden points needs [reference] file; self-check with --public")
    chosen = probe(isolation)
    secret = None if public else read_secret(spec)
    named = frozenset(Path(p).resolve() for p in ids or {})
    paths = class_members([Path(p).resolve() for p in submissions], named)
    read = read_submissions(paths, ids)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    protected = tuple(file for submission in read for file in submission.files)
    context = Context(spec.path, out, public, chosen.level, secret, protected,
                      course_digest(spec, secret, public, chosen.level), incremental)
    graded = _run_all(context, read, workers, dask, progress)
    write_grades(spec, graded, out / "grades.csv")
    return graded


def _run_all(context: Context, submissions: list[Submission], workers: int, dask: str | None,
             progress: bool) -> list[Graded]:
    bar = _bar(len(submissions), progress)
    try:
        if dask is not None:
            from distributed import Client

            with Client(dask) as client:
                futures = client.map(grade_one, [context] * len(submissions), submissions, pure=False)
                return _collect(futures, lambda f: f.result(), bar)
        if workers > 1:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                return _collect([pool.submit(grade_one, context, s) for s in submissions], lambda f: f.result(),
                                bar)
        graded = []
        for submission in submissions:
            graded.append(grade_one(context, submission))
            bar.update(1)
        return graded
    finally:
        bar.close()


def _collect(futures: list[Any], result: Callable[[Any], Graded], bar: Any) -> list[Graded]:
    """Results in submission order, advancing the bar as each one ends."""
    order = {id(f): k for k, f in enumerate(futures)}
    graded: list[Graded | None] = [None] * len(futures)
    for future in _completed(futures):
        graded[order[id(future)]] = result(future)
        bar.update(1)
    return [g for g in graded if g is not None]


def _completed(futures: list[Any]) -> Iterable[Any]:
    """concurrent.futures' or dask's futures, as each one completes."""
    if futures and not hasattr(futures[0], "_condition"):  # dask.distributed futures
        from distributed import as_completed as dask_completed

        return dask_completed(futures)
    return as_completed(futures)


def _bar(total: int, show: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="grading", unit="submission", disable=not show or total < 2)


def grade_one(context: Context, submission: Submission) -> Graded:
    """Grade one submission and write its results.json, feedback.html and record.json (or reuse them)."""
    spec = _spec(context.spec_path, context.course)
    folder = context.out / submission.id
    inputs = submission_digest(context.course, submission.id, submission.files)
    if context.incremental and (kept := read_record(folder, inputs, spec.items)) is not None:
        return kept
    isolation = Isolation(context.isolation)
    if submission.problem:
        graded = unscored(spec, submission.id, "invalid", submission.problem, isolation=isolation.describe())
    else:
        graded = _graded(spec, context, isolation, submission, _answers(spec, context, submission.id))
    write_submission(spec, graded, folder)
    write_record(folder, inputs, graded, row_reason(graded))
    return graded


def _answers(spec: Spec, context: Context, identifier: str) -> list[ProblemAnswers]:
    """The reference's answers at the submission's check points (a handout's saved ones at the public points)."""
    if context.public:
        if spec.reference_file is None:
            return load_answers(spec, public_seed(spec), spec.public)
        return problem_answers(spec, public_seed(spec), spec.public)
    return problem_answers(spec, hidden_seed(spec, identifier, context.secret or b""), spec.hidden)


def _graded(spec: Spec, context: Context, isolation: Isolation, submission: Submission,
            answers: list[ProblemAnswers]) -> Graded:
    size, results = job_sizes(spec, submission.cells, answers)
    with job_folder(isolation, size, results) as (workdir, uid):
        task = write_job(workdir, spec, submission.cells, answers, rlimits(spec.limits, uid is not None))
        if uid is not None:
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, uid, uid)
        run = run_worker(isolation, workdir, uid, spec.limits, _hidden(spec, context, workdir))
        outcome = read_outcome(workdir, task)
    return score(spec, answers, outcome, run, submission.id, imported_modules(submission.cells),
                 isolation.describe())


@functools.lru_cache(maxsize=8)
def _spec(path: Path, course: str) -> Spec:
    """The spec, read once per process for each state of the course (``course``, its digest)."""
    return load_spec(path)


def _hidden(spec: Spec, context: Context, workdir: Path) -> list[Path]:
    """What the worker must not see: the course's folders (or, where one holds Python itself, its files)."""
    needed = [Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve(),
              WORKER.resolve(), workdir]
    course_files = [p for p in (spec.path, spec.reference_file, spec.answers_file, spec.template, spec.solution)
                    if p is not None]
    if spec.secret.startswith("file:"):
        course_files.append((spec.folder / spec.secret[5:]).resolve())
    hidden: list[Path] = []
    for files in (course_files, list(context.protected), [context.out / "grades.csv"]):
        for folder in sorted({f.parent for f in files}):
            if any(n == folder or folder in n.parents for n in needed):
                hidden += [f for f in files if f.parent == folder]  # Python lives here: hide the files only
            else:
                hidden.append(folder)
    return hidden


@dataclass(frozen=True)
class SelfCheck:
    """A self-check's grade, shown as its feedback in a notebook."""

    graded: Graded
    html: str

    def _repr_html_(self) -> str:
        return self.html


def self_check(spec_path: str | Path, submission: str | Path, out: str | Path | None = None) -> SelfCheck:
    """Grade one's own notebook at the public points, as it will be graded (for students, before submitting)."""
    with tempfile.TemporaryDirectory() as scratch:
        (graded,) = grade(spec_path, [submission], out or scratch, public=True, progress=False)
    return SelfCheck(graded, feedback_html(load_spec(spec_path), graded))
