"""The panel: verdict and diagnoses, heatmaps, controls, worst entries and the eps sweep.

Checks run in a background thread so that the notebook stays responsive;
the progress bar follows them and Cancel stops one, keeping what it measured.
"""

from __future__ import annotations

import html
import threading
import weakref
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from .._check import Problem, check
from .._colour import METRICS, SCALES
from .._options import OPTIONS, parse_options
from .._params import random_init
from .._plot import figure_png
from .._report import report_html, summary_html, worst_html
from .._result import CheckResult
from .heatmap import Heatmap

__all__ = ["GradCheckPanel", "panel_of"]

OPTION = {option.name: option for option in OPTIONS}
PANEL_OPTIONS = tuple(name for name in OPTION if name != "progress")  # progress is the panel's own
ALL_BLOCKS = "all blocks"

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
    """

    def __init__(self, J: Callable[[Any], Any] | None = None, grad: Callable[[Any], Any] | None = None,
                 theta: Any = None, *, result: CheckResult | None = None, **options: Any) -> None:
        unknown = set(options) - set(PANEL_OPTIONS)
        if unknown:
            raise TypeError(f"GradCheckPanel got unknown options {sorted(unknown)}; it takes {list(PANEL_OPTIONS)}")
        if result is not None:
            problem = result.require_problem()
            options = {**problem.options.given(), **options}
        elif J is None or theta is None:
            raise TypeError("GradCheckPanel needs J, grad and theta (or result=)")
        else:
            problem = Problem(J, grad, theta, parse_options(options))
        self.problem = problem
        self.options = {k: v for k, v in options.items() if v is not None}
        self.result: CheckResult | None = None
        self.heatmaps: list[Heatmap] = []
        self._selected_position = -1  # flat position in theta of the entry clicked last
        self._run: threading.Thread | None = None
        self._cancel = threading.Event()
        self._build()
        super().__init__([self.summary, self.status_row, self.controls, self.heatmap_box,
                          w.HBox([self.worst, self.sweep_box])], layout=w.Layout(width="100%"))
        if result is not None:
            self._show(result)
        else:
            self.recheck()

    # ------------------------------------------------------------ building

    def _build(self) -> None:
        opts = self.options
        self.summary = w.HTML()
        self.progress = w.FloatProgress(min=0.0, max=1.0, description="checking", bar_style="info")
        self.status = w.HTML()
        self.cancel_button = w.Button(description="Cancel", icon="stop", button_style="warning")
        self.cancel_button.on_click(lambda _: self.cancel())
        self.status_row = w.HBox([self.progress, self.cancel_button, self.status])
        self.method = w.Dropdown(options=list(OPTION["method"].choices), value=opts.get("method", "central"),
                                 description="scheme")
        eps = opts.get("eps")
        self.auto_step = w.Checkbox(value=eps is None, description="step per entry", indent=False)
        self.eps = w.FloatLogSlider(value=eps or 1e-6, base=10, min=-12, max=-1, step=0.25, description="eps",
                                    readout_format=".0e", continuous_update=False, disabled=eps is None)
        self.metric = w.ToggleButtons(options=list(METRICS), value="rel", description="metric",
                                      style={"button_width": "88px"})
        self.scale = w.ToggleButtons(options=list(SCALES), value="log", description="colour",
                                     style={"button_width": "60px"})
        self.block_filter = w.Dropdown(options=[ALL_BLOCKS], value=ALL_BLOCKS, description="blocks")
        self.recheck_button = w.Button(description="Re-check", icon="refresh")
        self.random_button = w.Button(description="Re-check at a random point", icon="random",
                                      layout=w.Layout(width="auto"))
        self.recheck_button.on_click(lambda _: self.recheck())
        self.random_button.on_click(lambda _: self.recheck(random_point=True))
        self.controls = w.VBox([
            w.HBox([self.method, self.auto_step, self.eps]),
            w.HBox([self.metric, self.scale]),
            w.HBox([self.block_filter, self.recheck_button, self.random_button]),
        ])
        self.heatmap_box = w.Box(layout=w.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"))
        self.worst = w.HTML(layout=w.Layout(margin="0 16px 0 0"))
        self.sweep_title = w.HTML()
        self.sweep = w.Image(format="png", layout=w.Layout(max_width="520px"))
        self.sweep_box = w.VBox([self.sweep_title, self.sweep])
        self.method.observe(self._scheme_changed, "value")
        self.eps.observe(self._step_changed, "value")
        self.auto_step.observe(self._scheme_changed, "value")
        self.metric.observe(self._redraw, "value")
        self.scale.observe(self._redraw, "value")
        self.block_filter.observe(self._filter, "value")
        self._set_busy(False)

    # ------------------------------------------------------------ checks

    def recheck(self, random_point: bool = False) -> None:
        """Run the check again with the controls' scheme and step, in the background.

        Parameters
        ----------
        random_point : bool
            Check at a new random point (the classic initialization: uniform
            in [-0.12, 0.12]) instead of the current one.
        """
        self.cancel()
        theta = self.problem.theta
        if random_point:
            theta = random_init(theta)
            self.problem = Problem(self.problem.J, self.problem.grad, theta, self.problem.options)
        options = {**self.options, "method": self.method.value, "eps": None if self.auto_step.value else self.eps.value}
        if options["method"] != "central":
            options.pop("directions", None)
        self._cancel = threading.Event()
        self._set_busy(True)
        self._run = threading.Thread(target=self._check, args=(theta, options, self._cancel), daemon=True)
        self._run.start()

    def cancel(self) -> None:
        """Stop the running check; the panel shows what it measured."""
        self._cancel.set()
        self.wait()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running check (if any) has ended and is shown."""
        if self._run is not None and self._run is not threading.current_thread():
            self._run.join(timeout)

    def _check(self, theta: Any, options: dict[str, Any], cancel: threading.Event) -> None:
        def progress(done: int, total: int) -> None:
            if cancel.is_set():
                raise KeyboardInterrupt
            self.progress.value = done / max(total, 1)

        try:
            result = check(self.problem.J, self.problem.grad, theta, progress=progress, **options)
        except Exception as exc:
            self._set_busy(False)
            self.status.value = f'<span style="color:#cf222e">{type(exc).__name__}: {html.escape(str(exc))}</span>'
            return
        self._show(result)
        self._set_busy(False)
        if result.interrupted:
            self.status.value = f"<em>cancelled: {html.escape(result.interrupted)}</em>"

    def _set_busy(self, busy: bool) -> None:
        self.progress.value = 0.0
        self.progress.layout.display = self.cancel_button.layout.display = None if busy else "none"
        self.status.value = ""
        for control in (self.recheck_button, self.random_button):
            control.disabled = busy

    # ------------------------------------------------------------ showing

    def _show(self, result: CheckResult) -> None:
        self.result = result
        blocks = result.evidence.layout.blocks
        self.summary.value = summary_html(result)
        self.worst.value = worst_html(result)
        if [h.block for h in self.heatmaps] != [b.name for b in blocks]:
            for heatmap in self.heatmaps:
                heatmap.close()
            self.heatmaps = [Heatmap(result, b, self.metric.value, self.scale.value) for b in blocks]
            for heatmap in self.heatmaps:
                heatmap.observe(self._selection_changed, "selected")
            names = [ALL_BLOCKS, *(b.name for b in blocks)]
            self.block_filter.options = names if len(blocks) > 1 else [ALL_BLOCKS]
            self._selected_position = -1
        else:
            self._redraw()
        self._filter()
        self._draw_sweep()

    def _redraw(self, _: Any = None) -> None:
        if self.result is None:
            return
        for heatmap, block in zip(self.heatmaps, self.result.evidence.layout.blocks):
            heatmap.show(self.result, block, self.metric.value, self.scale.value)

    def _filter(self, _: Any = None) -> None:
        chosen = self.block_filter.value
        self.heatmap_box.children = [h for h in self.heatmaps if chosen in (ALL_BLOCKS, h.block)]

    def _scheme_changed(self, _: Any) -> None:
        self.eps.disabled = self.auto_step.value
        self.recheck()

    def _step_changed(self, _: Any) -> None:
        if self.auto_step.value:
            self.auto_step.value = False  # re-checks
        else:
            self.recheck()

    def _selection_changed(self, change: dict[str, Any]) -> None:
        heatmap = change["owner"]
        if change["new"] < 0:
            if self.selected is not None and self.selected[0] == heatmap.block:
                self._selected_position = -1
            return
        for other in self.heatmaps:
            if other is not heatmap:
                other.selected = -1
        self._selected_position = heatmap.position
        self._draw_sweep()

    @property
    def selected(self) -> tuple[str, tuple[int, ...]] | None:
        """The entry clicked last: ``(block name, index in the block)``, or None."""
        if self._selected_position < 0 or self.result is None:
            return None
        block = self.result.evidence.layout.block_of(self._selected_position)
        return block.name, block.index(self._selected_position - block.start)

    def _draw_sweep(self) -> None:
        """The error against the step of the selected entry, or of the worst entry of the blocks shown."""
        result = self.result
        if result is None or result.problem is None:
            return
        position = self._selected_position
        if position < 0:
            shown = [(report, at) for report, at in zip(result.blocks, result.worst_positions())
                     if at is not None and self.block_filter.value in (ALL_BLOCKS, report.name)]
            failing = [at for report, at in shown if not report.passed]
            if not shown:
                self.sweep_title.value, self.sweep.value = "", b""
                return
            position = (failing or [shown[0][1]])[0]
        entry = result.evidence.layout.entry_name(position)
        self.sweep_title.value = f"<b>Error against the step: {html.escape(entry)}</b> (click an entry to change)"
        self.sweep.value = figure_png(result.plot_eps_sweep(position), dpi=72)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget, with the HTML report for places where widgets do not render."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if self.result is not None:
            bundle["text/html"] = report_html(self.result)
            bundle["text/plain"] = str(self.result)
        return bundle

