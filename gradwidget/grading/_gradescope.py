"""``gradwidget gradescope``: Gradescope's autograder.zip for a spec.

The zip holds ``setup.sh`` (installs gradwidget, from the wheel inside the
zip when there is one), ``run_autograder`` (writes a fallback results.json
first, then grades ``/autograder/submission`` with this same isolated grader
into ``/autograder/results/results.json``), the spec and every file it
names, and the course secret. Students never see the zip.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .. import __version__
from ._points import read_secret
from ._spec import Spec, SpecError, load_spec

__all__ = ["build_autograder"]

SECRET_FILE = "gradwidget-secret.txt"

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
set -eu
cd /autograder/source
python3 -m pip install --upgrade pip
if ls gradwidget-*.whl >/dev/null 2>&1; then
    python3 -m pip install ./gradwidget-*.whl
else
    python3 -m pip install "gradwidget=={version}"
fi
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission. A results.json goes in first, so that a grader that
# stops early still leaves one; the grade replaces it.
set -u
root=${{GRADWIDGET_AUTOGRADER_ROOT:-/autograder}}
mkdir -p "$root/results"
cat > "$root/results/results.json" <<'JSON'
{{"score": 0, "tests": [],
 "output": "The autograder stopped before it could grade this submission: your instructor will look at it."}}
JSON
{secret}
id=$(python3 - "$root/submission_metadata.json" <<'PY' 2>/dev/null || echo submission
import json, sys
metadata = json.load(open(sys.argv[1]))
print("-".join(str(user.get("id", "")) for user in metadata.get("users", [])) or metadata.get("id", "submission"))
PY
)
out=$(mktemp -d)
python3 -m gradwidget grade "$root/source/{spec}" "$root/submission" --id "$id" --out "$out" --no-progress
for results in "$out"/*/results.json; do cp "$results" "$root/results/results.json"; done
"""


def build_autograder(spec_path: str | Path, output: str | Path) -> Path:
    """Write Gradescope's autograder zip for the spec; returns its path."""
    spec = load_spec(spec_path)
    secret = read_secret(spec)
    output = Path(output)
    kind, _, where = spec.secret.partition(":")
    with tempfile.TemporaryDirectory() as scratch, zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in _course_files(spec):
            archive.write(file, file.relative_to(spec.folder).as_posix())
        if kind == "env":
            archive.writestr(SECRET_FILE, secret.decode())
            export = f'export {where}="$(cat "$root/source/{SECRET_FILE}")"'
        else:
            archive.writestr(where, secret.decode())
            export = ""
        _script(archive, "setup.sh", SETUP.format(version=__version__))
        _script(archive, "run_autograder", RUN.format(secret=export, spec=shlex.quote(spec.path.name)))
        wheel = _wheel(Path(scratch))
        if wheel is not None:
            archive.write(wheel, wheel.name)
    return output


def _course_files(spec: Spec) -> list[Path]:
    """The spec and what it names (reference, data, answers), all inside the spec's folder."""
    files = [spec.path, *(spec.folder / relative for relative in spec.data_files)]
    files += [f for f in (spec.reference_file, spec.answers_file) if f is not None]
    for file in files:
        if spec.folder not in file.resolve().parents:
            raise SpecError(f"{spec.path.name}: {file} is outside the spec's folder; the autograder takes the "
                            "spec's folder only: move it in")
    return files


def _script(archive: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o755 << 16  # executable when unpacked
    archive.writestr(info, text)


def _wheel(folder: Path) -> Path | None:
    """A wheel of this gradwidget, built from its source tree when it runs from one (else None)."""
    source = Path(__file__).resolve().parents[2]
    if not (source / "pyproject.toml").is_file():
        return None
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(folder), str(source)], check=True, capture_output=True)
    return next(folder.glob("gradwidget-*.whl"))
