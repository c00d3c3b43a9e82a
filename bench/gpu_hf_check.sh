#!/usr/bin/env bash
# GPU check of the pretrained (hf_causal_lm) backbone, run from the repository root on a GPU host
# whose checkout is a copy of this one, with .gpu_carry/ from bench/make_gpu_carry.sh (not a test;
# not run in CI):
#   bf16 training steps of a tiny random Qwen2 (autocast, then bf16 weights) on CUDA, and CUDA
#   decoding with the DynamicCache-backed exact cache vs the full recompute (CFG off and on).
set -uo pipefail
export PYTHONPATH="$PWD/tests" OMP_NUM_THREADS=2
# shellcheck disable=SC1091
. bench/gpu_env.sh
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name())"
echo "== tiny Qwen2: bf16 training steps and cached decoding on CUDA"
timeout 300 python3 bench/hf_gpu_check.py --device cuda --steps 30
