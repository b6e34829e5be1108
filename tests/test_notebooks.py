"""The notebooks in ``notebooks/`` run end to end in a real kernel, and show what they say they show."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from corpus import REGULARIZED_BIAS_SAYS

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

FOLDER = Path(__file__).parent.parent / "notebooks"
# Every notebook but the grading exercise's template, whose functions raise NotImplementedError until a student
# writes them (its grading is tested in tests/grading).
NOTEBOOKS = sorted(p for p in FOLDER.rglob("*.ipynb") if p.name != "student.ipynb" and ".ipynb_checkpoints" not in
                   p.parts)
KERNEL = "gradwidget-tests"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernel spec that runs this very Python, whatever kernels the machine has installed."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    return root


@pytest.fixture(scope="module")
def executed(kernel_dir: Path) -> dict[str, Any]:
    """Every notebook, run once in a fresh kernel."""
    notebooks = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTER_PATH", str(kernel_dir))
        for path in NOTEBOOKS:
            notebook = nbformat.read(path, as_version=4)
            nbclient.NotebookClient(notebook, timeout=300, kernel_name=KERNEL,
                                    resources={"metadata": {"path": str(path.parent)}}).execute()
            notebooks[path.relative_to(FOLDER).as_posix()] = notebook
    return notebooks


@pytest.mark.parametrize("name", [p.relative_to(FOLDER).as_posix() for p in NOTEBOOKS])
def test_notebook_runs_without_errors(name: str, executed: dict[str, Any]) -> None:
    notebook = executed[name]
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", "".join(cell.source)
            assert output.get("name") != "stderr", output.get("text")


def test_gradcheck_notebook_shows_the_bug_and_the_fix(executed: dict[str, Any]) -> None:
    notebook = executed["gradcheck.ipynb"]
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    reports = [out.data for out in outputs if "text/html" in out.get("data", {})]
    assert [data["text/plain"].split()[1] for data in reports] == ["FAILED", "PASSED", "PASSED"]
    assert REGULARIZED_BIAS_SAYS in reports[0]["text/html"]
    assert all(data["text/html"].count("data:image/png;base64,") == 3 for data in reports[:2])
    plain = [out.data["text/plain"] for out in outputs if out.output_type == "execute_result"]
    assert "(False, ['missing-term'], 10)" in plain
    assert sum("image/png" in out.get("data", {}) for out in outputs) == 1  # the eps sweep


WALKTHROUGHS = {  # each instructor's walkthrough, and lines its output must hold
    "assignment/instructor.ipynb": [
        "spec OK", "student     0 / 10  graded   flags: -", "ada        10 / 10  graded   flags: -",
        "bob         2 / 10  graded   flags: -",
        "cyd        10 / 10  graded   flags: numerical-gradient, slow-gradient",
        REGULARIZED_BIAS_SAYS,
        "10.0 of 10.0 at the public points",
        "bob       2 / 10     graded   copy-of:eve", "eve       2 / 10     graded   reused  copy-of:bob",
        "cyd      10 / 10     graded   \n", "(3 reused: their inputs are unchanged)",
        '"Boole, Bob",102,S-102,bob,Sec 1,4', "no student in the gradebook for: eve", "ada,10,10 of 10 points."],
    "layers-assignment/instructor.ipynb": [
        "spec OK", "solution solution.ipynb: 35 of 35 (graded)",
        "bob       29 lost: affine.dw, two_layer.cost, two_layer.dW1", "cyd       32 lost: relu.dx, two_layer.dW1, "
        "two_layer.db1", "dan       30 lost: rnn.dx, rnn.dh0, rnn.dWx, rnn.dWh, rnn.db", "ada       35 lost: -",
        "affine: dw is the transpose of the reference's", "relu: relu_backward returns the same dx whatever dout is",
        "the gradient flowing back from the next step (dh_next) is dropped", "35.0 of 35.0 at the public points",
        "ada      35 / 35     graded   copy-of:bob;copy-of:cyd;copy-of:dan", "(3 reused: their inputs are unchanged)",
        "dan      35 / 35     graded   copy-of:ada;copy-of:bob;copy-of:cyd", "dan,35,35 of 35 points."],
}


@pytest.mark.parametrize("name", list(WALKTHROUGHS))
def test_each_instructors_walkthrough_grades_a_class(name: str, executed: dict[str, Any]) -> None:
    text = _texts(executed[name])
    assert [line for line in WALKTHROUGHS[name] if line not in text] == []


def test_the_layers_solution_checks_each_of_its_layers(executed: dict[str, Any]) -> None:
    text = _texts(executed["layers-assignment/solution.ipynb"])
    for name in ("relu", "batchnorm", "conv", "max_pool", "rnn_step", "rnn", "softmax"):
        assert f"{name} passed []" in text


def test_the_solution_notebook_checks_its_own_gradient(executed: dict[str, Any]) -> None:
    outputs = [out for cell in executed["assignment/solution.ipynb"].cells if cell.cell_type == "code"
               for out in cell.outputs]
    assert any("PASSED" in out.get("data", {}).get("text/plain", "") for out in outputs)


def _texts(notebook: Any) -> str:
    """Everything the notebook's code cells printed or returned, as text."""
    parts = []
    for cell in notebook.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            parts.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_the_network_tutorial_reproduces_the_articles_check_then_explains(executed: dict[str, Any]) -> None:
    text = _texts(executed["tutorial-network.ipynb"])
    assert re.search(r"right gradient: \d\.\d\de-(1[0-9]|0[89]) passes the 1e-7 rule", text)  # as the article finds
    assert "bias regularized: 1.21e-01 fails the 1e-7 rule" in text
    assert "gradwidget: FAILED" in text and "10 of 110 wrong" in text
    assert "no-sigmoid-gradient" in text and "gradwidget failed: localized" in text
    assert "gradwidget failed: permutation" in text and "column-major" in text
    symmetric = re.search(r"^(passed|failed|inconclusive) \[[^\]]*symmetric-point[^\]]*\]$", text, re.MULTILINE)
    assert symmetric is not None and symmetric.group(0) == "passed ['symmetric-point']", (
        symmetric.group(0) if symmetric else text[-2000:])


def test_the_regression_tutorial_reproduces_the_articles_relative_errors(executed: dict[str, Any]) -> None:
    text = _texts(executed["tutorial-regression.ipynb"])
    errors = [float(v) for v in re.search(r"relative error: \[([^\]]*)\]", text).group(1).split()]
    assert len(errors) == 2 and all(1e-10 < abs(e) < 1e-6 for e in errors)  # of the order of 1e-8, as reported
    assert "gradwidget: PASSED" in text
    calls = int(re.search(r"failed (\d+) calls of J", text).group(1))
    assert calls < 0.01 * 400_000 and "wrong entries found: theta[123456]." in text


def test_the_large_models_tutorial_shows_what_each_mode_costs_and_sees(executed: dict[str, Any]) -> None:
    text = _texts(executed["tutorial-large.ipynb"])
    # 2n calls, J at theta, the wrong entry's second looks; no second point: the block is wrong at theta already
    assert re.search(r"full +failed +40053 calls of J .* \(theta\[12345\]\)", text)
    assert re.search(r"\{'sample': 50\} +passed", text)  # a bug outside the sample: not seen
    assert re.search(r"\{'directions': 8\} +failed +\d{2,3} calls of J", text) and "theta[12345]" in text
    assert re.search(r"vectorized +failed +\d calls of J", text)
    assert "dask, 2 workers   failed" in text


def test_the_layers_tutorial_checks_each_layer_and_names_each_bug(executed: dict[str, Any]) -> None:
    text = _texts(executed["tutorial-layers.ipynb"])
    for layer in ("affine", "relu", "batchnorm", "conv", "max_pool", "rnn"):
        assert re.search(rf"PASSED .*calls of {layer}_forward", text), layer
    assert "conv_param is a dict: it is passed through, not differentiated" in text
    assert "softmax_loss's gradients: dx" in text
    for codes in ("ignores-dout, kink", "broadcast", "missing-term", "transpose", "recurrence",
                  "kink, not-subgradient"):
        assert f"gradwidget failed: {codes}\n" in text, codes
    assert "course recipe: relative errors 1.0e+00 (the right backward)" in text  # the recipe fails a right tie
    assert "db is dout summed over axis 1; the sum over axis 0 is right" in text
    assert "the analytic Hessian is symmetric" in text and "gradwidget failed: scale" in text
    assert "passed (the Hessian-vector product)" in text
    assert re.search(r"Newton step 4: \|grad\| = \d\.\de-(09|1\d)", text)  # quadratic convergence
    assert "jac returned" not in text and "gives the Jacobian transposed" in text
