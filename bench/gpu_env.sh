# shellcheck shell=bash
# Sourced by bench/gpu_check.sh and bench/gpu_hf_check.sh on the lent GPU machine (repo root):
# puts /tmp/site and the repo on PYTHONPATH and installs .gpu_carry/wheels (bench/make_gpu_carry.sh:
# espnet and the dependencies the GPU image lacks) into /tmp/site unless espnet is importable
# from there already (a warm machine keeps an earlier call's install).
export PYTHONPATH="/tmp/site:${PWD}${PYTHONPATH:+:${PYTHONPATH}}" PYTHONUNBUFFERED=1
if ! python3 -c "import espnet2" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu_carry/wheels/*.whl \
        || { echo "cannot install .gpu_carry/wheels (run bench/make_gpu_carry.sh with PYVER=<GPU python>)"; exit 1; }
fi
