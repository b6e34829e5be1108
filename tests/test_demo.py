"""The README's main job."""

from __future__ import annotations

import pytest

from gradwidget import demo


def test_demo_prints_a_pass_and_a_diagnosed_failure(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main([]) == 0
    out = capsys.readouterr().out
    first, second = out.split("== The article's network")[1:]
    assert "gradwidget: PASSED" in first
    assert "gradwidget: FAILED" in second and "[localized]" in second and "bias column" in second


@pytest.mark.parametrize(("bug", "code"), [("column-major", "[permutation]"), ("no-sigmoid-gradient", "[localized]")])
def test_demo_bugs(bug: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    demo.main(["--bug", bug])
    assert code in capsys.readouterr().out.split("== The article's network")[2]
