#!/usr/bin/env bash
# The trainer's GPU check in one call (well under 10 minutes on one GPU): paper preset with AMP + channels_last at
# 112 px, resume of a CPU run on CUDA, torchrun --nproc_per_node 1 on NCCL -> benchmarks/results/gpu_check.json.
#   benchmarks/gpu_check.sh [--steps 200] [--ss-unlabeled 64]   # on a CUDA machine, with the project installed
#   benchmarks/gpu_check.sh --cpu                               # the same phases, tiny, on CPU
# Each phase writes its record as it ends, so the outer timeout (570 s) still leaves what finished.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" timeout "${GPU_CHECK_TIMEOUT:-570}" \
    "$PYTHON" benchmarks/gpu_check.py "$@"
