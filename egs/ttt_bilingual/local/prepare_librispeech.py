#!/usr/bin/env python3
"""Make a Kaldi data dir (+ dialogues.jsonl) from LibriSpeech subsets.

    python local/prepare_librispeech.py --root $LIBRISPEECH --subsets train-clean-100 \
        --output_dir data/.train.tmp

Reads ``<root>/LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<n>.flac`` and the
``<spk>-<chapter>.trans.txt`` next to them. Utterance ids are the file names
(``<spk>-<chapter>-<n>``), the speaker is ``<spk>``, text is lowercased, utt2lang is
``en``. ``write_data_dir`` (also used by prepare_aishell.py) writes the sorted files
wav.scp, text, utt2spk, spk2utt, utt2lang and dialogues.jsonl: one "asr" and one "tts"
entry per utterance, following the schema of make_corpus.py (category "sentence").
The caller (local/data.sh) validates the directory and moves it into place.
"""

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import List, NamedTuple, Sequence

from espnet2_ttt.utils.data_dir import make_spk2utt, save_data_dir
from espnet2_ttt.utils.table import TableError, read_lines, sort_lines

log = logging.getLogger("prepare_librispeech")


class Utterance(NamedTuple):
    utt_id: str
    speaker: str
    path: str  # absolute audio path
    text: str
    lang: str


def dialogue_records(utt: Utterance) -> List[dict]:
    """The "asr" and "tts" dialogues.jsonl entries of one utterance (make_corpus schema)."""
    return [
        {"id": f"{task}-{utt.utt_id}", "task": task, "lang": utt.lang, "category": "sentence",
         "question_utt": utt.utt_id if task == "asr" else None, "question_text": utt.text,
         "answer_text": utt.text, "answer_utt": utt.utt_id if task == "tts" else None,
         "answer_key": [utt.text]}
        for task in ("asr", "tts")
    ]


def write_data_dir(output_dir: str, utterances: Sequence[Utterance]) -> None:
    """Write the data dir files of ``utterances`` into ``output_dir``, sorted (LC_ALL=C)."""
    if not utterances:
        raise TableError(f"no utterances to write into {output_dir}")
    files = {
        "wav.scp": sort_lines(f"{u.utt_id} {u.path}" for u in utterances),
        "text": sort_lines(f"{u.utt_id} {u.text}" for u in utterances),
        "utt2spk": sort_lines(f"{u.utt_id} {u.speaker}" for u in utterances),
        "utt2lang": sort_lines(f"{u.utt_id} {u.lang}" for u in utterances),
    }
    files["spk2utt"] = make_spk2utt(files["utt2spk"])
    records = sorted((r for u in utterances for r in dialogue_records(u)), key=lambda r: r["id"])
    files["dialogues.jsonl"] = [json.dumps(r, ensure_ascii=False) for r in records]
    save_data_dir(output_dir, files)
    log.info(f"wrote {len(utterances)} utterances of {len(files['spk2utt'])} speakers "
             f"to {output_dir}")


def read_subset(root: Path, subset: str) -> List[Utterance]:
    """All utterances of one subset; a flac without transcript (or vice versa) is an error."""
    subset_dir = root / "LibriSpeech" / subset
    if not subset_dir.is_dir():
        raise TableError(f"LibriSpeech subset not found: {subset_dir}")
    flacs = {p.stem: p for p in subset_dir.glob("*/*/*.flac")}
    utterances = []
    for trans in sorted(subset_dir.glob("*/*/*.trans.txt")):
        for number, line in enumerate(read_lines(str(trans)), start=1):
            utt_id, _, text = line.partition(" ")
            if utt_id not in flacs or not text.strip():
                raise TableError(f"{trans}:{number}: '{utt_id}' has no .flac file or no text")
            utterances.append(Utterance(utt_id, utt_id.split("-")[0],
                                        str(flacs.pop(utt_id).resolve()),
                                        " ".join(text.lower().split()), "en"))
    if flacs:
        raise TableError(f"{subset_dir}: {len(flacs)} .flac files have no transcript, "
                         f"e.g. {sorted(flacs)[:3]}")
    if not utterances:
        raise TableError(f"no transcribed utterances under {subset_dir}")
    log.info(f"{subset}: {len(utterances)} utterances")
    return utterances


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="directory holding LibriSpeech/")
    parser.add_argument("--subsets", nargs="+", required=True, help="e.g. dev-clean dev-other")
    parser.add_argument("--output_dir", required=True, help="data dir to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s (prepare_librispeech) %(levelname)s: %(message)s")
    try:
        utterances = [u for s in args.subsets for u in read_subset(Path(args.root), s)]
        write_data_dir(args.output_dir, utterances)
    except TableError as e:
        sys.exit(f"prepare_librispeech.py: error: {e}")


if __name__ == "__main__":
    main()
