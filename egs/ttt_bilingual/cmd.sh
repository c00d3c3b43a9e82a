# Job runners, as in ESPnet: train_cmd (CPU jobs), cuda_cmd (GPU jobs), decode_cmd (decoding).
# Only "local" is provided here (utils/run.pl runs jobs on this machine with per-job logs);
# on a cluster point these at your queue.pl / slurm.pl with the same interface.
cmd_backend=local
if [ "${cmd_backend}" = local ]; then
    export train_cmd="run.pl"
    export cuda_cmd="run.pl"
    export decode_cmd="run.pl"
else
    echo "cmd.sh: unknown cmd_backend=${cmd_backend}" >&2
    return 1
fi
