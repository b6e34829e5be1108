#!/usr/bin/env bash
# Build the documentation site into build/docs/html: Sphinx with myst-nb, the tutorials executed, warnings as
# errors, nothing loaded from a CDN. The reference pages (options, spec keys, diagnoses) are generated from
# gradwidget's own declarations into a staging folder beside the pages of docs/.
set -eu
cd "$(dirname "$0")/.."
[ -n "${PY:-}" ] || . scripts/venv.sh test,torch,jax
stage=build/docs/source
rm -rf "$stage" build/docs/html
mkdir -p "$stage"
cp docs/*.md docs/conf.py "$stage/"
cp notebooks/tutorial-*.ipynb "$stage/"
mkdir "$stage/assignment"
cp -r notebooks/assignment/data notebooks/assignment/assignment.toml notebooks/assignment/reference.py \
    notebooks/assignment/secret.txt notebooks/assignment/instructor.ipynb "$stage/assignment/"
cp notebooks/assignment/student.ipynb notebooks/assignment/solution.ipynb "$stage/assignment/"
mkdir "$stage/layers-assignment"
cp notebooks/layers-assignment/assignment.toml notebooks/layers-assignment/reference.py \
    notebooks/layers-assignment/secret.txt notebooks/layers-assignment/instructor.ipynb \
    notebooks/layers-assignment/student.ipynb notebooks/layers-assignment/solution.ipynb "$stage/layers-assignment/"
"$PY" docs/generate.py "$stage"
"$PY" -m sphinx -W --keep-going -q -b html "$stage" build/docs/html
echo "documentation: build/docs/html/index.html"
