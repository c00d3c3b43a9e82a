#!/usr/bin/env python3
"""Train a TtT model with ESPnet's trainer: ``python -m espnet2_ttt.bin.ttt_train --help``."""
from espnet2_ttt.tasks.ttt import TtTTask


def get_parser():
    return TtTTask.get_parser()


def main(cmd=None):
    TtTTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
