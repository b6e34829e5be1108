"""End to end: ``%gradcheck`` in a real JupyterLab and in Notebook 7, driven in Chromium.

Runs a notebook that checks the 3-layer network with a backprop bug, waits
for every block's heatmap, hovers and clicks an entry, keeps the arrow keys
in the heatmap, reads ``res.widget().selected`` back from a later cell,
re-checks from a control, checks the right network too, then saves the
notebook, shuts its kernel down and reopens it: the static report shows.
JupyterLab also runs in its dark theme and in an 800 px window. Screenshots
go to ``build/screenshots/`` (named after the front end).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import browser
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))]
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (pip install -e .[test])")

TOKEN = "gradwidget-test"
SCREENSHOTS = browser.SCREENSHOTS
SHAPES = '--shapes "[(10, 11), (10, 11), (1, 11)]" --names Theta1,Theta2,Theta3 --seed 0'
CELLS = [
    "%load_ext gradwidget\nfrom gradwidget.examples import article_network\n"
    "J, grad, theta = article_network('regularized-bias')",
    f"res = %gradcheck -o J grad theta {SHAPES}",
    "print('SELECTED', res.widget().selected)",
    f"J, grad, theta = article_network()\n%gradcheck J grad theta {SHAPES}",
    "import time\nimport numpy as np\nfrom gradwidget.widget import GradCheckPanel\n"
    "def slow(x):\n    time.sleep(0.01)\n    return float(np.sum(x ** 2))\n"
    "GradCheckPanel(slow, lambda x: 2 * x, np.linspace(0, 1, 400))",
]
LAYER_CELLS = [
    "%load_ext gradwidget\nimport numpy as np\nrng = np.random.default_rng(0)\n"
    "x, w, b, s = rng.normal(size=(4, 3)), rng.normal(size=(3, 3)), rng.normal(size=3), rng.normal(size=(3, 4))\n"
    "def affine_forward(x, w, b):\n    return x @ w + b, (x, w)\n"
    "def affine_backward_transposed(dout, cache):\n    x, w = cache\n"
    "    return dout @ w.T, dout.T @ x, dout.sum(axis=0)\n"
    "def softmax_forward(x):\n    e = np.exp(x - x.max(axis=1, keepdims=True))\n"
    "    s = e / e.sum(axis=1, keepdims=True)\n    return s, s\n"
    "def softmax_backward_diagonal(dout, s):\n    return dout * s * (1 - s)\n"
    "def relu_forward(x):\n    return np.maximum(x, 0), x\n"
    "def relu_backward_ignores_dout(dout, x):\n    return (x > 0).astype(float)",
    "%gradcheck --layer affine_forward affine_backward_transposed x w b --seed 0",
    "%gradcheck --layer softmax_forward softmax_backward_diagonal s --seed 0",
    "%gradcheck --layer relu_forward relu_backward_ignores_dout x --seed 0",
]


def notebook(cells: list[str]) -> dict[str, Any]:
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                       "source": source} for i, source in enumerate(cells)],
            "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                        "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


FRONT_ENDS = {"lab": "lab/tree/check.ipynb", "notebook": "notebooks/check.ipynb"}  # front end -> the notebook's page


@pytest.fixture(scope="module", params=list(FRONT_ENDS))
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A JupyterLab or Notebook 7 server on 127.0.0.1, isolated from the machine's settings.

    Yields the front end's name and the server's base URL.
    """
    front_end = request.param
    home = tmp_path_factory.mktemp(front_end)
    env = {**os.environ}
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(home / name.lower())
        Path(env[name]).mkdir()
    labconfig = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig"
    labconfig.mkdir()
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    root = home / "notebooks"
    root.mkdir()
    (root / "check.ipynb").write_text(json.dumps(notebook(CELLS)))
    (root / "layers.ipynb").write_text(json.dumps(notebook(LAYER_CELLS)))
    command = [sys.executable, "-m", "jupyter", front_end, "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
               "--ServerApp.port=0", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}"]
    if front_end == "lab":
        command += ["--LabApp.extension_manager=readonly", "--LabApp.news_url=None",
                    "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
                    f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}"]
    log = (home / "server.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield front_end, _wait_for_server(server, Path(env["JUPYTER_RUNTIME_DIR"]), home / "server.log")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def _wait_for_server(server: subprocess.Popen, runtime: Path, log: Path) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"jupyter lab exited: {log.read_text()[-2000:]}")
        info = runtime / f"jpserver-{server.pid}.json"
        if info.exists():
            url = f"http://127.0.0.1:{json.loads(info.read_text())['port']}/"
            try:
                with urllib.request.urlopen(f"{url}api/status?token={TOKEN}", timeout=2):
                    return url
            except OSError:
                pass
        time.sleep(0.2)
    raise TimeoutError(f"jupyter lab did not start in 90 s: {log.read_text()[-2000:]}")


PROMPT = "i => document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.jp-InputPrompt').textContent"


def run_cell(page: Any, index: int) -> None:
    """Run one cell with Ctrl+Enter and wait until it has run (its prompt shows a count)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    for _ in range(3):  # a key press can land before the notebook takes it: press again
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Enter")
        try:  # "[ ]:" until the cell is queued, "[*]:" while it runs, "[3]:" when done
            page.wait_for_function(f"i => !/\\[\\s*\\]/.test(({PROMPT})(i))", arg=index, timeout=5_000)
            break
        except PlaywrightTimeout:
            continue
    page.wait_for_function(f"i => /\\[\\d+\\]/.test(({PROMPT})(i))", arg=index, timeout=60_000)


def test_gradcheck_panel_end_to_end(lab: tuple[str, str]) -> None:
    _in_chromium(lab, _drive, "failure")


def _in_chromium(lab: tuple[str, str], drive: Any, failure: str) -> None:
    """Drive a page of ``lab`` in Chromium: a screenshot named ``failure`` if it fails, no request outside."""
    front_end, url = lab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with browser.chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1400, "height": 1400})
        requests = browser.record_requests(page)
        try:
            drive(page, front_end, url)
        except Exception:
            page.screenshot(path=str(SCREENSHOTS / f"{front_end}-{failure}.png"), full_page=True)
            raise
        assert browser.outside(requests) == []


def test_layer_panel_end_to_end(lab: tuple[str, str]) -> None:
    """%gradcheck --layer: per-argument heatmaps and the Jacobian's, a pair read back by hovering, the static copy."""
    _in_chromium(lab, _drive_layers, "layer-failure")


def _drive_layers(page: Any, front_end: str, lab: str) -> None:
    shot = lambda name: str(SCREENSHOTS / f"{front_end}-layer-{name}.png")  # noqa: E731
    path = "lab/workspaces/layers/tree/layers.ipynb" if front_end == "lab" else "notebooks/layers.ipynb"
    page.goto(f"{lab}{path}?token={TOKEN}")  # a workspace of its own: no other notebook's cells in the page
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    if front_end == "lab":
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    for index in range(4):
        run_cell(page, index)
    transposed = page.locator(".jp-Cell").nth(1)
    heatmaps = transposed.locator('.gradwidget-heatmap[data-ready="1"]')
    heatmaps.nth(5).wait_for(timeout=60_000)
    assert [heatmaps.nth(i).get_attribute("data-block") for i in range(6)] == [
        "x", "w", "b", "out / x", "out / w", "out / b"]
    assert (heatmaps.nth(4).get_attribute("data-rows"), heatmaps.nth(4).get_attribute("data-cols")) == ("12", "9")
    assert "affine_backward_transposed against affine_forward: dx, dw, db" in transposed.inner_text()
    pairs = heatmaps.nth(4)
    canvas = pairs.locator("canvas.gradwidget-heatmap-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()  # out[0, 0] / w[0, 1]: the transpose puts w[1, 0]'s value there
    page.mouse.move(box["x"] + box["width"] * (1.5 / 9), box["y"] + box["height"] * (0.5 / 12))
    readout = pairs.locator(".gradwidget-readout")
    page.wait_for_function("el => el.textContent.includes('tolerance')", arg=readout.element_handle())
    assert readout.inner_text().startswith("out[0, 0] / w[0, 1]: analytic ")
    assert readout.inner_text().endswith("wrong")
    framed(page, transposed.locator(".jp-OutputArea"), shot("transposed"))
    softmax = page.locator(".jp-Cell").nth(2)
    softmax.locator('.gradwidget-heatmap[data-ready="1"]').nth(1).wait_for(timeout=60_000)
    assert softmax.locator("li[data-code='missing-term']:visible").count() == 1
    framed(page, softmax.locator(".jp-OutputArea"), shot("diagonal-softmax"))
    relu = page.locator(".jp-Cell").nth(3)
    relu.locator('.gradwidget-heatmap[data-ready="1"]').nth(1).wait_for(timeout=60_000)
    assert relu.locator("li[data-code='ignores-dout']:visible").count() == 1
    framed(page, relu.locator(".jp-OutputArea"), shot("ignores-dout"))
    if front_end == "lab":
        _dark_and_narrow(page, shot, 1, "transposed")
    _reopen_layers_without_kernel(page, lab, shot)


def _reopen_layers_without_kernel(page: Any, lab: str, shot: Any) -> None:
    cell, static = _reopened(page, lab, 1)
    assert "FAILED" in static.locator(".gradwidget-verdict").inner_text()
    assert "affine_backward_transposed against affine_forward" in static.inner_text()
    pairs = static.locator("figure[data-pair] img")
    assert pairs.count() == 3
    assert all(pairs.nth(i).evaluate("img => img.complete && img.naturalWidth > 0") for i in range(3))
    framed(page, cell.locator(".jp-OutputArea"), shot("reopened-without-kernel"))


def _reopened(page: Any, lab: str, index: int) -> tuple[Any, Any]:
    """Save, shut every kernel down, reload: cell ``index`` and its static copy, once visible."""
    _save_and_stop_kernels(page, lab)
    page.reload()
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    cell = page.locator(".jp-Cell").nth(index)
    static = cell.locator(".gradwidget-static")
    static.wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(500)
    assert "Loading widget" not in cell.locator(".jp-OutputArea").inner_text()  # the panel promised nothing
    return cell, static


def framed(page: Any, output: Any, path: str) -> None:
    """A screenshot of ``output`` whole: the window grows to hold it (a notebook scrolls inside the page)."""
    size = page.viewport_size
    box = output.bounding_box()
    if box is not None and box["height"] + 120 > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": int(box["height"]) + 240})
        page.wait_for_timeout(300)
    output.scroll_into_view_if_needed()
    output.screenshot(path=path)
    page.set_viewport_size(size)


def _save_and_stop_kernels(page: Any, lab: str) -> None:
    """Save the notebook and shut every kernel down."""
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.title.startsWith('*') && !document.querySelector('.jp-mod-dirty')",
                           timeout=30_000)
    with urllib.request.urlopen(f"{lab}api/sessions?token={TOKEN}", timeout=10) as response:
        sessions = json.load(response)
    for session in sessions:
        request = urllib.request.Request(f"{lab}api/sessions/{session['id']}?token={TOKEN}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def _drive(page: Any, front_end: str, lab: str) -> None:
    shot = lambda name: str(SCREENSHOTS / f"{front_end}-{name}.png")  # noqa: E731
    page.goto(f"{lab}{FRONT_ENDS[front_end]}?token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    if front_end == "lab":
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    run_cell(page, 0)
    run_cell(page, 1)
    failing = page.locator(".jp-Cell").nth(1)
    heatmaps = failing.locator('.gradwidget-heatmap[data-ready="1"]')
    heatmaps.nth(2).wait_for(timeout=60_000)
    assert [heatmaps.nth(i).get_attribute("data-block") for i in range(3)] == ["Theta1", "Theta2", "Theta3"]
    assert [(heatmaps.nth(i).get_attribute("data-rows"), heatmaps.nth(i).get_attribute("data-cols"))
            for i in range(3)] == [("10", "11"), ("10", "11"), ("1", "11")]
    static = failing.locator(".gradwidget-static")
    static.wait_for(state="hidden", timeout=10_000)  # live, the panel hides its static copy: shown once
    assert static.count() == 1
    assert "FAILED" in failing.locator(".gradwidget-verdict:visible").inner_text()

    canvas = heatmaps.nth(0).locator("canvas.gradwidget-heatmap-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] * (0.5 / 11), box["y"] + box["height"] * (5.5 / 10)
    page.mouse.move(x, y)
    readout = heatmaps.nth(0).locator(".gradwidget-readout")
    page.wait_for_function("el => el.textContent.includes('analytic')", arg=readout.element_handle())
    text = readout.inner_text()
    assert text.startswith("Theta1[5, 0]") and text.endswith("wrong")
    page.mouse.click(x, y)
    framed(page, failing.locator(".jp-OutputArea"), shot("failing"))

    run_cell(page, 2)
    selected = page.locator(".jp-Cell").nth(2).locator(".jp-OutputArea-output")
    selected.wait_for(timeout=30_000)
    assert selected.inner_text().strip() == "SELECTED ('Theta1', (5, 0))"

    run_cell(page, 3)
    passing = page.locator(".jp-Cell").nth(3)
    passing.locator('.gradwidget-heatmap[data-ready="1"]').nth(2).wait_for(timeout=60_000)
    passing.locator(".gradwidget-static").wait_for(state="hidden", timeout=10_000)
    assert "PASSED" in passing.locator(".gradwidget-verdict:visible").inner_text()
    framed(page, passing.locator(".jp-OutputArea"), shot("passing"))
    _keys_stay_in_the_heatmap(page)
    _recheck_from_a_control(page)
    _cancel(page)
    _dark_and_narrow(page, shot)  # JupyterLab and Notebook 7 alike
    _reopen_without_kernel(page, lab, shot)


def _cancel(page: Any) -> None:
    """Cancel a slow check: the partial result is inconclusive, and says how far the check got."""
    run_cell(page, 4)
    cell = page.locator(".jp-Cell").nth(4)
    cancel = cell.locator("button", has_text="Cancel")
    cancel.wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(500)
    cancel.click()
    cell.locator("text=cancelled").wait_for(timeout=30_000)
    badge = cell.locator(".gradwidget-verdict:visible")
    assert badge.inner_text() == "INCONCLUSIVE"
    assert cell.locator("li[data-code='interrupted']").count() == 1


def _recheck_from_a_control(page: Any) -> None:
    """Re-check at a random point: the panel runs again and shows the new result."""
    failing = page.locator(".jp-Cell").nth(1)
    headline = failing.locator(".gradwidget-verdict:visible").locator("xpath=..")
    before = headline.inner_text()
    failing.locator("button", has_text="Re-check at a random point").click()
    page.wait_for_function("([el, text]) => el.innerText !== text", arg=[headline.element_handle(), before],
                           timeout=60_000)
    failing.locator('.gradwidget-heatmap[data-ready="1"]').nth(2).wait_for(timeout=60_000)
    assert "FAILED" in headline.inner_text()  # the bug shows at any point


ACTIVE = ("() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]"
          ".findIndex(c => c.classList.contains('jp-mod-active'))")


def _keys_stay_in_the_heatmap(page: Any) -> None:
    """Arrow keys against the grid's edge move nothing in the notebook; Escape gives focus back."""
    failing = page.locator(".jp-Cell").nth(1)
    canvas = failing.locator(".gradwidget-heatmap").nth(0).locator("canvas.gradwidget-heatmap-canvas")
    canvas.scroll_into_view_if_needed()
    canvas.click(position={"x": 3, "y": 3})
    active = page.evaluate(ACTIVE)
    for key in ("ArrowUp", "ArrowLeft", "ArrowUp", "ArrowDown"):
        page.keyboard.press(key)
    assert page.evaluate(ACTIVE) == active
    assert page.evaluate("document.activeElement.classList.contains('gradwidget-heatmap-canvas')")
    page.keyboard.press("Escape")
    assert not page.evaluate("document.activeElement.classList.contains('gradwidget-heatmap-canvas')")


def _dark_and_narrow(page: Any, shot: Any, index: int = 1, name: str = "failing") -> None:
    """The panel of cell ``index`` in JupyterLab's dark theme, and in an 800 px window: screenshots, and nothing
    scrolls sideways."""
    page.keyboard.press("Control+Shift+C")
    page.keyboard.type("JupyterLab Dark")
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-jp-theme-light='false']", state="attached", timeout=30_000)
    page.wait_for_timeout(500)
    failing = page.locator(".jp-Cell").nth(index)
    framed(page, failing.locator(".jp-OutputArea"), shot(f"{name}-dark"))
    label = failing.locator(".gradwidget-heatmap-title").nth(0)
    assert label.evaluate("el => getComputedStyle(el).color") != "rgb(34, 34, 34)"  # the theme's, not dark grey
    page.keyboard.press("Control+Shift+C")
    page.keyboard.type("JupyterLab Light")
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-jp-theme-light='true']", state="attached", timeout=30_000)
    page.set_viewport_size({"width": 800, "height": 1400})
    page.wait_for_timeout(500)
    output = failing.locator(".jp-OutputArea")
    framed(page, output, shot(f"{name}-narrow"))
    verdict = failing.locator("table.gradwidget-blocks th:visible", has_text="verdict").first.bounding_box()
    area = output.bounding_box()
    assert verdict["x"] + verdict["width"] <= area["x"] + area["width"] + 1  # the verdict column stays in view
    assert output.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    assert failing.locator(".widget-hslider").first.is_visible()  # the eps slider is not pushed out of view
    page.set_viewport_size({"width": 1400, "height": 1400})


def _reopen_without_kernel(page: Any, lab: str, shot: Any) -> None:
    """Save, shut the kernel down, reload: a TA opening a submission sees the report, heatmaps and all."""
    failing, static = _reopened(page, lab, 1)
    assert "FAILED" in static.locator(".gradwidget-verdict").inner_text()
    assert "missing-term" in static.locator(".gradwidget-diagnoses").inner_text()
    images = static.locator("img")
    assert images.count() == 3
    assert all(images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0") for i in range(3))
    framed(page, failing.locator(".jp-OutputArea"), shot("reopened-without-kernel"))
