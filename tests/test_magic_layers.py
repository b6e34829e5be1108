"""``%gradcheck --layer``, ``--vjp``, ``--jvp``, ``--jacobian`` and ``--hessian`` through a real IPython shell."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from layer_cases import (
    affine_backward,
    affine_forward,
    conv_backward_naive,
    conv_forward_naive,
    logistic_problem,
    softmax_backward_diagonal,
    softmax_forward,
)

import gradwidget as gw

AFFINE_CELL = """
def affine_forward(x, w, b):
    return x @ w + b, (x, w)

def affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis={axis})
"""


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "gradwidget")
    rng = np.random.default_rng(0)
    names = {"x": rng.normal(size=(4, 3)), "w": rng.normal(size=(3, 5)), "b": rng.normal(size=5),
             "affine_forward": affine_forward, "affine_backward": affine_backward}
    ip.user_ns.update(names)
    yield ip
    for name in [*names, "dout", "conv_param", "xc", "wc", "bc", "s", "grad", "hess", "hvp", "wl"]:
        ip.user_ns.pop(name, None)


def run(shell: InteractiveShell, line: str, cell: str | None = None) -> gw.CheckResult:
    result = (shell.run_line_magic("gradcheck", f"-q -o {line}") if cell is None
              else shell.run_cell_magic("gradcheck", f"-q -o {line}", cell))
    assert isinstance(result, gw.CheckResult)
    return result


def test_a_layer_is_checked_from_names_of_the_notebook(shell: InteractiveShell) -> None:
    result = run(shell, "--layer affine_forward affine_backward x w b --seed 0")
    assert result.passed
    assert [b.name for b in result.blocks] == ["x", "w", "b"]
    assert "affine_backward against affine_forward: dx, dw, db; dout random, seed 0" in str(result)


def test_pass_through_arguments_wrt_and_dout(shell: InteractiveShell) -> None:
    rng = np.random.default_rng(1)
    shell.user_ns.update(xc=rng.normal(size=(2, 3, 5, 5)), wc=rng.normal(size=(2, 3, 3, 3)), bc=rng.normal(size=2),
                         conv_param={"stride": 2, "pad": 1}, conv_forward_naive=conv_forward_naive,
                         conv_backward_naive=conv_backward_naive, dout=np.ones((4, 5)))
    conv = run(shell, "--layer conv_forward_naive conv_backward_naive xc wc bc conv_param --wrt x,w")
    assert conv.passed and [b.name for b in conv.blocks] == ["x", "w"]
    assert "conv_param is a dict: it is passed through, not differentiated" in str(conv)
    given = run(shell, "--layer affine_forward affine_backward x w b --dout dout")
    assert "dout given" in str(given)
    assert np.array_equal(given.evidence.subject.cotangent, np.ones(20))


def test_the_cell_form_checks_the_functions_the_cell_defines(shell: InteractiveShell) -> None:
    right = run(shell, "--layer x w b", AFFINE_CELL.format(axis=0))
    wrong = run(shell, "--layer x w b", AFFINE_CELL.format(axis=0).replace("dout @ w.T", "2 * dout @ w.T"))
    assert right.passed
    assert wrong.verdict == "failed" and [d.code for d in wrong.diagnoses] == ["scale"]


def test_jacobians_vjps_jvps_and_hessians(shell: InteractiveShell) -> None:
    grad, hess, hvp, w = logistic_problem()
    shell.user_ns.update(grad=grad, hess=hess, hvp=hvp, wl=w, softmax_forward=softmax_forward,
                         softmax_backward_diagonal=softmax_backward_diagonal,
                         s=np.random.default_rng(2).normal(size=(3, 4)))
    assert run(shell, "--hessian grad hess wl").passed
    assert [b.name for b in run(shell, "--jvp grad hvp wl").blocks] == ["wl"]
    assert run(shell, "--jacobian grad hess wl").passed
    shell.user_ns["f"] = lambda v: np.tanh(v)
    shell.user_ns["f_vjp"] = lambda v, c: c * (1 - np.tanh(v) ** 2)
    assert run(shell, "--vjp f f_vjp wl").passed
    diagonal = run(shell, "--layer softmax_forward softmax_backward_diagonal s")
    assert [d.code for d in diagonal.diagnoses] == ["missing-term"]


@pytest.mark.parametrize(("line", "message"), [
    ("--layer affine_forward lambda_d x w b", "name 'lambda_d' is not defined"),
    ("--layer affine_forward x w b", "'x' is not a function"),
    ("--vjp affine_forward affine_backward x w", "%gradcheck --vjp takes F VJP X, got 4 names"),
    ("--layer --vjp affine_forward affine_backward x", "takes one of --layer, --vjp"),
    ("--layer affine_forward affine_backward x w b --wrt v", "wrt=['v']: no argument named 'v'"),
    ("--layer affine_forward affine_backward x w b --vectorized", "check_layer() does not take vectorized="),
    ("affine_forward affine_backward x --wrt x", "--wrt and --dout go with --layer"),
])
def test_mistakes_are_one_line_usage_errors(shell: InteractiveShell, line: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic("gradcheck", line)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_backward_returning_too_few_gradients_is_told_what_to_return(shell: InteractiveShell) -> None:
    shell.user_ns["two_grads"] = lambda dout, cache: affine_backward(dout, cache)[:2]
    shell.user_ns["two_grads"].__name__ = "affine_backward"
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic("gradcheck", "--layer affine_forward two_grads x w b")
    assert str(caught.value) == ("affine_backward returned 2 arrays, but affine_forward has 3 floating-point "
                                 "arguments to differentiate (x, w, b): return dx, dw, db, or pass --wrt x,w")


def test_the_cell_must_define_two_functions(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="the cell must define two functions \\(FORWARD and BACKWARD\\), in that "
                                         "order; it defines 1: only_one"):
        shell.run_cell_magic("gradcheck", "--layer x", "def only_one(x):\n    return x, x\n")


def test_help_shows_every_form(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_line_magic("gradcheck", "--help")
    text = capsys.readouterr().out
    for form in ("--layer affine_forward affine_backward x w b", "--vjp f f_vjp x", "--jvp grad hvp w",
                 "--jacobian residual residual_jacobian u", "--hessian grad hess w", "%%gradcheck --layer x w b"):
        assert form in text


def test_config_defaults_reach_layer_checks(shell: InteractiveShell) -> None:
    shell.run_line_magic("config", "GradCheckMagics.method = 'richardson'")
    try:
        assert run(shell, "--layer affine_forward affine_backward x w b").method == "richardson"
    finally:
        shell.run_line_magic("config", "GradCheckMagics.method = 'central'")
