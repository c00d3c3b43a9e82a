#!/usr/bin/env bash
# Build an offline wheel bundle, .gpu_carry/wheels (~10 MB), for the GPU scripts in bench/ on a GPU
# host without package-index access whose Python has torch, numpy, scipy, sentencepiece,
# transformers, ... but no espnet: the wheels of espnet and of the import-time dependencies such
# a host lacks (bench/gpu_env.sh installs them there with --no-deps).  PYVER is the GPU host's
# Python version (default 3.12).  Run it where the package index is reachable, with the
# project's venv, then copy .gpu_carry/ to the GPU host together with the checkout.
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
