# Source me: makes .venv (once) and installs gradwidget with the given extras.
# Usage: . scripts/venv.sh [extras]   e.g.  . scripts/venv.sh test
set -eu
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian's python3 keeps venv in a package of its own.
        rm -rf "$venv"
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
            python3 -m venv "$venv"
        else
            echo "python3 -m venv failed; install python3-venv (Debian/Ubuntu) and run again" >&2
            exit 1
        fi
    fi
fi
spec="$root"
[ -n "${1:-}" ] && spec="$root[$1]"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec"
PY="$venv/bin/python"
