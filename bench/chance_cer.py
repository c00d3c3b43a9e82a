#!/usr/bin/env python3
"""Chance level of a scored set: CER of each output against the *other* utterances' references.

    python bench/chance_cer.py egs/ttt_bilingual/exp/ttt_train_ttt/decode_ttt_valid.acc.ave/{test_asr,test_tts_speech_espnet}

Reads ``<dir>/score_cer/{ref,hyp}.trn`` (the sclite inputs stage 12 writes) and prints the
character error rate of the matched pairs next to the mean over every mismatched pairing of the
same language (output i scored against reference j != i): what an output unrelated to its
input would get, with the same lengths and the same text statistics.  "Far below chance" means
far below that second number.  Language = the part of the utterance id after the task prefix
up to ``_`` (``tts-en_slt_v0-...`` -> ``en``), as in the embedded corpus.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import editdistance

from espnet2_ttt.utils.sclite import read_trn


def language(utt: str) -> str:
    parts = utt.split("-")
    return parts[1].split("_")[0] if len(parts) > 1 else ""


def cer(ref: Dict[str, List[str]], hyp: Dict[str, List[str]], pairs: Sequence[Tuple[str, str]]) -> float:
    """100 * sum edit(ref[r], hyp[h]) / sum len(ref[r]) over (r, h) pairs."""
    errors = sum(editdistance.eval(ref[r], hyp[h]) for r, h in pairs)
    return 100.0 * errors / sum(len(ref[r]) for r, _ in pairs)


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("score_dirs", nargs="+", help="directories holding score_cer/{ref,hyp}.trn")
    args = parser.parse_args(argv)
    for d in map(Path, args.score_dirs):
        ref, hyp = (read_trn(str(d / "score_cer" / f"{side}.trn")) for side in ("ref", "hyp"))
        if set(ref) != set(hyp):
            raise ValueError(f"{d}: ref.trn and hyp.trn hold different utterances")
        groups: Dict[str, List[str]] = {}
        for utt in sorted(ref):
            groups.setdefault(language(utt), []).append(utt)
        mismatched = [(g[i], g[(i + s) % len(g)]) for g in groups.values() for s in range(1, len(g)) for i in range(len(g))]
        sizes = ", ".join(f"{lang} {len(g)}" for lang, g in groups.items())
        if not mismatched:
            raise ValueError(f"{d}: no language has two utterances, so there is no mismatched pairing")
        print(f"{d.name}: CER {cer(ref, hyp, [(u, u) for u in ref]):.1f} %, chance (mismatched references) "
              f"{cer(ref, hyp, mismatched):.1f} %  ({sizes})")


if __name__ == "__main__":
    main()
