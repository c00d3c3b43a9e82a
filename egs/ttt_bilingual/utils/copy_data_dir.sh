#!/usr/bin/env bash
# Usage: copy_data_dir.sh [--utt-prefix P] [--spk-prefix P] [--utt-suffix S] [--spk-suffix S] [--validate-opts OPTS] SRC DEST
# Copies a data dir, optionally renaming utterances and speakers; validates the copy.
# Thin wrapper: the logic is in espnet2_ttt/utils/data_dir.py (run with --help for details).
exec "$(dirname "$(readlink -f "$0")")/pymodule.sh" espnet2_ttt.utils.data_dir copy_data_dir.sh "$@"
