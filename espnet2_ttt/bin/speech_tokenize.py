"""Encode the audio of a wav.scp into a Kaldi-style code file (``utt_id c1 c2 ...``).

    python -m espnet2_ttt.bin.speech_tokenize --tokenizer_dir exp/speech_tokenizer \
        --wav_scp data/train/wav.scp --output dump/train/codes [--key_file split/keys.3]

Lines come out in input order (wav.scp order, or key-file order with ``--key_file``), so the
outputs of jobs run on the pieces of a split wav.scp concatenate back in order.  A bad audio
file (unreadable, truncated, NaN / inf samples: ``espnet2_ttt.speech.io``) or one shorter than
one code (``1 / frame_rate`` s) is an error naming it and its utterance: format_wav drops such
utterances beforehand.  The output is written atomically: a failed run leaves no file, and the
temporary of a killed one is removed by the next run.
"""
from __future__ import annotations

import argparse
import logging
from typing import Optional, Sequence

from espnet2_ttt.speech import load_speech_tokenizer
from espnet2_ttt.speech.io import format_codes, load_utterance, read_wav_scp
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.utils.table import atomic_path


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer_dir", required=True, help="a directory written by speech_tokenizer_train")
    parser.add_argument("--wav_scp", required=True)
    parser.add_argument("--output", required=True, help="code file to write")
    parser.add_argument("--key_file", default=None, help="encode only these utterance ids (first column)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    tokenizer = load_speech_tokenizer(args.tokenizer_dir)
    entries = read_wav_scp(args.wav_scp, args.key_file)
    with atomic_path(args.output) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for utt, path in entries:
            wav, sr = load_utterance(utt, path, min_seconds=1 / tokenizer.frame_rate)
            try:
                codes = tokenizer.encode(wav, sr)
            except (ValueError, RuntimeError, NotImplementedError) as e:
                raise InputError(f"{path}: utterance '{utt}': {e}") from e
            f.write(format_codes(utt, codes))
    logging.info("wrote codes of %d utterances to %s", len(entries), args.output)


if __name__ == "__main__":
    run(main, "speech_tokenize")
