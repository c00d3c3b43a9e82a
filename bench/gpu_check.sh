#!/usr/bin/env bash
# Prepared device check (run on the lent GPU machine from the repo root; not a test).
# The GPU image has torch but no espnet: the few pure-python espnet2 modules the model needs
# travel in .gpu_carry (made by bench/make_gpu_carry.sh); the ESPnet trainer cannot run there.
set -uo pipefail
export PYTHONPATH="$PWD/.gpu_carry:$PWD" OMP_NUM_THREADS=2
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
echo "== train step, CUDA fp32 and bf16 (batch 8 x 1024, d512 x 8)"
timeout 60 python3 bench/train_step.py --device cuda --batch 8 --length 1024 --d_model 512 --n_layer 8 --n_head 8 --steps 10 --warmup 3 | tail -2
timeout 60 python3 bench/train_step.py --device cuda --batch 8 --length 1024 --d_model 512 --n_layer 8 --n_head 8 --steps 10 --warmup 3 --bf16 | tail -2
echo "== decoder tests (CUDA cases included)"
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_decoder.py 2>&1 | tail -2
echo "== decode bench, CPU 2 threads (d256 x 4)"
timeout 150 python3 bench/decode.py --repeats 3 2>&1 | tail -40
