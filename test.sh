#!/usr/bin/env bash
# Run the test suite (installs the environment into tools/venv first, idempotently).
# Extra arguments go to pytest, e.g. ./test.sh -k mask -x
set -euo pipefail
cd "$(dirname "$0")"
tools/setup_env.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec tools/venv/bin/python -m pytest -q -p no:cacheprovider tests "$@"
