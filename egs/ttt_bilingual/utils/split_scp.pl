#!/usr/bin/env bash
# Usage: split_scp.pl [--utt2spk=FILE | --interleave] [-j N k] in.scp [out1 ... outN]
# Splits in.scp into N contiguous parts (sizes differ by at most one, order kept);
# --interleave deals the lines round-robin instead (balances jobs).
# Thin wrapper: the logic is in espnet2_ttt/utils/scp.py (run with --help for details).
exec "$(dirname "$(readlink -f "$0")")/pymodule.sh" espnet2_ttt.utils.scp split_scp.pl "$@"
