#!/usr/bin/env bash
# Usage: validate_data_dir.sh [--no-feats] [--no-text] [--no-wav] [--non-print] [--no-spk-sort] DIR
# Checks a data dir; prints the first problem and exits 1 if there is one.
# Thin wrapper: the logic is in espnet2_ttt/utils/data_dir.py (run with --help for details).
exec "$(dirname "$(readlink -f "$0")")/pymodule.sh" espnet2_ttt.utils.data_dir validate_data_dir.sh "$@"
