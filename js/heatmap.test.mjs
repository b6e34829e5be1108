// The heatmap's helpers, without a browser: node --test js/
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  canvasSize, colour, entryName, formatNumber, fromBase64, readoutFields, readoutText, formatTick, hideStaticReports, moveSelection, normalize, OWN_KEYS, paint, pool, rgb,
  toFloat32, unravel, valuesOf, wantsZoom, zoom,
} from "../gradwidget/display/static/heatmap.js";

// A small scale for the tests; the widget gets matplotlib's from Python.
const PALETTE = { colours: [0xfcfdbf, 0x808080, 0x000004], unchecked: 0xc8c8c8 };

test("toFloat32 copies a DataView whose offset is not a multiple of 4", () => {
  const source = new Float32Array([1.5, NaN, -2]);
  const bytes = new Uint8Array(3 + source.byteLength);
  bytes.set(new Uint8Array(source.buffer), 3);
  const values = toFloat32(new DataView(bytes.buffer, 3, source.byteLength));
  assert.equal(values.length, 3);
  assert.equal(values[0], 1.5);
  assert.ok(Number.isNaN(values[1]));
  assert.equal(values[2], -2);
  assert.equal(toFloat32(null).length, 0);
});

test("normalize: log and linear scales, clipped, NaN kept", () => {
  assert.equal(normalize(1e-6, 1e-12, 1, true), 0.5);
  assert.equal(normalize(1e-20, 1e-12, 1, true), 0);
  assert.equal(normalize(0, 1e-12, 1, true), 0);
  assert.equal(normalize(10, 1e-12, 1, true), 1);
  assert.equal(normalize(0.25, 0, 1, false), 0.25);
  assert.equal(normalize(-3, -12, 0, false), 0.75);
  assert.ok(Number.isNaN(normalize(NaN, 0, 1, false)));
});

test("colour: the ends of the scale, its stops, interpolation between them, and grey for NaN", () => {
  assert.deepEqual(colour(0, PALETTE), [0xfc, 0xfd, 0xbf]);
  assert.deepEqual(colour(1, PALETTE), [0, 0, 4]);
  assert.deepEqual(colour(NaN, PALETTE), [200, 200, 200]);
  assert.deepEqual(colour(0.5, PALETTE), [128, 128, 128]);
  assert.deepEqual(colour(0.75, PALETTE), [64, 64, 66]);
  assert.deepEqual(rgb(0x123456), [0x12, 0x34, 0x56]);
});

test("pool keeps a lone large value visible and says where it came from", () => {
  const rows = 1000;
  const cols = 1000;
  const values = new Float32Array(rows * cols).fill(1e-10);
  values[123 * cols + 456] = 0.9;
  const view = pool(values, cols, { r0: 0, c0: 0, rows, cols }, 400, 400);
  assert.equal(view.rows, 400);
  assert.equal(view.cols, 400);
  const hot = view.values.reduce((n, v) => n + (v > 0.5 ? 1 : 0), 0);
  assert.equal(hot, 1);
  const at = view.values.findIndex((v) => v > 0.5);
  assert.equal(view.source[at], 123 * cols + 456);
});

test("pool: NaN only where every entry is NaN; no pooling for small arrays", () => {
  const values = new Float32Array([NaN, NaN, 3, NaN, NaN, NaN]);
  const halves = pool(values, 3, { r0: 0, c0: 0, rows: 2, cols: 3 }, 1, 2);
  assert.equal(halves.rows, 1);
  assert.ok(Number.isNaN(halves.values[0]));
  assert.equal(halves.source[0], -1);
  assert.equal(halves.values[1], 3);
  assert.equal(halves.source[1], 2);
  const full = pool(values, 3, { r0: 0, c0: 0, rows: 2, cols: 3 }, 400, 400);
  assert.deepEqual([full.rows, full.cols], [2, 3]);
  assert.deepEqual(Array.from(full.source), [-1, -1, 2, -1, -1, -1]);
});

test("pool draws the zoomed window only", () => {
  const values = Float32Array.from({ length: 16 }, (_, k) => k);
  const view = pool(values, 4, { r0: 1, c0: 2, rows: 2, cols: 2 }, 400, 400);
  assert.deepEqual(Array.from(view.values), [6, 7, 10, 11]);
  assert.deepEqual(Array.from(view.source), [6, 7, 10, 11]);
});

test("paint: 4 bytes a cell, opaque", () => {
  const pixels = paint(new Float32Array([1e-12, 1, NaN]), 1e-12, 1, true, PALETTE);
  assert.equal(pixels.length, 12);
  assert.deepEqual(Array.from(pixels.slice(0, 4)), [0xfc, 0xfd, 0xbf, 255]);
  assert.deepEqual(Array.from(pixels.slice(4, 8)), [0, 0, 4, 255]);
  assert.deepEqual(Array.from(pixels.slice(8, 12)), [200, 200, 200, 255]);
});

test("unravel and entryName give the real index of any rank", () => {
  assert.deepEqual(unravel(23, [2, 3, 4]), [1, 2, 3]);
  assert.deepEqual(unravel(5, [7]), [5]);
  assert.equal(entryName("T", [2, 3, 4], 13), "T[1, 0, 1]");
  assert.equal(entryName("b", [7], 3), "b[3]");
  assert.equal(entryName("s", [], 0), "s");
});

test("formatNumber", () => {
  assert.equal(formatNumber(0.000123456), "1.235e-4");
  assert.equal(formatNumber(NaN), "-");
  assert.equal(formatNumber(null), "-");
});

test("moveSelection stays inside the grid", () => {
  assert.equal(moveSelection(-1, "ArrowRight", 3, 4), 0);
  assert.equal(moveSelection(5, "ArrowRight", 3, 4), 6);
  assert.equal(moveSelection(7, "ArrowRight", 3, 4), 7);
  assert.equal(moveSelection(5, "ArrowDown", 3, 4), 9);
  assert.equal(moveSelection(9, "ArrowDown", 3, 4), 9);
  assert.equal(moveSelection(1, "ArrowUp", 3, 4), 1);
  assert.equal(moveSelection(4, "ArrowLeft", 3, 4), 4);
  assert.equal(moveSelection(5, "Enter", 3, 4), 5);
});

test("zoom in keeps the cell under the cursor, zoom out stops at the block", () => {
  const all = { r0: 0, c0: 0, rows: 1000, cols: 1000 };
  const inner = zoom(all, 600, 100, 0.5, 1000, 1000);
  assert.deepEqual(inner, { r0: 300, c0: 50, rows: 500, cols: 500 });
  assert.ok(600 >= inner.r0 && 600 < inner.r0 + inner.rows);
  assert.deepEqual(zoom(inner, 600, 100, 4, 1000, 1000), all);
  const tiny = zoom({ r0: 0, c0: 0, rows: 1, cols: 2 }, 0, 1, 0.5, 1, 2);
  assert.deepEqual(tiny, { r0: 0, c0: 1, rows: 1, cols: 1 });
});

test("hideStaticReports hides the static copies of the report in the panel's own output area, and only there", () => {
  const output = (name) => ({ name, style: {} });
  const copies = [output("first copy"), output("second copy")];
  const reports = copies.map((copy) => ({ closest: (selector) => (selector.includes(".jp-OutputArea-child") ? copy : null) }));
  const area = { querySelectorAll: (selector) => (selector === ".gradwidget-static" ? reports : []) };
  const el = { closest: (selector) => (selector.includes(".jp-OutputArea") ? area : null) };
  assert.equal(hideStaticReports(el), 2);
  assert.deepEqual(copies.map((c) => c.style.display), ["none", "none"]);
  const alone = { closest: () => null };
  assert.equal(hideStaticReports(alone), 0);
});

test("formatTick writes colour-bar ends plainly", () => {
  assert.equal(formatTick(1e-3), "1e-3");
  assert.equal(formatTick(1000), "1e3");
  assert.equal(formatTick(1), "1e0");
  assert.equal(formatTick(0), "0");
  assert.equal(formatTick(-12), "-12");
  assert.equal(formatTick(2), "2");
  assert.equal(formatTick(0.0057561), "0.00576");
});

test("the wheel zooms only with a modifier key; a focused heatmap keeps only the arrow keys", () => {
  assert.equal(wantsZoom({ deltaY: -1 }), false);
  assert.equal(wantsZoom({ deltaY: -1, ctrlKey: true }), true);
  assert.equal(wantsZoom({ deltaY: 1, metaKey: true }), true);
  assert.deepEqual([...OWN_KEYS].sort(), ["ArrowDown", "ArrowLeft", "ArrowRight", "ArrowUp"]);
});

test("readoutText names a pair of the Jacobian with its tolerance, and an entry of a block as before", () => {
  const pair = { entry: "out[2, 5] / w[3, 1]", analytic: 0.41, numeric: 0, tolerance: 3e-9, status: "wrong" };
  assert.equal(readoutText(pair, "out / w[17, 4]"),
    `out[2, 5] / w[3, 1]: analytic ${formatNumber(0.41)}, numeric ${formatNumber(0)}, tolerance ${
      formatNumber(3e-9)}  wrong`);
  const entry = { analytic: 1, numeric: 1, abs_error: 0, rel_error: 0, status: "ok" };
  assert.equal(readoutText(entry, "W1[0, 0]"),
    `W1[0, 0]  analytic ${formatNumber(1)}  numeric ${formatNumber(1)}  abs ${formatNumber(0)}  rel ${
      formatNumber(0)}  ok`);
});

test("a front end that drops binary buffers gets the same values from the base64 copy", () => {
  const source = new Float32Array([1.5, NaN, -2, 3e-7, 0, 1e30]);
  const text = Buffer.from(source.buffer).toString("base64"); // what Python's values_base64 holds
  const state = { rows: 2, cols: 3, values: new DataView(source.buffer), values_base64: "" };
  const get = (key) => state[key];
  assert.deepEqual(Array.from(valuesOf(get)), Array.from(source)); // binary where it arrived whole
  state.values = new DataView(new ArrayBuffer(0)); // as Colab's widget manager delivers it
  assert.equal(valuesOf(get), null); // nothing to draw yet: ask for text
  state.values = null;
  assert.equal(valuesOf(get), null);
  state.values_base64 = text;
  assert.deepEqual(Array.from(valuesOf(get)), Array.from(source));
  assert.deepEqual(Array.from(fromBase64(text)), Array.from(source));
  assert.equal(fromBase64("").length, 0);
  state.rows = 0; // an empty block needs no bytes at all
  state.values = new DataView(new ArrayBuffer(0));
  assert.equal(valuesOf(get).length, 0);
});

test("the readout breaks between its fields, never inside a number or an entry's name", () => {
  const text = "out[0, 0] / w[0, 1]: analytic -1.321e-1, numeric 4.000e+0, tolerance 3.000e-10  wrong";
  const parts = readoutFields(text);
  assert.equal(parts.join(""), text);
  assert.deepEqual(parts.filter((_, k) => k % 2 === 0), ["out[0, 0] / w[0, 1]: analytic -1.321e-1",
    "numeric 4.000e+0", "tolerance 3.000e-10", "wrong"]);
  assert.deepEqual(readoutFields("T[1, 1, 1]  rel 1.000e+0"), ["T[1, 1, 1]", "  ", "rel 1.000e+0"]);
});

test("the canvas fits the width it has, and keeps its size where there is room", () => {
  assert.deepEqual(canvasSize(10, 11, 0), { width: 264, height: 240 }); // 24 px a cell, no limit known
  assert.deepEqual(canvasSize(10, 11, 2000), canvasSize(10, 11, 0));
  const narrow = canvasSize(10, 11, 300);
  assert.ok(narrow.width <= 300 - 110 && Math.abs(narrow.width / narrow.height - 1.1) < 1e-9);
  assert.deepEqual(canvasSize(400, 400, 0), { width: 400, height: 400 }); // a pooled block: 1 px a cell
  assert.ok(canvasSize(1, 3, 0).width >= 120); // a short vector is at least 120 px wide
});
