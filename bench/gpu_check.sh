#!/usr/bin/env bash
# GPU check, run from the repository root on a GPU host whose checkout is a copy of this one
# (not a test, not in CI).  Needs .gpu_carry/ (bench/make_gpu_carry.sh: espnet's wheels, for a
# host without package-index access whose Python lacks espnet).  For the recipe part, also copy
# the outputs of a local run of stages 1-7 of egs/ttt_bilingual to the host (~20 MB):
#   egs/ttt_bilingual/dump  egs/ttt_bilingual/exp/ttt_stats  egs/ttt_bilingual/exp/speech_tokenizer
#   egs/ttt_bilingual/data/token_list  egs/ttt_bilingual/data/spm
# Parts: CUDA decoder tests; stage 8 with --ngpu 1 and stage 10 with --gpu_inference true (the
# decode outputs go to ${OUT}/decode.tgz; OUT is the output directory, default /tmp/gpu_check);
# the training-step and decoding benchmarks on CUDA.
set -uo pipefail
root=$PWD; out=${OUT:-/tmp/gpu_check}; mkdir -p "${out}"
# shellcheck disable=SC1091
. bench/gpu_env.sh
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
echo "== decoder tests (CUDA cases included)"
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_decoder.py 2>&1 | tail -2
if [ -d egs/ttt_bilingual/dump/seq ]; then
    recipe_venv_standin
    cd egs/ttt_bilingual
    echo "== recipe stage 8 with --ngpu 1 (conf/train_ttt.yaml, 2000 updates)"
    timeout 300 ./ttt.sh --stage 8 --stop_stage 8 --ngpu 1 --ttt_tag gpu_check 2>&1 | grep -v nltk | tail -2
    last_epoch_accuracies exp/ttt_gpu_check/train.log
    echo "== recipe stage 10 with --gpu_inference true"
    timeout 150 ./ttt.sh --stage 10 --stop_stage 10 --ttt_tag gpu_check --gpu_inference true --inference_nj 4 2>&1 \
        | grep -v nltk | tail -1
    tar czf "${out}/decode.tgz" exp/ttt_gpu_check/train.log exp/ttt_gpu_check/decode_*/test_*/text \
        exp/ttt_gpu_check/decode_*/test_*/audio_codes exp/stage_times.txt
    cd "${root}"
fi
echo "== train step, CUDA fp32 and bf16 (batch 8 x 1024, d512 x 8)"
timeout 60 python3 bench/train_step.py --device cuda --batch 8 --length 1024 --d_model 512 --n_layer 8 --n_head 8 --steps 10 --warmup 3 | tail -2
timeout 60 python3 bench/train_step.py --device cuda --batch 8 --length 1024 --d_model 512 --n_layer 8 --n_head 8 --steps 10 --warmup 3 --bf16 | tail -2
echo "== decode bench on CUDA (d256 x 4), then d1024 x 16 and d2048 x 28"
timeout 150 python3 bench/decode.py --device cuda --repeats 3 2>&1 | tail -40
timeout 100 python3 bench/decode.py --device cuda --repeats 3 --scaling_only --scaling 1024x16 2048x28 2>&1 | tail -5
