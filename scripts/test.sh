#!/usr/bin/env bash
# Set up everything the tests need and run every test.
set -eu
cd "$(dirname "$0")/.."
. scripts/venv.sh test,torch,jax  # the front ends for PyTorch and JAX are tested with them
# The browser tests drive Debian's Chromium (never a downloaded one); the JS tests run on node.
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v node >/dev/null || missing="$missing nodejs"
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq $missing >/dev/null
fi
"$PY" -m ruff check .
"$PY" -m mypy
node --test js/
bash scripts/docs.sh
"$PY" -m pytest "$@"
