#!/usr/bin/env bash
# Stage 1 of ttt.sh: make the Kaldi data dirs <output_dir>/{train,dev,test} (wav.scp, text,
# utt2spk, spk2utt, utt2lang, dialogues.jsonl) of the chosen corpus. Run from the recipe dir.
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (data.sh) $*" >&2; }

corpus=embedded                 # embedded | librispeech | aishell | librispeech_aishell
size=default                    # embedded corpus only: default | tiny
output_dir=data
nj=2                            # embedded corpus only: parallel synthesis processes
seed=0                          # embedded corpus only
librispeech_train=train-clean-100   # LibriSpeech subsets (space-separated lists allowed)
librispeech_dev=dev-clean
librispeech_test=test-clean

help_message=$(cat <<EOF
Usage: $0 [options]
  --corpus embedded|librispeech|aishell|librispeech_aishell   (default: ${corpus})
  --size default|tiny --nj N --seed S      embedded corpus (generated into <output_dir>/corpus)
  --output_dir DIR                         where train/, dev/, test/ are written (default: ${output_dir})
  --librispeech_train|_dev|_test SUBSETS   LibriSpeech subsets (default: ${librispeech_train} / ${librispeech_dev} / ${librispeech_test})
Real corpora are found through LIBRISPEECH and AISHELL (db.sh or the environment).
Each data dir is built in a temporary dir, validated and then moved into place; a run
with the same options as the last one does nothing (stamp: <output_dir>/<set>/.stamp).
EOF
)
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "${help_message}" >&2; log "Error: unexpected arguments: $*"; exit 2; }
. ./path.sh
. ./db.sh

sets="train dev test"

require_dir() {  # require_dir VAR WHAT: the db.sh variable VAR must name an existing directory
    [ -n "${!1}" ] || { log "Error: $1 is empty: set it in db.sh (or the environment) to the directory holding $2"; exit 1; }
    [ -d "${!1}" ] || { log "Error: $1=${!1} is not a directory (it should hold $2)"; exit 1; }
}

prepare() {  # prepare CORPUS SET DIR: write the data dir of SET into the new directory DIR
    case "$1" in
        embedded)
            mkdir -p "$3"
            for f in wav.scp text utt2spk spk2utt utt2lang dialogues.jsonl; do
                cp "${output_dir}/corpus/$2/${f}" "$3/${f}"
            done ;;
        librispeech)
            local subsets="librispeech_$2"
            # shellcheck disable=SC2086
            python local/prepare_librispeech.py --root "${LIBRISPEECH}" --subsets ${!subsets} --output_dir "$3" ;;
        aishell)
            python local/prepare_aishell.py --root "${AISHELL}" --split "$2" --output_dir "$3" ;;
        librispeech_aishell)
            prepare librispeech "$2" "$3.en"
            prepare aishell "$2" "$3.zh"
            utils/combine_data.sh --skip-fix true "$3" "$3.en" "$3.zh" >&2
            # Every line starts with {"id": "<id>", and '"' sorts before any id character,
            # so sorting whole lines sorts by id.
            LC_ALL=C sort "$3.en/dialogues.jsonl" "$3.zh/dialogues.jsonl" > "$3/dialogues.jsonl"
            rm -rf "$3.en" "$3.zh" ;;
    esac
}

case "${corpus}" in
    embedded)
        if [ ! -f "${output_dir}/corpus/corpus.json" ]; then
            for tool in festival espeak-ng sox; do
                command -v "${tool}" > /dev/null || { log "Error: ${tool} is not installed; run local/install_tts.sh (or ${MAIN_ROOT}/tools/setup_env.sh)"; exit 1; }
            done
        fi
        python local/make_corpus.py --output_dir "${output_dir}/corpus" --seed "${seed}" --size "${size}" --nj "${nj}"
        stamp="embedded $(cksum < "${output_dir}/corpus/corpus.json")" ;;
    librispeech)
        require_dir LIBRISPEECH "LibriSpeech/<subset>/"
        stamp="librispeech $(cd "${LIBRISPEECH}" && pwd) ${librispeech_train} / ${librispeech_dev} / ${librispeech_test}" ;;
    aishell)
        require_dir AISHELL "data_aishell/{wav,transcript}"
        stamp="aishell $(cd "${AISHELL}" && pwd)" ;;
    librispeech_aishell)
        require_dir LIBRISPEECH "LibriSpeech/<subset>/"
        require_dir AISHELL "data_aishell/{wav,transcript}"
        stamp="librispeech_aishell $(cd "${LIBRISPEECH}" && pwd) ${librispeech_train} / ${librispeech_dev} / ${librispeech_test} $(cd "${AISHELL}" && pwd)" ;;
    *)
        echo "${help_message}" >&2; log "Error: unknown --corpus ${corpus}"; exit 2 ;;
esac

up_to_date=true
for x in ${sets}; do
    [ "$(cat "${output_dir}/${x}/.stamp" 2>/dev/null)" = "${stamp}" ] || up_to_date=false
done
if "${up_to_date}"; then
    log "${output_dir}/{${sets// /,}} are up to date (${stamp}); skipping"
    exit 0
fi

mkdir -p "${output_dir}"
work=$(mktemp -d "${output_dir}/.data_sh.XXXXXX")
trap 'rm -rf "${work}"' EXIT
for x in ${sets}; do
    log "preparing ${x} (${corpus})"
    prepare "${corpus}" "${x}" "${work}/${x}"
    utils/validate_data_dir.sh --no-feats "${work}/${x}" >&2
    echo "${stamp}" > "${work}/${x}/.stamp"
done
for x in ${sets}; do  # publish only once every set is valid
    rm -rf "${output_dir:?}/${x}"
    mv "${work}/${x}" "${output_dir}/${x}"
    log "${output_dir}/${x}: $(wc -l < "${output_dir}/${x}/utt2spk") utterances"
done
