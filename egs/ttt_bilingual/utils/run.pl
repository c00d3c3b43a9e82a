#!/usr/bin/env bash
# Usage: run.pl [--gpu N] [--mem M] [--num-threads N] [--max-jobs-run N] [--time T]
#               [--config F] [VAR=a:b | VAR=n] LOG COMMAND...
# Runs COMMAND locally (once per job index, VAR replaced in LOG and COMMAND), at most
# --max-jobs-run jobs at a time; exit 1 if any job fails.
# Thin wrapper: the logic is in espnet2_ttt/utils/job_runner.py (run with --help).
exec "$(dirname "$(readlink -f "$0")")/pymodule.sh" espnet2_ttt.utils.job_runner "$@"
