"""The panel: verdict and diagnoses, heatmaps, controls, worst entries and the eps sweep.

Checks run in a background thread so that the notebook stays responsive;
the progress bar follows them and Cancel stops one, keeping what it measured.
"""

from __future__ import annotations

import html
import threading
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import ipywidgets as w

from .._check import check
from .._options import OPTIONS, parse_options
from .._params import random_init
from .._result import CheckCall, CheckResult
from ._colour import METRICS, SCALES
from ._heatmap import Heatmap, PairHeatmap
from ._jacobian import pair_views
from ._plot import figure_png
from ._report import blocks_html, report_html, summary_html, worst_html

__all__ = ["GradCheckPanel", "panel_of", "static_bundle"]

OPTION = {option.name: option for option in OPTIONS}
PANEL_OPTIONS = tuple(name for name in OPTION if name != "progress")  # progress is the panel's own
ALL_BLOCKS = "all blocks"
JUMP_ENTRIES = 20  # the worst entries the "go to" list offers

_PANELS: weakref.WeakKeyDictionary[CheckResult, GradCheckPanel] = weakref.WeakKeyDictionary()


def panel_of(result: CheckResult) -> GradCheckPanel:
    """The panel on ``result``: the same one each time, so that its selection can be read back."""
    if result not in _PANELS:
        _PANELS[result] = GradCheckPanel(result=result)
    return _PANELS[result]


class GradCheckPanel(w.VBox):
    """An interactive gradient check.

    ``GradCheckPanel(J, grad, theta, **options)`` runs :func:`gradwidget.check`
    with the given options in the background and shows the result;
    ``result.widget()`` shows a result that is already there.

    Parameters
    ----------
    J, grad, theta, **options
        As for :func:`gradwidget.check` (``progress`` is the panel's own).
    result : CheckResult, optional
        Show this result instead of running a check first.

    Attributes
    ----------
    result : CheckResult or None
        The result shown (None until the first check ends).
    selected : tuple (block name, index) or None
        The entry clicked last in a heatmap.
    heatmaps : list of Heatmap
        One per block.
    grid : HeatmapGrid
    controls : Controls
    run : RunStatus
        The progress bar, Cancel and the last run's message.
    """

    def __init__(self, J: Callable[[Any], Any] | None = None, grad: Callable[[Any], Any] | None = None,
                 theta: Any = None, *, result: CheckResult | None = None, **options: Any) -> None:
        self.call, self.options = _call(J, grad, theta, result, options)
        self.result: CheckResult | None = None
        self._static: Any = None  # the display handle of the report's static copy, once shown
        self.summary = w.HTML()
        self.run = RunStatus(self._busy)
        self.controls = Controls(self.options.get("method", OPTION["method"].default), self.options.get("eps"))
        self.grid = HeatmapGrid(self._draw_sweep)
        self.worst = w.HTML(layout=w.Layout(margin="0 16px 0 0", flex="0 1 auto", max_width="100%"))
        self.sweep_view = SweepView()
        self._connect()
        self.blocks = w.HTML(layout=w.Layout(max_width="100%"))  # its table scrolls, the verdict kept in view
        super().__init__([self.summary, self.blocks, self.run, self.controls, self.grid,
                          w.HBox([self.worst, self.sweep_view], layout=_wrapping())], layout=w.Layout(width="100%"))
        for table in (self.blocks, self.worst):
            table.add_class("gradwidget-table")  # heatmap.css lets it narrow, so that the table scrolls within
        if result is not None:
            self._show(result)
        else:
            self.recheck()

    def _connect(self) -> None:
        c = self.controls
        c.recheck.on_click(lambda _: self.recheck())
        c.random.on_click(lambda _: self.recheck(random_point=True))
        c.method.observe(lambda _: self.recheck(), "value")
        c.auto_step.observe(lambda _: self.recheck(), "value")
        c.eps.observe(self._step_changed, "value")
        c.metric.observe(self._redraw, "value")
        c.scale.observe(self._redraw, "value")
        c.block_filter.observe(lambda change: self.grid.filter(change["new"]), "value")
        c.jump.observe(self._jump, "value")

    # ------------------------------------------------------------ checks

    def recheck(self, random_point: bool = False) -> None:
        """Run the check again with the controls' scheme and step, in the background.

        Parameters
        ----------
        random_point : bool
            Check at a new random point (the classic initialization: uniform
            in [-0.12, 0.12]) instead of the current one.
        """
        self.run.stop()
        if random_point:
            self.call = replace(self.call, theta=random_init(self.call.theta))
        options = {**self.options, **self.controls.check_options()}
        if options["method"] != "central":
            options.pop("directions", None)
        self.run.start(self.call, options, self._show)

    def cancel(self) -> None:
        """Stop the running check; the panel shows what it measured."""
        self.run.stop()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running check (if any) has ended and is shown."""
        self.run.wait(timeout)

    def _busy(self, busy: bool) -> None:
        self.controls.recheck.disabled = self.controls.random.disabled = busy

    # ------------------------------------------------------------ showing

    def _show(self, result: CheckResult) -> None:
        self.result = result
        if self._static is not None:
            self._static.update(static_bundle(result), raw=True)
        self.summary.value = summary_html(result)
        self.blocks.value = blocks_html(result)
        self.controls.offer(result)
        self.worst.value = worst_html(result)
        self.grid.show(result, self.controls.metric.value, self.controls.scale.value)
        self.grid.filter(self.controls.block_filter.value)
        self._draw_sweep()

    def _jump(self, change: dict[str, Any]) -> None:
        if change["new"] >= 0:
            self.controls.block_filter.value = ALL_BLOCKS
            self.grid.select(change["new"])

    def _redraw(self, _: Any = None) -> None:
        if self.result is not None:
            self.grid.show(self.result, self.controls.metric.value, self.controls.scale.value)

    def _step_changed(self, _: Any) -> None:
        if self.controls.auto_step.value:
            self.controls.auto_step.value = False  # re-checks
        else:
            self.recheck()

    @property
    def heatmaps(self) -> list[Heatmap]:
        """One heatmap per block."""
        return self.grid.heatmaps

    @property
    def selected(self) -> tuple[str, tuple[int, ...]] | None:
        """The entry clicked last: ``(block name, index in the block)``, or None."""
        return self.grid.selected

    def _draw_sweep(self) -> None:
        if self.result is not None and self.result.call is not None:
            self.sweep_view.show(self.result, self.grid.position, self.controls.block_filter.value)

    def _ipython_display_(self) -> None:
        """Two outputs: a static copy of the report, then the live panel.

        Where no live kernel is (the notebook reopened, nbconvert HTML,
        GitHub and nbviewer) the panel's output cannot render, and the copy
        shows the report with its heatmaps as images; where the panel is
        live, its first heatmap hides the copy (``hideStaticReports`` in
        ``static/heatmap.js``), so the report shows once. The copy follows every
        new result of the panel, so a saved notebook keeps the last one.
        """
        from IPython.display import display

        if self.result is not None:
            self._static = display(static_bundle(self.result), raw=True, display_id=True)
        display(self._repr_mimebundle_(), raw=True)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget, and a line for places that show only text (the report itself is in the static copy)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = (f"gradwidget panel: {self.result.verdict}" if self.result is not None
                                else "gradwidget panel")
        return bundle


def _call(J: Callable[[Any], Any] | None, grad: Callable[[Any], Any] | None, theta: Any,
             result: CheckResult | None, options: dict[str, Any]) -> tuple[CheckCall, dict[str, Any]]:
    """What a panel checks, and the options it was given (a result's own, then the panel's), or a TypeError."""
    unknown = set(options) - set(PANEL_OPTIONS)
    if unknown:
        raise TypeError(f"GradCheckPanel got unknown options {sorted(unknown)}; it takes {list(PANEL_OPTIONS)}")
    if result is not None:
        call = result.require_call()
        options = {**call.options.given(), **options}
    elif J is None or theta is None:
        raise TypeError("GradCheckPanel needs J, grad and theta (or result=)")
    else:
        call = CheckCall(J, grad, theta, parse_options(options))
    return call, {k: v for k, v in options.items() if v is not None}


def _wrapping() -> w.Layout:
    """The layout of a row of controls: it wraps in narrow windows instead of scrolling sideways."""
    return w.Layout(flex_flow="row wrap", align_items="center")


def themed(fig: Any) -> Any:
    """``fig`` drawn to read on light and dark pages alike: mid-grey text and axes on a transparent background."""
    grey = "#8a8a8a"
    for ax in fig.axes:
        ax.set_facecolor("none")
        ax.tick_params(colors=grey, which="both")
        for spine in ax.spines.values():
            spine.set_color(grey)
        for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
            text.set_color(grey)
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_alpha(0.0)
            for text in legend.get_texts():
                text.set_color(grey)
    return fig


# Where the panel cannot come back (a notebook reopened without a kernel), JupyterLab and Notebook 7 leave its
# output saying "Loading widget..." for ever: a widget output with nothing drawn in it, after this copy, is hidden.
NO_LOADING = ("<style>.jp-OutputArea-child:has(.gradwidget-static) ~ .jp-OutputArea-child "
              ".jp-OutputArea-output.lm-Panel:not(:has(*)){display:none}</style>")


def static_bundle(result: CheckResult) -> dict[str, str]:
    """The report for places without a live kernel, marked so that a live panel can hide it."""
    return {"text/html": f'<div class="gradwidget-static">{NO_LOADING}{report_html(result)}</div>',
            "text/plain": str(result)}


class HeatmapGrid(w.Box):
    """One heatmap per block, with one selected entry across them all.

    Parameters
    ----------
    on_select : callable
        Called when the selection changes.
    """

    def __init__(self, on_select: Callable[[], None]) -> None:
        super().__init__(layout=w.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"))
        self.on_select = on_select
        self.heatmaps: list[Heatmap] = []
        self.jacobian: list[PairHeatmap] = []  # the whole Jacobian's parts, outputs x inputs, when compared
        self.result: CheckResult | None = None
        self.position = -1  # flat position in theta of the entry clicked last

    def show(self, result: CheckResult, metric: str, scale: str) -> None:
        """Draw ``result``'s blocks (and its Jacobian's parts); the heatmaps stay when the blocks are the same."""
        blocks = result.evidence.layout.blocks
        self.result = result
        self._show_jacobian(result, metric, scale)
        if [h.block for h in self.heatmaps] == [b.name for b in blocks]:
            for heatmap, block in zip(self.heatmaps, blocks):
                heatmap.show(result, block, metric, scale)
            return
        for heatmap in self.heatmaps:
            heatmap.close()
        self.heatmaps = [Heatmap(result, b, metric, scale) for b in blocks]
        for heatmap in self.heatmaps:
            heatmap.observe(self._selection_changed, "selected")
        self.position = -1

    def _show_jacobian(self, result: CheckResult, metric: str, scale: str) -> None:
        """One heatmap per part of the whole Jacobian, outputs x inputs, when the check compared it."""
        views = pair_views(result)
        if [h.block for h in self.jacobian] == [v.name for v in views]:
            for heatmap, view in zip(self.jacobian, views):
                heatmap.show(view, metric, scale)
            return
        for heatmap in self.jacobian:
            heatmap.close()
        self.jacobian = [PairHeatmap(view, metric, scale) for view in views]

    def filter(self, chosen: str) -> None:
        """Show every block (`ALL_BLOCKS`) or the one named (and the Jacobian's parts for that argument)."""
        self.children = [*(h for h in self.heatmaps if chosen in (ALL_BLOCKS, h.block)),
                         *(h for h in self.jacobian if chosen in (ALL_BLOCKS, h.view.argument.name))]

    @property
    def selected(self) -> tuple[str, tuple[int, ...]] | None:
        """The entry clicked last: ``(block name, index in the block)``, or None."""
        if self.position < 0 or self.result is None:
            return None
        block = self.result.evidence.layout.block_of(self.position)
        return block.name, block.index(self.position - block.start)

    def select(self, position: int) -> None:
        """Select the entry at flat ``position`` (its heatmap zooms out to show it if need be)."""
        for heatmap in self.heatmaps:
            start = heatmap._block.start
            if start <= position < start + heatmap._block.size:
                heatmap.selected = position - start

    def _selection_changed(self, change: dict[str, Any]) -> None:
        heatmap = change["owner"]
        if change["new"] < 0:
            if self.selected is not None and self.selected[0] == heatmap.block:
                self.position = -1
            return
        for other in self.heatmaps:
            if other is not heatmap:
                other.selected = -1
        self.position = heatmap.position
        self.on_select()


FOREGROUND = "checked in the foreground: this Python cannot start threads (JupyterLite?)"


class RunStatus(w.HBox):
    """A check running in a background thread: its progress bar, a Cancel button, and the last run's message.

    One check runs at a time; Cancel (or `stop`) makes its progress callback
    raise KeyboardInterrupt, so the check ends with what it measured. Where
    no thread can start (Pyodide), the check runs in the foreground instead,
    and says so.
    """

    def __init__(self, on_busy: Callable[[bool], None]) -> None:
        self.progress = w.FloatProgress(min=0.0, max=1.0, description="checking", bar_style="info")
        self.cancel = w.Button(description="Cancel", button_style="warning")
        self.cancel.on_click(lambda _: self.stop())
        self.message = w.HTML()
        super().__init__([self.progress, self.cancel, self.message])
        self._on_busy = on_busy
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._show_bar(False)

    def start(self, call: CheckCall, options: dict[str, Any], show: Callable[[CheckResult], None]) -> None:
        """Stop the running check, then check ``call`` with ``options`` in the background; ``show`` its result."""
        self.stop()
        self._stop = threading.Event()
        self.busy(True)
        self._thread = threading.Thread(target=self._run, args=(call, options, show, self._stop), daemon=True)
        try:
            self._thread.start()
        except RuntimeError:  # a Python without threads (Pyodide: JupyterLite): the check runs now, in the cell
            self._thread = None
            self._run(call, options, show, self._stop)
            self.say(f"<em>{FOREGROUND}</em>" + (f" {self.message.value}" if self.message.value else ""))

    def stop(self) -> None:
        """Stop the running check (if any) and wait until what it measured is shown."""
        self._stop.set()
        self.wait()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running check (if any) has ended and is shown."""
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self, call: CheckCall, options: dict[str, Any], show: Callable[[CheckResult], None],
             stop: threading.Event) -> None:
        def progress(done: int, total: int) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            self.progress.value = done / max(total, 1)

        try:
            if call.rerun is not None:  # a layer, a Jacobian: checked again as it was made
                result = call.rerun(call.theta, progress=progress, **options)
            else:
                result = check(call.J, call.grad, call.theta, progress=progress, **options)
        except Exception as exc:
            self.busy(False)
            self.say(f'<span style="color:#cf222e">{type(exc).__name__}: {html.escape(str(exc))}</span>')
            return
        show(result)
        self.busy(False)
        if result.interrupted:
            self.say("<em>cancelled: the result below is what was measured until then</em>")

    def busy(self, busy: bool) -> None:
        """Show the bar and Cancel while a check runs (and tell the panel); clear the message."""
        self._show_bar(busy)
        self._on_busy(busy)

    def _show_bar(self, busy: bool) -> None:
        self.progress.value = 0.0
        self.progress.layout.display = self.cancel.layout.display = None if busy else "none"
        self.message.value = ""

    def say(self, text: str) -> None:
        """Show ``text`` (HTML) beside the bar."""
        self.message.value = text


class Controls(w.VBox):
    """The panel's controls: the scheme and step of the next check (from `check`'s options), how to colour.

    Attributes
    ----------
    method, auto_step, eps : the scheme, whether each entry gets its own step, and one step for all
    metric, scale, block_filter : what the heatmaps show
    recheck, random : buttons
    """

    def __init__(self, method: str, eps: float | None) -> None:
        self.method = w.Dropdown(options=list(OPTION["method"].choices), value=method, description="scheme")
        self.auto_step = w.Checkbox(value=eps is None, description="step per entry", indent=False)
        self.eps = w.FloatLogSlider(value=eps or 1e-6, base=10, min=-12, max=-1, step=0.25, description="eps",
                                    readout_format=".0e", continuous_update=False)  # moving it unticks the box
        self.metric = w.ToggleButtons(options=list(METRICS), value="tolerance", description="metric",
                                      tooltips=list(METRICS.values()), style={"button_width": "88px"})
        self.scale = w.ToggleButtons(options=list(SCALES), value="log", description="colour",
                                     style={"button_width": "60px"})
        self.block_filter = w.Dropdown(options=[ALL_BLOCKS], value=ALL_BLOCKS, description="blocks")
        self.jump = w.Dropdown(options=[("worst entries...", -1)], value=-1, description="go to",
                               layout=w.Layout(width="auto"))
        self.recheck = w.Button(description="Re-check")
        self.random = w.Button(description="Re-check at a random point", layout=w.Layout(width="auto"))
        super().__init__([w.HBox([self.method, self.auto_step, self.eps], layout=_wrapping()),
                          w.HBox([self.metric, self.scale], layout=_wrapping()),
                          w.HBox([self.block_filter, self.jump, self.recheck, self.random], layout=_wrapping())])

    def offer(self, result: CheckResult) -> None:
        """Offer ``result``'s worst entries to go to and its blocks to filter by."""
        self.jump.options = [("worst entries...", -1)] + [
            (f"{e['entry']} ({e['status']})", e["position"]) for e in result.worst_entries(JUMP_ENTRIES)]
        self.jump.value = -1
        names = [b.name for b in result.evidence.layout.blocks]
        self.block_filter.options = [ALL_BLOCKS, *names] if len(names) > 1 else [ALL_BLOCKS]

    def check_options(self) -> dict[str, Any]:
        """The options of `check` the controls set: the scheme, and the step (None: per entry)."""
        return {"method": self.method.value, "eps": None if self.auto_step.value else self.eps.value}


class SweepView(w.VBox):
    """The error against the step of one entry: the one selected, or else the worst of the blocks shown.

    Attributes
    ----------
    title : HTML
    image : Image
        The figure, as PNG.
    """

    def __init__(self) -> None:
        self.title = w.HTML()
        self.image = w.Image(format="png", layout=w.Layout(max_width="520px"))
        super().__init__([self.title, self.image])

    def show(self, result: CheckResult, position: int, blocks_shown: str) -> None:
        """Sweep the entry at flat ``position`` (-1: the worst failing, or else worst, of ``blocks_shown``)."""
        layout = result.evidence.layout
        if position >= 0 and blocks_shown not in (ALL_BLOCKS, layout.block_of(position).name):
            position = -1  # the entry clicked last is in a block the filter hides
        if position < 0:
            shown = [(report, at) for report, at in zip(result.blocks, result.worst_positions())
                     if at is not None and blocks_shown in (ALL_BLOCKS, report.name)]
            if not shown:
                self.title.value, self.image.value = "", b""
                return
            failing = [at for report, at in shown if not report.passed]
            position = (failing or [shown[0][1]])[0]
        entry = layout.entry_name(position)
        step = result.evidence.steps[position]
        self.title.value = (f"<b>Error against the step: {html.escape(entry)}</b> (click an entry to change; "
                            f"the check used h = {step:.2g}, {html.escape(result.method)})")
        self.image.value = figure_png(themed(result.plot_eps_sweep(position)), dpi=72, transparent=True)
