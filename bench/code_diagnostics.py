#!/usr/bin/env python3
"""Speech-code diagnostics: how generated codes differ from real ones, how much wrong codes cost.

    # repetition statistics of Kaldi-style code files ("utt code code ..."), e.g. real vs generated
    python bench/code_diagnostics.py stats dump/codes/test/codes exp/ttt_train_ttt/decode_x/test_tts/audio_codes

    # the codes of --keys with a seeded fraction replaced -> a code file; then detokenize,
    # transcribe and score with the recipe's tools (stages 9-12 use the same ones):
    python bench/code_diagnostics.py corrupt --codes dump/codes/test/codes --keys dump/eval/test/tts/keys \\
        --codebook_size 1024 --fraction 0.2 --output /tmp/codes_20/codes
    python -m espnet2_ttt.bin.speech_detokenize --tokenizer_dir exp/speech_tokenizer \\
        --codes /tmp/codes_20/codes --output_dir /tmp/codes_20
    python -m espnet2_ttt.bin.transcribe --backend espnet --wav_scp /tmp/codes_20/wav.scp \\
        --output /tmp/codes_20/asr_espnet --asr_train_config ... --asr_model_file ...
    python -m espnet2_ttt.bin.score --metric cer --ref dump/eval/test/tts/text \\
        --hyp /tmp/codes_20/asr_espnet --utt2spk dump/eval/test/tts/utt2spk --output_dir /tmp/codes_20/score_cer

``stats``: the share of adjacent equal codes, the mean run length and the share of codes in
runs of 4 or more.  ``corrupt``: ``--mode random`` replaces each code with probability
``--fraction`` by a uniformly drawn code, ``--mode shift`` by its left or right neighbour (a
timing error); a key ``<task>-<utt>`` absent from ``--codes`` is looked up as ``<utt>``.
"""
from __future__ import annotations

import argparse
from typing import Dict, Sequence

import numpy as np

from espnet2_ttt.speech.io import read_codes
from espnet2_ttt.utils.table import read_lines, write_lines


def repetition_stats(codes: Sequence[np.ndarray]) -> Dict[str, float]:
    """Over all utterances: adjacent equal pairs / all adjacent pairs, mean run length, share of
    codes in runs of >= 4 equal codes."""
    runs = []
    for c in codes:
        if len(c):
            boundaries = np.flatnonzero(np.diff(c)) + 1
            runs.extend(np.diff(np.concatenate([[0], boundaries, [len(c)]])))
    runs = np.array(runs)
    pairs = sum(max(len(c) - 1, 0) for c in codes)
    return {"repeat_share": float((runs - 1).sum() / max(pairs, 1)), "mean_run": float(runs.mean()),
            "in_runs_of_4": float(runs[runs >= 4].sum() / runs.sum())}


def corrupt(codes: np.ndarray, fraction: float, mode: str, codebook_size: int, rng: np.random.Generator) -> np.ndarray:
    hit = rng.random(len(codes)) < fraction
    out = codes.copy()
    if mode == "random":
        out[hit] = rng.integers(0, codebook_size, int(hit.sum()))
    else:  # shift: the neighbour's code
        source = np.arange(len(codes)) + np.where(rng.random(len(codes)) < 0.5, -1, 1)
        out[hit] = codes[np.clip(source, 0, len(codes) - 1)[hit]]
    return out


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    stats = sub.add_parser("stats", help="repetition statistics of code files")
    stats.add_argument("files", nargs="+")
    bad = sub.add_parser("corrupt", help="write the codes with a fraction replaced")
    bad.add_argument("--codes", required=True)
    bad.add_argument("--keys", required=True, help="utterances to write (first column)")
    bad.add_argument("--codebook_size", type=int, required=True, help="random codes are drawn from [0, N)")
    bad.add_argument("--fraction", type=float, required=True)
    bad.add_argument("--mode", choices=("random", "shift"), default="random")
    bad.add_argument("--output", required=True, help="code file to write")
    bad.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "stats":
        for path in args.files:
            s = repetition_stats([codes for _, codes in read_codes(path)])
            print(f"{path}: adjacent equal {s['repeat_share']:.3f}, mean run {s['mean_run']:.2f} codes, "
                  f"in runs of >= 4: {s['in_runs_of_4']:.3f}")
        return
    codes, rng, lines = dict(read_codes(args.codes)), np.random.default_rng(args.seed), []
    for utt in (line.split()[0] for line in read_lines(args.keys)):
        key = utt if utt in codes else utt.split("-", 1)[-1]
        if key not in codes:
            raise KeyError(f"{args.codes}: no codes for {utt}")
        bad_codes = corrupt(codes[key], args.fraction, args.mode, args.codebook_size, rng)
        lines.append(" ".join([utt, *map(str, bad_codes)]))
    write_lines(args.output, lines)
    print(f"{len(lines)} utterances, {args.fraction:.0%} of the codes replaced ({args.mode}): {args.output}")


if __name__ == "__main__":
    main()
