"""The README's code runs as printed.

Each section's ```python blocks run in order in a fresh interpreter; a
section with ```ipython blocks (magics) runs all its blocks, in order, through
a fresh IPython shell instead. Each runs in a scratch folder that holds a copy
of ``notebooks/`` (the example courses the grading section names), so what a
block writes stays there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
RUN_IN_IPYTHON = """
import sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
for number, block in enumerate(BLOCKS, 1):
    outcome = shell.run_cell(block, store_history=True)
    if not outcome.success:
        sys.exit(f"block {number} of the section failed")
"""


def sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """Each ``## `` section's title -> its code blocks as (language, code), in order."""
    found: dict[str, list[tuple[str, str]]] = {}
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        found[title.strip()] = [(m.group(1), m.group(2)) for m in FENCE.finditer(body)]
    return found


RUNNABLE = {title: blocks for title, blocks in sections(README.read_text()).items()
            if any(language in ("python", "ipython") for language, _ in blocks)}


def test_the_sections_a_newcomer_needs_have_runnable_code() -> None:
    assert set(RUNNABLE) >= {"A first check", "In a notebook: `%gradcheck`", "The panel",
                             "Layers, Jacobians and Hessians", "PyTorch and JAX", "Grading"}
    magics = [code for language, code in FENCE.findall(README.read_text()) if code.lstrip().startswith("%")]
    assert magics and all(f"```ipython\n{code}```" in README.read_text() for code in magics)


def test_the_section_splitter_keeps_each_sections_blocks_in_order() -> None:
    text = "# t\n## One\n```python\na = 1\n```\n```bash\nls\n```\n## Two\n```ipython\n%x\n```\n"
    assert sections(text) == {"One": [("python", "a = 1\n"), ("bash", "ls\n")], "Two": [("ipython", "%x\n")]}


def run_section(blocks: list[tuple[str, str]], folder: Path) -> subprocess.CompletedProcess[str]:
    code = [source for language, source in blocks if language in ("python", "ipython")]
    if any(language == "ipython" for language, _ in blocks):
        program = f"BLOCKS = {code!r}\n{RUN_IN_IPYTHON}"
    else:
        program = "\n".join(code)
    environment = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": ""}
    return subprocess.run([sys.executable, "-c", program], cwd=folder, capture_output=True, text=True,
                          timeout=600, env=environment)


@pytest.mark.slow
@pytest.mark.parametrize("title", sorted(RUNNABLE))
def test_a_readme_section_runs_as_printed(title: str, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    done = run_section(RUNNABLE[title], tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_a_failing_block_fails_its_section(tmp_path: Path) -> None:
    assert run_section([("python", "x = 1\n"), ("python", "assert x == 2\n")], tmp_path).returncode != 0
    assert run_section([("python", "x = 1\n"), ("ipython", "%time y = x\nassert y == 2\n")], tmp_path).returncode != 0
    assert run_section([("python", "x = 1\n"), ("ipython", "%time y = x\nassert y == 1\n")], tmp_path).returncode == 0
