"""A class of each example course, graded, and what it left in the output folder, held byte for byte.

Each class is the course's solution and template, typical bugs, and
submissions whose calls fail in the ways students' do. The outputs are kept
in ``tests/grading/golden/<course>/`` with only what cannot repeat masked:
the seconds a submission took, the isolation the machine allows, and each
heatmap's PNG (kept as its SHA-256, so that a changed picture still shows).

Run ``python tests/golden.py`` to write them again after a deliberate change.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import shutil
import sys
from pathlib import Path

from course import COURSE, LAYERS_COURSE, copy_course, solution_cells, write_notebook

from gradwidget.grading import grade
from gradwidget.grading._outputs import CSV_COLUMNS

GOLDEN = Path(__file__).resolve().parent / "grading" / "golden"
SECONDS, ISOLATION = CSV_COLUMNS.index("seconds"), CSV_COLUMNS.index("isolation")  # they depend on the machine


def _changed(cells: list[str], old: str, new: str) -> list[str]:
    hits = [k for k, cell in enumerate(cells) if old in cell]
    assert len(hits) == 1, (old, hits)
    return [cell.replace(old, new) if k == hits[0] else cell for k, cell in enumerate(cells)]


def _template(course: Path) -> list[str]:
    notebook = json.loads((course / "student.ipynb").read_text())
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


def classic_class() -> dict[str, list[str]]:
    """The 3-layer course's class: submission id -> code cells."""
    right = solution_cells()
    setup, forward_and_cost, gradient = right[:3]
    return {
        "right": right,
        "template": _template(COURSE),
        "divided-twice": _changed(right, "G = delta.T @ a / m", "G = delta.T @ a / m / m"),
        "regularized-bias": _changed(right, "G[:, 1:] += lam / m * Theta[:, 1:]", "G += lam / m * Theta"),
        "column-major": _changed(right, "np.concatenate([G.ravel() for G in grads])",
                                 "np.concatenate([G.ravel(order='F') for G in grads])"),
        "no-sigmoid-gradient": _changed(right, " * a[:, 1:] * (1 - a[:, 1:])", ""),
        "zero": _changed(right, "return np.concatenate", "return 0 * np.concatenate"),
        "cost-doubled": _changed(right, "return -np.mean(", "return -2 * np.mean("),
        "cost-array": _changed(right, "return -np.mean(y * np.log(h) + (1 - y) * np.log(1 - h))",
                               "return -(y * np.log(h) + (1 - y) * np.log(1 - h))"),
        "blocks-as-list": _changed(right, "return np.concatenate([G.ravel() for G in grads])", "return grads"),
        "wrong-shape": [setup, forward_and_cost, "def gradient(theta, X, y, lam):\n    return np.zeros(230)"],
        "no-gradient": [setup, forward_and_cost],
        "raises-sometimes": _changed(right, "    thetas = unroll(theta)\n    inputs, h",
                                     "    if theta[0] > 0:\n        raise ValueError('not here')\n"
                                     "    thetas = unroll(theta)\n    inputs, h"),
        "cells-fail": [setup, "1 / 0", "def broken(:\n    pass", forward_and_cost, gradient],
        "forbidden-import": [setup, "try:\n    import autograd\nexcept ImportError:\n    pass",
                             forward_and_cost, gradient],
        "hard-coded": [setup, "def cost(theta, X, y, lam):\n    return 0.7\n"
                              "def gradient(theta, X, y, lam):\n    return np.full(231, 0.01)\n"],
    }


def layers_class() -> dict[str, list[str]]:
    """The layers course's class: submission id -> code cells."""
    right = solution_cells(LAYERS_COURSE)
    return {
        "right": right,
        "template": _template(LAYERS_COURSE),
        "bias-axis": _changed(right, "db = np.sum(dout, axis=0)", "db = np.sum(dout, axis=1)"),
        "relu-ignores-dout": _changed(right, "dx = dout.copy()\n    dx[x <= 0] = 0", "dx = (x > 0).astype(float)"),
        "batchnorm-no-mean-path": _changed(right, "dx = dxc + dmu / N", "dx = dxc"),
        "batchnorm-swapped": _changed(right, "return dx, dgamma, dbeta", "return dx, dbeta, dgamma"),
        "rnn-drops-dh-next": _changed(right, "rnn_step_backward(dh[:, t, :] + dprev_h, cache[t])",
                                      "rnn_step_backward(dh[:, t, :], cache[t])"),
        "softmax-not-averaged": _changed(right, "    dx /= N\n", ""),
        "affine-without-b": _changed(right, "out = x_rows.dot(w) + b", "out = x_rows.dot(w)"),
        "conv-stride": _changed(right, "rows = slice(i * stride, i * stride + HH)", "rows = slice(i, i + HH)"),
        "no-cache": _changed(right, "return out, (x, w)", "return out"),
        "missing-and-raising": [
            cell.replace("def relu_backward(dout, cache):", "def relu_backward_renamed(dout, cache):")
            .replace("dx = dxc + dmu / N", "dx = dxc + dmu / N + undefined_name") for cell in right],
        "odd-answers": [cell.replace("    return dx, dgamma, dbeta", "    return dx * np.nan, {'gamma': dgamma}, None")
                        .replace("    dx /= N\n    return loss, dx", "    return loss, [[1, 2]]") for cell in right],
    }


CLASSES = {"classic": (COURSE, classic_class), "layers": (LAYERS_COURSE, layers_class)}


def grade_class(course: str, folder: Path) -> Path:
    """Grade the class of ``course`` (``classic`` or ``layers``) in ``folder``; returns the output folder."""
    source, cells_of = CLASSES[course]
    spec = copy_course(folder, source)
    paths = [write_notebook(folder / "submissions" / f"{name}.ipynb", cells) for name, cells in cells_of().items()]
    out = folder / "out"
    grade(spec, paths, out, workers=4, progress=False)
    return out


def masked(path: Path) -> str:
    """A file of the output folder with what depends on the machine or the clock masked."""
    text = path.read_bytes().decode("utf-8")
    if path.name == "grades.csv":
        header, *rows = list(csv.reader(io.StringIO(text, newline="")))
        written = io.StringIO(newline="")
        csv.writer(written).writerows([header, *([*row[:SECONDS], "-", "-", *row[ISOLATION + 1:]] for row in rows)])
        return written.getvalue()
    if path.name == "results.json":
        return re.sub(r'"execution_time": [0-9.]+', '"execution_time": "-"', text)
    if path.name == "record.json":  # the digest covers the isolation level and gradwidget's version
        record = json.loads(text)
        shared = ["odd" if digest else "" for digest in record["shared_answers"]]  # its bits are the machine's BLAS's
        return json.dumps({**record, "inputs": "-", "seconds": "-", "isolation": "-", "gradwidget": "-",
                           "shared_answers": shared}, indent=1)
    return re.sub(r"data:image/png;base64,([A-Za-z0-9+/=]+)",
                  lambda m: "png-sha256:" + hashlib.sha256(base64.b64decode(m.group(1))).hexdigest(), text)


def outputs(out: Path) -> dict[str, str]:
    """Every file of an output folder (relative path -> masked text)."""
    return {str(p.relative_to(out)): masked(p) for p in sorted(out.rglob("*")) if p.is_file()}


def write_golden(course: str, scratch: Path) -> None:
    target = GOLDEN / course
    shutil.rmtree(target, ignore_errors=True)
    for relative, text in outputs(grade_class(course, scratch / course)).items():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_bytes(text.encode("utf-8"))


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for name in sys.argv[1:] or list(CLASSES):
            write_golden(name, Path(scratch))
