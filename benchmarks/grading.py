"""Grading speed: seconds per submission with every protection on, 1 and 2 workers, beside nbgrader autograde.

A class of 50 submissions of the example course (notebooks/assignment: the
3-layer network), right ones and each classic bug in turn, is graded by
``gradwidget.grading.grade`` with the strongest isolation this machine
allows, with 1 and then 2 workers; the same notebooks go through
``nbgrader autograde`` (which runs each in a Jupyter kernel, with none of
gradwidget's protections). Targets: <= 1 s per submission per worker, and
near-linear in workers.

Run: ``python benchmarks/grading.py [--count 50] [--nbgrader-count 10]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from course import (
    ASSIGNMENT,
    CELL,
    NOTEBOOK,
    copy_course,
    nbgrader,
    nbgrader_course,
    solution_cells,
    with_gradient_bug,
    write_notebook,
)
from tables import ok, print_table

from gradwidget.grading import grade
from gradwidget.grading._cli import main as gradwidget_command
from gradwidget.grading._isolation import probe

VARIANTS = [
    solution_cells(),
    with_gradient_bug("G[:, 1:] += lam / m * Theta[:, 1:]", "G += lam / m * Theta"),
    with_gradient_bug(" * a[:, 1:] * (1 - a[:, 1:])", ""),
    with_gradient_bug("G.ravel() for G in grads", 'G.ravel(order="F") for G in grads'),
    with_gradient_bug("return np.concatenate([G.ravel() for G in grads])",
                      "return np.concatenate([G.ravel() for G in grads]) / m"),
]


def class_of(count: int) -> list[list[str]]:
    return [VARIANTS[k % len(VARIANTS)] for k in range(count)]


def timed_grading(spec: Path, paths: list[Path], out: Path, workers: int) -> float:
    start = time.perf_counter()
    graded = grade(spec, paths, out, workers=workers, progress=False)
    assert len(graded) == len(paths)
    assert all(g.status == "graded" for g in graded)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50, help="submissions graded by gradwidget")
    parser.add_argument("--nbgrader-count", type=int, default=10, help="submissions autograded by nbgrader")
    args = parser.parse_args()
    isolation = probe()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        spec = copy_course(folder)
        spec.write_text(spec.read_text().replace("cell = 1.5", "cell = 10").replace("call = 3", "call = 10"))
        paths = [write_notebook(folder / "class" / f"student{k:03d}.ipynb", cells)
                 for k, cells in enumerate(class_of(args.count))]
        one = timed_grading(spec, paths[:1], folder / "one", 1)
        serial = timed_grading(spec, paths, folder / "serial", 1)
        parallel = timed_grading(spec, paths, folder / "parallel", 2)
        rows += [("one submission alone (the spec loaded, isolation probed, the reference run)", f"{one:.2f} s",
                  "", ""),
                 (f"{args.count} submissions, 1 worker: per submission", f"{serial / args.count:.2f} s", "<= 1 s",
                  ok(serial / args.count <= 1)),
                 (f"{args.count} submissions, 2 workers: per submission per worker",
                  f"{2 * parallel / args.count:.2f} s", "<= 1 s", ok(2 * parallel / args.count <= 1)),
                 ("speedup of 2 workers over 1", f"{serial / parallel:.2f}x", "near 2x", ok(serial / parallel >= 1.6))]
        try:
            import nbgrader as _  # noqa: F401
        except ImportError:
            rows.append(("nbgrader autograde: nbgrader not installed (pip install -e .[test])", "", "", ""))
        else:
            course = nbgrader_course(folder / "nbgrader", {f"student{k:03d}": cells[:3] for k, cells in
                                                           enumerate(class_of(args.nbgrader_count))})
            start = time.perf_counter()
            nbgrader(course, "autograde", ASSIGNMENT, "--create")
            autograde = time.perf_counter() - start
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                gradwidget_command(["nbgrader", str(spec), "--course", str(course), "--assignment", ASSIGNMENT,
                                    "--notebook", NOTEBOOK, "--cell", CELL])
            isolated = time.perf_counter() - start
            rows += [(f"nbgrader autograde, {args.nbgrader_count} submissions: per submission",
                      f"{autograde / args.nbgrader_count:.2f} s", "about 4 s", ""),
                     ("  then gradwidget nbgrader (isolated grades into its gradebook): per submission",
                      f"{isolated / args.nbgrader_count:.2f} s", "", "")]
    print(f"gradwidget grading speed; isolation: {isolation.describe()}\n")
    print_table(("what", "measured", "target", "met"), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
