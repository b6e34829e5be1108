"""A failing check in Voila and in marimo, served on 127.0.0.1 and driven in Debian's Chromium.

Each front end shows the verdict and a live heatmap per block; hovering an
entry reads its values back from Python. Every request outside 127.0.0.1
is refused, and none may be made: Voila serves the page with gradwidget's
template (``--template=gradwidget``: Voila's lab page less the Font Awesome
stylesheets it links from a CDN). Screenshots go to ``build/screenshots/``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
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

CHECK = ("import gradwidget as gw\nfrom gradwidget.examples import ARTICLE_NAMES, ARTICLE_SHAPES, article_network\n"
         "J, grad, theta = article_network('regularized-bias')\n"
         "result = gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES, seed=0)\n")


def voila_page(folder: Path) -> list[str]:
    cells = [f"%load_ext gradwidget\n{CHECK}", "%gradcheck J grad theta --shapes \"[(10, 11), (10, 11), (1, 11)]\" "
                                              "--names Theta1,Theta2,Theta3 --seed 0"]
    notebook = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {},
                           "outputs": [], "source": source} for i, source in enumerate(cells)],
                "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
                "nbformat": 4, "nbformat_minor": 5}
    (folder / "check.ipynb").write_text(json.dumps(notebook))
    return [sys.executable, "-m", "voila", "check.ipynb", "--no-browser", "--Voila.ip=127.0.0.1",
            "--template=gradwidget"]


def marimo_page(folder: Path) -> list[str]:
    body = "\n".join(f"    {line}" for line in CHECK.splitlines())
    (folder / "check.py").write_text(f"import marimo\n\napp = marimo.App()\n\n\n@app.cell\ndef _():\n{body}\n"
                                     "    result\n    return\n")
    return [sys.executable, "-m", "marimo", "run", "check.py", "--headless", "--host", "127.0.0.1", "--no-token"]


FRONT_ENDS = {"voila": ("voila", voila_page), "marimo": ("marimo", marimo_page)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", params=list(FRONT_ENDS))
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The front end serving a failing check; yields its name and its page's URL."""
    name = request.param
    module, page = FRONT_ENDS[name]
    pytest.importorskip(module, reason=f"{module} is not installed (pip install -e .[test])")
    folder = tmp_path_factory.mktemp(name)
    port = free_port()
    command = [*page(folder), "--port", str(port)] if name == "marimo" else [*page(folder), f"--port={port}"]
    config = folder / ".config" / "marimo"
    config.mkdir(parents=True)
    (config / "marimo.toml").write_text('[display]\ntheme = "system"\n')  # light or dark as the browser asks
    env = {**os.environ, "HOME": str(folder), "JUPYTER_CONFIG_DIR": str(folder / "config"),
           "JUPYTER_DATA_DIR": str(folder / "data"), "IPYTHONDIR": str(folder / "ipython")}
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start: {(folder / 'server.log').read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield name, url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def test_a_failing_check_shows_its_verdict_and_live_heatmaps(served: tuple[str, str]) -> None:
    name, url = served
    browser.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with browser.chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1200, "height": 1500})
        refused: list[str] = []

        def route(r: Any) -> None:
            if r.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
                r.continue_()
            else:
                refused.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(url)
        try:
            page.wait_for_selector('.gradwidget-heatmap[data-ready="1"] >> nth=2', timeout=120_000)
            assert "FAILED" in page.locator("body").inner_text()
            heatmaps = page.locator('.gradwidget-heatmap[data-ready="1"]')
            assert heatmaps.count() >= 3
            title = heatmaps.nth(0).locator(".gradwidget-heatmap-title").inner_text()
            assert title == "Theta1 (10x11): 10 of 110 wrong"
            box = heatmaps.nth(0).locator(".gradwidget-heatmap-canvas").bounding_box()
            page.mouse.move(box["x"] + 3, box["y"] + 3)  # the bias column's first entry: wrong
            readout = heatmaps.nth(0).locator(".gradwidget-readout")
            page.wait_for_function("el => el.textContent.includes('analytic')", arg=readout.element_handle(),
                                   timeout=30_000)
            assert readout.inner_text().startswith("Theta1[0, 0]") and readout.inner_text().endswith("wrong")
            page.screenshot(path=str(browser.SCREENSHOTS / f"{name}-failing.png"), full_page=True)
            # dark: Voila by its page's parameter, marimo as the browser asks ("system" theme)
            page.emulate_media(color_scheme="dark")
            page.goto(f"{url}?theme=dark" if name == "voila" else url)
            page.wait_for_selector('.gradwidget-heatmap[data-ready="1"] >> nth=2', timeout=120_000)
            title = page.locator(".gradwidget-heatmap-title").first
            brightness = title.evaluate("el => { const c = document.createElement('canvas').getContext('2d'); "
                                        "c.fillStyle = getComputedStyle(el).color; c.fillRect(0, 0, 1, 1); "
                                        "const d = c.getImageData(0, 0, 1, 1).data; return d[0] + d[1] + d[2]; }")
            assert brightness > 384  # light text on the dark page
            page.screenshot(path=str(browser.SCREENSHOTS / f"{name}-failing-dark.png"), full_page=True)
            page.set_viewport_size({"width": 432, "height": 1500})  # a phone, a split screen
            page.wait_for_function("[...document.querySelectorAll('.gradwidget-heatmap-canvas')].every("
                                   "c => c.getBoundingClientRect().right <= 432)", timeout=10_000)
        finally:
            narrow = "-narrow" if page.viewport_size["width"] < 1000 else ""
            page.screenshot(path=str(browser.SCREENSHOTS / f"{name}-failing{narrow}.png"), full_page=True)
    assert refused == []
