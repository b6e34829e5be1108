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
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from ._copies import canonical_forms, code_prints, copy_flags
from ._outputs import feedback_html, row_reason, write_flags, write_grades, write_submission
from ._points import hidden_seed, public_seed, read_secret, shared_seed
from ._record import RECORD, course_digest, read_record, submission_digest, write_record
from ._reference import ProblemAnswers, load_answers, problem_answers
from ._scoring import Graded, score, shared_answers, unscored
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
    if not public:
        graded = _flag_copies(spec, read, graded, out)
    write_grades(spec, graded, out / "grades.csv")
    return graded


def _flag_copies(spec: Spec, submissions: list[Submission], graded: list[Graded], out: Path) -> list[Graded]:
    """Each submission of a pair that looks copied gets ``copy-of:ID`` (grades.csv and results.json), for review."""
    given = canonical_forms(read_submissions([spec.template])[0].cells) if spec.template is not None else frozenset()
    flags = copy_flags({s.id: code_prints(s.cells, given) for s in submissions},
                       {g.id: g.shared_answers for g in graded})
    flagged = []
    for g in graded:
        if g.id in flags:
            g = replace(g, flags=(*g.flags, *flags[g.id]))
        if g.id in flags or g.reused:  # a reused grade's pairs are the class's of today
            write_flags(out / g.id, g.flags)
        flagged.append(g)
    return flagged


def _run_all(context: Context, submissions: list[Submission], workers: int, dask: str | None,
             progress: bool) -> list[Graded]:
    bar = _bar(len(submissions), progress)
    try:
        if dask is not None:
            from distributed import Client

            with Client(dask) as client:  # a lost worker's submissions are graded again elsewhere (retries)
                futures = client.map(grade_one, [context] * len(submissions), submissions, pure=False)
                return _collect(context, submissions, futures, bar)
        if workers > 1:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                return _collect(context, submissions, [pool.submit(grade_one, context, s) for s in submissions],
                                bar)
        graded = []
        for submission in submissions:
            graded.append(grade_one(context, submission))
            bar.update(1)
        return graded
    finally:
        bar.close()


def _collect(context: Context, submissions: list[Submission], futures: list[Any], bar: Any) -> list[Graded]:
    """Results in submission order, advancing the bar as each one ends.

    A submission whose grading process died (a pool process killed, a dask
    worker lost more often than the scheduler retries) gets status
    ``error`` with the reason, and the others their grades.
    """
    order = {id(f): k for k, f in enumerate(futures)}
    graded: list[Graded | None] = [None] * len(futures)
    for future in _completed(futures):
        k = order[id(future)]
        try:
            graded[k] = future.result()
        except Exception as exc:  # the grader's process, not the submission (that runs in a sandbox of its own)
            graded[k] = _lost(context, submissions[k], exc)
        bar.update(1)
    return [g for g in graded if g is not None]


def _lost(context: Context, submission: Submission, exc: Exception) -> Graded:
    """The grade of a submission whose grading process died: an error to grade again, with its outputs."""
    spec = _spec(context.spec_path, context.course)
    reason = (f"the grader's process died while grading it ({type(exc).__name__}: {str(exc)[:200] or 'no message'}); "
              "grade again (--incremental regrades only these)")
    graded = unscored(spec, submission.id, "error", reason, isolation=Isolation(context.isolation).describe())
    write_submission(spec, graded, context.out / submission.id)
    (context.out / submission.id / RECORD).unlink(missing_ok=True)  # an earlier run's grade is not this one
    return graded


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
        shared = None if context.public else _shared(context.spec_path, context.course, context.secret or b"")
        graded = _graded(spec, context, isolation, submission, _answers(spec, context, submission.id), shared)
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
            answers: list[ProblemAnswers], shared: list[ProblemAnswers] | None) -> Graded:
    """Run the submission at its check points (and, unscored, at the class's shared point) and score it."""
    count = len(answers[0].points) if answers else 0
    run_at = answers if shared is None else [ProblemAnswers(a.problem, a.points + s.points)
                                             for a, s in zip(answers, shared)]
    size, results = job_sizes(spec, submission.cells, run_at)
    with job_folder(isolation, size, results) as (workdir, uid):
        task = write_job(workdir, spec, submission.cells, run_at, rlimits(spec.limits, uid is not None))
        if uid is not None:
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, uid, uid)
        run = run_worker(isolation, workdir, uid, spec.limits, _hidden(spec, context, workdir))
        outcome = read_outcome(workdir, task)
    graded = score(spec, answers, outcome.first(count), run, submission.id, imported_modules(submission.cells),
                   isolation.describe())
    return graded if shared is None else replace(graded, shared_answers=shared_answers(shared, outcome, graded,
                                                                                        count))


@functools.lru_cache(maxsize=8)
def _spec(path: Path, course: str) -> Spec:
    """The spec, read once per process for each state of the course (``course``, its digest)."""
    return load_spec(path)


@functools.lru_cache(maxsize=8)
def _shared(path: Path, course: str, secret: bytes) -> list[ProblemAnswers]:
    """The reference at the class's shared point: the same for every submission, computed once per process."""
    spec = _spec(path, course)
    return problem_answers(spec, shared_seed(spec, secret), 1)


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
