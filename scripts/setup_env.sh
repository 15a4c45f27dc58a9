#!/usr/bin/env bash
# Create .venv (if missing) with the right torch build, then install dnahnet with its dev extra.
# On a machine without an NVIDIA GPU this installs the CPU build of torch (never GBs of CUDA wheels).
set -euo pipefail
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV" >&2
    "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip "$@"; }

if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo "setup: NVIDIA GPU found, installing torch==$TORCH_VERSION (CUDA build)" >&2
        pip install -q "torch==$TORCH_VERSION"
    elif pip download -q --no-deps --no-index -d "$(mktemp -d)" "torch==$TORCH_VERSION" >/dev/null 2>&1; then
        # A local CPU wheel is reachable through pip's find-links (as on the project's dev machines).
        echo "setup: installing the local CPU build of torch==$TORCH_VERSION" >&2
        pip install -q "torch==$TORCH_VERSION"
    else
        echo "setup: no GPU, installing the CPU build of torch==$TORCH_VERSION" >&2
        pip install -q "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
    fi
fi
echo "setup: installing dnahnet and its dependencies" >&2
pip install -q -e ".[dev]"
