"""Decode a code file back to audio: ``<output_dir>/wavs/<utt>.wav`` and ``<output_dir>/wav.scp``.

    python -m espnet2_ttt.bin.speech_detokenize --tokenizer_dir exp/speech_tokenizer \
        --codes dump/test/codes --output_dir exp/detok/test

Wavs are 16-bit PCM at ``--sample_rate`` (default 16000; resampled if the decoder differs).
Every file is written atomically; ``wav.scp`` (absolute paths, code-file order) comes last.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import soundfile

from espnet2_ttt.speech import load_speech_tokenizer
from espnet2_ttt.speech.io import read_codes, resample
from espnet2_ttt.utils.table import atomic_path, write_text_atomic


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer_dir", required=True)
    parser.add_argument("--codes", required=True, help="code file: utt_id c1 c2 ...")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--sample_rate", type=int, default=16000, help="sample rate of the written wavs")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    tokenizer = load_speech_tokenizer(args.tokenizer_dir)
    wav_dir = Path(args.output_dir).resolve() / "wavs"
    scp_lines = []
    for utt, codes in read_codes(args.codes):
        if "/" in utt or utt.startswith("."):
            raise ValueError(f"{args.codes}: utterance id {utt!r} cannot be used as a file name")
        try:
            wav, sr = tokenizer.decode(codes)
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{args.codes}: utterance {utt!r}: {e}") from e
        path = wav_dir / f"{utt}.wav"
        with atomic_path(path) as tmp:
            soundfile.write(str(tmp), np.clip(resample(wav, sr, args.sample_rate), -1.0, 1.0), args.sample_rate, subtype="PCM_16")
        scp_lines.append(f"{utt} {path}\n")
    write_text_atomic(Path(args.output_dir) / "wav.scp", "".join(scp_lines))
    logging.info("wrote %d wavs to %s", len(scp_lines), wav_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
