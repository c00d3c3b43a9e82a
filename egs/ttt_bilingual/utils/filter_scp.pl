#!/usr/bin/env bash
# Usage: filter_scp.pl [--exclude] [-f FIELD] idlist [in.scp] > out.scp
# Keeps the lines of in.scp (default stdin) whose field FIELD is in column 1 of idlist.
# Thin wrapper: the logic is in espnet2_ttt/utils/scp.py (run with --help for details).
exec "$(dirname "$(readlink -f "$0")")/pymodule.sh" espnet2_ttt.utils.scp filter_scp.pl "$@"
