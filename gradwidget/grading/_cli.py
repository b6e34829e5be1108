"""The ``gradwidget`` command: validate, grade, export, gradescope, handout, nbgrader.

A mistake in the command or the spec is one line on stderr and exit code 2;
``grade`` exits 0 once every submission has a grade, whatever the scores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._spec import SpecError
from .sandbox import LEVELS

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradwidget", description="Autograde hand-written costs and gradients.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    isolation: dict[str, Any] = {"choices": ["auto", *LEVELS], "default": "auto",
                                 "help": "how workers are isolated (default: the strongest this machine allows)"}

    validate = commands.add_parser("validate", help="prove a spec works: reference, tolerances, solution, template")
    validate.add_argument("spec", type=Path, help="the assignment spec (TOML)")
    validate.add_argument("--isolation", **isolation)

    grade = commands.add_parser("grade", help="grade submissions into a folder of results")
    grade.add_argument("spec", type=Path, help="the assignment spec (TOML)")
    grade.add_argument("submissions", type=Path, nargs="+", metavar="SUBMISSION",
                       help=".ipynb or .py files (the stem is the id), or a class folder: each file in it is "
                            "a submission, each subfolder one submission made of its files (the folder's name "
                            "is the id); with --id, a folder is one submission")
    grade.add_argument("--out", type=Path, required=True, metavar="DIR", help="where results go")
    where = grade.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=1, metavar="N", help="submissions graded at once")
    where.add_argument("--dask", metavar="ADDRESS", help="grade on this dask.distributed scheduler")
    grade.add_argument("--public", action="store_true", help="the public points only: a self-check")
    grade.add_argument("--id", metavar="ID", help="the id of the one submission given, a file or a folder of its files "
                       "(default: its stem)")
    grade.add_argument("--incremental", action="store_true",
                       help="reuse DIR's grade of each submission whose files, spec, reference, data and gradwidget "
                            "version are unchanged; grade the rest (a run that stopped resumes so)")
    grade.add_argument("--isolation", **isolation)
    grade.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    export = commands.add_parser("export", help="a graded folder's grades as Canvas's or Moodle's import file")
    export.add_argument("out", type=Path, metavar="OUT", help="the folder `gradwidget grade --out` wrote")
    lms = export.add_mutually_exclusive_group(required=True)
    lms.add_argument("--canvas", type=Path, metavar="GRADEBOOK.csv",
                     help="Canvas's gradebook export; submissions are matched to SIS Login ID, SIS User ID or ID")
    lms.add_argument("--moodle", action="store_true", help="Moodle's grade import CSV: identifier, grade, feedback")
    export.add_argument("--column", metavar="NAME (ID)", help="Canvas: the assignment's column, as headed")
    export.add_argument("--id", dest="identifier", choices=["username", "email", "idnumber"], default="username",
                        help="Moodle: what the submissions' ids are (default: username)")
    export.add_argument("--item", default="Grade", help="Moodle: the grade column's heading (default: Grade)")
    export.add_argument("-o", "--output", type=Path, required=True, help="the CSV to write")

    gradescope = commands.add_parser("gradescope", help="build Gradescope's autograder.zip")
    gradescope.add_argument("spec", type=Path, help="the assignment spec (TOML)")
    gradescope.add_argument("-o", "--output", type=Path, default=Path("autograder.zip"), help="the zip to write")

    handout = commands.add_parser("handout", help="what students get: template, data, a spec with public answers")
    handout.add_argument("spec", type=Path, help="the assignment spec (TOML)")
    handout.add_argument("--out", type=Path, required=True, metavar="DIR", help="the handout folder")

    nbgrader = commands.add_parser("nbgrader", help="grade an nbgrader course's submissions into its gradebook")
    nbgrader.add_argument("spec", type=Path, help="the assignment spec (TOML)")
    nbgrader.add_argument("--course", type=Path, required=True, metavar="DIR", help="the nbgrader course folder")
    nbgrader.add_argument("--assignment", required=True, help="the nbgrader assignment")
    nbgrader.add_argument("--notebook", required=True, help="the notebook's name, without .ipynb")
    nbgrader.add_argument("--cell", required=True, metavar="GRADE_ID",
                          help="the grade cell whose score gradwidget sets")
    nbgrader.add_argument("--isolation", **isolation)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; the exit code says whether it could do its job."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (SpecError, ValueError, OSError) as exc:
        print(f"gradwidget {args.command}: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "validate":
        from ._validate import validate

        validation = validate(args.spec, args.isolation)
        print(validation)
        return 0 if validation.ok else 1
    if args.command == "grade":
        from ._grade import grade

        if args.id and len(args.submissions) != 1:
            raise ValueError("--id names the one submission given; several were given")
        ids = {str(args.submissions[0]): args.id} if args.id else None
        graded = grade(args.spec, args.submissions, args.out, workers=args.workers, dask=args.dask,
                       public=args.public, isolation=args.isolation, progress=args.progress, ids=ids,
                       incremental=args.incremental)
        width = max(len(g.id) for g in graded)
        for g in graded:
            print(f"{g.id:<{width}}  {g.score:6.4g} / {g.max_score:<6.4g} {g.status:<8} "
                  f"{'reused  ' if g.reused else ''}{';'.join(g.flags)}{'  ' + g.reason if g.reason else ''}")
        reused = sum(g.reused for g in graded)
        kept = f" ({reused} reused: their inputs are unchanged)" if args.incremental else ""
        print(f"{len(graded)} graded into {args.out / 'grades.csv'}{kept}")
        return 0
    if args.command == "export":
        from ._lms import export_canvas, export_moodle

        if args.canvas is not None and not args.column:
            raise ValueError("--canvas needs --column: the assignment's column in the gradebook, e.g. \"HW3 (1234)\"")
        print(export_canvas(args.out, args.canvas, args.column, args.output) if args.canvas is not None
              else export_moodle(args.out, args.output, args.identifier, args.item))
        return 0
    if args.command == "gradescope":
        from ._gradescope import build_autograder

        build_autograder(args.spec, args.output)
        print(f"wrote {args.output}")
        return 0
    if args.command == "handout":
        from ._handout import make_handout

        for path in make_handout(args.spec, args.out):
            print(f"wrote {path}")
        return 0
    from ._nbgrader import grade_course

    for student, score in grade_course(args.spec, args.course, args.assignment, args.notebook, args.cell,
                                       args.isolation).items():
        print(f"{student}: {score:g}")
    return 0
