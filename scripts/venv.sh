# Source me: makes .venv (once) and installs gradwidget with the given extras.
# Usage: . scripts/venv.sh [extras]   e.g.  . scripts/venv.sh test
set -eu
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
spec="$root"
[ -n "${1:-}" ] && spec="$root[$1]"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec"
PY="$venv/bin/python"
