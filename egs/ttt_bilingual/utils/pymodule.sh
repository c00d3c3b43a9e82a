#!/usr/bin/env bash
# Usage: pymodule.sh MODULE [ARGS...]
# Runs "python3 -m MODULE ARGS..." with this checkout's espnet2_ttt importable (the
# repository root is three levels above the real location of this script). The other
# utilities in this folder are thin wrappers around it.
if [ $# -lt 1 ]; then
  echo "Usage: $0 MODULE [ARGS...]" >&2
  exit 1
fi
repo_root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"
exec python3 -m "$@"
