#!/usr/bin/env bash
# Recipe stage 8 (egs/ttt_bilingual) on a GPU host for several training configs at once (parallel
# processes sharing the GPU), each experiment directory packed into ${OUT}/<tag>.tgz (OUT: the
# output directory, default /tmp/gpu_train), to be decoded and scored on another machine with
# stages 10-12 (--ttt_exp).  Not a test, not in CI.  Copy the same files to the host as for
# bench/gpu_check.sh: .gpu_carry/ and the outputs of a local run of stages 1-7.
# NGPU=0 runs it on the CPU (a smoke test of the script).
#   TTT_ARGS="--max_epoch 20 --batch_bins 16000" TRAIN_TIMEOUT=480 \
#       bash bench/gpu_train.sh gpu_ttt=conf/train_ttt.yaml gpu_ar=conf/train_ttt_ar_baseline.yaml
set -uo pipefail
out=${OUT:-/tmp/gpu_train}; mkdir -p "${out}"
# shellcheck disable=SC1091
. bench/gpu_env.sh
recipe_venv_standin
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
cd egs/ttt_bilingual || exit 1
pids=(); tags=()
for run in "$@"; do
    tag=${run%%=*}; config=${run#*=}; tags+=("${tag}")
    echo "== stage 8 --ngpu ${NGPU:-1}: ${tag} (${config}) ${TTT_ARGS:-}"
    timeout "${TRAIN_TIMEOUT:-480}" ./ttt.sh --stage 8 --stop_stage 8 --ngpu "${NGPU:-1}" --ttt_tag "${tag}" --ttt_config "${config}" \
        --ttt_args "${TTT_ARGS:-}" > "${out}/${tag}.stage8.log" 2>&1 &
    pids+=($!)
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}"; rc=$?; tag=${tags[$i]}
    log="exp/ttt_${tag}/train.log"
    echo "== ${tag}: rc=${rc}, $(grep -c 'epoch results' "${log}") epochs, $(grep 'epoch results' "${log}" | tail -1 | grep -o 'total_count=[0-9]*' | head -1 | cut -d= -f2) updates"
    last_epoch_accuracies "${log}"
    tar czhf "${out}/${tag}.tgz" "exp/ttt_${tag}"/{config.yaml,train.log,valid.acc.ave.pth}  # what stages 10-12 read
done
ls -la "${out}"
