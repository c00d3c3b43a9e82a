"""Decode a code file back to audio: ``<output_dir>/wavs/<utt>.wav`` and ``<output_dir>/wav.scp``.

    python -m espnet2_ttt.bin.speech_detokenize --tokenizer_dir exp/speech_tokenizer \
        --codes dump/test/codes --output_dir exp/detok/test

Wavs are 16-bit PCM at ``--sample_rate`` (default 16000; resampled if the decoder differs).
The code file is checked first (``espnet2_ttt.speech.io``: integers in ``[0, K)``, no line cut
short).  Every file is written atomically; ``wav.scp`` (absolute paths, code-file order) comes
last; a rerun first removes the temporaries a killed run left in ``wavs/``.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import soundfile

from espnet2_ttt.speech import load_speech_tokenizer
from espnet2_ttt.speech.io import read_codes, resample
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.utils.table import atomic_path, remove_stale_temps, write_text_atomic


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
    entries = read_codes(args.codes, tokenizer.codebook_size)
    bad_ids = [utt for utt, _ in entries if "/" in utt or utt.startswith(".")]
    if bad_ids:
        raise InputError(f"{args.codes}: utterance '{bad_ids[0]}': the id cannot be used as a file name")
    remove_stale_temps(wav_dir)
    scp_lines = []
    for utt, codes in entries:
        try:
            wav, sr = tokenizer.decode(codes)
        except (ValueError, RuntimeError) as e:
            raise InputError(f"{args.codes}: utterance '{utt}': {e}") from e
        path = wav_dir / f"{utt}.wav"
        with atomic_path(path, sweep=False) as tmp:
            soundfile.write(str(tmp), np.clip(resample(wav, sr, args.sample_rate), -1.0, 1.0), args.sample_rate, subtype="PCM_16")
        scp_lines.append(f"{utt} {path}\n")
    write_text_atomic(Path(args.output_dir) / "wav.scp", "".join(scp_lines))
    logging.info("wrote %d wavs to %s", len(scp_lines), wav_dir)


if __name__ == "__main__":
    run(main, "speech_detokenize")
