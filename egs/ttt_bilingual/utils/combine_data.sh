#!/usr/bin/env bash
# Usage: combine_data.sh [--extra-files 'f1 f2'] [--skip-fix true|false] DEST SRC1 SRC2 ...
# Concatenates data dirs into DEST, regenerates spk2utt, then runs fix_data_dir.
# Thin wrapper: the logic is in espnet2_ttt/utils/data_dir.py (run with --help for details).
exec "$(dirname "$(readlink -f "$0")")/pymodule.sh" espnet2_ttt.utils.data_dir combine_data.sh "$@"
