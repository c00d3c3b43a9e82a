#!/usr/bin/env bash
# TtT on the embedded bilingual corpus (English + Mandarin: ASR, TTS, spoken QA), CPU by default.
#   ./run.sh                                  stages 1-13
#   ./run.sh --stage 10 --stop_stage 12       decode, transcribe, score again
#   ./run.sh --ngpu 4                         train on 4 GPUs (one node)
#   ./run.sh --corpus librispeech_aishell     real corpora (set paths in db.sh)
set -euo pipefail
cd "$(dirname "$0")"
../../tools/setup_env.sh   # tools/venv + speech/scoring tools, idempotent

train_set=train
valid_set=dev
test_sets="test"
ttt_config=conf/train_ttt.yaml
inference_config=conf/decode_ttt.yaml
speech_tokenizer_config=conf/speech_tokenizer.yaml
asr_config=conf/asr_train.yaml

./ttt.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --ttt_config "${ttt_config}" \
    --inference_config "${inference_config}" \
    --speech_tokenizer_config "${speech_tokenizer_config}" \
    --asr_config "${asr_config}" \
    --nbpe 1000 \
    --speech_tokenizer_max_utterances 4000 \
    --eval_max_per_task 100 \
    --asr_args "--max_epoch 4" \
    "$@"
