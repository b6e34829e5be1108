"""The notebooks in ``notebooks/`` run end to end in a real kernel, and show what they say they show."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

FOLDER = Path(__file__).parent.parent / "notebooks"
# Every notebook but the grading exercise's template, whose functions raise NotImplementedError until a student
# writes them (its grading is tested in test_grading).
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
            notebooks[path.name] = notebook
    return notebooks


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
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
    assert "column 0 of every block is wrong, and only that column (the bias column?)" in reports[0]["text/html"]
    assert all(data["text/html"].count("data:image/png;base64,") == 3 for data in reports[:2])
    plain = [out.data["text/plain"] for out in outputs if out.output_type == "execute_result"]
    assert "(False, ['localized'], 10)" in plain
    assert sum("image/png" in out.get("data", {}) for out in outputs) == 1  # the eps sweep


def test_the_instructors_walkthrough_grades_a_class(executed: dict[str, Any]) -> None:
    notebook = executed["instructor.ipynb"]
    text = "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for out in cell.outputs)
    assert "spec OK" in text
    assert "student     0 / 10  graded   flags: -" in text
    assert "ada        10 / 10  graded   flags: -" in text
    assert "bob         2 / 10  graded   flags: -" in text
    assert "cyd        10 / 10  graded   flags: numerical-gradient, slow-gradient" in text
    assert "column 0 of every block is wrong, and only that column (the bias column?)." in text
    assert "10.0 of 10.0 at the public points" in text


def test_the_solution_notebook_checks_its_own_gradient(executed: dict[str, Any]) -> None:
    outputs = [out for cell in executed["solution.ipynb"].cells if cell.cell_type == "code" for out in cell.outputs]
    assert any("PASSED" in out.get("data", {}).get("text/plain", "") for out in outputs)
