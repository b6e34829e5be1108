"""Submissions right, buggy and hostile: each gets the score, status and flags it deserves, and nothing leaks.

Every test grades a notebook made from the example course's solution. The
tests that need what only root can do (namespaces, a uid of the worker's
own) skip, saying so, where the grader is not root; CI runs as root.
"""

from __future__ import annotations

import ast
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from corpus import REGULARIZED_BIAS_SAYS
from course import SECRET, copy_course, grade_cells, solution_cells, with_gradient_bug, write_notebook

from gradwidget.grading import grade
from gradwidget.grading._points import check_points, hidden_seed, public_seed
from gradwidget.grading._reference import problem_answers
from gradwidget.grading._spec import load_spec
from gradwidget.grading.sandbox._isolation import probe, processes_of, python_paths

pytestmark = pytest.mark.slow
FULL = probe().level == "full"
needs_full = pytest.mark.skipif(not FULL, reason="needs the full isolation: run the grader as root with unshare")


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("grading")
    return copy_course(folder), folder


def run(course: tuple[Path, Path], name: str, cells: list[str]) -> object:
    spec, folder = course
    return grade_cells(spec, folder, name, cells)


def codes(graded: object) -> list[str]:
    return [d.code for d in graded.diagnoses]  # type: ignore[attr-defined]


# ---------------------------------------------------------------- right answers


def test_the_solution_gets_full_marks_and_no_flag(course: tuple[Path, Path]) -> None:
    graded = run(course, "right", solution_cells())
    assert (graded.score, graded.status, graded.flags, graded.notes) == (10, "graded", (), ())


PER_EXAMPLE = '''
def gradient(theta, X, y, lam):
    """Backpropagation one example at a time, as the classic exercise writes it."""
    thetas = unroll(theta)
    grads = [np.zeros_like(T) for T in thetas]
    for x, target in zip(X, y):
        inputs, a = [], x
        for T in thetas:
            a = np.concatenate([[1.0], a])
            inputs.append(a)
            a = sigmoid(T @ a)
        delta = a - target
        for layer in reversed(range(3)):
            grads[layer] += np.outer(delta, inputs[layer])
            delta = (thetas[layer].T @ delta)[1:] * inputs[layer][1:] * (1 - inputs[layer][1:])
    m = len(y)
    for T, G in zip(thetas, grads):
        G /= m
        G[:, 1:] += lam / m * T[:, 1:]
    return np.concatenate([G.ravel() for G in grads])
'''


def test_a_per_example_loop_gets_full_marks(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells[2] = PER_EXAMPLE
    graded = run(course, "loop", cells)
    assert (graded.score, graded.flags) == (10, ())


# ---------------------------------------------------------------- the classic bugs


def test_column_major_unrolling(course: tuple[Path, Path]) -> None:
    graded = run(course, "column-major", with_gradient_bug("G.ravel() for G in grads",
                                                          'G.ravel(order="F") for G in grads'))
    assert graded.score == 2 + 2  # the cost, and Theta3: a 1 x 11 block reads the same in both orders
    assert codes(graded) == ["permutation"]
    assert graded.diagnoses[0].message.startswith("Theta1, Theta2: your gradient function returns the values in "
                                                  "column-major")


def test_missing_sigmoid_gradient(course: tuple[Path, Path]) -> None:
    graded = run(course, "no-sigmoid-gradient", with_gradient_bug(" * a[:, 1:] * (1 - a[:, 1:])", ""))
    assert graded.score == 2 + 2  # the cost and the output layer's Theta3
    assert [i.agreed for i in graded.items] == [5, 0, 0, 5]
    assert codes(graded) == ["localized"]
    assert graded.diagnoses[0].message.startswith("Theta1: the whole block (110 entries) is wrong; "
                                                  "Theta2: the whole block (110 entries) is wrong")


def test_regularized_bias(course: tuple[Path, Path]) -> None:
    graded = run(course, "regularized-bias", with_gradient_bug("G[:, 1:] += lam / m * Theta[:, 1:]",
                                                              "G += lam / m * Theta"))
    assert graded.score == 2
    assert codes(graded) == ["missing-term"]
    assert REGULARIZED_BIAS_SAYS in graded.diagnoses[0].message and "the reference's" in graded.diagnoses[0].message


def test_gradient_divided_by_m_twice(course: tuple[Path, Path]) -> None:
    graded = run(course, "m-twice", with_gradient_bug("return np.concatenate([G.ravel() for G in grads])",
                                                     "return np.concatenate([G.ravel() for G in grads]) / m"))
    assert graded.score == 2
    assert codes(graded) == ["scale"]
    assert graded.diagnoses[0].message == ("every block: your gradient is 0.025 x the reference's: dividing once "
                                           "more by m = 40 (a mean)?")


# ---------------------------------------------------------------- cells that misbehave


def test_an_infinite_loop_costs_one_cell(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells.insert(1, "while True:\n    pass\n")
    graded = run(course, "loop-cell", cells)
    assert (graded.score, graded.status) == (10, "graded")
    assert graded.notes == ("cell 2 stopped: took longer than 1.5 s",)


def test_a_loop_that_swallows_its_time_limit_times_out_the_submission(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells.insert(3, "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n"
                    "        pass\n")
    graded = run(course, "stubborn", cells)
    assert graded.status == "timeout" and graded.score == 0
    assert graded.reason == "cell 4 went on past its time limit"


def test_a_cell_that_raises_and_one_with_a_syntax_error(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells[3:3] = ["1 / 0", "def broken(:\n    pass"]
    graded = run(course, "raises", cells)
    assert graded.score == 10
    assert graded.notes == ("cell 4 raised ZeroDivisionError: division by zero",
                            "cell 5 has a syntax error: SyntaxError: invalid syntax (<cell 5>, line 1)")


def test_a_memory_bomb_is_a_memory_error(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells.insert(1, "hog = np.ones(2 ** 31)")
    graded = run(course, "memory", cells)
    assert graded.score == 10 and graded.notes == ("cell 2 raised MemoryError: Unable to allocate 16.0 GiB for an "
                                                   "array with shape (2147483648,) and data type float64",)


@needs_full
def test_a_fork_bomb_is_stopped_by_the_process_limit(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells.insert(1, "import os\nwhile True:\n    os.fork()\n")
    graded = run(course, "fork-bomb", cells)
    assert graded.score == 10 and graded.status == "graded"
    assert graded.notes[0].startswith("cell 2 raised BlockingIOError")
    assert processes_of() == []


def test_sys_exit_halfway_costs_nothing_more(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells.insert(2, "import sys\nsys.exit(0)")
    graded = run(course, "sys-exit", cells)
    assert graded.score == 10 and graded.notes == ("cell 3 raised SystemExit: 0",)


def test_os_exit_halfway_keeps_what_was_earned_and_says_where(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells.insert(2, "import os\nos._exit(0)")
    graded = run(course, "os-exit", cells)
    assert (graded.status, graded.score) == ("crashed", 0)
    assert graded.reason == "the submission ended the worker (exit code 0) during cell 3"


def test_a_fake_results_json_on_stdout_changes_nothing(course: tuple[Path, Path]) -> None:
    cells = with_gradient_bug("return np.concatenate", "return 0 * np.concatenate")
    cells.append('import json, sys\nprint(json.dumps({"score": 10, "tests": []}))\n'
                 'print(json.dumps({"score": 10}), file=sys.stderr)\nsys.exit(0)')
    graded = run(course, "fake-json", cells)
    assert graded.score == 2 and graded.status == "graded"


def test_warnings_and_megabytes_of_output_score_nothing(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells.insert(1, "import sys, warnings\nwarnings.warn('deprecated')\nprint('x' * 10 ** 7)\n"
                    "print('y' * 10 ** 7, file=sys.stderr)\nsys.__stdout__.write('z' * 10 ** 6)")
    graded = run(course, "noisy", cells)
    assert (graded.score, graded.notes) == (10, ())


def test_patching_numpy_and_builtins_does_not_change_the_score(course: tuple[Path, Path]) -> None:
    cells = with_gradient_bug("return np.concatenate", "return 0 * np.concatenate")
    cells.append("import builtins\nnp.allclose = np.isclose = np.array_equal = lambda *a, **k: True\n"
                 "np.linalg.norm = lambda *a, **k: 0.0\nnp.save = lambda *a, **k: None\n"
                 "builtins.abs = lambda x: 0\nbuiltins.open = None")
    graded = run(course, "patcher", cells)
    assert graded.score == 2 and graded.status == "graded"


# ---------------------------------------------------------------- what the worker can reach


@needs_full
def test_the_reference_the_spec_folder_and_other_submissions_cannot_be_read(course: tuple[Path, Path],
                                                                           tmp_path: Path) -> None:
    spec, _ = course
    other = write_notebook(tmp_path / "classmates" / "classmate.ipynb", solution_cells())
    targets = [spec.parent / "reference.py", spec.parent / "secret.txt", spec.parent / "solution.ipynb", spec,
               other, tmp_path / "out" / "grades.csv"]
    cells = solution_cells()
    cells.append(f"""
read = []
for target in {[str(t) for t in targets]!r}:
    try:
        with open(target) as file:
            read.append(len(file.read()))
    except OSError:
        pass
if any(read):
    gradient = lambda theta, X, y, lam: 0 * theta  # it could read something: the score would show it
""")
    mine = write_notebook(tmp_path / "mine" / "reader.ipynb", cells)
    graded = {g.id: g for g in grade(spec, [mine, other], tmp_path / "out", progress=False)}
    assert graded["reader"].score == 10


def test_writing_into_the_output_folder_changes_nothing(course: tuple[Path, Path], tmp_path: Path) -> None:
    spec, _ = course
    out = tmp_path / "out"
    cells = with_gradient_bug("return np.concatenate", "return 0 * np.concatenate")
    cells.append(f"""
import os
for name in ("grades.csv", "writer/results.json", "writer/feedback.html", "intruder.txt"):
    path = os.path.join({str(out)!r}, name)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as file:
            file.write('{{"score": 10}}')
    except OSError:
        pass
""")
    (graded,) = grade(spec, [write_notebook(tmp_path / "writer.ipynb", cells)], out, progress=False)
    assert graded.score == 2
    assert json.loads((out / "writer" / "results.json").read_text())["score"] == 2
    assert sorted(p.name for p in out.rglob("*")) == ["feedback.html", "grades.csv", "record.json", "results.json",
                                                      "writer"]
    assert json.loads((out / "writer" / "record.json").read_text())["items"][-1][2] == 0  # its own grade


@needs_full
def test_filling_every_writable_place_stays_within_limits(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells.insert(1, """
import os

written = {}
for where in (".", "/tmp", "/var/tmp", "/dev/shm"):
    written[where] = 0
    try:
        for k in range(100):
            with open(os.path.join(where, f"gradwidget-test-fill{k}"), "wb") as file:
                for _ in range(32):
                    file.write(bytes(2 ** 20))
                    written[where] += 1
    except OSError:
        pass
raise RuntimeError(f"{written} {sorted(os.listdir('/tmp'))}")
""")
    graded = run(course, "disk-filler", cells)
    assert graded.score == 10 and graded.status == "graded"  # its results had a room of their own
    written, listed = graded.notes[0].removeprefix("cell 2 raised RuntimeError: ").split("} ")
    assert written == "{'.': 64, '/tmp': 16, '/var/tmp': 16, '/dev/shm': 64"
    kept_for_python = {p.relative_to("/tmp").parts[0] for p in python_paths() if Path("/tmp") in p.parents}
    assert set(ast.literal_eval(listed)) == {"gradwidget-test-fill0", *kept_for_python}  # none of the machine's
    assert not list(Path("/tmp").glob("gradwidget-test-fill*"))


@needs_full
def test_no_network(course: tuple[Path, Path]) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    port = server.getsockname()[1]
    heard: list[bytes] = []

    def listen() -> None:
        try:
            connection, _ = server.accept()
            heard.append(connection.recv(100))
        except OSError:
            pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    cells = solution_cells()
    cells.append(f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)"
                 ".sendall(b'leak')\nexcept OSError as exc:\n    raise RuntimeError('no network') from exc")
    graded = run(course, "network", cells)
    server.close()
    listener.join()
    assert heard == []
    assert graded.score == 10 and graded.notes[0].startswith("cell 6 raised RuntimeError: no network")


@needs_full
def test_a_daemon_does_not_outlive_its_worker(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells.insert(1, "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                    "        time.sleep(30)\n    os._exit(0)\n")
    graded = run(course, "daemon", cells)
    assert graded.score == 10
    assert processes_of() == []


# ---------------------------------------------------------------- integrity flags


def test_importing_autograd_or_torch_is_flagged(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells.insert(1, "try:\n    import autograd.numpy as anp\n    import torch\nexcept ImportError:\n    pass")
    graded = run(course, "imports", cells)
    assert graded.score == 10
    assert set(graded.flags) == {"forbidden-import:autograd", "forbidden-import:torch"}


def test_a_finite_difference_gradient_is_flagged(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells[2] = ("def gradient(theta, X, y, lam, h=1e-5):\n    out = np.empty_like(theta)\n"
                "    for i in range(theta.size):\n        e = np.zeros_like(theta)\n        e[i] = h\n"
                "        out[i] = (cost(theta + e, X, y, lam) - cost(theta - e, X, y, lam)) / (2 * h)\n"
                "    return out\n")
    graded = run(course, "finite-differences", cells)
    assert graded.score == 10  # within tolerance: it keeps its points, and is flagged for review
    assert set(graded.flags) == {"numerical-gradient", "slow-gradient"}  # 2n calls of the cost: ~16 ms here


def test_a_gradient_far_slower_than_the_cost_is_flagged(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells.append("import time\n_fast = gradient\ndef gradient(theta, X, y, lam):\n    time.sleep(0.1)\n"
                 "    return _fast(theta, X, y, lam)\n")
    graded = run(course, "slow", cells)
    assert graded.score == 10 and graded.flags == ("slow-gradient",)


def test_answers_hard_coded_from_the_public_points_miss_the_hidden_ones(course: tuple[Path, Path]) -> None:
    spec_path, _ = course
    spec = load_spec(spec_path)
    (answers,) = problem_answers(spec, public_seed(spec), spec.public)
    gradient = np.concatenate([d.ravel() for d in answers.points[0].derivatives])
    cells = [solution_cells()[0],
             f"COST = {float(answers.points[0].value)!r}\nGRADIENT = np.array({gradient.tolist()!r})\n"
             "def cost(theta, X, y, lam):\n    return COST\n"
             "def gradient(theta, X, y, lam):\n    return GRADIENT.copy()\n"]
    graded = run(course, "hard-coded", cells)
    assert graded.score == 0
    assert "ignores-input" in graded.flags


def test_missing_functions_and_a_gradient_of_the_wrong_shape(course: tuple[Path, Path]) -> None:
    cells = solution_cells()
    cells[2] = "def gradient(theta, X, y, lam):\n    return np.zeros(230)"
    graded = run(course, "shape", cells)
    assert graded.score == 2
    assert graded.notes == ("your gradient returned an array of shape (230,) (230 entries); expected unrolled of "
                            "arrays (Theta1 (10, 11), Theta2 (10, 11), Theta3 (1, 11)) or a flat vector of 231 "
                            "entries",)
    graded = run(course, "no-gradient", solution_cells()[:2])
    assert graded.score == 2
    assert graded.notes == ("gradient is not defined: define it in the notebook (did the cell that defines it "
                            "run?)",)


def test_every_submission_gets_a_row_whatever_it_did(course: tuple[Path, Path], tmp_path: Path) -> None:
    spec, _ = course
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    right = write_notebook(tmp_path / "right.ipynb", solution_cells())
    started = time.perf_counter()
    graded = grade(spec, [broken, right, tmp_path / "missing.ipynb"], tmp_path / "out", progress=False)
    assert [(g.id, g.status, g.score) for g in graded] == [("broken", "invalid", 0), ("right", "graded", 10),
                                                           ("missing", "invalid", 0)]
    assert graded[0].reason.startswith("broken.ipynb cannot be read: it is not a notebook: its text is not JSON "
                                       "(line 1, column 3)")  # plain words, where the parser's were not
    rows = (tmp_path / "out" / "grades.csv").read_text().splitlines()
    assert rows[0] == "submission,score,max_score,status,reason,flags,seconds,isolation,cost,Theta1,Theta2,Theta3"
    assert len(rows) == 4 and time.perf_counter() - started < 20


def hidden_points(spec: object, submission: str, secret: bytes) -> np.ndarray:
    """The parameter vectors a submission is checked at, one per row."""
    (problem,) = spec.problems  # type: ignore[attr-defined]
    return np.array([arguments[0] for arguments, _ in check_points(problem, 0, hidden_seed(spec, submission, secret),
                                                                    spec.hidden)])  # type: ignore[attr-defined]


def test_hidden_points_are_the_submissions_own(course: tuple[Path, Path]) -> None:
    spec = load_spec(course[0])
    alice, bob = hidden_points(spec, "alice", SECRET.encode()), hidden_points(spec, "bob", SECRET.encode())
    assert alice.shape == (5, 231) and not np.allclose(alice, bob)
    assert np.array_equal(alice, hidden_points(spec, "alice", SECRET.encode()))
    assert not np.allclose(alice, hidden_points(spec, "alice", b"another secret"))
    assert np.abs(alice).max() <= 0.12


@needs_full
def test_the_worker_runs_the_graders_python_as_a_uid_of_its_own(course: tuple[Path, Path]) -> None:
    import sys

    cells = solution_cells()
    cells.insert(1, "import os, sys\nraise RuntimeError(f'{os.getuid()} {sys.version}')")
    graded = run(course, "isolated", cells)
    assert graded.isolation.startswith("full: no network") and graded.score == 10
    uid, version = graded.notes[0].removeprefix("cell 2 raised RuntimeError: ").split(" ", 1)
    assert int(uid) >= 1_000_000 and sys.version.startswith(version)
