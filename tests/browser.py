"""Debian's Chromium under Playwright, offline, for the browser tests and the draw benchmark.

Never downloads a browser: where ``/usr/bin/chromium`` or the playwright
package is missing, `chromium` skips the tests, saying why.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from gradwidget.display._colour import UNCHECKED_COLOUR, colour_table

PALETTE = {"colours": colour_table(), "unchecked": UNCHECKED_COLOUR}  # what the Heatmap widget sends


def rgb(hex_colour: int) -> list[int]:
    """[r, g, b] of a 0xRRGGBB integer, as pixels read back from a canvas give them."""
    return [(hex_colour >> shift) & 255 for shift in (16, 8, 0)]
CHROMIUM = Path(os.environ.get("GRADWIDGET_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "build" / "screenshots"  # every browser test saves its screenshots here
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

# A page that renders the heatmap's ES module with a stand-in for anywidget's model.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="stylesheet" href="/gradwidget/display/static/heatmap.css"></head>
<body><div id="root"></div>
<script type="module">
import widget from "/gradwidget/display/static/heatmap.js";
/*PALETTE*/
class Model {
  constructor(state) { this.state = state; this.handlers = {}; this.sent = []; this.saves = 0; }
  get(key) { return this.state[key]; }
  set(key, value) { this.state[key] = value; (this.handlers["change:" + key] || []).forEach((f) => f()); }
  on(event, f) { (this.handlers[event] ||= []).push(f); }
  off(event, f) { this.handlers[event] = (this.handlers[event] || []).filter((g) => g !== f); }
  save_changes() { this.saves += 1; }
  send(message) {
    this.sent.push(message);
    const reply = { type: "entry", index: message.index, analytic: 1.5, numeric: -0.25, abs_error: 1.75,
                    rel_error: 1.0, status: "wrong" };
    setTimeout(() => (this.handlers["msg:custom"] || []).forEach((f) => f(reply)), 0);
  }
}
// Show a block: values as float32 bytes behind a DataView that starts at an odd offset, as widgets deliver them;
// withoutBuffers: delivered empty, as Colab's widget manager does, and sent as base64 text once the view asks
// (encoding = "base64"), as the Python side answers.
window.show = (state, values, withoutBuffers = false) => {
  // values: a list (null for NaN), or {size, fill, set: [[index, value], ...]} for large blocks
  const floats = Array.isArray(values) ? Float32Array.from(values, (v) => (v === null ? NaN : v))
    : new Float32Array(values.size).fill(values.fill);
  for (const [k, v] of values.set || []) floats[k] = v;
  const bytes = new Uint8Array(floats.byteLength + 1);
  bytes.set(new Uint8Array(floats.buffer), 1);
  const model = new Model({ selected: -1, vmin: 1e-12, vmax: 1, log: true, label: "rel", threshold: 0, verdict: "",
                            wrong: [], ...window.palette, ...state,
                            values: new DataView(bytes.buffer, 1, floats.byteLength) });
  if (withoutBuffers) {
    model.state.values = new DataView(new ArrayBuffer(0));
    model.save_changes = () => {
      model.saves += 1;
      const text = btoa(Array.from(new Uint8Array(floats.buffer), (b) => String.fromCharCode(b)).join(""));
      if (model.state.encoding === "base64") setTimeout(() => model.set("values_base64", text), 0);
    };
  }
  const el = document.createElement("div");
  document.getElementById("root").replaceChildren(el);
  window.model = model;
  const started = performance.now();
  widget.render({ model, el });
  return performance.now() - started;
};
window.ready = true;
</script></body></html>
"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            body = PAGE.replace("/*PALETTE*/", f"window.palette = {json.dumps(PALETTE)};").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            super().do_GET()

    def guess_type(self, path: Any) -> str:
        return "text/javascript" if str(path).endswith(".js") else super().guess_type(path)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def page_server() -> Iterator[str]:
    """Serve the stand-in page and the repository's ``js/`` on 127.0.0.1; yields the page's URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(ROOT)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def missing() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e .[test])"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright browser on Debian's Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def record_requests(page: Any) -> list[str]:
    """Every URL the page asks for, to assert that nothing leaves 127.0.0.1."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def outside(urls: list[str]) -> list[str]:
    return [u for u in urls if urlparse(u).scheme not in ("data", "blob", "about")
            and urlparse(u).hostname != "127.0.0.1"]
