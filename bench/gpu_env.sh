# shellcheck shell=bash
# Sourced by bench/gpu_check.sh, bench/gpu_hf_check.sh and bench/gpu_train.sh on a GPU host
# (repository root): puts /tmp/site and the checkout on PYTHONPATH and installs .gpu_carry/wheels
# (bench/make_gpu_carry.sh: espnet and the dependencies the host's Python lacks) into /tmp/site
# without a package index, unless espnet is importable from there already (a host that ran one
# of these scripts before keeps the install).
export PYTHONPATH="/tmp/site:${PWD}${PYTHONPATH:+:${PYTHONPATH}}" PYTHONUNBUFFERED=1
if ! python3 -c "import espnet2" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu_carry/wheels/*.whl \
        || { echo "cannot install .gpu_carry/wheels (run bench/make_gpu_carry.sh with PYVER=<the GPU host's Python version>)"; exit 1; }
fi

# The recipe's path.sh activates tools/venv: on a GPU host without one, a stand-in that runs the
# host's python3; an existing tools/venv is left alone.
recipe_venv_standin() {
    [ -x tools/venv/bin/python ] && return 0
    local py; py=$(command -v python3); mkdir -p tools/venv/bin
    printf '#!/bin/bash\nexec %s "$@"\n' "${py}" > tools/venv/bin/python; chmod +x tools/venv/bin/python
    ln -sf python tools/venv/bin/python3
    echo "export PATH=${PWD}/tools/venv/bin:\${PATH}" > tools/venv/bin/activate
}

# The text and audio accuracies (train, then valid) of the last epoch in an ESPnet train.log.
last_epoch_accuracies() {
    grep "epoch results" "$1" | tail -1 | grep -o "acc_text=[0-9.e+-]*\|acc_audio=[0-9.e+-]*\|\[valid\]" | paste -sd' '
}
