"""A spec of [functions] and [parameters] is one problem of kind gradient: it gets what every problem gets.

A process of its own for its calls, the flags of every kind, and a
derivative scored whatever became of its value function.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from course import LAYERS_COURSE, copy_course, grade_cells, solution_cells, with_gradient_bug, with_layer_bug

from gradwidget.grading import load_spec
from gradwidget.grading._spec import PARAMETERS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def classic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("classic")
    return copy_course(folder), folder


@pytest.fixture(scope="module")
def layers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("layers")
    return copy_course(folder, LAYERS_COURSE), folder


def test_the_classic_spec_is_one_unnamed_gradient_problem_over_the_parameter_vector(
        classic: tuple[Path, Path]) -> None:
    (problem,) = load_spec(classic[0]).problems
    assert (problem.name, problem.kind, problem.wrt, problem.functions) == ("", "gradient", (PARAMETERS,),
                                                                          ("cost", "gradient"))
    theta = problem.arguments[0]
    assert (theta.kind, theta.layout, [a.name for a in problem.arguments[1:]]) == ("parameters", "unrolled",
                                                                                  ["X", "y", "lam"])
    assert problem.items == ("cost", "Theta1", "Theta2", "Theta3")


def test_a_gradient_that_exits_ends_its_own_process_and_keeps_what_was_earned(classic: tuple[Path, Path]) -> None:
    cells = with_gradient_bug("    thetas = unroll(theta)\n    inputs, h", "    import os\n    os._exit(3)\n"
                              "    thetas = unroll(theta)\n    inputs, h")
    graded = grade_cells(*classic, "exits", cells)
    assert (graded.status, graded.score) == ("graded", 2 / 5)  # the cost at the first point; the rest not called
    assert "the process calling cost and gradient ended: it exited (code 3); its calls after that were not made" \
        in graded.notes


def test_a_gradient_that_swallows_its_time_limit_ends_its_process_only(classic: tuple[Path, Path]) -> None:
    cells = with_gradient_bug("    thetas = unroll(theta)\n    inputs, h",
                              "    while True:\n        try:\n            __import__('time').sleep(60)\n"
                              "        except BaseException:\n            pass\n"
                              "    thetas = unroll(theta)\n    inputs, h")
    graded = grade_cells(*classic, "stubborn-gradient", cells)
    assert (graded.status, graded.score) == ("graded", 2 / 5)
    assert any(note.startswith("gradient at point 1 went on past its time limit") for note in graded.notes)


def test_without_its_cost_a_gradient_is_still_scored(classic: tuple[Path, Path]) -> None:
    cells = [cell.replace("def cost(", "def cost_renamed(") for cell in solution_cells()[:3]]
    graded = grade_cells(*classic, "no-cost", cells)
    assert graded.score == 8 and graded.notes[0].startswith("cost is not defined")


def test_an_import_made_while_a_function_runs_is_seen(classic: tuple[Path, Path]) -> None:
    cells = with_gradient_bug("    thetas = unroll(theta)\n    inputs, h",
                              "    try:\n        __import__('auto' + 'grad')\n"
                              "    except ImportError:\n        pass\n    thetas = unroll(theta)\n    inputs, h")
    graded = grade_cells(*classic, "late-import", cells)
    assert graded.score == 10 and graded.flags == ("forbidden-import:autograd",)


def test_a_layer_that_ignores_its_input_is_flagged_by_name(layers: tuple[Path, Path]) -> None:
    cells = with_layer_bug("    x = cache\n    dx = dout.copy()\n    dx[x <= 0] = 0",
                           "    x = cache\n    dx = np.ones((5, 6))")
    graded = grade_cells(*layers, "constant-relu", cells[:-2])
    assert "ignores-input:relu" in graded.flags


def test_a_backward_far_slower_than_its_forward_is_flagged_by_name(layers: tuple[Path, Path]) -> None:
    cells = with_layer_bug("    x = cache\n    dx = dout.copy()", "    __import__('time').sleep(0.05)\n    x = cache\n"
                           "    dx = dout.copy()")
    graded = grade_cells(*layers, "slow-relu", cells[:-2])
    assert graded.score == graded.max_score and "slow-gradient:relu" in graded.flags


def test_a_notebook_that_imports_hundreds_of_modules_is_graded_whole(layers: tuple[Path, Path]) -> None:
    # IPython and tqdm.auto import hundreds of modules (as a check's progress bar does under load); every one of
    # the nine problems' processes must still find room for its results
    cells = [*solution_cells(LAYERS_COURSE), "import IPython, tqdm.auto, asyncio, unittest, http.server, email.mime"
                                             ".multipart, xml.dom.minidom"]
    graded = grade_cells(*layers, "many-imports", cells)
    assert (graded.status, graded.score) == ("graded", graded.max_score), graded.reason
