#!/usr/bin/env bash
# Train a small character ASR (English + Mandarin) with ESPnet's own asr task, to
# transcribe generated speech in stage 11 independently of the TtT model.
set -euo pipefail

log() {
  echo "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[0]##*/}:${BASH_LINENO[0]}) $*" >&2
}

train_dir=       # Kaldi data dir with wav.scp and text (original audio)
valid_dir=       # Kaldi data dir used for validation
exp_dir=         # output: token list, stats, model
asr_config=conf/asr_train.yaml
nj=2             # parallel collect-stats jobs
nthreads=2       # torch threads of the training process
asr_args=        # extra options of espnet2.bin.asr_train, e.g. "--max_epoch 4"
python=python3

help_message=$(cat <<EOF
Usage: $0 --train_dir DIR --valid_dir DIR --exp_dir DIR [options]
Trains an ESPnet char-CTC ASR on DIR/wav.scp + DIR/text (CPU, --ngpu 0).
Options:
  --asr_config FILE  training YAML (default: ${asr_config})
  --nj N             parallel collect-stats jobs (default: ${nj})
  --nthreads N       torch threads for training (default: ${nthreads})
  --asr_args "ARGS"  extra espnet2.bin.asr_train options (override the YAML)
  --python CMD       python interpreter (default: ${python})
Outputs in EXP_DIR: tokens.txt, stats/, config.yaml and the final model
valid.loss.ave.pth (its presence makes a rerun skip everything); logs in EXP_DIR/*.log.
EOF
)

[ -f ./path.sh ] && . ./path.sh
utils=$(cd "$(dirname "$(readlink -f "$0")")/../utils" && pwd)  # also when called from another recipe
. "${utils}/parse_options.sh"

if [ $# -ne 0 ] || [ -z "${train_dir}" ] || [ -z "${valid_dir}" ] || [ -z "${exp_dir}" ]; then
  printf '%s\n' "${help_message}" >&2
  exit 1
fi
for f in "${train_dir}/wav.scp" "${train_dir}/text" "${valid_dir}/wav.scp" \
    "${valid_dir}/text" "${asr_config}"; do
  [ -f "${f}" ] || { log "Error: missing ${f}"; exit 1; }
done

model_file=${exp_dir}/valid.loss.ave.pth
if [ -e "${model_file}" ]; then
  log "ASR model ${model_file} exists; skipping training"
  exit 0
fi

export NLTK_DATA=${NLTK_DATA:-$(cd "$(dirname "$0")/../../.." && pwd)/tools/nltk_data}
export OMP_NUM_THREADS=1  # collect-stats jobs; training gets --nthreads
mkdir -p "${exp_dir}"

# Runs "$@" with stdout+stderr into LOG; on failure names the log and shows its tail.
run_logged() {
  local logfile=$1
  shift
  if ! "$@" >"${logfile}" 2>&1; then
    log "Error: '$*' failed; see ${logfile}:"
    tail -n 20 "${logfile}" >&2
    exit 1
  fi
}

token_list=${exp_dir}/tokens.txt
if [ ! -s "${token_list}" ]; then
  log "Writing the char token list ${token_list}"
  run_logged "${exp_dir}/tokenize.log" "${python}" -m espnet2.bin.tokenize_text \
    --token_type char --input "${train_dir}/text" --output "${token_list}.tmp" \
    --field 2- --write_vocabulary true \
    --add_symbol "<blank>:0" --add_symbol "<unk>:1" --add_symbol "<sos/eos>:-1"
  mv "${token_list}.tmp" "${token_list}"
fi

data_opts=(
  --token_type char --token_list "${token_list}" --ngpu 0
  --train_data_path_and_name_and_type "${train_dir}/wav.scp,speech,sound"
  --train_data_path_and_name_and_type "${train_dir}/text,text,text"
  --valid_data_path_and_name_and_type "${valid_dir}/wav.scp,speech,sound"
  --valid_data_path_and_name_and_type "${valid_dir}/text,text,text"
)

stats_dir=${exp_dir}/stats
if [ ! -s "${stats_dir}/train/feats_stats.npz" ]; then
  log "Collecting feature statistics with ${nj} jobs into ${stats_dir}"
  n_valid=$(wc -l <"${valid_dir}/wav.scp")
  [ "${nj}" -gt "${n_valid}" ] && nj=${n_valid}
  split_dir=${stats_dir}/split${nj}
  mkdir -p "${split_dir}"
  train_keys=() valid_keys=() job_dirs=()
  for n in $(seq "${nj}"); do
    train_keys+=("${split_dir}/train.${n}.scp")
    valid_keys+=("${split_dir}/valid.${n}.scp")
    job_dirs+=(--input_dir "${split_dir}/stats.${n}")
  done
  "${utils}/split_scp.pl" "${train_dir}/wav.scp" "${train_keys[@]}"
  "${utils}/split_scp.pl" "${valid_dir}/wav.scp" "${valid_keys[@]}"
  if ! "${utils}/run.pl" JOB=1:"${nj}" "${split_dir}/collect_stats.JOB.log" \
      "${python}" -m espnet2.bin.asr_train --config "${asr_config}" \
      "${data_opts[@]}" --collect_stats true --use_preprocessor true \
      --train_shape_file "${split_dir}/train.JOB.scp" \
      --valid_shape_file "${split_dir}/valid.JOB.scp" \
      --output_dir "${split_dir}/stats.JOB"; then
    log "Error: collecting statistics failed; see ${split_dir}/collect_stats.*.log"
    exit 1
  fi
  run_logged "${exp_dir}/aggregate_stats.log" "${python}" -m espnet2.bin.aggregate_stats_dirs \
    "${job_dirs[@]}" --output_dir "${stats_dir}"
fi

log "Training the ASR into ${exp_dir} (log: ${exp_dir}/train.log)"
start=${SECONDS}
# shellcheck disable=SC2086  # asr_args is split into options on purpose
run_logged "${exp_dir}/train.log" env OMP_NUM_THREADS="${nthreads}" \
  "${python}" -m espnet2.bin.asr_train --config "${asr_config}" "${data_opts[@]}" \
  --normalize global_mvn --normalize_conf "stats_file=${stats_dir}/train/feats_stats.npz" \
  --train_shape_file "${stats_dir}/train/speech_shape" \
  --valid_shape_file "${stats_dir}/valid/speech_shape" \
  --fold_length 80000 --resume true --use_tensorboard false --use_matplotlib false \
  --output_dir "${exp_dir}" ${asr_args}
if [ ! -e "${model_file}" ]; then
  log "Error: training ended without ${model_file}; see ${exp_dir}/train.log"
  exit 1
fi
log "Trained ${model_file} in $((SECONDS - start)) s"
