#!/usr/bin/env bash
# TtT recipe template (ESPnet egs2 style): data -> speech tokens -> training -> diffusion
# decoding -> independent ASR -> scoring -> packing.  Every path is an option, so another
# recipe can call any stage with its own directories:
#     ../ttt_bilingual/ttt.sh --stage 10 --stop_stage 12 --ttt_exp /path/to/exp ...
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
min() { local a=$1 b=$2; [ "$a" -lt "$b" ] && echo "$a" || echo "$b"; }
SECONDS=0
recipe_dir=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)

# General
stage=1                 # first stage to run
stop_stage=13           # last stage to run
skip_stages=            # space-separated stages to skip, e.g. "3 9"
skip_data_prep=false    # skip stages 1-6
skip_train=false        # skip stages 7-9
skip_eval=false         # skip stages 10-12
skip_packing=false      # skip stage 13 (packing)
skip_upload_hf=true     # do not push to the Hugging Face hub in stage 13
ngpu=0                  # GPUs for training (0: CPU)
num_nodes=1             # nodes for training
nj=2                    # parallel CPU jobs (data, tokenization, transcription)
train_nthreads=2        # torch threads of a CPU training process (stage 8 with --ngpu 0, the stage-11 ASR)
inference_nj=2          # parallel decoding jobs
gpu_inference=false     # decode on GPU
python=python3
seed=0

# Directories (all overridable)
datadir=data            # stage 1 output: Kaldi data dirs
dumpdir=dump            # formatted audio, codes, sequences
expdir=exp              # models and results
train_set=train
valid_set=dev
test_sets="test"

# Stage 1: data preparation
corpus=embedded         # embedded | librispeech | aishell | librispeech_aishell
corpus_size=default     # embedded corpus size: default | tiny
local_data_opts=""

# Stage 2: audio formatting
fs=16000
min_wav_duration=0.1    # seconds
max_wav_duration=20     # seconds

# Stages 3, 4, 9: speech tokenizer / detokenizer
speech_tokenizer_dir=""                 # given: stages 3 and 9 are skipped
speech_tokenizer_config=conf/speech_tokenizer.yaml
speech_tokenizer_max_utterances=2000
train_detokenizer=true                  # false: keep centroid lookup + Griffin-Lim

# Stage 5: text tokenizer and token list
nbpe=1000
bpemode=unigram
bpemodel=""             # given: reused, no SentencePiece training
token_list=""           # given: reused
pretrained_backbone=""  # Hugging Face directory of a decoder-only LLM (e.g. Qwen2.5-1.5B): its tokenizer
                        # replaces SentencePiece (stages 5, 6, 10) and stages 7-8 fine-tune it
                        # (backbone hf_causal_lm, pretrained_ttt_config instead of ttt_config)

# Stage 6: training sequences
tasks=asr,tts,qa
max_seq_len=1024
chunk_len=13
span_len=26
seq_args=""             # extra build_sequences options, e.g. "--text_only_asr true" (ASR answers without
                        # re-spoken audio) or "--asr_prompt ...": stage 6 writes the layout to ${seqdir}/layout.yaml,
                        # stage 8 records it in the model's config.yaml and decoding follows it

# Stages 7, 8: training
ttt_config=conf/train_ttt.yaml
pretrained_ttt_config=conf/train_ttt_pretrained.yaml   # the training config with --pretrained_backbone
ttt_args=""             # extra options for ttt_train
ttt_tag=""
ttt_exp=""              # default: ${expdir}/ttt_${ttt_tag}
ttt_stats_dir=""        # default: ${expdir}/ttt_stats (+ _<pretrained dir name>)
use_deepspeed=false
deepspeed_config=""
resume=true

# Stages 10-12: evaluation
inference_config=conf/decode_ttt.yaml
inference_args=""
inference_tag=""
inference_model=valid.acc.ave.pth
decode_dir=""           # default: ${ttt_exp}/${inference_tag}; RESULTS.md goes to its parent
eval_tasks="asr tts qa"
eval_max_per_task=0     # 0: decode every test dialogue of a task
asr_model_file=""       # independent ESPnet ASR for stage 11 (default: trained in stage 11)
asr_train_config=""
asr_model_tag=""
asr_config=conf/asr_train.yaml
asr_inference_config=conf/asr_decode.yaml   # transcribe options of the ESPnet ASR (beam / best-path CTC)
asr_exp=""              # default: ${expdir}/asr_independent
asr_args=""             # extra espnet2.bin.asr_train options for the stage-11 ASR
use_pocketsphinx=true   # English second opinion in stage 11

# Stage 13: packing and upload
hf_repo=""              # e.g. user/ttt_bilingual; pushing needs it and --skip_upload_hf false
packed_model=""

help_message=$(cat <<EOF
Usage: $0 [options]   (see the variable block at the top of $0 for every option and default)
  --stage / --stop_stage N   stages to run (1-13)   --skip_stages "3 9"
  --ngpu N --num_nodes N --nj N --inference_nj N --gpu_inference true|false --train_nthreads N
  --skip_data_prep --skip_train --skip_eval --skip_packing --skip_upload_hf true|false
  --corpus embedded|librispeech|aishell|librispeech_aishell   --corpus_size default|tiny
  --ttt_config F --ttt_args "..." --ttt_exp DIR --inference_config F --asr_model_file F ...
  --pretrained_backbone DIR   train from a pretrained LLM (its tokenizer, --pretrained_ttt_config F)
EOF
)

utils="${recipe_dir}/utils"
run_args=$(${python} "${utils}/print_args.py" "$0" "$@")
. "${utils}/parse_options.sh"
[ $# -eq 0 ] || { log "${help_message}"; log "Error: unexpected arguments: $*"; exit 2; }
. ./path.sh
. ./cmd.sh
export PATH="${utils}:${PATH}"   # run.pl and friends, also when called from another recipe
python=python   # the venv's, activated by path.sh

# Skips and derived names
[ "${skip_data_prep}" = true ] && skip_stages+=" 1 2 3 4 5 6"
[ "${skip_train}" = true ] && skip_stages+=" 7 8 9"
[ "${skip_eval}" = true ] && skip_stages+=" 10 11 12"
[ "${skip_packing}" = true ] && skip_stages+=" 13"
skip_stages=$(echo "${skip_stages}" | tr ' ' '\n' | sort -nu | tr '\n' ' ')
[ -n "${skip_stages// /}" ] && log "Skipped stages: ${skip_stages}"
run_stage() {  # run_stage N: is stage N selected?
    [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ] && ! [[ " ${skip_stages} " =~ [[:space:]]$1[[:space:]] ]]
}
stage_done() { log "Stage $1 done in $(( SECONDS - stage_start ))s"; echo "$1 $(( SECONDS - stage_start ))" >> "${expdir}/stage_times.txt"; }
stage_begin() { stage_start=${SECONDS}; log "Stage $1: $2"; }
mkdir -p "${expdir}"

[ "${train_set}" != "${valid_set}" ] || { log "Error: train_set and valid_set must differ"; exit 2; }
if [ -n "${pretrained_backbone}" ]; then
    [ -z "${bpemodel}" ] || { log "Error: give --bpemodel or --pretrained_backbone, not both"; exit 2; }
    bpemodel="${pretrained_backbone}"   # the LLM's tokenizer gives the text pieces
    ttt_config="${pretrained_ttt_config}"
    ttt_args="--backbone hf_causal_lm --backbone_conf pretrained=${pretrained_backbone} ${ttt_args}"
    text_tag="_$(basename "${pretrained_backbone}")"   # token list, sequences and shapes depend on the tokenizer
else
    text_tag=""
fi
[ -z "${ttt_tag}" ] && ttt_tag=$(basename "${ttt_config}" .yaml)
[ -z "${ttt_exp}" ] && ttt_exp="${expdir}/ttt_${ttt_tag}"
[ -z "${ttt_stats_dir}" ] && ttt_stats_dir="${expdir}/ttt_stats${text_tag}"
[ -z "${inference_tag}" ] && inference_tag="$(basename "${inference_config}" .yaml)_${inference_model%.pth}"
[ -z "${decode_dir}" ] && decode_dir="${ttt_exp}/${inference_tag}"
results_dir=$(dirname "${decode_dir}")
# the decode options of stages 10 and 13 (packed as the model's decode.yaml): the inference
# config, then --inference_args (the prompts and layout come from the model's config.yaml)
decode_args="${inference_args}"
[ -z "${asr_exp}" ] && asr_exp="${expdir}/asr_independent"
given_tokenizer=false
[ -n "${speech_tokenizer_dir}" ] && given_tokenizer=true
[ -z "${speech_tokenizer_dir}" ] && speech_tokenizer_dir="${expdir}/speech_tokenizer"
[ -z "${bpemodel}" ] && bpemodel="${datadir}/spm/bpe_${bpemode}${nbpe}.model"
[ -z "${token_list}" ] && token_list="${datadir}/token_list${text_tag}/tokens.txt"
seqdir="${dumpdir}/seq${text_tag}"
all_sets="${train_set} ${valid_set} ${test_sets}"
_ngpu_inference=0
[ "${gpu_inference}" = true ] && _ngpu_inference=1

if run_stage 1; then
    stage_begin 1 "Data preparation (${corpus}) -> ${datadir}"
    local/data.sh --corpus "${corpus}" --size "${corpus_size}" --output_dir "${datadir}" \
        --nj "${nj}" --seed "${seed}" ${local_data_opts}
    for x in ${all_sets}; do "${utils}/validate_data_dir.sh" --no-feats "${datadir}/${x}"; done
    stage_done 1
fi

if run_stage 2; then
    stage_begin 2 "Audio formatting (${fs} Hz mono, ${min_wav_duration}-${max_wav_duration} s) -> ${dumpdir}/raw"
    for x in ${all_sets}; do
        ${train_cmd} "${dumpdir}/raw/${x}/logs/format_wav.log" \
            ${python} -m espnet2_ttt.bin.format_wav --data_dir "${datadir}/${x}" --output_dir "${dumpdir}/raw/${x}" \
            --fs "${fs}" --min_duration "${min_wav_duration}" --max_duration "${max_wav_duration}" --nj "${nj}"
    done
    stage_done 2
fi

if run_stage 3 && [ "${given_tokenizer}" = false ]; then
    stage_begin 3 "Speech tokenizer training -> ${speech_tokenizer_dir}"
    ${train_cmd} "${speech_tokenizer_dir}/logs/train_tokenizer.log" \
        ${python} -m espnet2_ttt.bin.speech_tokenizer_train --wav_scp "${dumpdir}/raw/${train_set}/wav.scp" \
        --output_dir "${speech_tokenizer_dir}" --config "${speech_tokenizer_config}" \
        --max_utterances "${speech_tokenizer_max_utterances}" --seed "${seed}"
    stage_done 3
fi

if run_stage 4; then
    stage_begin 4 "Speech tokenization of ${all_sets} (nj=${nj})"
    for x in ${all_sets}; do
        _dir="${dumpdir}/codes/${x}"; _logdir="${_dir}/logs"
        mkdir -p "${_logdir}"
        _nj=$(min "${nj}" "$(wc -l < "${dumpdir}/raw/${x}/wav.scp")")
        _split=""; for n in $(seq "${_nj}"); do _split+=" ${_logdir}/keys.${n}.scp"; done
        # shellcheck disable=SC2086
        "${utils}/split_scp.pl" "${dumpdir}/raw/${x}/wav.scp" ${_split}
        ${train_cmd} JOB=1:"${_nj}" "${_logdir}/tokenize.JOB.log" \
            ${python} -m espnet2_ttt.bin.speech_tokenize --tokenizer_dir "${speech_tokenizer_dir}" \
            --wav_scp "${_logdir}/keys.JOB.scp" --output "${_logdir}/codes.JOB"
        for n in $(seq "${_nj}"); do cat "${_logdir}/codes.${n}"; done | LC_ALL=C sort -k1,1 > "${_dir}/codes.tmp"
        mv "${_dir}/codes.tmp" "${_dir}/codes"
    done
    stage_done 4
fi

if run_stage 5; then
    stage_begin 5 "Text tokenizer (${pretrained_backbone:-SentencePiece ${bpemode} ${nbpe}}) and token list -> ${token_list}"
    if [ -z "${pretrained_backbone}" ] && [ ! -f "${bpemodel}" ]; then
        mkdir -p "$(dirname "${bpemodel}")"
        # the task prompts of the sequence builder are part of the text the pieces must cover
        ${python} -c "from espnet2_ttt.sequence_builder import ASR_PROMPT, TTS_PROMPT; print(ASR_PROMPT); print(TTS_PROMPT)" \
            > "${datadir}/spm/train_text.tmp"
        cut -d' ' -f2- "${dumpdir}/raw/${train_set}/text" >> "${datadir}/spm/train_text.tmp"
        mv "${datadir}/spm/train_text.tmp" "${datadir}/spm/train_text"
        _spm_opts="--spm_train_text ${datadir}/spm/train_text --nbpe ${nbpe} --spm_model_type ${bpemode}"
    else
        _spm_opts=""
    fi
    _codebook=$(${python} -c "from espnet2_ttt.speech import load_speech_tokenizer as l; print(l('${speech_tokenizer_dir}').codebook_size)")
    # shellcheck disable=SC2086
    ${python} -m espnet2_ttt.bin.make_token_list --bpemodel "${bpemodel}" --codebook_size "${_codebook}" \
        --output "${token_list}" --seed "${seed}" ${_spm_opts}
    stage_done 5
fi

if run_stage 6; then
    stage_begin 6 "Interleaved training sequences (${tasks}) -> ${seqdir}"
    for x in ${train_set} ${valid_set}; do
        # shellcheck disable=SC2086
        ${python} -m espnet2_ttt.bin.build_sequences --bpemodel "${bpemodel}" --token_list "${token_list}" \
            --codes "${dumpdir}/codes/${x}/codes" --dialogues "${dumpdir}/raw/${x}/dialogues.jsonl" \
            --tasks "${tasks}" --max_len "${max_seq_len}" --chunk_len "${chunk_len}" --span_len "${span_len}" \
            --output "${seqdir}/${x}/seq" --layout_file "${seqdir}/layout.yaml" ${seq_args}
    done
    for x in ${test_sets}; do
        ${python} -m espnet2_ttt.bin.prepare_eval --dialogues "${dumpdir}/raw/${x}/dialogues.jsonl" \
            --codes "${dumpdir}/codes/${x}/codes" --utt2lang "${dumpdir}/raw/${x}/utt2lang" \
            --output_dir "${dumpdir}/eval/${x}" --tasks "${eval_tasks// /,}" --max_per_task "${eval_max_per_task}"
    done
    stage_done 6
fi

if run_stage 7; then
    stage_begin 7 "Shape files (collect_stats) -> ${ttt_stats_dir}"
    # shellcheck disable=SC2086
    ${train_cmd} "${ttt_stats_dir}/logs/stats.log" \
        ${python} -m espnet2_ttt.bin.ttt_train --collect_stats true --ngpu 0 --config "${ttt_config}" \
        --token_list "${token_list}" --bpemodel "${bpemodel}" --max_seq_len "${max_seq_len}" \
        --train_data_path_and_name_and_type "${seqdir}/${train_set}/seq,seq,text" \
        --valid_data_path_and_name_and_type "${seqdir}/${valid_set}/seq,seq,text" \
        --output_dir "${ttt_stats_dir}" ${ttt_args}
    stage_done 7
fi

if run_stage 8; then
    stage_begin 8 "TtT training (ngpu=${ngpu}, num_nodes=${num_nodes}) -> ${ttt_exp}"
    [ -f "${seqdir}/layout.yaml" ] || { log "Error: ${seqdir}/layout.yaml (the sequences' layout) is missing: run stage 6"; exit 1; }
    mkdir -p "${ttt_exp}"
    _opts=""
    [ "${use_deepspeed}" = true ] && _opts+=" --use_deepspeed true --deepspeed_config ${deepspeed_config}"
    _threads=${OMP_NUM_THREADS}   # path.sh's 1 per process for GPU / data jobs
    [ "${ngpu}" -eq 0 ] && _threads=${train_nthreads}
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=${_threads} ${python} -m espnet2.bin.launch --cmd "${cuda_cmd}" --log "${ttt_exp}/train.log" \
        --ngpu "${ngpu}" --num_nodes "${num_nodes}" --init_file_prefix "${ttt_exp}/.dist_init_" \
        --multiprocessing_distributed true -- \
        ${python} -m espnet2_ttt.bin.ttt_train --config "${ttt_config}" --use_preprocessor true \
        --token_list "${token_list}" --bpemodel "${bpemodel}" --max_seq_len "${max_seq_len}" \
        --speech_tokenizer_dir "${speech_tokenizer_dir}" --sequence_layout "${seqdir}/layout.yaml" \
        --train_data_path_and_name_and_type "${seqdir}/${train_set}/seq,seq,text" \
        --valid_data_path_and_name_and_type "${seqdir}/${valid_set}/seq,seq,text" \
        --train_shape_file "${ttt_stats_dir}/train/seq_shape" --valid_shape_file "${ttt_stats_dir}/valid/seq_shape" \
        --fold_length "${max_seq_len}" --resume "${resume}" --seed "${seed}" \
        --output_dir "${ttt_exp}" ${_opts} ${ttt_args} \
        || { log "Error: training failed, see ${ttt_exp}/train.log"; exit 1; }
    stage_done 8
fi

if run_stage 9 && [ "${given_tokenizer}" = false ] && [ "${train_detokenizer}" = true ]; then
    stage_begin 9 "Detokenizer training (codes -> speech) -> ${speech_tokenizer_dir}"
    ${train_cmd} "${speech_tokenizer_dir}/logs/train_detokenizer.log" \
        ${python} -m espnet2_ttt.bin.speech_tokenizer_train --wav_scp "${dumpdir}/raw/${train_set}/wav.scp" \
        --output_dir "${speech_tokenizer_dir}" --config "${speech_tokenizer_config}" \
        --train_tokenizer false --train_detokenizer true \
        --max_utterances "${speech_tokenizer_max_utterances}" --seed "${seed}"
    stage_done 9
fi

if run_stage 10; then
    stage_begin 10 "Block-wise diffusion decoding of ${test_sets} (${eval_tasks}, nj=${inference_nj})"
    for x in ${test_sets}; do
        for task in ${eval_tasks}; do
            _in="${dumpdir}/eval/${x}/${task}"; _dir="${decode_dir}/${x}_${task}"; _logdir="${_dir}/logs"
            mkdir -p "${_logdir}"
            _nj=$(min "${inference_nj}" "$(wc -l < "${_in}/keys")")
            _split=""; for n in $(seq "${_nj}"); do _split+=" ${_logdir}/keys.${n}.scp"; done
            rm -rf "${_logdir}"/output.* "${_dir}/wav.scp"   # outputs of an earlier run
            # shellcheck disable=SC2086
            "${utils}/split_scp.pl" --interleave "${_in}/keys" ${_split}
            _mode=$(cat "${_in}/mode"); _args=""
            [ -f "${_in}/codes" ] && _args+=" --data_path_and_name_and_type ${_in}/codes,speech_codes,text_int"
            [ -f "${_in}/text" ] && _args+=" --data_path_and_name_and_type ${_in}/text,text,text"
            # asr: the answer's audio re-speaks the input and stage 11 does not transcribe it: no wavs
            [ "${_mode}" = asr ] && _args+=" --write_wav false"
            # shellcheck disable=SC2086
            ${decode_cmd} JOB=1:"${_nj}" "${_logdir}/inference.JOB.log" \
                ${python} -m espnet2_ttt.bin.ttt_inference --ngpu "${_ngpu_inference}" --seed "${seed}" \
                --mode "${_mode}" --config "${inference_config}" ${_args} \
                --key_file "${_logdir}/keys.JOB.scp" --train_config "${ttt_exp}/config.yaml" \
                --model_file "${ttt_exp}/${inference_model}" --speech_tokenizer_dir "${speech_tokenizer_dir}" \
                --output_dir "${_logdir}/output.JOB" ${decode_args} \
                || { log "Error: decoding failed, see ${_logdir}/inference.*.log"; exit 1; }
            ${python} -m espnet2_ttt.bin.merge_outputs --inputs "${_logdir}"/output.* --output_dir "${_dir}" \
                --files prompt text token audio_codes wav.scp
        done
    done
    stage_done 10
fi

if run_stage 11; then
    stage_begin 11 "Independent ASR of the generated speech"
    if [ -z "${asr_model_file}" ] && [ -z "${asr_model_tag}" ]; then
        "${recipe_dir}/local/train_asr.sh" --train_dir "${dumpdir}/raw/${train_set}" --valid_dir "${dumpdir}/raw/${valid_set}" \
            --exp_dir "${asr_exp}" --nj "${nj}" --nthreads "${train_nthreads}" --asr_config "${asr_config}" \
            --asr_args "${asr_args}"
        asr_train_config="${asr_exp}/config.yaml"; asr_model_file="${asr_exp}/valid.loss.ave.pth"
    fi
    _asr_opts="--config ${asr_inference_config} --asr_train_config ${asr_train_config} --asr_model_file ${asr_model_file}"
    [ -n "${asr_model_tag}" ] && _asr_opts="--config ${asr_inference_config} --asr_model_tag ${asr_model_tag}"
    for x in ${test_sets}; do
        # the ASR on the original test audio: its own error rate bounds what the other numbers can show
        _jobs=("${dumpdir}/raw/${x}/wav.scp:${decode_dir}/${x}_original:${dumpdir}/raw/${x}/utt2lang")
        for task in ${eval_tasks}; do
            [ "${task}" = asr ] && continue   # the ASR task is scored on its text; any audio it wrote is not
            _wavs="${decode_dir}/${x}_${task}/wav.scp"
            [ -s "${_wavs}" ] && _jobs+=("${_wavs}:$(dirname "${_wavs}"):${dumpdir}/eval/${x}/${task}/utt2lang")
        done
        for job in "${_jobs[@]}"; do
            IFS=: read -r _wavs _out _langs <<< "${job}"
            _logdir="${_out}/logs"; mkdir -p "${_logdir}"
            for backend in espnet $( [ "${use_pocketsphinx}" = true ] && echo pocketsphinx ); do
                _keys="${_logdir}/keys_${backend}"
                if [ "${backend}" = pocketsphinx ]; then   # English-only recogniser
                    awk '$2 == "en" {print $1}' "${_langs}" > "${_keys}.en"
                    "${utils}/filter_scp.pl" "${_keys}.en" "${_wavs}" > "${_keys}"
                else
                    cp "${_wavs}" "${_keys}"
                fi
                [ -s "${_keys}" ] || continue
                _nj=$(min "${nj}" "$(wc -l < "${_keys}")")
                rm -rf "${_logdir}/${backend}".*   # outputs of an earlier run with another nj
                _split=""; for n in $(seq "${_nj}"); do _split+=" ${_keys}.${n}.scp"; mkdir -p "${_logdir}/${backend}.${n}"; done
                # shellcheck disable=SC2086
                "${utils}/split_scp.pl" --interleave "${_keys}" ${_split}
                # shellcheck disable=SC2046,SC2086
                ${train_cmd} JOB=1:"${_nj}" "${_logdir}/transcribe_${backend}.JOB.log" \
                    ${python} -m espnet2_ttt.bin.transcribe --backend "${backend}" --wav_scp "${_keys}.JOB.scp" \
                    --output "${_logdir}/${backend}.JOB/asr_${backend}" $( [ "${backend}" = espnet ] && echo "${_asr_opts}" ) \
                    || { log "Error: transcription failed, see ${_logdir}/transcribe_${backend}.*.log"; exit 1; }
                ${python} -m espnet2_ttt.bin.merge_outputs --inputs "${_logdir}/${backend}".* \
                    --output_dir "${_out}" --files "asr_${backend}"
            done
        done
    done
    stage_done 11
fi

if run_stage 12; then
    stage_begin 12 "Scoring -> ${results_dir}/RESULTS.md"
    for x in ${test_sets}; do
        ${python} -m espnet2_ttt.bin.score_eval --eval_dir "${dumpdir}/eval/${x}" --test_set "${x}" \
            --decode_dir "${decode_dir}" --raw_dir "${dumpdir}/raw/${x}" --tasks "${eval_tasks}"
    done
    ${python} -m espnet2_ttt.bin.show_results "${results_dir}" > "${results_dir}/RESULTS.md.tmp"
    mv "${results_dir}/RESULTS.md.tmp" "${results_dir}/RESULTS.md"
    cat "${results_dir}/RESULTS.md"
    stage_done 12
fi

if run_stage 13; then
    stage_begin 13 "Packing -> ${packed_model:-${ttt_exp}/ttt_packed.zip}"
    [ -z "${packed_model}" ] && packed_model="${ttt_exp}/ttt_packed.zip"
    _push=""
    [ "${skip_upload_hf}" = false ] && [ -n "${hf_repo}" ] && _push="--hf_repo ${hf_repo}"
    # shellcheck disable=SC2086
    ${python} -m espnet2_ttt.bin.pack --train_config "${ttt_exp}/config.yaml" \
        --model_file "${ttt_exp}/${inference_model}" --speech_tokenizer_dir "${speech_tokenizer_dir}" \
        --bpemodel "${bpemodel}" --results "${results_dir}/RESULTS.md" \
        --inference_config "${inference_config}" --inference_args "${decode_args}" \
        --outpath "${packed_model}" --hf_dir "${ttt_exp}/hf_upload" --run_args "${run_args}" ${_push}
    stage_done 13
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
