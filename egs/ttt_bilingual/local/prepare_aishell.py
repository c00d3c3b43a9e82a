#!/usr/bin/env python3
"""Make a Kaldi data dir (+ dialogues.jsonl) from one AISHELL-1 split.

    python local/prepare_aishell.py --root $AISHELL --split dev --output_dir data/.dev.tmp

Reads ``<root>/data_aishell/wav/<split>/<spk>/<utt>.wav`` and the transcript
``<root>/data_aishell/transcript/aishell_transcript_v0.8.txt`` (``<utt> 字 字 ...``).
Text is the transcript with its spaces removed, utt2lang is ``zh``, the speaker is the
directory name and utterance ids are ``<spk>-<utt>`` (``S0002-BAC009S0002W0122``) so
that sorting by utterance and by speaker agree. Wavs without a (non-empty) transcript
are skipped and counted. Files are written as by prepare_librispeech.write_data_dir.
"""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare_librispeech import Utterance, write_data_dir  # noqa: E402

from espnet2_ttt.utils.table import TableError, read_table  # noqa: E402

TRANSCRIPT = "data_aishell/transcript/aishell_transcript_v0.8.txt"
log = logging.getLogger("prepare_aishell")


def read_split(root: Path, split: str) -> list:
    """The transcribed utterances of ``split``; logs how many wavs had no transcript."""
    split_dir = root / "data_aishell" / "wav" / split
    wavs = sorted(split_dir.glob("*/*.wav"))
    if not wavs:
        raise TableError(f"no <spk>/<utt>.wav files under {split_dir} (extract the "
                         f"per-speaker .tar.gz archives of AISHELL-1 there first)")
    transcripts = read_table(str(root / TRANSCRIPT))
    utterances, untranscribed = [], []
    for wav in wavs:
        text = "".join(transcripts.get(wav.stem, "").split())
        if not text:
            untranscribed.append(wav.stem)
            continue
        speaker = wav.parent.name
        utterances.append(Utterance(f"{speaker}-{wav.stem}", speaker, str(wav.resolve()), text, "zh"))
    if untranscribed:
        log.warning(f"{split}: skipped {len(untranscribed)} of {len(wavs)} wavs without "
                    f"transcript, e.g. {untranscribed[:3]}")
    log.info(f"{split}: {len(utterances)} utterances")
    return utterances


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="directory holding data_aishell/")
    parser.add_argument("--split", required=True, choices=["train", "dev", "test"])
    parser.add_argument("--output_dir", required=True, help="data dir to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s (prepare_aishell) %(levelname)s: %(message)s")
    try:
        write_data_dir(args.output_dir, read_split(Path(args.root), args.split))
    except TableError as e:
        sys.exit(f"prepare_aishell.py: error: {e}")


if __name__ == "__main__":
    main()
