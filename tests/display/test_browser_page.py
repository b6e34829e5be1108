"""The heatmap's ES module in a plain page in Chromium: drawing, pooling, hover, click, keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import browser
import pytest

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))]

DARK, LIGHT, GREY = (browser.rgb(c) for c in (browser.PALETTE["colours"][-1], browser.PALETTE["colours"][0],
                                              browser.PALETTE["unchecked"]))


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with browser.page_server() as url, browser.chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1000, "height": 800})
        requests = browser.record_requests(page)
        page.goto(url)
        page.wait_for_function("window.ready === true")
        yield page
        assert browser.outside(requests) == []


def show(page: Any, state: dict[str, Any], values: list[float | None] | dict[str, Any],
         without_buffers: bool = False) -> float:
    page.evaluate("document.getElementById('root').replaceChildren()")
    took = page.evaluate("([state, values, bare]) => window.show(state, values, bare)", [state, values,
                                                                                         without_buffers])
    page.wait_for_selector('.gradwidget-heatmap[data-ready="1"]')
    return took


def pixels(page: Any) -> dict[str, Any]:
    return page.evaluate("""() => {
        const canvas = document.querySelector('.gradwidget-heatmap-canvas');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        return {width: canvas.width, height: canvas.height, data: Array.from(data)};
    }""")


def pixel(image: dict[str, Any], row: int, col: int) -> list[int]:
    k = 4 * (row * image["width"] + col)
    return image["data"][k:k + 3]


def block_state(rows: int, cols: int, name: str = "Theta1") -> dict[str, Any]:
    return {"block": name, "shape": [rows, cols], "rows": rows, "cols": cols}


def test_draws_every_entry_in_its_colour(page: Any) -> None:
    values: list[float | None] = [1e-12] * 110
    values[5 * 11] = 1.0
    values[3] = None  # not checked
    show(page, block_state(10, 11), values)
    root = page.locator(".gradwidget-heatmap")
    assert (root.get_attribute("data-block"), root.get_attribute("data-rows"), root.get_attribute("data-cols")) == (
        "Theta1", "10", "11")
    image = pixels(page)
    assert (image["width"], image["height"]) == (11, 10)
    assert pixel(image, 5, 0) == DARK and pixel(image, 0, 3) == GREY and pixel(image, 9, 10) == LIGHT
    assert page.locator(".gradwidget-heatmap-title").inner_text() == "Theta1 (10x11)"
    assert page.locator(".gradwidget-colourbar-high").inner_text() == "1e0"
    assert page.locator(".gradwidget-colourbar-low").inner_text() == "1e-12"


@pytest.mark.parametrize("size", [(10, 11), (1000, 1000)])
def test_a_front_end_that_drops_buffers_draws_the_same_heatmap_from_text(page: Any, size: tuple[int, int]) -> None:
    rows, cols = size
    values = {"size": rows * cols, "fill": 1e-10, "set": [[k * 7919 % (rows * cols), 10.0 ** -(k % 12)]
                                                           for k in range(200)]}
    show(page, block_state(rows, cols), values)
    binary = pixels(page)
    assert page.locator(".gradwidget-heatmap").get_attribute("data-encoding") == "binary"
    assert page.evaluate("window.model.saves") == 0  # buffers arrived: nothing asked of Python
    show(page, block_state(rows, cols), values, without_buffers=True)
    assert page.evaluate("window.model.state.encoding") == "base64"
    assert page.locator(".gradwidget-heatmap").get_attribute("data-encoding") == "base64"
    assert pixels(page) == binary


def test_pooling_keeps_a_lone_bad_entry_visible(page: Any) -> None:
    show(page, block_state(1000, 1000), {"size": 1_000_000, "fill": 1e-10, "set": [[123 * 1000 + 456, 0.9]]})
    dark = page.evaluate("""() => {
        const canvas = document.querySelector('.gradwidget-heatmap-canvas');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const found = [];
        for (let k = 0; k < data.length; k += 4) if (data[k] < 100) found.push(k / 4);
        return [canvas.width, canvas.height, found];
    }""")
    assert dark == [400, 400, [(123 * 400 // 1000) * 400 + 456 * 400 // 1000]]
    assert "3x3 entries a cell (max)" in page.locator(".gradwidget-heatmap-note").inner_text()


def test_vectors_and_higher_rank_blocks_show_their_real_index(page: Any) -> None:
    show(page, {"block": "T", "shape": [2, 3, 4], "rows": 2, "cols": 12}, [0.5] * 24)
    assert page.locator(".gradwidget-heatmap-title").inner_text() == "T (2x3x4 as 2x12)"
    box = page.locator(".gradwidget-heatmap-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * (5.5 / 12), box["y"] + box["height"] * 0.75)
    page.wait_for_function("document.querySelector('.gradwidget-readout').textContent.includes('analytic')")
    assert page.locator(".gradwidget-readout").inner_text().startswith("T[1, 1, 1]")


def test_hover_shows_the_readout_and_click_selects(page: Any) -> None:
    values: list[float | None] = [1e-9] * 110
    show(page, block_state(10, 11), values)
    canvas = page.locator(".gradwidget-heatmap-canvas")
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] * (0.5 / 11), box["y"] + box["height"] * (5.5 / 10)
    page.mouse.move(x, y)
    page.wait_for_function("document.querySelector('.gradwidget-readout').textContent.includes('analytic')")
    text = page.locator(".gradwidget-readout").inner_text()
    assert text.startswith("Theta1[5, 0]")
    assert "analytic 1.500e+0" in text and "numeric -2.500e-1" in text and "rel 1.000e+0" in text and "wrong" in text
    assert page.evaluate("window.model.sent.at(-1)") == {"type": "entry", "index": 55}
    page.mouse.click(x, y)
    assert page.evaluate("[window.model.get('selected'), window.model.saves]") == [55, 1]
    assert page.locator(".gradwidget-heatmap-marker").is_visible()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("window.model.get('selected')") == 67
    page.evaluate("window.model.set('selected', -1)")
    assert not page.locator(".gradwidget-heatmap-marker").is_visible()


def test_ctrl_wheel_zooms_into_full_detail_keeping_the_canvas_size_and_the_wheel_alone_scrolls(page: Any) -> None:
    show(page, block_state(1000, 1000), {"size": 1_000_000, "fill": 1e-10, "set": [[500 * 1000 + 500, 0.9]]})
    canvas = page.locator(".gradwidget-heatmap-canvas")
    box = canvas.bounding_box()
    size = "(c => [c.width, c.height])(document.querySelector('.gradwidget-heatmap-canvas'))"
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.evaluate("window.scrolls = []; document.addEventListener('wheel', (e) => window.scrolls.push("
                  "e.defaultPrevented), { passive: true })")
    page.mouse.wheel(0, -100)  # no modifier: not a zoom, and the page scrolls
    page.wait_for_timeout(50)
    assert page.evaluate(size) == [400, 400]
    assert page.evaluate("window.scrolls") == [False]
    page.keyboard.down("Control")
    for _ in range(2):
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(50)
    page.keyboard.up("Control")
    assert page.evaluate(size) == [250, 250]  # a quarter of each side, one entry a cell
    assert canvas.bounding_box() == box  # the same place and size on the page: the cursor stays on it
    assert "entries a cell" not in page.locator(".gradwidget-heatmap-note").inner_text()
    page.mouse.dblclick(box["x"] + 5, box["y"] + 5)
    assert page.evaluate(size) == [400, 400]


def test_a_small_block_does_not_zoom(page: Any) -> None:
    show(page, block_state(6, 8), [1e-6] * 48)
    box = page.locator(".gradwidget-heatmap-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    page.wait_for_timeout(50)
    assert page.evaluate("document.querySelector('.gradwidget-heatmap-canvas').width") == 8
    assert "zoom" not in page.locator(".gradwidget-heatmap-note").inner_text()


def test_wrong_entries_are_marked_and_the_threshold_and_verdict_shown(page: Any) -> None:
    wrong = [3 * 1000 + 7, 999 * 1000 + 999]  # two wrong entries among a million, pooled 3x3 a cell
    show(page, {**block_state(1000, 1000), "threshold": 1.0, "vmin": 1e-3, "vmax": 1e3, "label": "tolerance",
                "verdict": "2 of 1000000 wrong", "wrong": wrong},
         {"size": 1_000_000, "fill": 0.01, "set": [[k, 50.0] for k in wrong]})
    root = page.locator(".gradwidget-heatmap")
    assert root.get_attribute("data-marked") == "2"
    assert page.locator(".gradwidget-heatmap-title").inner_text() == "Theta1 (1000x1000): 2 of 1000000 wrong"
    line = page.locator(".gradwidget-colourbar-threshold")
    bar = page.locator(".gradwidget-colourbar-canvas").bounding_box()
    middle = line.bounding_box()["y"] - bar["y"]
    assert line.is_visible() and abs(middle - bar["height"] / 2) < 4  # 1 sits halfway between 1e-3 and 1e3
    label = page.evaluate("""() => {  // the label is placed absolutely: the bar's box must still hold it
        const bar = document.querySelector('.gradwidget-colourbar');
        const line = document.querySelector('.gradwidget-colourbar-threshold');
        const probe = document.createElement('span');
        probe.style.cssText = 'position: absolute; font-size: 11px; white-space: nowrap';
        probe.textContent = line.dataset.label;
        bar.appendChild(probe);
        const width = probe.getBoundingClientRect().width;
        probe.remove();
        return {text: line.dataset.label, right: line.getBoundingClientRect().left + 22 + width,
                box: bar.getBoundingClientRect().right};
    }""")
    assert label["text"] == "wrong above" and label["right"] <= label["box"] + 1, label  # never under a neighbour
    marks = page.evaluate("""() => {
        const c = document.querySelector('.gradwidget-heatmap-marks');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
        return n;
    }""")
    assert marks >= 2 * 5  # each mark covers pixels of its own, however small the entry's cell


def test_keys_stay_in_a_focused_heatmap_and_escape_gives_focus_back(page: Any) -> None:
    show(page, block_state(10, 11), [1e-6] * 110)
    page.evaluate("window.reached = []; document.addEventListener('keydown', (e) => window.reached.push(e.key))")
    canvas = page.locator(".gradwidget-heatmap-canvas")
    canvas.click(position={"x": 2, "y": 2})
    assert page.evaluate("window.model.get('selected')") == 0
    for key in ("ArrowUp", "ArrowLeft", "ArrowDown"):  # the first two press against the grid's edge
        page.keyboard.press(key)
    assert page.evaluate("window.model.get('selected')") == 11
    assert page.evaluate("window.reached") == []  # the notebook never saw them
    assert canvas.get_attribute("data-lm-suppress-shortcuts") == "true"
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement === document.querySelector('.gradwidget-heatmap-canvas')") is False


def test_the_readout_has_a_fixed_box_and_never_moves_the_layout(page: Any) -> None:
    show(page, block_state(10, 11), [1e-6] * 110)
    readout = page.locator(".gradwidget-readout")
    before = readout.bounding_box()
    box = page.locator(".gradwidget-heatmap-canvas").bounding_box()
    page.mouse.move(box["x"] + 3, box["y"] + 3)
    page.wait_for_function("() => document.querySelector('.gradwidget-readout').textContent.includes('analytic')")
    assert readout.bounding_box() == before
    assert page.evaluate("(r => r.scrollHeight <= r.clientHeight + 1)(document.querySelector('.gradwidget-readout'))")


def test_new_values_redraw(page: Any) -> None:
    show(page, block_state(2, 2), [1e-12, 1e-12, 1e-12, 1e-12])
    page.evaluate("""() => {
        const floats = new Float32Array([1, 1e-12, 1e-12, 1e-12]);
        window.model.set('values', new DataView(floats.buffer));
    }""")
    assert pixel(pixels(page), 0, 0) == DARK


def test_a_heatmap_made_in_a_hidden_container_draws_when_shown(page: Any) -> None:
    page.evaluate("document.getElementById('root').style.display = 'none'")
    try:
        page.evaluate("([state, values]) => window.show(state, values)", [block_state(10, 11), [1e-6] * 110])
        page.wait_for_timeout(200)
        heatmap = page.locator(".gradwidget-heatmap")
        assert heatmap.get_attribute("data-ready") == "0"  # nothing to draw into yet
    finally:
        page.evaluate("document.getElementById('root').style.display = ''")
    page.wait_for_selector('.gradwidget-heatmap[data-ready="1"]')
    assert page.locator(".gradwidget-heatmap-canvas").bounding_box()["width"] > 200


def test_a_heatmap_fits_a_narrow_container_and_grows_back(page: Any) -> None:
    show(page, block_state(10, 11), [1e-6] * 110)
    canvas = page.locator(".gradwidget-heatmap-canvas")
    wide = canvas.bounding_box()["width"]
    drawn = page.evaluate("document.querySelector('.gradwidget-heatmap-canvas').style.width")
    page.evaluate("document.getElementById('root').style.width = '300px'")
    page.wait_for_function("parseFloat(document.querySelector('.gradwidget-heatmap-canvas').style.width) < 200")
    heatmap = page.locator(".gradwidget-heatmap").bounding_box()
    assert heatmap["width"] <= 300 and canvas.bounding_box()["width"] < wide
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2)  # the last entry, scaled down
    page.wait_for_function("document.querySelector('.gradwidget-readout').textContent.includes('analytic')")
    assert page.locator(".gradwidget-readout").inner_text().startswith("Theta1[9, 10]")
    page.evaluate("document.getElementById('root').style.width = ''")
    page.wait_for_function(f"document.querySelector('.gradwidget-heatmap-canvas').style.width == '{drawn}'")


def test_the_tolerance_colour_bar_reads_as_multiples_of_the_tolerance(page: Any) -> None:
    show(page, {**block_state(1, 11), "label": "tolerance", "vmin": 1e-3, "vmax": 1e3, "threshold": 1.0},
         [1e-2] * 11)
    assert page.locator(".gradwidget-colourbar-high").inner_text() == "1e3 × tol"
    assert page.locator(".gradwidget-colourbar-low").inner_text() == "1e-3 × tol"
    assert page.locator(".gradwidget-colourbar-name").inner_text() == ""  # no lone word under 1e3
    bar = page.locator(".gradwidget-colourbar").bounding_box()
    assert bar["height"] <= 70  # a one-row block gets a compact bar
