#!/usr/bin/env bash
# A second recipe that reuses stages 10-12 of egs/ttt_bilingual (decoding, independent ASR,
# scoring) on a TtT model trained elsewhere; it writes only into its own exp/:
#   ./run.sh --ttt_exp /other/exp/ttt_x --speech_tokenizer_dir /other/exp/speech_tokenizer \
#            --dumpdir /other/dump [--asr_model_file F --asr_train_config C] [--test_sets "test"]
# --dumpdir is only read: eval/<test>/ (ttt.sh stage 6) and raw/<test>/ (stage 2).
set -euo pipefail
cd "$(dirname "$0")"
../../tools/setup_env.sh
../ttt_bilingual/ttt.sh --stage 10 --stop_stage 12 --expdir exp --decode_dir exp/decode_reused \
    --inference_config ../ttt_bilingual/conf/decode_ttt.yaml --asr_config ../ttt_bilingual/conf/asr_train.yaml \
    --asr_inference_config ../ttt_bilingual/conf/asr_decode.yaml "$@"
