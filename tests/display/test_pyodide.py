"""JupyterLite's Python (Pyodide), emulated: ``sys.platform == "emscripten"`` and threads that cannot start.

This is an emulation on CPython, not a run in a browser: what it shows is
that gradwidget takes the paths Pyodide needs (a re-check in the
foreground, clear errors for what needs processes), not that Pyodide itself
runs them.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import gradwidget as gw
from gradwidget.display._panel import FOREGROUND
from gradwidget.examples import ARTICLE_NAMES, ARTICLE_SHAPES, article_network
from gradwidget.widget import GradCheckPanel


@pytest.fixture
def pyodide(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Pyodide gives: its platform's name, and a RuntimeError from every thread start."""
    def cannot_start(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(sys, "platform", "emscripten")
    monkeypatch.setattr(threading.Thread, "start", cannot_start)


def test_a_check_runs_with_its_progress_bar(pyodide: None) -> None:
    J, grad, theta = article_network("regularized-bias")
    result = gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES, progress=True, seed=0)
    assert result.verdict == "failed" and "missing-term" in [d.code for d in result.diagnoses]


def test_the_panel_re_checks_in_the_foreground_and_says_so(pyodide: None) -> None:
    J, grad, theta = article_network("regularized-bias")
    panel = GradCheckPanel(J, grad, theta, shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES, seed=0)
    assert panel.result.verdict == "failed"
    before = panel.result
    panel.controls.recheck.click()  # returns once the check is done: there was no thread to hand it to
    assert panel.result is not before and panel.result.verdict == "failed"
    assert FOREGROUND in panel.run.message.value
    assert panel.run.progress.layout.display == "none"  # the bar is gone once the check has ended


def test_executor_says_it_needs_a_real_python(pyodide: None) -> None:
    with ThreadPoolExecutor(1) as pool, pytest.raises(gw.OptionError, match=r"executor= needs a Python .*Pyodide"):
        gw.check(lambda x: float(np.sum(x ** 2)), lambda x: 2 * x, np.ones(3), executor=pool)


def test_grading_says_it_needs_a_real_python(pyodide: None, tmp_path: Path) -> None:
    from gradwidget.grading import grade

    with pytest.raises(RuntimeError, match="cannot start processes: grade on a machine with CPython"):
        grade(tmp_path / "assignment.toml", [], tmp_path / "out")
