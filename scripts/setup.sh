#!/usr/bin/env bash
# Set up a virtual environment in .venv with the project installed, and build
# Anny's model cache once (1-2 minutes the first time, instant afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The pinned CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/python -m body.build_cache
