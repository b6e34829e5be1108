"""Grading speed: seconds per submission with every protection on, 1 and 2 workers, beside nbgrader autograde.

For each example course, a class of 50 submissions, right ones and each
classic bug in turn, is graded by ``gradwidget.grading.grade`` with the
strongest isolation this machine allows, with 1 and then 2 workers; the same
notebooks go through ``nbgrader autograde`` (which runs each in a Jupyter
kernel, with none of gradwidget's protections). The courses:
notebooks/assignment (one cost and its gradient: the 3-layer network; target
<= 1 s per submission per worker) and notebooks/layers-assignment (nine
problems, each a layer's forward and backward or a loss, three points each,
the backward called once more at 2 dout; target <= 2 s). Both near-linear in
workers.

Then, per course: ``--incremental`` on the graded class with nothing changed
and with one submission changed, against the full run (target <= 0.3 x);
copy detection's precision and recall on the planted classes
(``tests/planted.py``: independent styles, look-alike bugs, disguised and
rewritten copies); and, with ``--dask-count N``, a class of N generated
submissions on a local dask cluster of 1, 2 and 4 worker processes
(submissions per second; a near-linear rise up to the machine's cores).

Run: ``python benchmarks/grading.py [--count 50] [--nbgrader-count 10] [--course backprop|layers|both]
[--dask-count 500]``.
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
    LAYERS_COURSE,
    NOTEBOOK,
    copy_course,
    nbgrader,
    nbgrader_course,
    solution_cells,
    with_gradient_bug,
    with_layer_bug,
    write_notebook,
)
from planted import planted_class, planted_layers_class
from tables import ok, print_table

from gradwidget.grading import grade
from gradwidget.grading._cli import main as gradwidget_command
from gradwidget.grading.sandbox import probe

BACKPROP = [
    solution_cells(),
    with_gradient_bug("G[:, 1:] += lam / m * Theta[:, 1:]", "G += lam / m * Theta"),
    with_gradient_bug(" * a[:, 1:] * (1 - a[:, 1:])", ""),
    with_gradient_bug("G.ravel() for G in grads", 'G.ravel(order="F") for G in grads'),
    with_gradient_bug("return np.concatenate([G.ravel() for G in grads])",
                      "return np.concatenate([G.ravel() for G in grads]) / m"),
]
LAYERS = [
    solution_cells(LAYERS_COURSE),
    with_layer_bug("dw = x_rows.T.dot(dout)", "dw = dout.T.dot(x_rows)"),
    with_layer_bug("db = np.sum(dout, axis=0)", "db = np.sum(dout, axis=1)"),
    with_layer_bug("dx = dout.copy()\n    dx[x <= 0] = 0", "dx = (x > 0).astype(float)"),
    with_layer_bug("dx = dxc + dmu / N", "dx = dxc"),
    with_layer_bug("rnn_step_backward(dh[:, t, :] + dprev_h, cache[t])", "rnn_step_backward(dh[:, t, :], cache[t])"),
]
COURSES = {  # name: (folder, submissions, target seconds per submission per worker, cells nbgrader's notebook has)
    "backprop": (Path(__file__).resolve().parents[1] / "notebooks" / "assignment", BACKPROP, 1.0, 3),
    "layers": (LAYERS_COURSE, LAYERS, 2.0, 10),
}


def class_of(variants: list[list[str]], count: int) -> list[list[str]]:
    return [variants[k % len(variants)] for k in range(count)]


def timed_grading(spec: Path, paths: list[Path], out: Path, workers: int, incremental: bool = False,
                  dask: str | None = None) -> float:
    start = time.perf_counter()
    graded = grade(spec, paths, out, workers=workers, progress=False, incremental=incremental, dask=dask)
    assert len(graded) == len(paths)
    assert all(g.status == "graded" for g in graded)
    return time.perf_counter() - start


def copy_row(name: str, folder: Path) -> tuple[str, str, str, str]:
    """Copy detection on the course's planted class: pairs flagged, precision and recall."""
    members, pairs = (planted_class if name == "backprop" else planted_layers_class)()
    spec = copy_course(folder, COURSES[name][0])
    paths = [write_notebook(folder / "class" / f"{member}.ipynb", cells) for member, cells in members.items()]
    graded = grade(spec, paths, folder / "out", workers=2, progress=False)
    found = {frozenset((g.id, flag.split(":", 1)[1])) for g in graded for flag in g.flags
             if flag.startswith("copy-of:")}
    right = len(found & pairs)
    precision = right / len(found) if found else 1.0
    return (f"{name}: copies in a planted class of {len(members)} ({len(pairs)} copied pairs): precision, recall",
            f"{precision:.2f}, {right / len(pairs):.2f} ({len(found)} flagged)", "1.00, 1.00",
            ok(precision == 1 and right == len(pairs)))


def dask_rows(folder: Path, count: int) -> list[tuple[str, str, str, str]]:
    """A generated class of ``count`` on local dask clusters of 1, 2 and 4 worker processes: throughput."""
    from distributed import LocalCluster

    spec = copy_course(folder, COURSES["backprop"][0])
    spec.write_text(spec.read_text().replace("cell = 1.5", "cell = 10").replace("call = 3", "call = 10"))
    paths = [write_notebook(folder / "class" / f"student{k:03d}.ipynb", cells)
             for k, cells in enumerate(class_of(BACKPROP, count))]
    rows, rates = [], {}
    for workers in (1, 2, 4):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster:
            seconds = timed_grading(spec, paths, folder / f"dask{workers}", 1, dask=cluster.scheduler_address)
        rates[workers] = count / seconds
        rows.append((f"dask: {count} submissions on {workers} worker process{'es' if workers > 1 else ''}",
                     f"{rates[workers]:.2f} per s", "", ""))
    rows.append(("dask: speedup of 2 workers over 1", f"{rates[2] / rates[1]:.2f}x", "near 2x",
                 ok(rates[2] / rates[1] >= 1.6)))
    return rows


def course_rows(name: str, folder: Path, count: int, nbgrader_count: int) -> list[tuple[str, str, str, str]]:
    """One course's rows: one submission alone, the class with 1 and 2 workers, and nbgrader on the same notebooks."""
    source, variants, target, answers = COURSES[name]
    spec = copy_course(folder, source)
    spec.write_text(spec.read_text().replace("cell = 1.5", "cell = 10").replace("call = 3", "call = 10"))
    paths = [write_notebook(folder / "class" / f"student{k:03d}.ipynb", cells)
             for k, cells in enumerate(class_of(variants, count))]
    one = timed_grading(spec, paths[:1], folder / "one", 1)
    serial = timed_grading(spec, paths, folder / "serial", 1)
    parallel = timed_grading(spec, paths, folder / "parallel", 2)
    unchanged = timed_grading(spec, paths, folder / "serial", 1, incremental=True)
    write_notebook(paths[0], variants[1])  # one student resubmits
    one_changed = timed_grading(spec, paths, folder / "serial", 1, incremental=True)
    limit = f"<= {target:g} s"
    rows = [(f"{name}: one submission alone (the spec loaded, isolation probed, the reference run)",
             f"{one:.2f} s", "", ""),
            (f"{name}: {count} submissions, 1 worker: per submission", f"{serial / count:.2f} s", limit,
             ok(serial / count <= target)),
            (f"{name}: {count} submissions, 2 workers: per submission per worker",
             f"{2 * parallel / count:.2f} s", limit, ok(2 * parallel / count <= target)),
            (f"{name}: speedup of 2 workers over 1", f"{serial / parallel:.2f}x", "near 2x",
             ok(serial / parallel >= 1.6)),
            (f"{name}: --incremental, nothing changed: x the full run", f"{unchanged / serial:.2f}x", "<= 0.3x",
             ok(unchanged / serial <= 0.3)),
            (f"{name}: --incremental, one submission changed: x the full run", f"{one_changed / serial:.2f}x",
             "", ""),
            copy_row(name, folder / "planted")]
    try:
        import nbgrader as _  # noqa: F401
    except ImportError:
        return [*rows, ("nbgrader autograde: nbgrader not installed (pip install -e .[test])", "", "", "")]
    course = nbgrader_course(folder / "nbgrader", {f"student{k:03d}": cells[:answers] for k, cells in
                                                   enumerate(class_of(variants, nbgrader_count))},
                             solution_cells(source)[:answers])
    start = time.perf_counter()
    nbgrader(course, "autograde", ASSIGNMENT, "--create")
    autograde = time.perf_counter() - start
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        gradwidget_command(["nbgrader", str(spec), "--course", str(course), "--assignment", ASSIGNMENT,
                            "--notebook", NOTEBOOK, "--cell", CELL])
    isolated = time.perf_counter() - start
    return [*rows, (f"{name}: nbgrader autograde, {nbgrader_count} submissions: per submission",
                    f"{autograde / nbgrader_count:.2f} s", "about 4 s" if name == "backprop" else "", ""),
            ("  then gradwidget nbgrader (isolated grades into its gradebook): per submission",
             f"{isolated / nbgrader_count:.2f} s", "", "")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50, help="submissions graded by gradwidget, per course")
    parser.add_argument("--nbgrader-count", type=int, default=10, help="submissions autograded by nbgrader")
    parser.add_argument("--course", choices=[*COURSES, "both"], default="both", help="which example course")
    parser.add_argument("--dask-count", type=int, default=0, help="a class this large on local dask clusters")
    args = parser.parse_args()
    isolation = probe()
    rows = []
    for name in COURSES if args.course == "both" else [args.course]:
        with tempfile.TemporaryDirectory() as scratch:
            rows += course_rows(name, Path(scratch), args.count, args.nbgrader_count)
    if args.dask_count:
        with tempfile.TemporaryDirectory() as scratch:
            rows += dask_rows(Path(scratch), args.dask_count)
    print(f"gradwidget grading speed; isolation: {isolation.describe()}\n")
    print_table(("what", "measured", "target", "met"), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
