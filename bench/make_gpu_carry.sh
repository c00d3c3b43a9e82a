#!/usr/bin/env bash
# Prepare .gpu_carry/ for bench/gpu_check.sh and bench/gpu_hf_check.sh: the lent GPU image has
# torch, numpy, scipy, sentencepiece, transformers, ... but no espnet and reaches no package
# index, so the wheels of espnet and of its import-time dependencies that the image lacks travel
# in .gpu_carry/wheels (~10 MB; installed there with --no-deps).  PYVER is the GPU image's Python
# (3.12 there in 2026-11).  Run here, then pass carry=[".gpu_carry", ...] to the device tool.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu_carry
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "${p}")
done
tools/venv/bin/pip download -q --no-deps --only-binary=:all: --python-version "${PYVER:-3.12}" --implementation cp \
    "${platforms[@]}" --dest .gpu_carry/wheels \
    espnet==202511 espnet-g2p-en==2.1.0.post1 espnet-tts-frontend==0.0.4 unidecode==1.4.0 cffi==2.1.1 pycparser==3.12 \
    defusedxml==0.7.1 humanfriendly==10.0 inflect==7.6.0 jaconv==0.5.0 jamo==0.4.1 jaraco.functools==4.6.0 \
    more-itertools==11.2.1 kaldiio==2.18.1 librosa==0.11.0 nltk==3.10.4 soundfile==0.14.0 soxr==1.1.0 \
    torch-complex==0.4.4 typeguard==4.6.1 configargparse==1.9.0 audioread==3.1.0 decorator==5.3.1 \
    platformdirs==4.14.8 pooch==1.9.0
du -sh .gpu_carry
