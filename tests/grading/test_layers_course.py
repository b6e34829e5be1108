"""Grading a layers assignment: a spec of problems, each layer bug costing its own items with the right words.

The submissions are the layers course's solution (notebooks/layers-assignment)
with a typical bug written into one function, or hostile code added. Each
test asserts the items lost, exactly, and the words of the feedback.
"""

from __future__ import annotations

import csv
import json
import re
import zipfile
from pathlib import Path

import browser
import numpy as np
import pytest
from course import LAYERS_COURSE, copy_course, grade_cells, solution_cells, with_layer_bug

from gradwidget.grading import SpecError, grade, load_spec, validate
from gradwidget.grading._cli import main
from gradwidget.grading._gradescope import build_autograder
from gradwidget.grading._handout import make_handout
from gradwidget.grading._outputs import CSV_COLUMNS
from gradwidget.grading.sandbox._isolation import probe

SPEC = LAYERS_COURSE / "assignment.toml"
NET = {"two_layer.cost", "two_layer.dW1", "two_layer.db1", "two_layer.dW2", "two_layer.db2"}
FULL = probe().level == "full"


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("layers")
    return copy_course(folder, LAYERS_COURSE), folder


def run(course: tuple[Path, Path], name: str, cells: list[str]) -> object:
    spec, folder = course
    return grade_cells(spec, folder, name, cells)


def lost(graded: object) -> set[str]:
    return {item.name for item in graded.items if item.points < item.max_points}  # type: ignore[attr-defined]


def feedback(course: tuple[Path, Path], name: str) -> str:
    return json.loads((course[1] / "out" / name / "results.json").read_text())["output"]


# ---------------------------------------------------------------- the spec


def test_the_layers_spec_loads_with_one_column_per_problem_and_item() -> None:
    spec = load_spec(SPEC)
    assert [p.name for p in spec.problems] == ["affine", "relu", "batchnorm", "conv", "max_pool", "rnn_step", "rnn",
                                               "softmax", "two_layer"]
    assert spec.items[:5] == ("affine.forward", "affine.dx", "affine.dw", "affine.db", "relu.forward")
    assert "softmax.cost" in spec.items and "two_layer.dW1" in spec.items and spec.max_score == 35
    conv = spec.problems[3]
    assert (conv.wrt, conv.arguments[3].value) == (("x", "w", "b"), {"stride": 2, "pad": 1})


PROBLEM = """
[assignment]
name = "t"
[reference]
file = "reference.py"
[[problems]]
name = "affine"
forward = "affine_forward"
backward = "affine_backward"
arguments.x = { shape = [4, 6] }
arguments.w = { shape = [6, 5] }
arguments.b = { shape = [5] }
"""


@pytest.mark.parametrize(("change", "message"), [
    (('kind = "layer"', 'kind = "layers"'), "[[problems]] 'affine' kind must be one of gradient, layer"),
    (('forward = "affine_forward"\n', ''), "[[problems]] 'affine' needs the key 'forward'"),
    (('{ shape = [6, 5] }', '{ shape = [6, 5], value = 3 }'), "'affine' arguments.w must be one of"),
    (('{ shape = [5] }', '{ shape = [0] }'), "'affine' arguments.b.shape must be a list of whole numbers >= 1"),
    (('{ shape = [5] }', '{ shape = [5], scale = -1 }'), "'affine' arguments.b.scale must be a number > 0"),
    (('{ shape = [5] }', '{ integers = [3, 3], shape = [5] }'), "'affine' arguments.b.integers must be [low, high]"),
    (('name = "affine"', 'name = "affine"\nwrt = ["y"]'), "'affine' wrt must be a list of floating-point arguments"),
    (('name = "affine"', 'name = "affine"\nscoring = { gradient = { x = 1 } }'),
     "'affine' scoring.gradient must be a number or a table of points for each of x, w, b"),
    (('name = "affine"', 'name = "affine"\ntolerance = { gradient = 2 }'),
     "'affine' tolerance.gradient must be a number between 0 and 1"),
    (('name = "affine"', 'name = "affine"\ncost = "c"'), "'affine' cost must be left out: a layer problem takes"),
    (('name = "affine"', 'name = "affine"\ncolour = 1'), "'affine' has an unknown key 'colour'"),
    (('[reference]', '[functions]\ncost = "c"\n[reference]'), "[functions] belongs to a one-problem spec"),
    (('name = "affine"\n', ''), "[[problems]] number 1 needs the key 'name'"),
    (('arguments.b = { shape = [5] }', 'arguments.b = { data = "missing.npy" }'),
     "[[problems]] 'affine' arguments.b = 'missing.npy': cannot load it as .npy"),
])
def test_every_problem_mistake_names_the_problem_and_the_key(tmp_path: Path, change: tuple[str, str],
                                                              message: str) -> None:
    text = PROBLEM.replace('name = "affine"\n', 'name = "affine"\nkind = "layer"\n')
    (tmp_path / "reference.py").write_text("")
    spec = tmp_path / "spec.toml"
    spec.write_text(text.replace(*change))
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert message in str(error.value)


def test_two_problems_of_one_name_are_refused(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(PROBLEM + PROBLEM[PROBLEM.index("[[problems]]"):])
    with pytest.raises(SpecError, match="'affine' name must be different from every other problem's name"):
        load_spec(spec)


# ---------------------------------------------------------------- right and template




@pytest.mark.slow
def test_the_solution_gets_full_marks_and_the_template_none(course: tuple[Path, Path]) -> None:
    right = run(course, "right", solution_cells(LAYERS_COURSE))
    assert (right.score, right.status, right.flags, right.notes) == (35, "graded", (), ())  # type: ignore[attr-defined]
    assert all(not part.notes and not part.diagnoses for part in right.parts)  # type: ignore[attr-defined]
    template = json.loads((LAYERS_COURSE / "student.ipynb").read_text())
    empty = run(course, "template", ["".join(c["source"]) for c in template["cells"] if c["cell_type"] == "code"])
    assert empty.score == 0 and empty.status == "graded"  # type: ignore[attr-defined]
    assert "affine_forward raised NotImplementedError (at 3 of 3 check points)" in feedback(course, "template")


@pytest.mark.slow
def test_the_csv_and_results_json_have_one_column_and_one_test_per_problem_and_item(
        course: tuple[Path, Path]) -> None:
    run(course, "columns", with_layer_bug("db = np.sum(dout, axis=0)", "db = np.sum(dout, axis=1)"))
    with open(course[1] / "out" / "grades.csv", newline="") as file:
        columns, row = list(csv.reader(file))
    fixed = len(CSV_COLUMNS)  # submission ... isolation, the reason among them
    assert columns[fixed:fixed + 4] == ["affine.forward", "affine.dx", "affine.dw", "affine.db"]
    assert len(columns) == fixed + 35
    assert dict(zip(columns, row))["affine.db"] == "0" and dict(zip(columns, row))["affine.dx"] == "1"
    tests = json.loads((course[1] / "out" / "columns" / "results.json").read_text())["tests"]
    named = {t["name"]: t for t in tests}
    assert len(tests) == 36 and named["affine: forward"]["status"] == "passed"
    assert named["affine: db"]["status"] == "failed" and "summed over axis 1" in named["affine: db"]["output"]
    html = (course[1] / "out" / "columns" / "feedback.html").read_text()
    assert "<h2 data-problem='affine'>affine: 3 of 4 points</h2>" in html and "data-block='x'" not in html


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))
def test_a_students_feedback_page_in_chromium(course: tuple[Path, Path]) -> None:
    cells = with_layer_bug("rnn_step_backward(dh[:, t, :] + dprev_h, cache[t])", "rnn_step_backward(dh[:, t, :], "
                           "cache[t])")
    run(course, "feedback-page", [c.replace("db = np.sum(dout, axis=0)", "db = np.sum(dout, axis=1)") for c in cells])
    page = course[1] / "out" / "feedback-page" / "feedback.html"
    browser.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with browser.chromium() as chromium:
        for width, shot in ((1000, "grading-layers-feedback"), (420, "grading-layers-feedback-narrow")):
            view = chromium.new_page(viewport={"width": width, "height": 1400})
            view.goto(page.as_uri(), wait_until="load")
            headings = view.locator("h2[data-problem]")
            assert headings.count() == 9 and headings.nth(6).inner_text() == "rnn: 1 of 6 points"
            text = view.inner_text("body")
            assert "db is dout summed over axis 1; the reference sums over axis 0" in text
            assert "the gradient flowing back from the next step (dh_next) is dropped" in text
            images = view.locator("figure img")
            assert images.count() == 5  # the RNN's five gradients that disagree; nothing for right problems
            assert all(images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0") for i in range(5))
            assert view.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # no sideways scroll
            view.screenshot(path=str(browser.SCREENSHOTS / f"{shot}.png"), full_page=True)


# ---------------------------------------------------------------- each typical bug, its items and its words

BUGS = {
    "transposed dw": (("dw = x_rows.T.dot(dout)", "dw = dout.T.dot(x_rows)"), {"affine.dw"} | NET,
                      "dw is the transpose of the reference's"),
    "db over the wrong axis": (("db = np.sum(dout, axis=0)", "db = np.sum(dout, axis=1)"),
                               {"affine.db", "two_layer.db1", "two_layer.db2"},
                               "db is dout summed over axis 1; the reference sums over axis 0"),
    "relu ignores dout": (("dx = dout.copy()\n    dx[x <= 0] = 0", "dx = (x > 0).astype(float)"),
                          {"relu.dx", "two_layer.dW1", "two_layer.db1"},
                          "relu_backward returns the same dx whatever dout is"),
    "relu squares dout": (("dx = dout.copy()\n", "dx = dout * np.abs(dout)\n"),
                          {"relu.dx", "two_layer.dW1", "two_layer.db1"}, "does not scale with dout"),
    "batch norm without the mean's path": (("dx = dxc + dmu / N", "dx = dxc"), {"batchnorm.dx"},
                                           "the path through the mean over axis 0"),
    "batch norm gradients swapped": (("return dx, dgamma, dbeta", "return dx, dbeta, dgamma"),
                                     {"batchnorm.dgamma", "batchnorm.dbeta"}, "gamma and beta are swapped"),
    "rnn drops dh_next": (("rnn_step_backward(dh[:, t, :] + dprev_h, cache[t])",
                           "rnn_step_backward(dh[:, t, :], cache[t])"),
                          {"rnn.dx", "rnn.dh0", "rnn.dWx", "rnn.dWh", "rnn.db"},
                          "the gradient flowing back from the next step (dh_next) is dropped"),
    "softmax not averaged": (("    dx /= N\n", ""), {"softmax.dx", "two_layer.dW1", "two_layer.db1",
                                                     "two_layer.dW2", "two_layer.db2"},
                             "your gradient is 6 x the reference's"),
    "affine forward without b": (("out = x_rows.dot(w) + b", "out = x_rows.dot(w)"),
                                 {"affine.forward"} | NET,
                                 "affine_forward's output differs from the reference's at 3 of 3 check points"),
    "conv stride forgotten in dx": (("rows = slice(i * stride, i * stride + HH)",
                                     "rows = slice(i, i + HH)"), {"conv.dx", "conv.dw"},
                                    "x: the whole block (150 entries) is wrong; w: the whole block"),
}


@pytest.mark.slow
@pytest.mark.parametrize("bug", list(BUGS))
def test_each_typical_layer_bug_costs_its_items_with_the_right_words(course: tuple[Path, Path], bug: str) -> None:
    (old, new), items, words = BUGS[bug]
    name = re.sub(r"[^a-z]+", "-", bug)
    graded = run(course, name, with_layer_bug(old, new))
    assert graded.status == "graded" and lost(graded) == items  # type: ignore[attr-defined]
    assert words in feedback(course, name)


# ---------------------------------------------------------------- hostile submissions


@pytest.mark.slow
def test_a_loop_in_one_backward_costs_its_problem_only(course: tuple[Path, Path]) -> None:
    cells = with_layer_bug("    db = da.sum(axis=0)\n", "    db = da.sum(axis=0)\n    while True:\n        pass\n")
    graded = run(course, "loop", cells)
    rnn = {"rnn.dx", "rnn.dh0", "rnn.dWx", "rnn.dWh", "rnn.db"}  # the RNN over time calls the looping step
    assert graded.status == "graded" and lost(graded) == {  # type: ignore[attr-defined]
        "rnn_step.dx", "rnn_step.dprev_h", "rnn_step.dWx", "rnn_step.dWh", "rnn_step.db"} | rnn
    text = feedback(course, "loop")
    assert "rnn_step_backward was stopped: took longer than 3 s (at 1 of 3 check points)" in text
    assert "rnn_step_backward was not called: it took too long at an earlier point (at 2 of 3" in text
    assert graded.seconds < 15  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_forward_that_returns_no_cache_keeps_its_forward_points(course: tuple[Path, Path]) -> None:
    graded = run(course, "no-cache", with_layer_bug("return out, (x, w)", "return out"))
    assert lost(graded) == {"affine.dx", "affine.dw", "affine.db"} | NET  # type: ignore[attr-defined]
    assert ("affine_backward was not called: affine_forward returned an ndarray of shape (4, 5), not (out, cache)"
            in feedback(course, "no-cache"))


@pytest.mark.slow
def test_a_missing_backward_and_a_backward_that_raises_cost_their_problem_only(course: tuple[Path, Path]) -> None:
    cells = with_layer_bug("def relu_backward(dout, cache):", "def relu_backward_renamed(dout, cache):")
    cells = [c.replace("dx = dxc + dmu / N", "dx = dxc + dmu / N + undefined_name") for c in cells]
    graded = run(course, "missing", cells)
    assert lost(graded) == {"relu.dx", "batchnorm.dx", "batchnorm.dgamma", "batchnorm.dbeta"} | NET  # type: ignore
    text = feedback(course, "missing")
    assert "relu_backward is not defined: define it in the notebook" in text
    assert "batchnorm_backward raised NameError: name 'undefined_name' is not defined" in text


@pytest.mark.slow
@pytest.mark.parametrize(("name", "line", "words"), [
    ("os-exit", "import os; os._exit(3)",
     "the process calling relu_forward and relu_backward ended: it exited (code 3)"),
    ("segfault", "import ctypes; ctypes.string_at(0)",
     "the process calling relu_forward and relu_backward ended: it was killed (SIGSEGV)"),
    ("swallowed-limit",
     "while True:\n        try:\n            __import__('time').sleep(60)\n"
     "        except BaseException:\n            pass",
     "relu_backward at point 1 went on past its time limit"),
    ("sys-exit", "import sys; sys.exit(0)", "relu_backward raised SystemExit"),
    ("fork", "import os; os.fork()", ""),
])
def test_a_backward_that_exits_crashes_or_swallows_its_limit_costs_its_problem_only(
        course: tuple[Path, Path], name: str, line: str, words: str) -> None:
    cells = with_layer_bug("    x = cache\n    dx = dout.copy()", f"    {line}\n    x = cache\n    dx = dout.copy()")
    graded = run(course, name, cells[:-2])  # not the notebook's own checks: what a cell does ends the run there
    # The network's loss calls relu_backward too; a process that ends takes the problem's later points with it.
    ended = {"relu.forward"} if name in ("os-exit", "segfault", "swallowed-limit") else set()
    expected = set() if name == "fork" else {"relu.dx"} | NET | ended
    assert graded.status == "graded" and lost(graded) == expected, (graded.reason, lost(graded))  # type: ignore
    assert words in feedback(course, name)


@pytest.mark.slow
def test_huge_nan_and_odd_answers_cost_their_items(course: tuple[Path, Path]) -> None:
    cells = with_layer_bug("    return out, (x, w)", "    return np.zeros(10 ** 7), (x, w)")
    cells = [c.replace("    return dx, dgamma, dbeta", "    return dx * np.nan, {'gamma': dgamma}, None")
             .replace("    dx /= N\n    return loss, dx", "    return loss, [[1, 2]]") for c in cells]
    graded = run(course, "odd", cells)
    assert lost(graded) == {"affine.forward", "affine.dx", "affine.dw", "affine.db", "batchnorm.dx",
                            "batchnorm.dgamma", "batchnorm.dbeta", "softmax.dx"} | NET  # type: ignore[attr-defined]
    text = feedback(course, "odd")
    assert "affine_forward returned ValueError: it returned 10000000 numbers, far more than expected" in text
    assert "dx has shape (2,); the reference's has shape (6, 4)" in text
    assert "batchnorm_backward returned TypeError: its item 2 is a dict, not an array of numbers" in text


PATCHER = '''
import numpy as np
def affine_backward(dout, cache):
    np.allclose = lambda *args, **kwargs: True
    np.array_equal = lambda *args, **kwargs: True
    np.abs = lambda value: np.zeros_like(value)
    np.save = lambda *args, **kwargs: None
    __builtins__["open"] = lambda *args, **kwargs: None
    x, w = cache
    return np.zeros_like(x), np.zeros_like(w), np.zeros(w.shape[1])
'''


@pytest.mark.slow
def test_a_backward_that_patches_numpy_changes_nothing_but_its_own_items(course: tuple[Path, Path]) -> None:
    cells = solution_cells(LAYERS_COURSE)
    graded = run(course, "patcher", [*cells[:2], cells[1] + PATCHER, *cells[2:]])
    assert graded.status == "graded"  # type: ignore[attr-defined]
    assert lost(graded) == {"affine.dx", "affine.dw", "affine.db"} | NET  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="needs the full isolation: run the grader as root with unshare")
def test_a_backward_that_reads_the_reference_gets_nothing_from_it(course: tuple[Path, Path]) -> None:
    reference = course[0].parent / "reference.py"
    reader = f'''
def affine_backward(dout, cache):
    namespace = {{}}
    exec(open({str(reference)!r}).read(), namespace)
    return namespace["affine_backward"](dout, cache)
'''
    cells = solution_cells(LAYERS_COURSE)
    graded = run(course, "reader", [*cells, reader])
    assert lost(graded) == {"affine.dx", "affine.dw", "affine.db"} | NET  # type: ignore[attr-defined]
    assert "affine_backward raised FileNotFoundError" in feedback(course, "reader")


FORGER = '''
import json, os, threading, numpy as np
print(json.dumps({"score": 35, "tests": []}))
def forge():
    while True:
        for name in ("q0_calls.npy", "q0_p0_value.npy", "q0_p0_form.npy"):
            try:
                with open(os.path.join("out", name), "wb") as file:
                    np.save(file, np.array([object()]), allow_pickle=True)
            except OSError:
                pass
        try:
            os.symlink("/etc/passwd", os.path.join("out", "q1_p0_value.npy"))
        except OSError:
            pass
threading.Thread(target=forge, daemon=True).start()
'''


@pytest.mark.slow
def test_forged_results_earn_nothing_and_break_nothing(course: tuple[Path, Path]) -> None:
    template = json.loads((LAYERS_COURSE / "student.ipynb").read_text())
    cells = ["".join(c["source"]) for c in template["cells"] if c["cell_type"] == "code"]
    graded = run(course, "forger", [FORGER, *cells])
    assert graded.score == 0 and graded.status == "graded"  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the commands on the layers course


@pytest.mark.slow
def test_validate_proves_each_problem_and_names_a_broken_reference(tmp_path: Path) -> None:
    validation = validate(SPEC)
    assert validation.ok, str(validation)
    assert "problem 'rnn' (layer: rnn_forward and rnn_backward): the reference passes" in str(validation)
    assert "solution solution.ipynb: 35 of 35 (graded)" in str(validation)
    spec = copy_course(tmp_path, LAYERS_COURSE)
    reference = spec.parent / "reference.py"
    reference.write_text(reference.read_text().replace("db = dout.sum(axis=0)\n    return dx, dw, db",
                                                       "db = 2 * dout.sum(axis=0)\n    return dx, dw, db"))
    broken = validate(spec)
    assert not broken.ok
    assert any(p.startswith("problem 'affine': the reference's affine_forward and affine_backward fails "
                            "gradwidget's check at point 1") for p in broken.problems), broken.problems


@pytest.mark.slow
def test_a_handout_lets_students_check_their_layers_without_the_reference(tmp_path: Path) -> None:
    handout = tmp_path / "handout"
    written = {p.name for p in make_handout(SPEC, handout)}
    assert written == {"assignment.toml", "public-answers.npz", "student.ipynb"}
    assert "reference.py" not in {p.name for p in handout.iterdir()}
    spec = load_spec(handout / "assignment.toml")
    assert spec.items == load_spec(SPEC).items and spec.reference_file is None
    bug = tmp_path / "mine.ipynb"
    bug.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                                          "execution_count": None, "source": c}
                                         for c in with_layer_bug("db = np.sum(dout, axis=0)",
                                                                 "db = np.sum(dout, axis=0) * 2")],
                               "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (graded,) = grade(handout / "assignment.toml", [bug], tmp_path / "check", public=True, progress=False)
    assert lost(graded) == {"affine.db", "two_layer.db1", "two_layer.db2"}
    assert graded.items[0].checked == 1  # the one public point


@pytest.mark.slow
def test_gradescope_zip_for_the_layers_course(tmp_path: Path) -> None:
    archive = build_autograder(SPEC, tmp_path / "autograder.zip")
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"assignment.toml", "reference.py", "secret.txt", "setup.sh", "run_autograder"} <= names
    assert "solution.ipynb" not in names


def test_the_command_reports_each_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(PROBLEM.replace('arguments.b = { shape = [5] }', 'arguments.b = { shape = [5] }\nwrt = "q"'))
    assert main(["validate", str(spec)]) == 2
    assert "spec.toml: [[problems]] 'affine' wrt must be" in capsys.readouterr().err


# ---------------------------------------------------------------- Jacobians, VJPs and Hessians

ARRAY_REFERENCE = '''
import numpy as np

def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()

def softmax_jacobian(z):
    p = softmax(z)
    return np.diag(p) - np.outer(p, p)

def tanh(x, scale):
    return scale * np.tanh(x)

def tanh_vjp(x, scale, v):
    return scale * v * (1 - np.tanh(x) ** 2)

def quartic_gradient(x, A):
    return A @ x + x ** 3

def quartic_hessian(x, A):
    return A + np.diag(3 * x ** 2)
'''

ARRAY_SPEC = '''
[assignment]
name = "arrays"
[reference]
file = "reference.py"
[points]
secret = "file:secret.txt"
hidden = 3
[[problems]]
name = "softmax"
kind = "jacobian"
function = "softmax"
jacobian = "softmax_jacobian"
arguments.z = { shape = [5] }
[[problems]]
name = "tanh"
kind = "vjp"
function = "tanh"
vjp = "tanh_vjp"
arguments.x = { shape = [3, 4] }
arguments.scale = { value = 2.5 }
[[problems]]
name = "quartic"
kind = "hessian"
gradient = "quartic_gradient"
hessian = "quartic_hessian"
arguments.x = { shape = [4] }
arguments.A = { data = "A.npy" }
scoring = { gradient = 1, hessian = 2 }
'''


@pytest.mark.slow
def test_jacobian_vjp_and_hessian_problems(tmp_path: Path) -> None:
    (tmp_path / "reference.py").write_text(ARRAY_REFERENCE)
    (tmp_path / "secret.txt").write_text("s")
    a = np.random.default_rng(0).normal(size=(4, 4))
    np.save(tmp_path / "A.npy", a + a.T)
    spec = tmp_path / "arrays.toml"
    spec.write_text(ARRAY_SPEC)
    assert load_spec(spec).items == ("softmax.forward", "softmax.jacobian", "tanh.forward", "tanh.vjp",
                                     "quartic.gradient", "quartic.hessian")
    validation = validate(spec)
    assert validation.ok, str(validation)
    wrong = (ARRAY_REFERENCE.replace("np.diag(p) - np.outer(p, p)", "np.diag(p)")
             .replace("scale * v * (1", "v * (1").replace("A + np.diag(3 * x ** 2)", "A + np.diag(3 * x)"))
    paths = []
    for name, source in (("right", ARRAY_REFERENCE), ("wrong", wrong)):
        paths.append(tmp_path / f"{name}.py")
        paths[-1].write_text(source)
    right, bad = grade(spec, paths, tmp_path / "out", progress=False)
    assert (right.score, right.max_score) == (7, 7)
    assert {i.name: i.points for i in bad.items} == {"softmax.forward": 1, "softmax.jacobian": 0, "tanh.forward": 1,
                                                     "tanh.vjp": 0, "quartic.gradient": 1, "quartic.hessian": 0}
    codes = {part.problem: [d.code for d in part.diagnoses] for part in bad.parts}
    assert codes["tanh"] == ["scale"], codes
