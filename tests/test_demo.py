"""The README's main job."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradwidget import demo


def test_demo_prints_a_pass_and_a_diagnosed_failure(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert demo.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    first, second = out.split("== The article's network")[1:]
    assert "gradwidget: PASSED" in first
    assert "gradwidget: FAILED" in second and "[missing-term]" in second and "bias column" in second
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == ["correct-eps-sweep.png", "correct-heatmaps.png",
                     "regularized-bias-eps-sweep.png", "regularized-bias-heatmaps.png"]
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in saved)
    assert f"saved {tmp_path / 'regularized-bias-heatmaps.png'}" in second


@pytest.mark.parametrize(("bug", "code"), [("column-major", "[permutation]"), ("no-sigmoid-gradient", "[localized]")])
def test_demo_bugs(bug: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    demo.main(["--bug", bug, "--no-figures"])
    assert code in capsys.readouterr().out.split("== The article's network")[2]
