"""The panel and the heatmap widget in Python, with no front end: state, buffers, controls."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest
import traitlets

import gradwidget as gw
from gradwidget.display._heatmap import front_end_file
from gradwidget.examples import ARTICLE_NAMES, ARTICLE_SHAPES, article_network
from gradwidget.widget import GradCheckPanel, Heatmap


@pytest.fixture
def failing() -> gw.CheckResult:
    J, grad, theta = article_network("regularized-bias")
    return gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES, seed=0)


def floats(heatmap: Heatmap) -> np.ndarray:
    data = heatmap.get_state()["values"]
    return np.frombuffer(bytes(data), dtype="<f4")


def test_heatmap_state_is_float32_bytes(failing: gw.CheckResult) -> None:
    heatmap = Heatmap(failing, failing.evidence.layout.blocks[0])
    state = heatmap.get_state()
    assert isinstance(state["values"], (bytes, memoryview))
    assert len(state["values"]) == 4 * 110
    assert (state["block"], state["shape"], state["rows"], state["cols"]) == ("Theta1", [10, 11], 10, 11)
    ev = failing.evidence
    expected = (ev.gap[:110] / ev.tolerance[:110]).astype(np.float32)  # the quantity the verdict uses
    assert np.array_equal(floats(heatmap), expected)
    assert (state["vmin"], state["vmax"], state["log"], state["label"]) == (1e-3, 1e3, True, "tolerance")
    assert state["threshold"] == 1.0 and state["verdict"] == "10 of 110 wrong"
    assert state["wrong"] == list(range(0, 110, 11))  # column 0, the bias column, marked on the canvas
    heatmap.show(failing, failing.evidence.layout.blocks[0], "rel")
    assert np.array_equal(floats(heatmap), ev.relative[:110].astype(np.float32))
    assert (heatmap.vmin, heatmap.vmax, heatmap.threshold, heatmap.label) == (1e-12, 1.0, 0.0, "rel")


def test_a_front_end_without_buffers_gets_the_values_as_base64_text(failing: gw.CheckResult) -> None:
    heatmap = Heatmap(failing, failing.evidence.layout.blocks[0])
    assert heatmap.get_state()["values_base64"] == ""  # binary where buffers work: nothing sent twice
    heatmap.set_state({"encoding": "base64"})  # what the front end sends when its buffers arrive empty
    assert np.array_equal(np.frombuffer(base64.b64decode(heatmap.values_base64), "<f4"), floats(heatmap))
    heatmap.show(failing, failing.evidence.layout.blocks[2], "rel")  # a redraw keeps the text copy current
    assert np.frombuffer(base64.b64decode(heatmap.values_base64), "<f4").size == 11
    assert np.array_equal(np.frombuffer(base64.b64decode(heatmap.values_base64), "<f4"), floats(heatmap))
    with pytest.raises(traitlets.TraitError):
        heatmap.encoding = "json"


def test_tolerance_colours_put_every_block_on_one_scale_calm_below_the_threshold_warm_above() -> None:
    from gradwidget.display._colour import colour_table

    J, grad, theta = article_network("regularized-bias")
    wrong_bias = gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES, seed=0)
    right = gw.check(*article_network()[:2], article_network()[2], shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES)
    maps = [Heatmap(r, r.evidence.layout.blocks[1]) for r in (wrong_bias, right)]
    assert {(h.vmin, h.vmax) for h in maps} == {(1e-3, 1e3)}  # a right block never fills its own scale
    assert maps[1].verdict == "ok" and maps[1].wrong == []
    ratios = floats(maps[0]).reshape(10, 11)
    assert (ratios[:, 0] > 1).all() and (ratios[:, 1:] < 1).all() and (floats(maps[1]) < 1).all()
    table = colour_table("tolerance")
    middle = len(table) // 2  # the threshold's stop: every stop below is calm (blue-green), above warm (red)
    assert all((c >> 16) <= (c & 0xFF) for c in table[:middle + 1])
    assert all((c >> 16) > 2 * (c & 0xFF) for c in table[middle + 1:])


def test_heatmap_layouts_and_unchecked_entries() -> None:
    theta = {"v": np.linspace(-1, 1, 7), "T": np.linspace(0.1, 1, 24).reshape(2, 3, 4)}
    result = gw.check(lambda p: float(np.sum(p["v"] ** 3) + np.sum(np.sin(p["T"]))),
                      lambda p: {"v": 3 * p["v"] ** 2, "T": np.cos(p["T"])}, theta, sample=3, seed=1)
    vector, tensor = (Heatmap(result, b) for b in result.evidence.layout.blocks)
    assert (vector.rows, vector.cols, vector.shape) == (1, 7, [7])
    assert (tensor.rows, tensor.cols, tensor.shape) == (2, 12, [2, 3, 4])
    assert int(np.isnan(floats(vector)).sum()) == 4 and int(np.isnan(floats(tensor)).sum()) == 21


def test_heatmap_metrics_and_scales(failing: gw.CheckResult) -> None:
    block = failing.evidence.layout.blocks[0]
    heatmap = Heatmap(failing, block, metric="abs", scale="linear")
    assert np.allclose(floats(heatmap), failing.evidence.gap[:110].astype(np.float32))
    assert heatmap.vmin == 0 and heatmap.vmax == pytest.approx(failing.blocks[0].max_abs) and not heatmap.log
    heatmap.show(failing, block, "log10 rel", "log")
    assert floats(heatmap).max() == pytest.approx(np.log10(failing.blocks[0].max_rel), rel=1e-5)
    assert (heatmap.vmin, heatmap.vmax, heatmap.log) == (-12.0, 0.0, False)
    with pytest.raises(ValueError, match="metric='squared' is not one of"):
        heatmap.show(failing, block, "squared")


def test_heatmap_clips_what_float32_cannot_hold() -> None:
    result = gw.check(lambda x: float(1e50 * x[0]), lambda x: np.array([-1e50, 0.0]), np.array([0.5, 0.5]))
    values = floats(Heatmap(result, result.evidence.layout.blocks[0], metric="abs"))
    assert values[0] == np.finfo(np.float32).max


def test_selection_from_the_front_end(failing: gw.CheckResult) -> None:
    panel = failing.widget()
    panel.heatmaps[0].set_state({"selected": 5 * 11})
    assert panel.selected == ("Theta1", (5, 0))
    assert "Theta1[5, 0]" in panel.sweep_view.title.value
    panel.heatmaps[2].set_state({"selected": 3})
    assert panel.selected == ("Theta3", (0, 3))
    assert panel.heatmaps[0].selected == -1  # one selection at a time
    assert failing.widget() is panel


def test_hover_message_is_answered(failing: gw.CheckResult, monkeypatch: pytest.MonkeyPatch) -> None:
    heatmap = failing.widget().heatmaps[0]
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(heatmap, "send", sent.append)
    heatmap._handle_custom_msg({"type": "entry", "index": 55}, [])
    heatmap._handle_custom_msg({"type": "entry", "index": 110}, [])  # outside the block: ignored
    heatmap._handle_custom_msg({"type": "other"}, [])
    assert len(sent) == 1
    reply = sent[0]
    assert (reply["type"], reply["index"], reply["entry"], reply["status"]) == ("entry", 55, "Theta1[5, 0]", "wrong")
    assert reply["analytic"] == pytest.approx(failing.evidence.analytic[55])


def test_panel_shows_verdict_diagnoses_and_worst(failing: gw.CheckResult) -> None:
    panel = failing.widget()
    assert 'class="gradwidget-verdict"' in panel.summary.value and "FAILED" in panel.summary.value
    assert 'data-code="missing-term"' in panel.summary.value
    assert 'class="gradwidget-worst"' in panel.worst.value
    assert [h.block for h in panel.grid.children] == ARTICLE_NAMES
    assert panel.sweep_view.image.value[:4] == b"\x89PNG"
    bundle = panel._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.jupyter.widget-view+json", "text/plain"}
    assert bundle["text/plain"] == "gradwidget panel: failed"


def test_the_panel_displays_a_static_copy_of_its_report_first_and_keeps_it_current(failing: gw.CheckResult) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()  # display() needs a shell to send its outputs to
    panel = failing.widget()
    with capture_output() as captured:
        panel._ipython_display_()
    static, live = captured.outputs
    assert static.data["text/html"].startswith('<div class="gradwidget-static">')
    assert 'class="gradwidget-verdict"' in static.data["text/html"] and "<img" in static.data["text/html"]
    assert static.data["text/plain"].startswith("gradwidget: FAILED")
    assert "application/vnd.jupyter.widget-view+json" in live.data and "text/html" not in live.data
    updates = []
    panel._static.update = lambda bundle, raw: updates.append(bundle)  # what a re-check sends to the copy
    passing = gw.check(*article_network()[:2], article_network()[2], shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES)
    panel._show(passing)
    assert len(updates) == 1 and "PASSED" in updates[0]["text/html"]


def test_controls_redraw_and_filter(failing: gw.CheckResult) -> None:
    panel = failing.widget()
    panel.controls.metric.value = "abs"
    assert all(h.label == "abs" for h in panel.heatmaps)
    panel.controls.scale.value = "linear"
    assert not panel.heatmaps[0].log
    panel.controls.block_filter.value = "Theta2"
    assert [h.block for h in panel.grid.children] == ["Theta2"]


def test_scheme_and_step_controls_run_the_check_again(failing: gw.CheckResult) -> None:
    panel = failing.widget()
    panel.controls.method.value = "forward"
    panel.wait()
    assert panel.result is not failing and panel.result.method == "forward"
    panel.controls.eps.value = 1e-4
    panel.wait()
    assert not panel.controls.auto_step.value
    assert panel.result.call.options.eps == 1e-4
    assert [h.result for h in panel.heatmaps] == [panel.result] * 3


def test_recheck_at_a_random_point(failing: gw.CheckResult) -> None:
    panel = failing.widget()
    before = failing.evidence.point.copy()
    panel.controls.random.click()
    panel.wait()
    point = panel.result.evidence.point
    assert not np.array_equal(point, before) and np.abs(point).max() <= 0.12
    assert not panel.result.passed  # the bug shows at any point
    assert np.array_equal(failing.evidence.point, before)


def test_panel_runs_its_own_check_and_stays_responsive() -> None:
    release = threading.Event()

    def slow(x: np.ndarray) -> float:
        release.wait(5)
        return float(np.sum(x ** 2))

    started = time.perf_counter()
    panel = GradCheckPanel(slow, lambda x: 2 * x, np.linspace(0, 1, 50))
    assert time.perf_counter() - started < 1  # returned while the check waits
    assert panel.result is None and panel.run.progress.layout.display is None and panel.controls.recheck.disabled
    release.set()
    panel.wait()
    assert panel.result.passed and panel.run.progress.layout.display == "none"


def test_cancel_keeps_the_partial_result() -> None:
    def slow(x: np.ndarray) -> float:
        time.sleep(0.002)
        return float(np.sum(x ** 2))

    panel = GradCheckPanel(slow, lambda x: 2 * x, np.linspace(0, 1, 2000))
    while panel.run.progress.value == 0:
        time.sleep(0.01)
    panel.run.cancel.click()
    assert panel.result.interrupted.startswith("interrupted during the first look, after")
    assert "cancelled" in panel.run.message.value and "interrupted" not in panel.run.message.value  # said once
    assert panel.summary.value.count("interrupted during") == 1  # in the diagnosis, and only there
    assert 0 < panel.result.checked < 2000
    assert panel.result.verdict == "inconclusive" and "INCONCLUSIVE" in panel.summary.value  # not a red FAILED


def test_an_interrupted_check_leaves_no_progress_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    import tqdm.auto

    bars = []

    class NotebookBar:  # what tqdm's notebook bar does on close: it stays, red, unless it is complete
        def __init__(self, total: int, **_: Any) -> None:
            self.total, self.n, self.removed = total, 0, False
            bars.append(self)

        def update(self, count: int) -> None:
            self.n += count

        def close(self) -> None:
            self.removed = self.n >= self.total

    monkeypatch.setattr(tqdm.auto, "tqdm", NotebookBar)
    calls = []

    def J(x: np.ndarray) -> float:
        calls.append(1)
        if len(calls) == 30:
            raise KeyboardInterrupt
        return float(np.sum(x ** 2))

    result = gw.check(J, lambda x: 2 * x, np.linspace(0, 1, 100), progress=True)
    assert result.interrupted and bars and all(bar.removed for bar in bars)


def test_go_to_selects_one_of_the_worst_entries(failing: gw.CheckResult) -> None:
    panel = failing.widget()
    jump = panel.controls.jump
    assert jump.options[0] == ("worst entries...", -1) and jump.options[1] == ("Theta1[5, 0] (wrong)", 55)
    assert len(jump.options) == 1 + 20
    panel.controls.block_filter.value = "Theta3"
    jump.value = 110  # Theta2[0, 0]
    assert panel.selected == ("Theta2", (0, 0)) and panel.controls.block_filter.value == "all blocks"
    assert panel.heatmaps[1].selected == 0 and panel.heatmaps[0].selected == -1


def test_the_step_plot_follows_the_block_filter_and_says_which_step_was_used(failing: gw.CheckResult) -> None:
    panel = failing.widget()
    panel.heatmaps[0].set_state({"selected": 5 * 11})
    assert "Theta1[5, 0]" in panel.sweep_view.title.value and "the check used h = " in panel.sweep_view.title.value
    panel.controls.block_filter.value = "Theta2"
    panel._draw_sweep()
    assert "Theta2[" in panel.sweep_view.title.value
    assert not panel.controls.eps.disabled  # moving it unticks "step per entry"


def test_errors_in_J_show_in_the_panel() -> None:
    panel = GradCheckPanel(lambda x: 1 / 0, lambda x: x, np.ones(3))
    panel.wait()
    assert panel.result is None
    assert "ZeroDivisionError" in panel.run.message.value


def test_bad_panel_arguments() -> None:
    with pytest.raises(TypeError, match=r"GradCheckPanel got unknown options \['step'\]"):
        GradCheckPanel(lambda x: 0.0, None, np.ones(2), step=1e-3)
    with pytest.raises(TypeError, match="GradCheckPanel needs J, grad and theta"):
        GradCheckPanel()


def test_front_end_is_found() -> None:
    text = front_end_file("heatmap.js").read_text()
    assert "export default { render }" in text
    assert not [line for line in text.splitlines() if line.startswith("import")]  # no CDN, no bundler
    with pytest.raises(FileNotFoundError, match=r"gradwidget's front end nothing\.js is missing"):
        front_end_file("nothing.js")


def test_a_result_in_marimo_is_its_report_and_a_live_heatmap_per_block() -> None:
    pytest.importorskip("marimo")
    # in a process of its own: marimo's formatters, once used, take over IPython's display in that process
    code = ("import gradwidget as gw, marimo as mo\n"
            "from gradwidget.examples import ARTICLE_NAMES, ARTICLE_SHAPES, article_network\n"
            "J, grad, theta = article_network('regularized-bias')\n"
            "view = gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES, seed=0)._display_()\n"
            "assert isinstance(view, mo.Html)\n"
            "print(view.text.count('<marimo-anywidget'), 'FAILED' in view.text, '10 of 110 wrong' in view.text)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["3", "True", "True"], done.stderr[-2000:]  # a live heatmap per block
