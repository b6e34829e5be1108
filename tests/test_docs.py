"""The documentation site: built by ``bash scripts/docs.sh`` (the README's test command runs it first), offline.

Opens the home page, the API reference and the diagnosis reference in
Chromium with every request outside the built files refused, checks what
they show and saves screenshots in ``build/screenshots/``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import browser
import pytest

import gradwidget as gw

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))]
pytest.importorskip("sphinx", reason="sphinx is not installed (pip install -e .[test])")

SITE = browser.ROOT / "build" / "docs" / "html"


@pytest.fixture(scope="module")
def site() -> Path:
    """The built site; built here when the test command has not built it yet."""
    if not (SITE / "index.html").exists():
        subprocess.run(["bash", str(browser.ROOT / "scripts" / "docs.sh")], check=True, capture_output=True,
                       timeout=900)
    return SITE


@pytest.mark.parametrize(("page", "expected"), [
    ("index.html", ["Getting started", "bash scripts/test.sh", "gw.check(J, grad"]),
    ("api.html", ["gradwidget.check", "gradwidget.CheckResult", "Raises", "gradwidget.grading.grade"]),
    ("diagnoses.html", [f"{code}" for code in gw.CODES]),
    ("verdict.html", ["Passed, failed or inconclusive", "Nocedal", "Higham"]),
    ("tutorial-network.html", ["fails the 1e-7 rule", "FAILED", "the bias column?"]),
    ("layers-assignment/instructor.html", ["spec OK", "dan       30 lost: rnn.dx", "dh_next"]),
    ("frameworks.html", ["gradwidget.torch.check", "gradwidget.torch.gradcheck", "gradwidget.jax.check_grads"]),
    ("grading.html", ["Integrity flags", "tests/grading/sandbox/test_hostile.py", "spec"]),
    ("layout.html", ["gradwidget.display._panel", "gradwidget.grading.sandbox._worker", "_result imports display"]),
    ("comparison.html", ["scipy check_grad", "numdifftools"]),
    ("frontends.html", ["Voila", "marimo", "Colab", "JupyterLite (Pyodide)", "emulated"]),
])
def test_a_page_shows_offline(site: Path, page: str, expected: list[str]) -> None:
    with browser.chromium() as chromium:
        view = chromium.new_page(viewport={"width": 1200, "height": 1400})
        refused: list[str] = []

        def route(r: object) -> None:
            url = r.request.url  # type: ignore[attr-defined]
            if url.startswith(("file:", "data:")):
                r.continue_()  # type: ignore[attr-defined]
            else:
                refused.append(url)
                r.abort()  # type: ignore[attr-defined]

        view.route("**/*", route)
        view.goto((site / page).as_uri(), wait_until="load")
        text = view.inner_text("body")
        for words in expected:
            assert words in text, words
        images = view.locator("img")
        assert all(images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
                   for i in range(images.count()))
        if page == "diagnoses.html":
            assert images.count() == len(gw.CODES)
        assert refused == []  # nothing from a CDN
        browser.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = page.replace(".html", "").replace("/", "-")
        view.screenshot(path=str(browser.SCREENSHOTS / f"docs-{shot}.png"), full_page=False)
