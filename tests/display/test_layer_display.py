"""How checks of layers and Jacobians show: the report, the Jacobian's heatmaps, the panel (no front end)."""

from __future__ import annotations

import numpy as np
from layer_cases import affine_backward, affine_forward, make_layer

import gradwidget as gw
from gradwidget.display._jacobian import pair_views
from gradwidget.display._plot import max_pooled


def test_the_jacobian_parts_are_named_and_read_back_pair_by_pair() -> None:
    result = make_layer("affine-dw-transposed-square").run()
    views = pair_views(result)
    assert [v.name for v in views] == ["out / x", "out / w", "out / b"]
    assert [v.shape for v in views] == [(12, 12), (12, 9), (12, 3)]
    assert views[0].state() == "ok" and views[1].state() == "48 of 108 pairs wrong"
    entry = views[1].entry(int(views[1].wrong()[0]))
    assert entry["entry"].startswith("out[") and " / w[" in entry["entry"] and entry["status"] == "wrong"
    assert set(entry) == {"entry", "analytic", "numeric", "tolerance", "abs_error", "rel_error", "status"}
    assert pair_views(gw.check(lambda t: float(t @ t), lambda t: 2 * t, np.ones(2) * 0.3)) == []


def test_a_single_wrong_pair_survives_max_pooling() -> None:
    values = np.full((1000, 3000), 0.01)
    values[537, 2999] = 50.0
    values[:, 5] = np.nan
    pooled = max_pooled(values)
    assert pooled.shape == (400, 400) and pooled.max() == 50.0 and not np.isnan(pooled).any()


def test_the_static_report_and_the_figure_show_the_jacobian() -> None:
    result = make_layer("softmax-diagonal-only").run()
    page = result._repr_html_()
    assert 'data-pair="out / x"' in page and 'data-block="x"' in page
    assert '<p class="gradwidget-subject">softmax_backward_diagonal against softmax_forward' in page
    figure = result.plot()
    titles = [ax.get_title() for ax in figure.axes]
    assert "out / x (20x20): 80 of 400 pairs wrong" in titles


def test_the_panel_draws_the_jacobian_and_answers_a_hover_with_the_pair() -> None:
    result = make_layer("softmax-diagonal-only").run()
    panel = result.widget()
    assert [h.block for h in panel.grid.children] == ["x", "out / x"]
    heatmap = panel.grid.jacobian[0]
    assert (heatmap.rows, heatmap.cols, len(heatmap.values)) == (20, 20, 4 * 400)
    assert heatmap.verdict == "80 of 400 pairs wrong" and len(heatmap.wrong) == 80
    replies: list[dict] = []
    heatmap.send = lambda content, buffers=None: replies.append(content)
    heatmap._answer(None, {"type": "entry", "index": 1}, [])
    assert replies[0]["entry"] == "out[0, 0] / x[0, 1]" and replies[0]["tolerance"] > 0


def test_the_panel_checks_a_layer_again_as_a_layer() -> None:
    rng = np.random.default_rng(0)
    result = gw.check_layer(affine_forward, affine_backward, rng.normal(size=(4, 3)), rng.normal(size=(3, 5)),
                            rng.normal(size=5), seed=0)
    panel = result.widget()
    panel.controls.method.value = "richardson"  # re-checks
    panel.wait()
    again = panel.result
    assert again is not result and again.method == "richardson"
    assert again.evidence.subject.kind == "layer" and again.passed
    assert [b.name for b in again.blocks] == ["x", "w", "b"]
    panel.controls.block_filter.value = "w"
    assert [h.block for h in panel.grid.children] == ["w", "out / w"]
