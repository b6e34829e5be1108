"""``%gradcheck`` in a real IPython shell: every behaviour both as a function and as a magic."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from corpus import REGULARIZED_BIAS_SAYS
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import gradwidget as gw
from gradwidget.examples import ARTICLE_NAMES, ARTICLE_SHAPES, article_network, one_wrong_entry


@pytest.fixture(scope="module")
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "gradwidget")
    yield ip
    ip.run_line_magic("config", "GradCheckMagics.method = 'central'")


@pytest.fixture
def fresh(shell: InteractiveShell) -> Iterator[InteractiveShell]:
    """The shell with the magic's defaults as loaded and no leftovers of other tests."""
    magics = next(c for c in shell.configurables if type(c).__name__ == "GradCheckMagics")
    saved = {name: getattr(magics, name) for name in magics.trait_names(config=True)}
    yield shell
    for name, value in saved.items():  # through %config, so that the shell's config forgets the test's too
        shell.run_line_magic("config", f"GradCheckMagics.{name} = {value!r}")
    for name in ("J", "grad", "theta", "cost_and_grad", "pool", "loss", "dloss"):
        shell.user_ns.pop(name, None)


class Way:
    """Runs a check either as ``gw.check(...)`` or as ``%gradcheck`` on the same objects."""

    def __init__(self, name: str, shell: InteractiveShell) -> None:
        self.name, self.shell = name, shell
        self.error = UsageError if name == "magic" else (ValueError, TypeError)

    def check(self, J: Any, grad: Any, theta: Any, **options: Any) -> gw.CheckResult:
        if self.name == "function":
            return gw.check(J, grad, theta, **options)
        ns = self.shell.user_ns
        ns.update(J=J, theta=theta)
        names = "J theta"
        if grad is not None:
            ns["grad"] = grad
            names = "J grad theta"
        result = self.shell.run_line_magic("gradcheck", f"-q -o {names} {_flags(options, ns)}")
        assert isinstance(result, gw.CheckResult)
        return result


def _flags(options: dict[str, Any], ns: dict[str, Any]) -> str:
    flags = []
    for name, value in options.items():
        if name == "shapes":
            flags.append(f'--shapes "{[tuple(s) for s in value]}"')
        elif name == "names":
            flags.append("--names " + ",".join(value))
        elif name == "executor":
            ns["pool"] = value
            flags.append("--executor pool")
        elif name == "progress":
            flags.append("--progress" if value else "--no-progress")
        elif value is True:
            flags.append(f"--{name}")
        else:
            flags.append(f"--{name} {value!r}".replace("'", ""))
    return " ".join(flags)


@pytest.fixture(params=["function", "magic"])
def way(request: pytest.FixtureRequest, fresh: InteractiveShell) -> Way:
    return Way(request.param, fresh)


# ---------------------------------------------------------------- both ways


def test_right_network_passes(way: Way) -> None:
    J, grad, theta = article_network()
    result = way.check(J, grad, theta, shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES, seed=0)
    assert result.passed
    assert [b.name for b in result.blocks] == ARTICLE_NAMES
    assert result.evaluations < 2 * theta.size + 60


def test_regularized_bias_is_named_a_penalty_on_the_bias_column(way: Way) -> None:
    J, grad, theta = article_network("regularized-bias")
    result = way.check(J, grad, theta, shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES, seed=0)
    assert not result.passed
    assert [d.code for d in result.diagnoses] == ["missing-term"]
    assert result.diagnoses[0].message.startswith("every block: the analytic gradient minus the numeric one is 0.05 x "
                                                  f"the parameter itself {REGULARIZED_BIAS_SAYS}")
    assert [b.wrong for b in result.blocks] == [10, 10, 1]


def test_cost_and_grad_pair(way: Way) -> None:
    def cost_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        return float(np.sum(np.cos(w))), -np.sin(w) * 2

    result = way.check(cost_and_grad, None, np.array([0.3, -1.2, 2.0]))
    assert not result.passed
    assert [(d.code, d.block) for d in result.diagnoses] == [("scale", "theta")]
    assert "the analytic gradient is 2 x the numeric one" in result.diagnoses[0].message


def test_article_rule_with_eps_and_tol(way: Way) -> None:
    J, grad, theta = article_network()
    result = way.check(J, grad, theta, shapes=ARTICLE_SHAPES, eps=1e-4, tol=1e-7)
    assert result.passed
    assert result.evidence.tol == 1e-7
    assert np.all(result.evidence.steps == 1e-4)
    assert result.evaluations == 2 * theta.size + 3 + 1 + 4 * 3  # and the second point: a direction per block


@pytest.mark.parametrize("method", ["richardson", "complex"])
def test_methods(way: Way, method: str) -> None:
    J, grad, theta = article_network()
    result = way.check(J, grad, theta, shapes=ARTICLE_SHAPES, method=method)
    assert result.passed
    assert result.method == method


def test_forward_differences_cannot_resolve_1e_6_and_say_so(way: Way) -> None:
    J, grad, theta = article_network()
    result = way.check(J, grad, theta, shapes=ARTICLE_SHAPES, method="forward")
    assert result.verdict == "inconclusive" and result.method == "forward"
    assert "method='central'" in next(d.message for d in result.diagnoses if d.code == "noise-floor")


def test_sample_is_repeatable(way: Way) -> None:
    J, grad, theta = article_network()
    first = way.check(J, grad, theta, shapes=ARTICLE_SHAPES, sample=4, seed=3)
    second = way.check(J, grad, theta, shapes=ARTICLE_SHAPES, sample=4, seed=3)
    assert [b.checked for b in first.blocks] == [4, 4, 4]
    assert np.array_equal(np.isnan(first.evidence.numeric), np.isnan(second.evidence.numeric))


def test_directions_name_the_wrong_entry(way: Way) -> None:
    J, grad, theta = one_wrong_entry(size=2000, wrong=1234)
    result = way.check(J, grad, theta, directions=8, seed=0)
    assert not result.passed
    assert result.worst_entries()[0]["entry"] == "theta[1234]"


def test_vectorized(way: Way) -> None:
    J, grad, theta = article_network("no-sigmoid-gradient", batched=True)
    result = way.check(J, grad, theta, shapes=ARTICLE_SHAPES, vectorized=True, seed=0)
    assert not result.passed
    assert result.blocks[2].passed and not result.blocks[0].passed


def test_executor(way: Way) -> None:
    J, grad, theta = article_network()
    with ThreadPoolExecutor(2) as pool:
        result = way.check(J, grad, theta, shapes=ARTICLE_SHAPES, executor=pool, progress=False)
    assert result.passed


@pytest.mark.parametrize(("options", "message"), [
    ({"eps": -1.0}, "eps=-1.0 is not accepted: eps must be None or a positive finite number"),
    ({"shapes": [(3, 3)]}, r"shapes=\[\(3, 3\)\] hold 9 entries but theta has shape \(231,\)"),
    ({"sample": 2, "directions": 2}, "sample= and directions= do not combine: they are two ways to check less"),
])
def test_bad_values(way: Way, options: dict, message: str) -> None:
    J, grad, theta = article_network()
    with pytest.raises(way.error, match=message):
        way.check(J, grad, theta, **options)


def test_gradient_of_wrong_shape_is_a_verdict(way: Way) -> None:
    J, _, theta = article_network()
    result = way.check(J, lambda t: np.zeros(230), theta)
    assert result.verdict == "failed" and [d.code for d in result.diagnoses] == ["shape"]
    assert "grad returned shape (230,) for theta, which has shape (231,)" in result.diagnoses[0].message


def test_errors_inside_J_keep_their_traceback(way: Way) -> None:
    def J(w: np.ndarray) -> float:
        raise ZeroDivisionError("the cost divides by zero")

    with pytest.raises(ZeroDivisionError, match="the cost divides by zero"):
        way.check(J, lambda w: w, np.ones(3))


# ---------------------------------------------------------------- the magic only


def _magic_usage_error(shell: InteractiveShell, line: str) -> str:
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("gradcheck", line)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.fixture
def network_ns(fresh: InteractiveShell) -> InteractiveShell:
    J, grad, theta = article_network("regularized-bias")
    fresh.user_ns.update(J=J, grad=grad, theta=theta)
    return fresh


@pytest.mark.parametrize(("line", "message"), [
    ("Jx grad theta", "name 'Jx' is not defined; did you mean 'J'?"),
    ("J gard theta", "name 'gard' is not defined; did you mean 'grad'?"),
    ("J grad thetta", "name 'thetta' is not defined; did you mean 'theta'?"),
    ("J grad nothing_like_it", "name 'nothing_like_it' is not defined$"),
    ("theta grad theta", "'theta' is not a function \\(its type is ndarray\\); .*functions first, theta last"),
    ("J grad", "'grad' is a function; the last name must be the point theta"),
    ("J", "%gradcheck takes 'J grad theta' or 'cost_and_grad theta', got 1 name: J"),
    ("J grad theta --eps abc", "argument --eps: invalid float value: 'abc'"),
    ("J grad theta --method backward", "argument -m/--method: invalid choice: 'backward'"),
    ("J grad theta --sample two", "argument --sample: invalid int value: 'two'"),
    ("J grad theta --bogus", "unrecognized arguments: --bogus"),
    ("J grad theta --names A,B,C", "names= has 3 names for theta's 1 block"),
    ("J grad theta --shapes '[(10, 11)]", "could not split its line: No closing quotation"),
    ("grad J theta", "J must return a scalar cost; .* the cost comes first: %gradcheck J grad theta"),
    ("J grad theta --shapes '[(10, 11)'", "--shapes '\\[\\(10, 11\\)' is neither a literal"),
    ("J grad theta --shapes 'abc'", "name 'abc' is not defined"),
    ("J grad theta --shapes '[(10, 11), (10, 11), (1, 11)]' --names A,B",
     "names= has 2 names for 3 shapes"),
    ("J grad theta --shapes '[2.5]'", r"shapes=\[2.5\] is not accepted: shapes must be None or a list of shapes"),
    ("J grad theta --executor nopool", "name 'nopool' is not defined"),
    ("J grad theta[ --seed 0", "could not evaluate 'theta\\['"),
])
def test_usage_errors(network_ns: InteractiveShell, line: str, message: str) -> None:
    assert re.search(message, _magic_usage_error(network_ns, line))


def test_help_flag_prints_the_help(fresh: InteractiveShell) -> None:
    for line in ("--help", "-h"):
        with capture_output() as captured:
            assert fresh.run_line_magic("gradcheck", line) is None
        assert "--directions" in captured.stdout and "%gradcheck J grad theta" in captured.stdout


def test_messages_speak_of_the_magic_not_the_function(fresh: InteractiveShell) -> None:
    fresh.user_ns.update(J=lambda w: (float(w @ w), 2 * w), grad=lambda w: 2 * w, theta=np.ones(3))
    message = _magic_usage_error(fresh, "J grad theta")
    assert "grad=None" not in message and "%gradcheck cost_and_grad theta" in message
    fresh.user_ns.update(J=lambda w: float(w @ w))
    message = _magic_usage_error(fresh, "J theta")
    assert "grad=None" not in message and "with two names, the first must return (cost, grad)" in message


def test_blocks_are_named_after_the_variables(fresh: InteractiveShell) -> None:
    fresh.user_ns.update(J=lambda w: float(w @ w), grad=lambda w: 2 * w, weights=np.array([0.3, -0.2]))
    result = fresh.run_line_magic("gradcheck", "-q -o J grad weights")
    assert [b.name for b in result.blocks] == ["weights"]
    fresh.user_ns.update(J=lambda p: float(p[0] @ p[0] + p[1] @ p[1]), grad=lambda p: [2 * p[0], 2 * p[1]],
                         params=[np.array([0.3]), np.array([0.1, 0.2])])
    result = fresh.run_line_magic("gradcheck", "-q -o J grad params")
    assert [b.name for b in result.blocks] == ["params[0]", "params[1]"]
    result = fresh.run_line_magic("gradcheck", "-q -o J grad params[:]")  # an expression: the default names
    assert [b.name for b in result.blocks] == ["theta[0]", "theta[1]"]


def test_a_traceback_from_J_starts_at_the_users_code(fresh: InteractiveShell) -> None:
    fresh.run_cell("import numpy as np\n"
                   "def J(w):\n"
                   "    return float(np.sum(w)) / 0 if w[0] > 0.5 else 1 / 0\n"
                   "grad = lambda w: w\n"
                   "theta = np.ones(3)")
    with capture_output() as captured:
        outcome = fresh.run_cell("%gradcheck J grad theta")
    assert isinstance(outcome.error_in_exec, ZeroDivisionError)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", captured.stdout + captured.stderr)  # without colours
    assert "----> 3     return float(np.sum(w)) / 0" in shown and "gradwidget/_" not in shown
    assert "raised by J" in shown  # the note that says where it happened stays


def test_usage_error_shows_no_traceback(network_ns: InteractiveShell) -> None:
    with capture_output() as captured:
        outcome = network_ns.run_cell("%gradcheck Jx grad theta")
    assert isinstance(outcome.error_in_exec, UsageError)
    assert "Traceback" not in captured.stdout + captured.stderr
    assert "did you mean 'J'?" in captured.stdout + captured.stderr


def test_help_lists_every_option_and_an_example(fresh: InteractiveShell) -> None:
    text = fresh.find_line_magic("gradcheck").__doc__
    for flag in ("--method", "--eps", "--tol", "--sample", "--directions", "--seed", "--shapes", "--names",
                 "--vectorized", "--executor", "--progress", "--no-progress", "--cost", "--grad", "-o", "-q"):
        assert flag in text, flag
    assert "%gradcheck J grad theta" in text
    assert "%%gradcheck theta" in text
    with capture_output() as captured:
        fresh.run_cell("%gradcheck?")
    assert "--directions" in captured.stdout


def test_display_shows_html_and_text(network_ns: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    formatter = network_ns.display_formatter  # a notebook's kernel asks for every type; a terminal for text
    monkeypatch.setattr(formatter, "active_types", list(formatter.format_types))
    with capture_output() as captured:
        returned = network_ns.run_line_magic("gradcheck", "J grad theta --shapes '[(10,11),(10,11),(1,11)]'")
    assert returned is None
    (output,) = captured.outputs
    assert 'class="gradwidget-verdict"' in output.data["text/html"]
    assert output.data["text/plain"].startswith("gradwidget: FAILED")


def test_in_a_kernel_the_panel_is_shown(network_ns: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network_ns, "kernel", object(), raising=False)
    formatter = network_ns.display_formatter
    monkeypatch.setattr(formatter, "active_types", list(formatter.format_types))
    with capture_output() as captured:
        result = network_ns.run_line_magic("gradcheck", "-o J grad theta --shapes '[(10,11),(10,11),(1,11)]'")
    static, live = captured.outputs  # the report for static renders, then the panel (which hides it, live)
    assert static.data["text/plain"].startswith("gradwidget: FAILED")
    assert 'class="gradwidget-static"' in static.data["text/html"]
    assert 'class="gradwidget-verdict"' in static.data["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in live.data
    assert [h.block for h in result.widget().heatmaps] == ["theta[0]", "theta[1]", "theta[2]"]


def test_a_result_returned_by_o_is_not_shown_again_in_its_own_cell(network_ns: InteractiveShell,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network_ns, "kernel", object(), raising=False)
    formatter = network_ns.display_formatter
    monkeypatch.setattr(formatter, "active_types", list(formatter.format_types))
    with capture_output() as captured:
        network_ns.run_cell("%gradcheck -o J grad theta --shapes '[(10,11),(10,11),(1,11)]'", store_history=True)
    assert len(captured.outputs) == 2  # the static copy and the panel: no Out[n] with the report again
    with capture_output() as later:
        network_ns.run_cell("_", store_history=True)  # the same result, in a later cell: shown
    (output,) = later.outputs
    assert output.data["text/plain"].startswith("gradwidget: FAILED") and "gradwidget-verdict" in output.data[
        "text/html"]


def test_quiet_displays_nothing(network_ns: InteractiveShell) -> None:
    with capture_output() as captured:
        result = network_ns.run_line_magic("gradcheck", "-q -o J grad theta")
    assert captured.outputs == [] and captured.stdout == ""
    assert isinstance(result, gw.CheckResult)


def test_expressions_are_evaluated(network_ns: InteractiveShell) -> None:
    result = network_ns.run_line_magic("gradcheck", "-q -o J grad theta.copy()")
    assert result.evidence.layout.size == 231


def test_config_sets_defaults_and_flags_override(network_ns: InteractiveShell) -> None:
    network_ns.run_line_magic("config", "GradCheckMagics.method = 'forward'")
    network_ns.run_line_magic("config", "GradCheckMagics.sample = 3")
    result = network_ns.run_line_magic("gradcheck", "-q -o J grad theta")
    assert result.method == "forward" and result.checked == 3
    result = network_ns.run_line_magic("gradcheck", "-q -o J grad theta --method central --sample 5")
    assert result.method == "central" and result.checked == 5


def test_config_reaches_the_magic_after_reload_ext(network_ns: InteractiveShell) -> None:
    network_ns.run_line_magic("reload_ext", "gradwidget")
    assert sum(type(c).__name__ == "GradCheckMagics" for c in network_ns.configurables) == 1
    network_ns.run_line_magic("config", "GradCheckMagics.sample = 2")
    assert network_ns.run_line_magic("gradcheck", "-q -o J grad theta").checked == 2


def test_config_rejects_bad_defaults(fresh: InteractiveShell, caplog: pytest.LogCaptureFixture) -> None:
    fresh.run_line_magic("config", "GradCheckMagics.method = 'backward'")
    assert ("%config GradCheckMagics.method='backward' is not accepted: method must be one of 'central', "
            "'forward', 'complex', 'richardson'") in caplog.text
    result_method = next(c for c in fresh.configurables if type(c).__name__ == "GradCheckMagics").method
    assert result_method == "central"


CELL = """
import numpy as np

A = np.array([[2.0, 1.0], [1.0, 3.0]])
def {cost}(w):
    return 0.5 * w @ A @ w
def {grad}(w):
    return A @ w{bug}
theta = np.array([0.4, -0.7])
"""


@pytest.mark.parametrize(("cost", "grad", "flags", "passed"), [
    ("J", "grad", "", True),
    ("J", "grad", "", False),
    ("loss", "dloss", "--cost loss --grad dloss", True),
])
def test_cell_form(fresh: InteractiveShell, cost: str, grad: str, flags: str, passed: bool) -> None:
    cell = CELL.format(cost=cost, grad=grad, bug="" if passed else " * 2")
    result = fresh.run_cell_magic("gradcheck", f"-q -o theta {flags}", cell)
    assert result.passed is passed
    assert callable(fresh.user_ns[cost])  # the cell ran in the notebook's namespace


def test_cell_form_with_a_pair_ignores_an_earlier_grad(fresh: InteractiveShell) -> None:
    fresh.user_ns["grad"] = lambda w: 0 * w  # left over from an earlier cell
    cell = "import numpy as np\ndef J(w):\n    return float(w @ w), 2 * w\ntheta = np.arange(3.0)\n"
    result = fresh.run_cell_magic("gradcheck", "-q -o theta", cell)
    assert result.passed and result.evidence.layout.size == 3


def test_cell_form_grad_defined_elsewhere(fresh: InteractiveShell) -> None:
    fresh.user_ns["dloss"] = lambda w: 2 * w
    cell = "import numpy as np\ndef J(w):\n    return float(w @ w)\ntheta = np.arange(3.0)\n"
    assert fresh.run_cell_magic("gradcheck", "-q -o theta --grad dloss", cell).passed


def test_cell_form_errors(fresh: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="name 'J' is not defined \\(the cell should define it; --cost NAME"):
        fresh.run_cell_magic("gradcheck", "theta", "import numpy as np\ntheta = np.ones(2)\n")
    with pytest.raises(UsageError, match="%%gradcheck takes one name, the point theta, got J grad theta"):
        fresh.run_cell_magic("gradcheck", "J grad theta", "pass")


def test_cell_that_raises_checks_nothing(fresh: InteractiveShell) -> None:
    with capture_output() as captured:
        result = fresh.run_cell_magic("gradcheck", "-o theta", "1 / 0")
    assert result is None
    assert "ZeroDivisionError" in captured.stdout + captured.stderr
    assert not captured.outputs



def test_precision_as_given_keeps_a_float32_check_in_float32(way: Way) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3)).astype(np.float32)
    J = lambda w: 0.5 * np.sum((X @ w) ** 2)  # noqa: E731  (follows its dtype)
    grad = lambda w: X.T @ (X @ w)  # noqa: E731
    w = rng.normal(size=3).astype(np.float32)
    assert way.check(J, grad, w, seed=0).precision["checked_in"] == "float64"
    assert way.check(J, grad, w, precision="as-given", seed=0).precision["checked_in"] == "float32"
