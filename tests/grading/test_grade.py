"""The grading layer: the spec, points, submissions, the worker's files read as untrusted, and each command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from course import COURSE, SECRET, copy_course, solution_cells, with_gradient_bug, write_notebook

from gradwidget.grading import SpecError, grade, load_spec, self_check, validate
from gradwidget.grading._cli import main
from gradwidget.grading._submission import imported_modules, read_submissions
from gradwidget.grading.sandbox._outcome import read_outcome

SPEC = COURSE / "assignment.toml"


def spec_with(tmp_path: Path, text: str) -> Path:
    """A spec beside a copy of the course's files, its tables replaced by ``text``."""
    spec = copy_course(tmp_path).parent / "custom.toml"
    spec.write_text(text)
    return spec


BASE = """
[assignment]
name = "t"
[functions]
cost = "cost"
gradient = "gradient"
arguments = ["X", "y", "lam"]
[reference]
file = "reference.py"
[parameters]
shapes = [[10, 11], [10, 11], [1, 11]]
[data]
X = "data/X.npy"
y = "data/y.npy"
lam = 1.0
"""


# ---------------------------------------------------------------- the spec


def test_the_example_spec_loads() -> None:
    spec = load_spec(SPEC)
    (problem,) = spec.problems
    theta, x, _, lam = problem.arguments
    assert (problem.blocks, theta.parameters.size, spec.max_score, spec.hidden, theta.layout) == (
        ("Theta1", "Theta2", "Theta3"), 231, 10, 5, "unrolled")
    assert spec.items == ("cost", "Theta1", "Theta2", "Theta3")
    assert x.value.shape == (40, 10) and lam.value == 1.0


@pytest.mark.parametrize(("change", "message"), [
    (("[assignment]\nname = \"t\"", "[assignment]"), r"\[assignment\] needs the key 'name'"),
    (("cost = \"cost\"", "cost = 3"), r"\[functions\] cost must be a non-empty string, got 3"),
    (("cost = \"cost\"", "cost = \"not a name\""), r"\[functions\] cost must be a Python name"),
    (("file = \"reference.py\"", "file = \"missing.py\""), r"\[reference\] file = 'missing.py': no such file"),
    (("shapes = [[10, 11], [10, 11], [1, 11]]", "shapes = [[10, -1]]"), r"\[parameters\] shapes must be a non-empty"),
    (("lam = 1.0", "lam = 1.0\nbogus = \"nope.npy\""), r"\[data\] bogus = 'nope.npy': cannot load it as .npy"),
    (("arguments = [\"X\", \"y\", \"lam\"]", "arguments = [\"X\", \"Z\"]"), r"there is no \[data\] 'Z'"),
    (("[data]", "[points]\nhidden = \"five\"\n[data]"), r"\[points\] hidden must be a whole number >= 1, got 'five'"),
    (("[data]", "[limits]\nmemory = \"lots\"\n[data]"), r"\[limits\] memory must be a size such as"),
    (("[data]", "[scoring]\ngradient = { Theta1 = 1 }\n[data]"), r"\[scoring\] gradient must be a number or a table"),
    (("[data]", "[points]\nsecret = \"vault\"\n[data]"), r"\[points\] secret must be env:NAME or file:PATH"),
    (("[data]", "[points]\nhiden = 3\n[data]"), r"\[points\] has an unknown key 'hiden'; it takes"),
    (("[data]", "[grading]\n[data]"), r"unknown table \[grading\]"),
    (("[data]", "[data\n"), r"custom.toml is not valid TOML"),
])
def test_every_mistake_names_its_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    spec = spec_with(tmp_path, BASE.replace(*change))
    with pytest.raises(SpecError, match=message):
        load_spec(spec)


def test_a_missing_secret_says_where_it_looked(tmp_path: Path) -> None:
    spec = spec_with(tmp_path, BASE + '[points]\nsecret = "env:NO_SUCH_GRADWIDGET_SECRET"\n')
    with pytest.raises(SpecError, match="the environment variable NO_SUCH_GRADWIDGET_SECRET is not set"):
        grade(spec, [], tmp_path / "out")


# ---------------------------------------------------------------- submissions


def test_notebook_syntax_becomes_python_and_ids_come_from_stems(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "alice smith.ipynb", ["%load_ext gradwidget\nx = 1", "!ls\ny = 2",
                                                               "%%time\nz = 3"])
    script = tmp_path / "bob.py"
    script.write_text("a = 1\n# %%\nb = 2\n# %% [markdown]\n")
    alice, bob = read_submissions([notebook, script])
    assert alice.id == "alice_smith" and bob.id == "bob"
    assert "get_ipython().run_line_magic('load_ext', 'gradwidget')" in alice.cells[0]
    assert "get_ipython().system('ls')" in alice.cells[1]
    assert [c.strip() for c in bob.cells] == ["a = 1", "b = 2"]
    with pytest.raises(ValueError, match="two submissions have the id 'bob'"):
        read_submissions([script, script])
    odd = [write_notebook(tmp_path / f"{stem}.ipynb", ["x = 1"]) for stem in ("...", "-2+3", "=cmd|x")]
    assert [s.id for s in read_submissions(odd)] == ["_..", "_2_3", "_cmd_x"]


def test_imports_are_read_from_the_code_without_running_it() -> None:
    cells = ("import numpy as np\nfrom autograd import grad", "m = __import__('torch')",
             "import importlib\nx = importlib.import_module('jax.numpy')", "def (broken")
    assert imported_modules(cells) == {"numpy", "autograd", "torch", "importlib", "jax.numpy"}


# ---------------------------------------------------------------- what the worker wrote, read as untrusted


TASK = {"cells": [], "problems": [{"points": 3, "parts": ["Theta1", "Theta2", "Theta3"], "limit": 940}]}


def test_forged_and_linked_files_count_as_not_written(tmp_path: Path) -> None:
    out = tmp_path / "job" / "out"
    out.mkdir(parents=True)
    (out / "q0_p0_value.npy").write_bytes(b"\x93NUMPY not really")  # forged
    np.save(out / "q0_p1_value.npy", np.array(["1.0"]))  # not numbers
    (out / "q0_p2_value.npy").symlink_to("/etc/passwd")  # a link to a file the grader could read
    np.save(out / "q0_calls.npy", np.array([[7, -1]] * 3, dtype=np.int8))  # unknown codes
    np.save(out / "q0_p0_form.npy", np.array([0, 1], dtype=np.int8))
    np.save(out / "q0_p0_g0.npy", np.array(["a"]))  # text, not numbers
    with open(out / "imports.npy", "wb") as file:
        file.write(b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }" + b" " * 50)
    outcome = read_outcome(tmp_path / "job", TASK)
    (problem,) = outcome.problems
    assert problem.values == [None, None, None]
    assert problem.derivatives == [None, None, None]
    assert (problem.calls == 5).all() and outcome.imports == () and not outcome.finished


def test_a_linked_out_folder_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    np.save(elsewhere / "done.npy", np.asarray(1))
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "out").symlink_to(elsewhere)
    assert not read_outcome(tmp_path / "job", TASK).finished


# ---------------------------------------------------------------- isolation


def test_folders_others_cannot_pass_are_reopened_for_the_way_to_python_only(tmp_path: Path) -> None:
    from gradwidget.grading.sandbox._isolation import reopen_plan

    (tmp_path / "home" / "python" / "bin").mkdir(parents=True)
    (tmp_path / "home" / "secrets").mkdir()
    os.chmod(tmp_path / "home", 0o700)
    python = tmp_path / "home" / "python" / "bin"

    def within(plan: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:  # pytest's own folders are 0700 too
        return [(b, c) for b, c in plan if tmp_path in b.parents]

    assert within(reopen_plan([python])) == [(tmp_path / "home", tmp_path / "home" / "python")]
    os.chmod(tmp_path / "home", 0o755)
    assert within(reopen_plan([python])) == []


# ---------------------------------------------------------------- commands


def test_the_done_when_command(tmp_path: Path) -> None:
    """`gradwidget grade` on the example course: full marks for the solution, a clear zero for the template."""
    out = tmp_path / "grades"
    command = [sys.executable, "-m", "gradwidget", "grade", str(SPEC), str(COURSE / "solution.ipynb"),
               str(COURSE / "student.ipynb"), "--out", str(out), "--no-progress"]
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    assert finished.stdout.splitlines()[-1] == f"2 graded into {out / 'grades.csv'}"
    rows = [line.split(",") for line in (out / "grades.csv").read_text().splitlines()]
    assert [r[:4] for r in rows[1:]] == [["solution", "10", "10", "graded"], ["student", "0", "10", "graded"]]
    feedback = (out / "student" / "feedback.html").read_text()
    assert "cost raised NotImplementedError (at 5 of 5 check points)" in feedback
    assert json.loads((out / "solution" / "results.json").read_text())["score"] == 10


def test_command_mistakes_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grade", str(tmp_path / "none.toml"), "x.ipynb", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("gradwidget grade: cannot read the spec")
    assert main(["grade", str(SPEC), "a.ipynb", "b.ipynb", "--id", "x", "--out", str(tmp_path)]) == 2


def test_validate_passes_the_example_and_names_problems(tmp_path: Path) -> None:
    validation = validate(SPEC)
    assert validation.ok, str(validation)
    assert "solution solution.ipynb: 10 of 10 (graded)" in validation.lines
    assert "template student.ipynb: 0 of 10 (graded)" in validation.lines
    spec = copy_course(tmp_path)
    (spec.parent / "reference.py").write_text((spec.parent / "reference.py").read_text().replace(
        "grads[layer][:, 1:] += lam / m * thetas[layer][:, 1:]", "grads[layer] += lam / m * thetas[layer]"))
    (spec.parent / "assignment.toml").write_text(spec.read_text().replace("[limits]", "[tolerance]\ngradient = "
                                                                                      "1e-15\n[limits]"))
    broken = validate(spec)
    assert not broken.ok
    assert any(p.startswith("the reference's gradient fails gradwidget's check at point 1") for p in broken.problems)
    assert any(p.startswith("tolerance.gradient = 1e-15 is too tight") for p in broken.problems)
    assert any(p.startswith("the solution solution.ipynb gets") for p in broken.problems)
    assert main(["validate", str(spec)]) == 1


def test_a_handout_lets_students_check_themselves_without_the_reference(tmp_path: Path) -> None:
    assert main(["handout", str(SPEC), "--out", str(tmp_path / "handout")]) == 0
    handout = tmp_path / "handout"
    assert sorted(p.name for p in handout.rglob("*") if p.is_file()) == [
        "X.npy", "assignment.toml", "public-answers.npz", "student.ipynb", "y.npy"]
    text = (handout / "assignment.toml").read_text()
    assert "reference.py" not in text and "secret" not in text and "solution" not in text
    right = write_notebook(tmp_path / "mine.ipynb", solution_cells())
    check = self_check(handout / "assignment.toml", right)
    assert check.graded.score == 10 and check.graded.items[0].checked == 2
    assert "2 points of your own" in check._repr_html_() or "at 2 points" in check._repr_html_()
    wrong = write_notebook(tmp_path / "wrong.ipynb", with_gradient_bug("G[:, 1:] += lam / m * Theta[:, 1:]",
                                                                       "G += lam / m * Theta"))
    assert self_check(handout / "assignment.toml", wrong).graded.diagnoses[0].code == "missing-term"
    with pytest.raises(SpecError, match="grading at hidden points"):
        grade(handout / "assignment.toml", [right], tmp_path / "out", progress=False)


def test_gradescope_autograder_runs_in_a_gradescope_like_root(tmp_path: Path) -> None:
    archive = tmp_path / "autograder.zip"
    assert main(["gradescope", str(SPEC), "-o", str(archive)]) == 0
    root = tmp_path / "autograder"
    with zipfile.ZipFile(archive) as unpacked:
        names = set(unpacked.namelist())
        unpacked.extractall(root / "source")
    assert {"setup.sh", "run_autograder", "assignment.toml", "reference.py", "data/X.npy", "secret.txt"} <= names
    assert any(n.startswith("gradwidget-") and n.endswith(".whl") for n in names)
    assert "solution.ipynb" not in names and "student.ipynb" not in names
    assert "pip install ./gradwidget-*.whl" in (root / "source" / "setup.sh").read_text()
    run_autograder = root / "run_autograder"
    run_autograder.write_bytes((root / "source" / "run_autograder").read_bytes())
    os.chmod(run_autograder, 0o755)
    write_notebook(root / "submission" / "homework.ipynb", with_gradient_bug(
        "return np.concatenate([G.ravel() for G in grads])", "return np.concatenate([G.ravel() for G in grads]) / m"))
    (root / "submission_metadata.json").write_text(json.dumps({"id": 77, "users": [{"id": 4242, "name": "A"}]}))
    environment = {**os.environ, "GRADWIDGET_AUTOGRADER_ROOT": str(root),
                   "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run([str(run_autograder)], env=environment, check=True, capture_output=True, cwd=root)
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 2
    assert [t["name"] for t in results["tests"]] == ["cost", "gradient: Theta1", "gradient: Theta2",
                                                     "gradient: Theta3", "integrity review (instructors only)"]
    assert results["tests"][-1]["visibility"] == "hidden"
    assert "0.025 x the reference's" in results["tests"][1]["output"]


def test_a_broken_run_still_leaves_a_results_json(tmp_path: Path) -> None:
    archive = tmp_path / "autograder.zip"
    main(["gradescope", str(SPEC), "-o", str(archive)])
    root = tmp_path / "autograder"
    with zipfile.ZipFile(archive) as unpacked:
        unpacked.extractall(root / "source")
    (root / "source" / "assignment.toml").write_text("not toml [")
    environment = {**os.environ, "GRADWIDGET_AUTOGRADER_ROOT": str(root),
                   "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["bash", str(root / "source" / "run_autograder")], env=environment, capture_output=True)
    assert json.loads((root / "results" / "results.json").read_text())["score"] == 0


@pytest.mark.slow
def test_two_workers_and_a_dask_cluster_grade_the_same(tmp_path: Path) -> None:
    spec = copy_course(tmp_path)
    submissions = [write_notebook(tmp_path / "subs" / f"s{k}.ipynb", solution_cells() if k % 2 else
                                  with_gradient_bug("return np.concatenate", "return 2 * np.concatenate"))
                   for k in range(4)]
    serial = grade(spec, submissions, tmp_path / "serial", progress=False)
    pooled = grade(spec, submissions, tmp_path / "pooled", workers=2, progress=False)
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        clustered = grade(spec, submissions, tmp_path / "dask", dask=cluster.scheduler_address, progress=False)
    for run in (pooled, clustered):
        assert [(g.id, g.score, g.flags) for g in run] == [(g.id, g.score, g.flags) for g in serial]
    assert [g.score for g in serial] == [2, 10, 2, 10]
    assert SECRET  # the course's secret drew every run's points


def test_the_docs_spec_page_names_every_spec_key() -> None:
    from gradwidget.grading import SPEC_KEYS

    sys.path.insert(0, str(COURSE.parents[1] / "docs"))
    try:
        from generate import spec_page
    finally:
        sys.path.remove(str(COURSE.parents[1] / "docs"))
    page = spec_page()
    assert [key for key in SPEC_KEYS if f"| `{key}` |" not in page] == []


@pytest.mark.slow
def test_feedback_sets_a_diagnosis_formulas_as_code_not_backticks(tmp_path: Path) -> None:
    spec = copy_course(tmp_path)
    path = write_notebook(tmp_path / "bias.ipynb", with_gradient_bug("G[:, 1:] += lam / m * Theta[:, 1:]",
                                                                     "G += lam / m * Theta"))
    grade(spec, [path], tmp_path / "out", progress=False)
    page = (tmp_path / "out" / "bias" / "feedback.html").read_text()
    diagnoses = page[page.index("<ul class='diagnoses'>"):]
    diagnoses = diagnoses[:diagnoses.index("</ul>")]
    assert "<code>2 * reg * W</code>" in diagnoses and "`" not in diagnoses
