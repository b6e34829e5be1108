// The gradwidget heatmap: one parameter block's per-entry discrepancy, drawn on a canvas.
//
// An anywidget ES module with no imports. The model holds the block's values as
// float32 bytes (`values`, rows x cols, row-major; as base64 text in `values_base64` where the front end's
// binary buffers arrive empty: it then sets `encoding` to "base64"), the colour scale (`vmin`,
// `vmax`, `log`, and the colours: `colours`, 0xRRGGBB stops chosen by Python,
// `unchecked`, and `threshold`, the verdict's line on the colour bar), the
// block's verdict (`verdict`), its wrong entries (`wrong`, offsets marked on
// the canvas) and the selected entry (`selected`, a flat offset, -1 for none).
// Hovering asks Python for the entry's details with a custom message
// {type: "entry", index} and shows the reply in the readout.

export const MAX_CANVAS = 400; // cells drawn along a side; larger blocks are max-pooled
const MAX_CELL_PX = 24;
const BESIDE_CANVAS_PX = 110; // the colour bar, its labels and the gaps beside the canvas
const MARK_PX = 5; // the smallest mark of a wrong entry on the page, in CSS pixels

/** A Float32Array over a fresh, aligned copy of a DataView, ArrayBuffer or typed array. */
export function toFloat32(data) {
  if (!data) return new Float32Array(0);
  const bytes = data instanceof ArrayBuffer
    ? new Uint8Array(data)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const copy = new Uint8Array(bytes.length - (bytes.length % 4));
  copy.set(bytes.subarray(0, copy.length));
  return new Float32Array(copy.buffer);
}

/**
 * The canvas's size on the page: whole pixels a cell (at most MAX_CELL_PX, at least 120 px wide) for a block of
 * rows x cols cells, shrunk to fit `room` pixels of width (0: not known yet, no limit).
 */
export function canvasSize(rows, cols, room) {
  const px = Math.max(1, Math.min(MAX_CELL_PX, Math.floor(MAX_CANVAS / Math.max(rows, cols))));
  const wide = cols * px < 120 ? Math.min(MAX_CELL_PX * 2, Math.ceil(120 / cols)) : px;
  const fit = room > 0 ? Math.min(1, Math.max(room - BESIDE_CANVAS_PX, 40) / (cols * wide)) : 1;
  return { width: cols * wide * fit, height: rows * wide * fit };
}

/** A Float32Array of base64 text that holds float32 bytes (what a front end without binary buffers receives). */
export function fromBase64(text) {
  const raw = atob(text || "");
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return toFloat32(bytes);
}

/**
 * The block's values from the model: the binary buffer where it arrived whole, else its base64 copy; null when
 * the buffer arrived empty (Colab's widget manager drops buffers) and no copy has come yet.
 */
export function valuesOf(get) {
  const binary = get("values");
  if (binary && binary.byteLength >= 4 * get("rows") * get("cols")) return toFloat32(binary);
  const text = get("values_base64");
  return text ? fromBase64(text) : null;
}

/** Position of value v on the colour scale, in [0, 1]; NaN stays NaN. */
export function normalize(v, vmin, vmax, log) {
  if (Number.isNaN(v)) return NaN;
  let t;
  if (log) {
    const lo = Math.log10(vmin);
    const hi = Math.log10(vmax);
    t = v > 0 ? (Math.log10(v) - lo) / (hi - lo) : 0;
  } else {
    t = vmax > vmin ? (v - vmin) / (vmax - vmin) : 0;
  }
  return Math.min(1, Math.max(0, t));
}

/** [r, g, b] of a 0xRRGGBB integer. */
export function rgb(hex) {
  return [16, 8, 0].map((shift) => (hex >> shift) & 255);
}

/**
 * [r, g, b] of a position t in [0, 1] on a colour scale: `palette.colours` holds
 * 0xRRGGBB stops, linearly interpolated; NaN is `palette.unchecked`.
 */
export function colour(t, palette) {
  const stops = palette.colours;
  if (Number.isNaN(t)) return rgb(palette.unchecked);
  const x = t * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = rgb(stops[i]);
  const b = rgb(stops[i + 1]);
  return a.map((v, k) => Math.round(v * (1 - f) + b[k] * f));
}

/**
 * Max-pool the window {r0, c0, rows, cols} of a rows x cols array to at most
 * outRows x outCols cells, so that one large value never disappears.
 * Returns {rows, cols, values, source}: each cell's largest value (NaN where
 * every entry is NaN) and the flat index of the entry it came from (-1 then).
 */
export function pool(values, cols, span, outRows, outCols) {
  const rows = Math.min(span.rows, outRows);
  const columns = Math.min(span.cols, outCols);
  const pooled = new Float32Array(rows * columns);
  const source = new Int32Array(rows * columns);
  for (let i = 0; i < rows; i++) {
    const rFrom = span.r0 + Math.floor((i * span.rows) / rows);
    const rTo = span.r0 + Math.floor(((i + 1) * span.rows) / rows);
    for (let j = 0; j < columns; j++) {
      const cFrom = span.c0 + Math.floor((j * span.cols) / columns);
      const cTo = span.c0 + Math.floor(((j + 1) * span.cols) / columns);
      let best = NaN;
      let at = -1;
      for (let r = rFrom; r < rTo; r++) {
        for (let c = cFrom; c < cTo; c++) {
          const v = values[r * cols + c];
          if (v > best || (at < 0 && !Number.isNaN(v))) {
            best = v;
            at = r * cols + c;
          }
        }
      }
      pooled[i * columns + j] = best;
      source[i * columns + j] = at;
    }
  }
  return { rows, cols: columns, values: pooled, source };
}

/** RGBA pixels (one per cell) of pooled values on the colour scale. */
export function paint(values, vmin, vmax, log, palette) {
  const pixels = new Uint8ClampedArray(values.length * 4);
  for (let k = 0; k < values.length; k++) {
    const [r, g, b] = colour(normalize(values[k], vmin, vmax, log), palette);
    pixels.set([r, g, b, 255], 4 * k);
  }
  return pixels;
}

/** The multi-index of flat offset k in an array of the given shape. */
export function unravel(k, shape) {
  const index = new Array(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    index[d] = k % shape[d];
    k = Math.floor(k / shape[d]);
  }
  return index;
}

/** "W1[2, 3]": the block's name and the entry's real index. */
export function entryName(block, shape, k) {
  return shape.length ? `${block}[${unravel(k, shape).join(", ")}]` : block;
}

/**
 * The readout of one entry from Python's reply: an entry of a block, or a pair of the
 * Jacobian ("out[2, 5] / w[3, 1]: analytic 0.41, numeric 0, tolerance 3e-9"), which
 * carries its own name and tolerance.
 */
export function readoutText(message, fallbackName) {
  if (message.tolerance !== undefined) {
    return `${message.entry || fallbackName}: analytic ${formatNumber(message.analytic)}, numeric ${
      formatNumber(message.numeric)}, tolerance ${formatNumber(message.tolerance)}  ${message.status}`;
  }
  return `${fallbackName}  analytic ${formatNumber(message.analytic)}  numeric ${formatNumber(message.numeric)}  abs ${
    formatNumber(message.abs_error)}  rel ${formatNumber(message.rel_error)}  ${message.status}`;
}

/**
 * The readout split into fields and the separators between them (", " or a run of spaces, outside brackets),
 * alternately: [field, separator, field, ...]. Each field is kept on one line.
 */
export function readoutFields(text) {
  const parts = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    depth += text[i] === "[" ? 1 : text[i] === "]" ? -1 : 0;
    const separator = depth === 0 ? /^(, |\s{2,})/.exec(text.slice(i, i + 64)) : null;
    if (separator && i > start) {
      parts.push(text.slice(start, i), separator[0]);
      start = i + separator[0].length;
      i = start - 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** Fill the readout: lines break between its fields, never inside a number. */
function fillReadout(node, text) {
  node.replaceChildren(...readoutFields(text).map((part, k) => {
    if (k % 2) return document.createTextNode(part);
    const field = document.createElement("span");
    field.className = "gradwidget-readout-field";
    field.textContent = part;
    return field;
  }));
}

/** A number as the readout shows it. */
export function formatNumber(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "-";
  return Number(x).toExponential(3);
}

/** A colour-bar end: a power of ten as "1e-3", zero as "0", anything else with up to 3 significant digits. */
export function formatTick(x) {
  if (x === 0) return "0";
  const exponent = Math.log10(Math.abs(x));
  if (Number.isInteger(exponent)) return `${x < 0 ? "-" : ""}1e${exponent}`;
  return String(Number(x.toPrecision(3)));
}

/** Whether a wheel event asks for zoom: only with a modifier key, so that the wheel alone scrolls the page. */
export function wantsZoom(event) {
  return Boolean(event.ctrlKey || event.metaKey || event.altKey);
}

/** Keys a focused heatmap keeps for itself (the notebook must not move its active cell on them). */
export const OWN_KEYS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"]);

/** The selection after an arrow key, kept inside the rows x cols grid. */
export function moveSelection(k, key, rows, cols) {
  if (k < 0) return 0;
  let r = Math.floor(k / cols);
  let c = k % cols;
  if (key === "ArrowUp") r = Math.max(0, r - 1);
  else if (key === "ArrowDown") r = Math.min(rows - 1, r + 1);
  else if (key === "ArrowLeft") c = Math.max(0, c - 1);
  else if (key === "ArrowRight") c = Math.min(cols - 1, c + 1);
  else return k;
  return r * cols + c;
}

/** The window after zooming by `factor` (< 1 zooms in) around grid cell (r, c). */
export function zoom(span, r, c, factor, rows, cols) {
  const height = Math.min(rows, Math.max(1, Math.round(span.rows * factor)));
  const width = Math.min(cols, Math.max(1, Math.round(span.cols * factor)));
  const r0 = Math.min(rows - height, Math.max(0, Math.round(r - ((r - span.r0) * height) / span.rows)));
  const c0 = Math.min(cols - width, Math.max(0, Math.round(c - ((c - span.c0) * width) / span.cols)));
  return { r0, c0, rows: height, cols: width };
}

// Where a cell's outputs live: JupyterLab and Notebook 7, the classic notebook.
export const OUTPUT_AREAS = ".jp-OutputArea, .output";

// The panel is displayed after a static copy of its report (HTML with the heatmaps as images), which is what a
// notebook shows where no live kernel is. Once a live panel draws, that copy in the same cell is hidden.
export function hideStaticReports(el) {
  const area = el.closest ? el.closest(OUTPUT_AREAS) : null;
  if (!area) return 0;
  let hidden = 0;
  for (const report of area.querySelectorAll(".gradwidget-static")) {
    const output = report.closest(".jp-OutputArea-child, .output_area") || report;
    output.style.display = "none";
    hidden += 1;
  }
  return hidden;
}

function element(tag, className, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}

function render({ model, el }) {
  el.classList.add("gradwidget-heatmap");
  const title = element("div", "gradwidget-heatmap-title", el);
  const body = element("div", "gradwidget-heatmap-body", el);
  const frame = element("div", "gradwidget-heatmap-frame", body);
  const canvas = element("canvas", "gradwidget-heatmap-canvas", frame);
  canvas.tabIndex = 0;
  canvas.dataset.lmSuppressShortcuts = "true"; // JupyterLab and Notebook 7: no notebook shortcuts while focused
  const marks = element("canvas", "gradwidget-heatmap-marks", frame);
  const marker = element("div", "gradwidget-heatmap-marker", frame);
  const bar = element("div", "gradwidget-colourbar", body);
  const barHigh = element("div", "gradwidget-colourbar-label gradwidget-colourbar-high", bar);
  const barCanvas = element("canvas", "gradwidget-colourbar-canvas", bar);
  const barLow = element("div", "gradwidget-colourbar-label gradwidget-colourbar-low", bar);
  const barName = element("div", "gradwidget-colourbar-name", bar);
  const barThreshold = element("div", "gradwidget-colourbar-threshold", bar);
  const readout = element("div", "gradwidget-readout", el);
  const note = element("div", "gradwidget-heatmap-note", el);

  let data = new Float32Array(0);
  let view = null; // the pooled cells on the canvas
  let span = null; // the part of the block shown (zoom)
  let cellPx = 1;
  let fullSize = null; // the canvas's size on the page at full view, kept while zoomed
  let hovered = -1;
  let width = -1; // the container's width at the last draw
  // Drawn again when it gets a box (shown) or its container another width (resized): it fits the width it has.
  const resizes = typeof ResizeObserver === "function" ? new ResizeObserver(() => {
    if (room() !== width || (el.dataset.ready === "0" && el.getClientRects().length)) draw();
  }) : null;
  let watched; // the container observed besides the heatmap itself (undefined: nothing observed yet)
  function watch() {
    const box = container();
    if (!resizes || !el.isConnected || box === watched) return;
    if (watched === undefined) resizes.observe(el); // once: observing again would report, and redraw, again
    else if (watched) resizes.unobserve(watched);
    if (box) resizes.observe(box);
    watched = box;
  }

  const shape = () => model.get("shape");
  const rows = () => model.get("rows");
  const cols = () => model.get("cols");
  const name = (k) => entryName(model.get("block"), shape(), k);
  const palette = () => ({ colours: model.get("colours"), unchecked: model.get("unchecked") });
  const isZoomed = () => span.rows < rows() || span.cols < cols(); // part of the block shown
  const isPooled = () => view.rows < span.rows || view.cols < span.cols; // several entries a cell

  function drawColourbar() {
    const height = 120;
    barCanvas.width = 1;
    barCanvas.height = height;
    const ramp = new Float32Array(height).map((_, i) => 1 - i / (height - 1));
    barCanvas.getContext("2d").putImageData(new ImageData(paint(ramp, 0, 1, false, palette()), 1, height), 0, 0);
    const multiples = model.get("label") === "tolerance"; // the ends read as multiples of each entry's tolerance
    barHigh.textContent = `${formatTick(model.get("vmax"))}${multiples ? " × tol" : ""}`;
    barLow.textContent = `${formatTick(model.get("vmin"))}${multiples ? " × tol" : ""}`;
    barName.textContent = multiples ? "" : model.get("log") ? model.get("label") : `${model.get("label")} (linear)`;
    const threshold = model.get("threshold") || 0;
    barThreshold.style.display = threshold > 0 ? "block" : "none";
    if (threshold > 0) {
      const t = normalize(threshold, model.get("vmin"), model.get("vmax"), model.get("log"));
      barThreshold.style.top = `${(1 - t) * 100}%`;
      barThreshold.title = `${formatTick(threshold)}: the tolerance; above it an entry is wrong`;
      barThreshold.dataset.label = "wrong above";
    }
  }

  // The nearest box around the heatmap that has a width (past display: contents, inline elements and shadow
  // roots, as marimo and Voila nest widgets); null while it is hidden or not attached yet.
  function container() {
    for (let node = el.parentNode; node; node = node.parentNode || node.host) {
      if (node.nodeType === 1 && node.clientWidth > 0) return node;
    }
    return null;
  }

  // The width the heatmap may take (0: not known).
  function room() {
    const box = container();
    return box ? box.clientWidth : 0;
  }

  function draw() {
    el.dataset.ready = "0";
    width = room();
    watch();
    if (el.isConnected && el.getClientRects().length === 0) {
      note.textContent = "drawn when shown";
      return; // hidden (a collapsed output, a closed tab, a zero-size container): drawn when it gets a size
    }
    el.dataset.block = model.get("block");
    el.dataset.rows = String(rows());
    el.dataset.cols = String(cols());
    const values = valuesOf((key) => model.get(key));
    if (values === null) {
      // The buffer came empty: ask for the values as text, and draw when they come.
      if (model.get("encoding") !== "base64") {
        model.set("encoding", "base64");
        model.save_changes();
      }
      note.textContent = "waiting for the values as text (this page's widget manager drops binary data)";
      return;
    }
    el.dataset.encoding = model.get("encoding") || "binary";
    data = values;
    if (!span || span.rows > rows() || span.cols > cols()) {
      span = { r0: 0, c0: 0, rows: rows(), cols: cols() };
    }
    view = pool(data, cols(), span, MAX_CANVAS, MAX_CANVAS);
    canvas.width = view.cols;
    canvas.height = view.rows;
    const pixels = paint(view.values, model.get("vmin"), model.get("vmax"), model.get("log"), palette());
    canvas.getContext("2d").putImageData(new ImageData(pixels, view.cols, view.rows), 0, 0);
    const zoomed = isZoomed();
    if (!zoomed || !fullSize) fullSize = canvasSize(view.rows, view.cols, room());
    // Zooming keeps the canvas's size on the page, so the cursor stays on it: cells grow instead.
    canvas.style.width = `${fullSize.width}px`;
    canvas.style.height = `${fullSize.height}px`;
    cellPx = fullSize.width / view.cols;
    const readoutWidth = Math.max(fullSize.width + 60, 240);
    readout.style.width = `${width > 0 ? Math.min(readoutWidth, width) : readoutWidth}px`;
    const dims = shape().length ? shape().join("x") : "scalar";
    const laidOut = shape().length > 2 ? ` as ${rows()}x${cols()}` : "";
    const verdict = model.get("verdict") || "";
    title.textContent = `${model.get("block")} (${dims}${laidOut})${verdict ? `: ${verdict}` : ""}`;
    el.dataset.verdict = verdict;
    const pooled = isPooled();
    note.textContent = [
      zoomed ? `rows ${span.r0}-${span.r0 + span.rows - 1}, cols ${span.c0}-${span.c0 + span.cols - 1}` : "",
      pooled ? `${Math.ceil(span.rows / view.rows)}x${Math.ceil(span.cols / view.cols)} entries a cell (max)` : "",
      pooled || zoomed ? "ctrl+wheel: zoom, double-click: all" : "",
    ].filter(Boolean).join("; ");
    drawColourbar();
    drawMarks();
    drawMarker();
    el.dataset.ready = "1";
  }

  // The grid cell of the canvas that holds block entry k, or null when it is out of view.
  function cellOf(k) {
    const r = Math.floor(k / cols()) - span.r0;
    const c = (k % cols()) - span.c0;
    if (r < 0 || c < 0 || r >= span.rows || c >= span.cols) return null;
    return [Math.floor((r * view.rows) / span.rows), Math.floor((c * view.cols) / span.cols)];
  }

  // Each wrong entry gets a mark of at least MARK_PX on the page, however many entries share a cell.
  function drawMarks() {
    const ratio = window.devicePixelRatio || 1;
    marks.width = Math.round(fullSize.width * ratio);
    marks.height = Math.round(fullSize.height * ratio);
    marks.style.width = `${fullSize.width}px`;
    marks.style.height = `${fullSize.height}px`;
    const context = marks.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, fullSize.width, fullSize.height);
    const cellHeight = fullSize.height / view.rows;
    const size = Math.max(MARK_PX, Math.min(cellPx, cellHeight) * 0.7);
    context.strokeStyle = "#19a0ff";
    context.lineWidth = Math.max(1.5, size / 6);
    let marked = 0;
    for (const k of model.get("wrong") || []) {
      const cell = cellOf(k);
      if (!cell) continue;
      const x = (cell[1] + 0.5) * cellPx;
      const y = (cell[0] + 0.5) * cellHeight;
      context.beginPath();
      context.moveTo(x - size / 2, y - size / 2);
      context.lineTo(x + size / 2, y + size / 2);
      context.moveTo(x + size / 2, y - size / 2);
      context.lineTo(x - size / 2, y + size / 2);
      context.stroke();
      marked += 1;
    }
    el.dataset.marked = String(marked);
  }

  function drawMarker() {
    const k = model.get("selected");
    const cell = k >= 0 ? cellOf(k) : null;
    marker.style.display = cell ? "block" : "none";
    if (cell) {
      const cellHeight = fullSize.height / view.rows;
      marker.style.left = `${cell[1] * cellPx - 1}px`;
      marker.style.top = `${cell[0] * cellHeight - 1}px`;
      marker.style.width = `${cellPx}px`;
      marker.style.height = `${cellHeight}px`;
    }
  }

  function entryAt(event) {
    const box = canvas.getBoundingClientRect();
    const j = Math.floor(((event.clientX - box.left) / box.width) * view.cols);
    const i = Math.floor(((event.clientY - box.top) / box.height) * view.rows);
    if (i < 0 || j < 0 || i >= view.rows || j >= view.cols) return -1;
    const k = view.source[i * view.cols + j];
    if (k >= 0) return k;
    // an unchecked cell: its first entry
    const r = span.r0 + Math.floor((i * span.rows) / view.rows);
    const c = span.c0 + Math.floor((j * span.cols) / view.cols);
    return r * cols() + c;
  }

  function show(k) {
    hovered = k;
    fillReadout(readout, `${name(k)}  ${model.get("label")} ${formatNumber(data[k])}`);
    readout.dataset.index = String(k);
    model.send({ type: "entry", index: k });
  }

  function onReply(message) {
    if (!message || message.type !== "entry" || message.index !== hovered) return;
    fillReadout(readout, readoutText(message, name(message.index)));
  }

  function select(k) {
    model.set("selected", k);
    model.save_changes();
    drawMarker();
  }

  function onMove(event) {
    const k = entryAt(event);
    if (k >= 0 && k !== hovered) show(k);
  }

  function onClick(event) {
    const k = entryAt(event);
    if (k >= 0) select(k);
    canvas.focus();
  }

  function onKey(event) {
    if (event.key === "Escape") {
      canvas.blur(); // focus goes back to the notebook
      return;
    }
    if (!OWN_KEYS.has(event.key)) return;
    event.preventDefault();
    event.stopPropagation(); // at the grid's edge too: the notebook must not take the key
    const k = moveSelection(model.get("selected"), event.key, rows(), cols());
    if (k === model.get("selected")) return;
    select(k);
    show(k);
  }

  function onWheel(event) {
    if (!wantsZoom(event) || (event.deltaY < 0 ? !isPooled() : !isZoomed())) return; // the page scrolls
    event.preventDefault();
    const k = entryAt(event);
    if (k < 0) return;
    const factor = event.deltaY < 0 ? 0.5 : 2;
    span = zoom(span, Math.floor(k / cols()), k % cols(), factor, rows(), cols());
    draw();
  }

  // A selection made elsewhere (the panel's "go to"): zoom out if the entry is outside the part shown.
  function onSelected() {
    const k = model.get("selected");
    if (k >= 0 && !cellOf(k)) {
      span = { r0: 0, c0: 0, rows: rows(), cols: cols() };
      draw();
    } else drawMarker();
  }

  function onDoubleClick() {
    span = { r0: 0, c0: 0, rows: rows(), cols: cols() };
    draw();
  }

  const redraws = ["values", "values_base64", "vmin", "vmax", "log", "label", "rows", "cols", "shape", "block", "colours", "unchecked",
    "threshold", "verdict", "wrong"];
  for (const trait of redraws) model.on(`change:${trait}`, draw);
  model.on("change:selected", onSelected);
  model.on("msg:custom", onReply);
  canvas.addEventListener("mousemove", onMove);
  canvas.addEventListener("click", onClick);
  canvas.addEventListener("keydown", onKey);
  // The view is attached to the page after render returns, and the copy's HTML may render after it: hide the
  // copy once attached, and again a little later.
  const hideWhenAttached = (tries) => {
    if (el.isConnected) {
      for (const delay of [0, 250, 1000, 3000]) setTimeout(() => hideStaticReports(el), delay);
      watch();
    } else if (tries > 0) setTimeout(() => hideWhenAttached(tries - 1), 50);
  };
  hideWhenAttached(200);
  canvas.addEventListener("wheel", onWheel, { passive: false });
  canvas.addEventListener("dblclick", onDoubleClick);
  draw();
  return () => {
    if (resizes) resizes.disconnect();
    for (const trait of redraws) model.off(`change:${trait}`, draw);
    model.off("change:selected", onSelected);
    model.off("msg:custom", onReply);
  };
}

export default { render };
