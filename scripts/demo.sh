#!/usr/bin/env bash
# Set up gradwidget and check the gradient-checking article's network:
# once with correct backpropagation, once with a typical bug.
set -eu
. "$(dirname "$0")/venv.sh"
"$PY" -m gradwidget.demo "$@"
