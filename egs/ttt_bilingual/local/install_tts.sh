#!/usr/bin/env bash
# Install the offline TTS tools used by make_corpus.py (festival + voices, espeak-ng, sox).
# Idempotent: only missing Debian packages are installed; exits non-zero with a clear
# message when apt-get cannot be used (not root and no sudo, or no apt-get at all).
set -euo pipefail

packages=(festival festvox-us-slt-hts festvox-kallpc16k espeak-ng sox)

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (install_tts.sh) $*" >&2; }

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("${pkg}")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    log "all TTS packages already installed: ${packages[*]}"
    exit 0
fi
log "missing packages: ${missing[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
    log "ERROR: apt-get not found; install manually: ${missing[*]}"
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo_cmd=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo_cmd=(sudo -n)
else
    log "ERROR: need root or password-less sudo to run apt-get; ask an admin to install: ${missing[*]}"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Wait (up to 10 min) for another apt/dpkg run to release its lock instead of failing.
apt_opts=(-o DPkg::Lock::Timeout=600)
"${sudo_cmd[@]}" apt-get "${apt_opts[@]}" update
"${sudo_cmd[@]}" apt-get "${apt_opts[@]}" install -y "${missing[@]}"
log "installed: ${missing[*]}"
