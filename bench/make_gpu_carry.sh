#!/usr/bin/env bash
# Prepare .gpu_carry/ for bench/gpu_check.sh: the lent GPU image has torch but no espnet, and
# the TtT model needs only these pure-python espnet2 modules.  Run here, then pass
# carry=[".gpu_carry"] to the device tool.
set -euo pipefail
cd "$(dirname "$0")/.."
site=$(tools/venv/bin/python -c "import espnet2, os; print(os.path.dirname(os.path.dirname(espnet2.__file__)))")
rm -rf .gpu_carry
mkdir -p .gpu_carry/espnet .gpu_carry/espnet2/train .gpu_carry/espnet2/torch_utils
cp "${site}/espnet/__init__.py" "${site}/espnet/version.txt" .gpu_carry/espnet/
cp "${site}/espnet2/__init__.py" .gpu_carry/espnet2/
touch .gpu_carry/espnet2/train/__init__.py .gpu_carry/espnet2/torch_utils/__init__.py
cp "${site}/espnet2/train/abs_espnet_model.py" .gpu_carry/espnet2/train/
cp "${site}/espnet2/torch_utils/device_funcs.py" .gpu_carry/espnet2/torch_utils/
