#!/usr/bin/env bash
# Usage: spk2utt_to_utt2spk.pl [spk2utt] > utt2spk
# Expands spk2utt lines into one 'utt spk' line per utterance.
# Thin wrapper: the logic is in espnet2_ttt/utils/scp.py (run with --help for details).
exec "$(dirname "$(readlink -f "$0")")/pymodule.sh" espnet2_ttt.utils.scp spk2utt_to_utt2spk.pl "$@"
