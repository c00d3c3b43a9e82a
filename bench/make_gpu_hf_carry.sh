#!/usr/bin/env bash
# Prepare .gpu_carry/ for bench/gpu_hf_check.sh: bench/make_gpu_carry.sh's espnet2 modules plus the
# wheels of transformers==5.24.0 and its dependencies (the lent GPU image has torch but no
# transformers, and reaches no package index).  PYVER is the GPU image's Python (default 3.11).
# Run here, then pass carry=[".gpu_carry"] to the device tool.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/make_gpu_carry.sh
tools/venv/bin/pip download -q --only-binary=:all: --platform manylinux2014_x86_64 \
    --python-version "${PYVER:-3.11}" --dest .gpu_carry/wheels "transformers==5.24.0"
rm -f .gpu_carry/wheels/numpy-*.whl   # torch's image brings numpy
du -sh .gpu_carry
