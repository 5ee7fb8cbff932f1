#!/usr/bin/env bash
# The GPU check of issue 12: the paper preset's models at 224 px on one GPU, eager and compiled,
# bf16 autocast (fp16 + gradient scaler without bf16) and channels_last, a K = 8 shared pass;
# per-step throughput and peak memory as one table. At most 5 minutes (then it stops).
# Usage: scripts/gpu_check.sh [--no-compile] [--batch-size 64] [--steps 10]   (CPU test: --device cpu --tiny)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
[ -x .venv/bin/python ] && PY="${PYTHON:-.venv/bin/python}"
exec timeout "${GPU_CHECK_TIMEOUT_S:-300}" env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" scripts/gpu_check.py "$@"
