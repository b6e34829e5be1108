"""The report where no live kernel is: ``jupyter nbconvert --to html --execute`` with default options, offline.

The executed notebook holds the panel's output and, before it, a static copy
of the report. Opened in Chromium with every request outside the file
refused (no CDN), the HTML shows the badge, the diagnoses, the block table
and one heatmap image per block; a screenshot is saved in
``build/screenshots/``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import browser
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))]
pytest.importorskip("nbconvert", reason="nbconvert is not installed (pip install -e .[test])")

CELLS = [
    "%load_ext gradwidget\nfrom gradwidget.examples import article_network\n"
    "J, grad, theta = article_network('regularized-bias')",
    '%gradcheck J grad theta --shapes "[(10, 11), (10, 11), (1, 11)]" --names Theta1,Theta2,Theta3 --seed 0',
]


def test_nbconvert_html_shows_the_report_offline(tmp_path: Path) -> None:
    notebook = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {},
                           "outputs": [], "source": source} for i, source in enumerate(CELLS)],
                "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
                "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "check.ipynb").write_text(json.dumps(notebook))
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute", "check.ipynb"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=300)
    html = tmp_path / "check.html"
    with browser.chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1100, "height": 1400})
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                   else route.abort())
        page.goto(html.as_uri(), wait_until="load")
        static = page.locator(".gradwidget-static")
        assert static.count() == 1 and static.is_visible()
        assert "FAILED" in static.locator(".gradwidget-verdict").inner_text()
        assert "missing-term" in static.locator(".gradwidget-diagnoses").inner_text()
        assert static.locator("table.gradwidget-blocks tr").count() == 4
        images = static.locator("img")
        assert images.count() == 3
        assert all(images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0") for i in range(3))
        assert "Loading widget" not in page.locator("body").inner_text()  # no live panel here: nothing promised
        browser.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        static.screenshot(path=str(browser.SCREENSHOTS / "nbconvert-offline.png"))
