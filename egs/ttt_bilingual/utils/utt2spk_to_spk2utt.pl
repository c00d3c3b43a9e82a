#!/usr/bin/env bash
# Usage: utt2spk_to_spk2utt.pl [utt2spk] > spk2utt
# Groups utterances per speaker (speakers in first-seen order).
# Thin wrapper: the logic is in espnet2_ttt/utils/scp.py (run with --help for details).
exec "$(dirname "$(readlink -f "$0")")/pymodule.sh" espnet2_ttt.utils.scp utt2spk_to_spk2utt.pl "$@"
