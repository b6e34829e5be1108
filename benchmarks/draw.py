"""Heatmap of a 1000 x 1000 block in Chromium: bytes on the wire and draw time.

- bytes: the widget state of a `Heatmap` of a checked 10^6-entry block, split
  the way ipywidgets sends it (binary buffers and the JSON rest, apart from
  the ES module's source). Target: 4 bytes an entry in buffers, the JSON small.
- draw time: from the moment the values are in the page (a DataView, as the
  widget manager delivers them) until the canvas is drawn and
  ``data-ready="1"``, first draw and redraw on new values; median of 7 runs in
  Debian's Chromium (headless). Target <= 1 s.
- the same where the front end's binary buffers arrive empty (Colab): the
  values as base64 text in the JSON state (``values_base64``), decoded in
  the page.

Run: ``python benchmarks/draw.py`` (needs the test extra and /usr/bin/chromium).
"""

from __future__ import annotations

import base64
import json
import statistics
import sys
from pathlib import Path

import numpy as np
from ipywidgets.widgets.widget import _remove_buffers

import gradwidget as gw
from gradwidget.examples import one_wrong_entry
from gradwidget.widget import Heatmap

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import browser
from tables import ok, print_table

SIDE = 1000
RUNS = 7


def payload() -> tuple[int, int, int, int, bytes]:
    """Buffer bytes, JSON bytes of the data (binary, then as base64 text) and of the ES module, and the values."""
    J, grad, theta = one_wrong_entry(size=SIDE * SIDE, wrong=123_456)
    result = gw.check(J, grad, theta, shapes=[(SIDE, SIDE)], names=["W"], directions=4, seed=0)
    heatmap = Heatmap(result, result.evidence.layout.blocks[0])
    state, _, buffers = _remove_buffers(heatmap.get_state())
    module = {k: state.pop(k) for k in ("_esm", "_css")}
    heatmap.encoding = "base64"
    as_text, _, _ = _remove_buffers(heatmap.get_state())
    as_text = {k: v for k, v in as_text.items() if k not in ("_esm", "_css", "values")}  # Colab drops the buffer
    return (sum(len(b) for b in buffers), len(json.dumps(state)), len(json.dumps(as_text)), len(json.dumps(module)),
            bytes(heatmap.values))


def draw_times(values: bytes, as_text: bool) -> tuple[list[float], list[float]]:
    first, again = [], []
    encoded = base64.b64encode(values).decode("ascii")
    as_bytes = "window.model.set('values', new DataView(fresh ? window.payload.slice().buffer : window.payload.buffer))"
    as_base64 = ("window.model.state.values = new DataView(new ArrayBuffer(0)); "
                 "window.model.set('values_base64', window.payloadText)")
    with browser.page_server() as url, browser.chromium() as chromium:
        page = chromium.new_page(viewport={"width": 900, "height": 700})
        page.goto(url)
        page.wait_for_function("window.ready === true")
        page.evaluate("b64 => { window.payloadText = b64; "
                      "window.payload = Uint8Array.from(atob(b64), c => c.charCodeAt(0)); }", encoded)
        page.evaluate(f"() => {{ window.deliver = (fresh) => {{ {as_base64 if as_text else as_bytes}; }}; }}")
        for _ in range(RUNS):
            first.append(page.evaluate("""side => {
                window.show({block: "W", shape: [side, side], rows: side, cols: side}, [0]);
                const started = performance.now();
                window.deliver(false);
                if (document.querySelector('.gradwidget-heatmap').dataset.ready !== "1") throw "not drawn";
                return performance.now() - started;
            }""", SIDE))
            again.append(page.evaluate("""() => {
                const started = performance.now();
                window.deliver(true);
                return performance.now() - started;
            }"""))
    return first, again


def main() -> int:
    reason = browser.missing()
    if reason:
        print(f"skipped: {reason}")
        return 1
    buffer_bytes, json_bytes, text_bytes, module_bytes, values = payload()
    # Real discrepancies of a directional check are NaN but for the named entries; draw dense data too.
    dense = np.random.default_rng(0).lognormal(-20, 4, SIDE * SIDE).astype("<f4")
    dense[123_456] = 1.0
    rows = [("entries", f"{SIDE * SIDE:,}", "", ""),
            ("binary buffer bytes / entry", f"{buffer_bytes / SIDE ** 2:.2f}", "4",
             ok(buffer_bytes == 4 * SIDE ** 2)),
            ("JSON state bytes (the rest)", f"{json_bytes}", "small", ok(json_bytes < 2000)),
            ("  ES module and CSS, sent with the widget's first state", f"{module_bytes}", "", ""),
            ("without binary buffers: JSON state bytes / entry (base64)", f"{text_bytes / SIDE ** 2:.2f}", "",
             "")]
    for label, data, as_text in (("check's values (mostly not checked)", values, False),
                                 ("dense values", dense.tobytes(), False),
                                 ("dense values, as base64 text", dense.tobytes(), True)):
        first, again = draw_times(data, as_text)
        rows.append((f"draw after data arrives, {label}", f"{statistics.median(first):.0f} ms", "<= 1000 ms",
                     ok(statistics.median(first) <= 1000)))
        rows.append((f"redraw on new values, {label}", f"{statistics.median(again):.0f} ms", "<= 1000 ms",
                     ok(statistics.median(again) <= 1000)))
    print_table(("what", "measured", "target", "met"), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
