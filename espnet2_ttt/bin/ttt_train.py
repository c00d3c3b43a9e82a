#!/usr/bin/env python3
"""Train a TtT model with ESPnet's trainer: ``python -m espnet2_ttt.bin.ttt_train --help``.

Bad data is one line ``ttt_train: error: <file>:<line>: <what>`` (or ``<file>: utterance
'<id>': <what>``), exit status 1 (:mod:`espnet2_ttt.utils.cli`).
"""
from espnet2_ttt.tasks.ttt import TtTTask
from espnet2_ttt.utils.cli import run


def get_parser():
    return TtTTask.get_parser()


def main(cmd=None):
    TtTTask.main(cmd=cmd)


if __name__ == "__main__":
    run(main, "ttt_train")
