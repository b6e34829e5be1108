"""The wheel ships the heatmap's front end (and a Voila page template), and the installed package finds it."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_the_front_end(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("gradwidget-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")  # pure Python: JupyterLite's piplite installs it
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert {"gradwidget/display/static/heatmap.js", "gradwidget/display/static/heatmap.css",
                "gradwidget/widget.py"} <= set(names)
        template = "gradwidget-0.1.0.data/data/share/jupyter/voila/templates/gradwidget/"  # voila --template=gradwidget
        assert {template + "index.html.j2", template + "conf.json"} <= set(names)
        assert not [n for n in names if n.endswith((".so", ".pyd", ".dylib"))]
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        archive.extractall(tmp_path / "site")
    required = sorted(re.split(r"[<>=!~ ;\[]", line.split(":", 1)[1].strip())[0] for line in metadata.splitlines()
                      if line.startswith("Requires-Dist:") and "extra ==" not in line)
    # Pyodide ships numpy and matplotlib; the rest are pure Python
    assert required == ["anywidget", "ipython", "ipywidgets", "matplotlib", "numpy", "tomli", "tqdm"], required
    code = "from gradwidget.display._heatmap import front_end_file; print(front_end_file('heatmap.js'))"
    found = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")},
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(found) == tmp_path / "site" / "gradwidget" / "display" / "static" / "heatmap.js"
