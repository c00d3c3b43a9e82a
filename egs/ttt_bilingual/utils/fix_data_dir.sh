#!/usr/bin/env bash
# Usage: fix_data_dir.sh [--utt_extra_files 'f1 f2'] [--spk_extra_files 'f1 f2'] DIR
# Sorts DIR's files, keeps utterances present in all of them, regenerates spk2utt.
# Thin wrapper: the logic is in espnet2_ttt/utils/data_dir.py (run with --help for details).
exec "$(dirname "$(readlink -f "$0")")/pymodule.sh" espnet2_ttt.utils.data_dir fix_data_dir.sh "$@"
