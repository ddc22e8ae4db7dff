#!/usr/bin/env bash
# The device check of harmonic-nas: run from the repository root on a machine with a CUDA GPU.
#
#   bash benchmarks/gpu_check.sh            # writes benchmarks/results/gpu_check.json
#
# It uses the torch already installed there (a CUDA build) and the project's sources (no install).
# The other Python dependencies are imported from the machine if it has them; a machine without a
# package registry gets them as wheels made beforehand on one with it (`make wheels` writes
# ./wheels: every dependency but torch, for this Python and platform) and carried along:
# this script installs ./wheels with `pip install --no-index --find-links wheels` when something
# is missing. Without a GPU it writes nothing and says "not run on a GPU" (exit code 0).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "error: $PYTHON has no torch; install a CUDA build of torch on this machine first" >&2
    exit 2
fi
if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "not run on a GPU: $("$PYTHON" -c 'import torch; print("torch", torch.__version__)') sees no CUDA device; nothing written"
    exit 0
fi
DEPS="numpy scipy pydantic yaml typer rich optuna onnx onnxruntime matplotlib PIL mlxtend jinja2"
if ! "$PYTHON" -c "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]" $DEPS 2>/dev/null; then
    if [ -d wheels ]; then
        "$PYTHON" -m pip install --quiet --no-index --find-links wheels -r wheels/requirements.txt
    else
        echo "error: Python dependencies are missing and there is no ./wheels folder; run \`make wheels\` on a machine with a package registry and bring ./wheels along" >&2
        exit 2
    fi
fi
exec "$PYTHON" benchmarks/gpu_check.py "$@"
