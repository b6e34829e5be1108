"""How a result shows itself: the text report, the HTML report and the matplotlib figures."""

from __future__ import annotations

import base64
import re
import struct
from html.parser import HTMLParser

import numpy as np
import pytest
from corpus import REGULARIZED_BIAS_SAYS

import gradwidget as gw
from gradwidget.examples import ARTICLE_NAMES, ARTICLE_SHAPES, article_network


@pytest.fixture(scope="module")
def failing() -> gw.CheckResult:
    J, grad, theta = article_network("regularized-bias")
    return gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES, seed=0)


@pytest.fixture(scope="module")
def passing() -> gw.CheckResult:
    J, grad, theta = article_network()
    return gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES, seed=0)


class Page(HTMLParser):
    """The parts of the HTML report that a reader looks at, parsed."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.verdict = ""
        self.tables: dict[str, list[list[str]]] = {}
        self.diagnoses: list[tuple[str, str]] = []
        self.figures: list[tuple[str, bytes]] = []
        self._stack: list[tuple[str, dict[str, str]]] = []
        self._table: str | None = None
        self._text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "img":
            figure = next(a for t, a in reversed(self._stack) if t == "figure")
            prefix = "data:image/png;base64,"
            assert attributes["src"].startswith(prefix)
            self.figures.append((figure["data-block"], base64.b64decode(attributes["src"][len(prefix):])))
            return
        self._stack.append((tag, attributes))
        if tag == "table":
            self._table = attributes["class"]
            self.tables[self._table] = []
        elif tag == "tr":
            self.tables[self._table].append([])
        if tag in ("span", "td", "th", "li"):
            self._text = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag == "img", f"<{tag}/>"
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        opened, attributes = self._stack.pop()
        assert opened == tag, f"<{opened}> closed by </{tag}>"
        text = "".join(self._text).strip()
        if tag == "span" and attributes.get("class") == "gradwidget-verdict":
            self.verdict = text
        elif tag in ("td", "th"):
            self.tables[self._table][-1].append(text)
        elif tag == "li":
            self.diagnoses.append((attributes["data-code"], text))

    def handle_data(self, data: str) -> None:
        self._text.append(data)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_html_report_of_a_failing_network(failing: gw.CheckResult) -> None:
    page = Page(failing._repr_html_())
    assert page.verdict == "FAILED"
    header, *rows = page.tables["gradwidget-blocks"]
    assert header == ["block", "verdict", "shape", "error", "max abs", "max rel", "worst"]  # the verdict in view
    assert [(r[0], r[2], r[1]) for r in rows] == [("Theta1", "(10, 11)", "10 of 110 wrong"),
                                                  ("Theta2", "(10, 11)", "10 of 110 wrong"),
                                                  ("Theta3", "(1, 11)", "1 of 11 wrong")]
    assert [code for code, _ in page.diagnoses] == ["missing-term"]
    assert REGULARIZED_BIAS_SAYS in page.diagnoses[0][1]
    header, *worst = page.tables["gradwidget-worst"]
    assert header[0] == "entry" and len(worst) == 5
    assert all(row[0].endswith(", 0]") and row[-1] == "wrong" for row in worst)
    assert [block for block, _ in page.figures] == ARTICLE_NAMES
    sizes = [png_size(png) for _, png in page.figures]
    assert all(w > 150 and h > 80 for w, h in sizes)
    assert sizes[2][1] < sizes[0][1]  # the 1 x 11 block is drawn as a strip


def test_html_tables_align_their_numbers_and_diagnoses_set_formulas_as_code(failing: gw.CheckResult) -> None:
    text = failing._repr_html_()
    aligned = {name: side for side, name in re.findall(r'<th style="[^"]*text-align:(\w+)[^"]*">([^<]*)</th>', text)}
    assert {name: aligned[name] for name in ("block", "shape", "error", "max abs", "worst", "verdict",
                                             "analytic", "abs")} == {
        "block": "left", "shape": "left", "error": "right", "max abs": "right", "worst": "left", "verdict": "left",
        "analytic": "right", "abs": "right"}
    assert re.search(r'<td style="[^"]*padding:[^"]*text-align:right">2.1e-01</td>', text)
    assert "<code>reg * np.sum(W ** 2)</code>" in text and "`" not in text


def test_html_report_of_a_passing_network(passing: gw.CheckResult) -> None:
    page = Page(passing._repr_html_())
    assert page.verdict == "PASSED"
    assert [row[1] for row in page.tables["gradwidget-blocks"][1:]] == ["ok", "ok", "ok"]
    assert page.diagnoses == []
    assert "gradwidget-worst" in page.tables  # the largest discrepancies, within noise


def test_html_escapes_names() -> None:
    theta = {"<b>w&": np.array([0.3, 0.5])}
    result = gw.check(lambda p: float(np.sum(p["<b>w&"] ** 2)), lambda p: {"<b>w&": 2 * p["<b>w&"]}, theta)
    text = result._repr_html_()
    assert "<b>w&" not in text
    assert Page(text).tables["gradwidget-blocks"][1][0] == "<b>w&"


def test_text_report(failing: gw.CheckResult, passing: gw.CheckResult) -> None:
    lines = str(failing).splitlines()
    assert lines[0].startswith("gradwidget: FAILED  error 1.2")
    assert "231 of 231 entries" in lines[0]
    assert lines[2].split() == ["block", "shape", "error", "max", "abs", "max", "rel", "worst", "verdict"]
    assert lines[3].split()[0] == "Theta1" and lines[3].endswith("10 of 110 wrong")
    assert "Diagnoses" in lines and "Worst entries" in lines
    assert str(passing).startswith("gradwidget: PASSED")
    assert "Largest discrepancies (within noise)" in str(passing)


def test_repr_is_one_line(failing: gw.CheckResult) -> None:
    assert repr(failing).startswith("<CheckResult FAILED error=0.12")
    assert "diagnoses=missing-term" in repr(failing)


# ---------------------------------------------------------------- figures


def render(fig: object) -> tuple[int, int]:
    from gradwidget.display._plot import figure_png

    return png_size(figure_png(fig))


def test_heatmaps_one_axes_per_block_and_a_colour_bar(failing: gw.CheckResult) -> None:
    from matplotlib.colors import LogNorm

    fig = failing.plot()
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in heatmaps] == ["Theta1 (10x11): 10 of 110 wrong", "Theta2 (10x11): 10 of 110 wrong",
                                                   "Theta3 (1x11): 1 of 11 wrong"]  # as the table words it
    assert all(float(t).is_integer() for ax in heatmaps for t in ax.get_xticks())  # entries have whole indices
    assert [ax.images[0].get_array().shape for ax in heatmaps] == [(10, 11), (10, 11), (1, 11)]
    assert len(fig.axes) == 4  # and the colour bar
    assert isinstance(heatmaps[0].images[0].norm, LogNorm)
    norm = heatmaps[0].images[0].norm
    assert (norm.vmin, norm.vmax) == (1e-3, 1e3)  # |a - n| / tolerance, one scale for every block, as the panel
    colour_bar = next(ax for ax in fig.axes if not ax.images)
    assert "tolerance" in colour_bar.get_ylabel() and [line.get_ydata()[0] for line in colour_bar.lines] == [1.0]
    data = heatmaps[0].images[0].get_array()
    assert (data[:, 0] > 1).all() and (data[:, 1:] < 1).all()  # the wrong column above the threshold, the rest below
    crosses = heatmaps[0].collections[0].get_offsets()
    assert sorted(crosses[:, 0].tolist()) == [0.0] * 10  # the wrong bias column, marked
    assert render(fig)[0] > 600


def test_heatmaps_of_vectors_and_higher_rank_blocks() -> None:
    theta = {"v": np.linspace(-1, 1, 7), "T": np.linspace(0.1, 1, 24).reshape(2, 3, 4), "s": np.array(0.5)}

    def J(p: dict) -> float:
        return float(np.sum(p["v"] ** 3) + np.sum(np.sin(p["T"])) + p["s"] ** 2)

    def grad(p: dict) -> dict:
        return {"v": 3 * p["v"] ** 2, "T": np.cos(p["T"]), "s": 2 * p["s"]}

    fig = gw.check(J, grad, theta).plot()
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert [ax.images[0].get_array().shape for ax in heatmaps] == [(1, 7), (2, 12), (1, 1)]
    assert heatmaps[1].get_title() == "T (2x3x4 as 2x12): ok"
    assert heatmaps[2].get_title() == "s (scalar): ok"
    render(fig)


def test_unchecked_entries_are_masked() -> None:
    J, grad, theta = article_network()
    result = gw.check(J, grad, theta, shapes=ARTICLE_SHAPES, sample=5, seed=0)
    image = next(ax for ax in result.plot().axes if ax.images).images[0]
    data = image.get_array()
    assert int(np.ma.count_masked(data)) == 110 - 5
    assert tuple(image.cmap.get_bad()[:3]) != tuple(image.cmap(0.0)[:3])  # drawn in a colour of their own


def test_eps_sweep_is_a_v_for_a_right_entry_and_flat_for_a_wrong_one(failing: gw.CheckResult) -> None:
    fig = failing.plot_eps_sweep(["Theta1[5, 0]", "Theta1[5, 3]"])
    (ax,) = fig.axes
    assert ax.get_xscale() == ax.get_yscale() == "log"
    wrong, right = (line.get_ydata() for line in ax.get_lines() if line.get_linestyle() != ":")  # not the steps
    assert np.median(wrong) > 0.5  # the bug: relative error ~1 at every step
    best = int(np.argmin(right))
    assert right[best] < 1e-7 and 0 < best < len(right) - 1  # a V with its bottom inside
    assert right[0] > 100 * right[best] and right[-1] > 100 * right[best]
    steps = [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert steps == pytest.approx([failing.evidence.steps[5 * 11], failing.evidence.steps[5 * 11 + 3]])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Theta1[5, 0]", "Theta1[5, 3]"]
    render(fig)


def test_eps_sweep_defaults_to_each_blocks_worst_entry(failing: gw.CheckResult) -> None:
    fig = failing.plot_eps_sweep()
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [f"{name}[{', '.join(map(str, b.worst))}]" for name, b in zip(ARTICLE_NAMES, failing.blocks)]
    lines = [line for line in fig.axes[0].get_lines() if line.get_label() in labels]
    # two bugs of one size lie on one another: each line keeps a marker of its own, the earlier ones larger
    assert len({line.get_marker() for line in lines}) == 3
    assert [line.get_markersize() for line in lines] == sorted((line.get_markersize() for line in lines), reverse=True)


def test_eps_sweep_bad_entries(failing: gw.CheckResult) -> None:
    with pytest.raises(ValueError, match="no entry named 'W1\\[0, 0\\]'; names look like 'Theta1\\[0, 0\\]'"):
        failing.plot_eps_sweep("W1[0, 0]")
    with pytest.raises(ValueError, match="entry 231 is outside theta's 231 entries"):
        failing.plot_eps_sweep(231)

