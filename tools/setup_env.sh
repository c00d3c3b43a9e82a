#!/usr/bin/env bash
# Create or reuse the project's environment (idempotent; a second run takes a second):
#   * tools/venv: python3.11 venv with pip<26 and the pinned known-good set
#     (torch==2.11.0, torchaudio==2.11.0, espnet==202511, transformers==5.24.0) + this package in editable mode;
#   * tools/nltk_data: valid placeholder zips so espnet's g2p_en import does not try the network;
#   * Debian tools for speech and scoring (sox, espeak-ng, festival voices, sctk), apt-installed
#     when missing, with a clear error when that is impossible.
# Re-runs install again only when the pinned set below changes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${root}/tools/venv"
python=${PYTHON:-python3.11}
pip_pins=("pip>=23,<26")
# transformers 5.24.0: the hf_causal_lm backbone (Qwen2); works with huggingface_hub 2.x (from espnet_model_zoo)
packages=("torch==2.11.0" "torchaudio==2.11.0" "espnet==202511" "espnet_model_zoo==0.1.7" "transformers==5.24.0"
          sentencepiece kaldiio humanfriendly typeguard pyyaml pytest pytest-timeout soundfile editdistance pocketsphinx)
apt_packages=(sox espeak-ng festival festlex-cmu festvox-us-slt-hts festvox-kallpc16k sctk)
want="${pip_pins[*]} ${packages[*]}"
stamp="${venv}/.ttt_installed"

log() { echo "[setup_env $(date +%H:%M:%S)] $*" >&2; }

missing_apt=()
for p in "${apt_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing_apt+=("$p")
done
if [ ${#missing_apt[@]} -gt 0 ]; then
    log "apt-get install ${missing_apt[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    if ! { ${sudo} apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq "${missing_apt[@]}" >/dev/null; }; then
        echo "setup_env.sh: cannot apt-get install ${missing_apt[*]} (need root or passwordless sudo and Debian's repositories);" \
             "install them by hand, they are needed for speech generation (sox, espeak-ng, festival) and scoring (sctk)" >&2
        exit 1
    fi
fi

if [ ! -f "${stamp}" ] || [ "$(cat "${stamp}")" != "${want}" ]; then
    command -v "${python}" >/dev/null || { echo "setup_env.sh: ${python} not found; install Python 3.11" >&2; exit 1; }
    [ -x "${venv}/bin/python" ] || { log "creating ${venv}"; "${python}" -m venv "${venv}"; }
    log "installing ${want}"
    "${venv}/bin/pip" install -q "${pip_pins[@]}"
    "${venv}/bin/pip" install -q "${packages[@]}"
    "${venv}/bin/pip" install -q --no-deps -e "${root}"
    echo "${want}" > "${stamp}"
fi

if [ ! -f "${root}/tools/nltk_data/corpora/cmudict.zip" ]; then
    "${venv}/bin/python" - "${root}/tools/nltk_data" <<'EOF'
import os, sys, zipfile
for rel in ("taggers/averaged_perceptron_tagger_eng", "corpora/cmudict"):
    path = os.path.join(sys.argv[1], rel + ".zip")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with zipfile.ZipFile(path + ".tmp", "w") as z:
        z.writestr(os.path.basename(rel) + "/README", "placeholder: espnet2_ttt does not use g2p_en\n")
    os.replace(path + ".tmp", path)
EOF
fi
