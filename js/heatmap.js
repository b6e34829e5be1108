// The gradwidget heatmap: one parameter block's per-entry discrepancy, drawn on a canvas.
//
// An anywidget ES module with no imports. The model holds the block's values as
// float32 bytes (`values`, rows x cols, row-major), the colour scale (`vmin`,
// `vmax`, `log`, and the colours: `colours`, 0xRRGGBB stops sampled from
// matplotlib's colormap by Python, and `unchecked`) and the selected entry
// (`selected`, a flat offset, -1 for none).
// Hovering asks Python for the entry's details with a custom message
// {type: "entry", index} and shows the reply in the readout.

export const MAX_CANVAS = 400; // cells drawn along a side; larger blocks are max-pooled
const MAX_CELL_PX = 24;

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

/** A number as the readout shows it. */
export function formatNumber(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "-";
  return Number(x).toExponential(3);
}

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
  const marker = element("div", "gradwidget-heatmap-marker", frame);
  const bar = element("div", "gradwidget-colourbar", body);
  const barHigh = element("div", "gradwidget-colourbar-label gradwidget-colourbar-high", bar);
  const barCanvas = element("canvas", "gradwidget-colourbar-canvas", bar);
  const barLow = element("div", "gradwidget-colourbar-label gradwidget-colourbar-low", bar);
  const barName = element("div", "gradwidget-colourbar-name", bar);
  const readout = element("div", "gradwidget-readout", el);
  const note = element("div", "gradwidget-heatmap-note", el);

  let data = new Float32Array(0);
  let view = null; // the pooled cells on the canvas
  let span = null; // the part of the block shown (zoom)
  let cellPx = 1;
  let hovered = -1;

  const shape = () => model.get("shape");
  const rows = () => model.get("rows");
  const cols = () => model.get("cols");
  const name = (k) => entryName(model.get("block"), shape(), k);
  const palette = () => ({ colours: model.get("colours"), unchecked: model.get("unchecked") });

  function drawColourbar() {
    const height = 120;
    barCanvas.width = 1;
    barCanvas.height = height;
    const ramp = new Float32Array(height).map((_, i) => 1 - i / (height - 1));
    barCanvas.getContext("2d").putImageData(new ImageData(paint(ramp, 0, 1, false, palette()), 1, height), 0, 0);
    barHigh.textContent = formatNumber(model.get("vmax")).replace(".000", "");
    barLow.textContent = formatNumber(model.get("vmin")).replace(".000", "");
    barName.textContent = `${model.get("label")} (${model.get("log") ? "log" : "linear"})`;
  }

  function draw() {
    el.dataset.ready = "0";
    el.dataset.block = model.get("block");
    el.dataset.rows = String(rows());
    el.dataset.cols = String(cols());
    data = toFloat32(model.get("values"));
    if (!span || span.rows > rows() || span.cols > cols()) {
      span = { r0: 0, c0: 0, rows: rows(), cols: cols() };
    }
    view = pool(data, cols(), span, MAX_CANVAS, MAX_CANVAS);
    canvas.width = view.cols;
    canvas.height = view.rows;
    const pixels = paint(view.values, model.get("vmin"), model.get("vmax"), model.get("log"), palette());
    canvas.getContext("2d").putImageData(new ImageData(pixels, view.cols, view.rows), 0, 0);
    cellPx = Math.max(1, Math.min(MAX_CELL_PX, Math.floor(MAX_CANVAS / Math.max(view.rows, view.cols))));
    if (view.cols * cellPx < 120) cellPx = Math.min(MAX_CELL_PX * 2, Math.ceil(120 / view.cols));
    canvas.style.width = `${view.cols * cellPx}px`;
    canvas.style.height = `${view.rows * cellPx}px`;
    const dims = shape().length ? shape().join("x") : "scalar";
    const laidOut = shape().length > 2 ? ` as ${rows()}x${cols()}` : "";
    title.textContent = `${model.get("block")} (${dims}${laidOut})`;
    const pooled = view.rows < span.rows || view.cols < span.cols;
    const zoomed = span.rows < rows() || span.cols < cols();
    note.textContent = [
      zoomed ? `rows ${span.r0}-${span.r0 + span.rows - 1}, cols ${span.c0}-${span.c0 + span.cols - 1}` : "",
      pooled ? `${Math.ceil(span.rows / view.rows)}x${Math.ceil(span.cols / view.cols)} entries a cell (max)` : "",
      rows() * cols() > 1 ? "wheel: zoom, double-click: all" : "",
    ].filter(Boolean).join("; ");
    drawColourbar();
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

  function drawMarker() {
    const k = model.get("selected");
    const cell = k >= 0 ? cellOf(k) : null;
    marker.style.display = cell ? "block" : "none";
    if (cell) {
      marker.style.left = `${cell[1] * cellPx - 1}px`;
      marker.style.top = `${cell[0] * cellPx - 1}px`;
      marker.style.width = marker.style.height = `${cellPx}px`;
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
    readout.textContent = `${name(k)}  ${model.get("label")} ${formatNumber(data[k])}`;
    readout.dataset.index = String(k);
    model.send({ type: "entry", index: k });
  }

  function onReply(message) {
    if (!message || message.type !== "entry" || message.index !== hovered) return;
    readout.textContent = `${name(message.index)}  analytic ${formatNumber(message.analytic)}  numeric ${
      formatNumber(message.numeric)}  abs ${formatNumber(message.abs_error)}  rel ${formatNumber(message.rel_error)}  ${
      message.status}`;
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
    const k = moveSelection(model.get("selected"), event.key, rows(), cols());
    if (k === model.get("selected")) return;
    event.preventDefault();
    select(k);
    show(k);
  }

  function onWheel(event) {
    event.preventDefault();
    const k = entryAt(event);
    if (k < 0) return;
    const factor = event.deltaY < 0 ? 0.5 : 2;
    span = zoom(span, Math.floor(k / cols()), k % cols(), factor, rows(), cols());
    draw();
  }

  function onDoubleClick() {
    span = { r0: 0, c0: 0, rows: rows(), cols: cols() };
    draw();
  }

  const redraws = ["values", "vmin", "vmax", "log", "label", "rows", "cols", "shape", "block", "colours", "unchecked"];
  for (const trait of redraws) model.on(`change:${trait}`, draw);
  model.on("change:selected", drawMarker);
  model.on("msg:custom", onReply);
  canvas.addEventListener("mousemove", onMove);
  canvas.addEventListener("click", onClick);
  canvas.addEventListener("keydown", onKey);
  // The view is attached to the page after render returns: hide the static copy once it is.
  const hideWhenAttached = (tries) => {
    if (el.isConnected) hideStaticReports(el);
    else if (tries > 0) setTimeout(() => hideWhenAttached(tries - 1), 50);
  };
  hideWhenAttached(200);
  canvas.addEventListener("wheel", onWheel, { passive: false });
  canvas.addEventListener("dblclick", onDoubleClick);
  draw();
  return () => {
    for (const trait of redraws) model.off(`change:${trait}`, draw);
    model.off("change:selected", drawMarker);
    model.off("msg:custom", onReply);
  };
}

export default { render };
