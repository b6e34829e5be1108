#!/usr/bin/env bash
# Set up everything the tests need and run every test.
set -eu
cd "$(dirname "$0")/.."
. scripts/venv.sh test
"$PY" -m ruff check .
"$PY" -m pytest "$@"
