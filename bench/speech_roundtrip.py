"""Intelligibility of a speech tokenizer round trip, measured by ASR word error rate.

    python bench/speech_roundtrip.py --data_dir data/test --tokenizer_dir exp/speech_tokenizer

For every utterance of ``data_dir`` (``wav.scp`` + ``text``), the original audio and its
encode -> decode round trip (both at 16 kHz) are transcribed with pocketsphinx's default
English model; prints the corpus WER of both and the ratio round-trip / original.
WER = word edit distance / reference words, on lower-cased words with punctuation removed
(apostrophes inside words are kept).
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from multiprocessing import Pool
from pathlib import Path
from typing import List, Optional, Sequence

import editdistance
import numpy as np
import pocketsphinx
import torch

from espnet2_ttt.speech import load_speech_tokenizer
from espnet2_ttt.speech.io import load_utterance, read_wav_scp, resample
from espnet2_ttt.utils.table import write_text_atomic

ASR_RATE = 16000


def normalize_words(text: str) -> List[str]:
    """Lower-case words, punctuation removed: "Don't stop, Bob!" -> ["don't", "stop", "bob"]."""
    return re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*", text.lower())


def transcribe(decoder: pocketsphinx.Decoder, wav: np.ndarray, sr: int) -> str:
    """wav float32 [N] at ``sr`` -> pocketsphinx hypothesis text."""
    pcm = (np.clip(resample(wav, sr, ASR_RATE), -1.0, 1.0) * 32767).astype(np.int16)
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def _stream(job) -> List[str]:
    """Hypotheses of one stream, in order: ``original`` audio or the tokenizer ``round_trip``.

    One recogniser per stream, fed in data order: pocketsphinx adapts its cepstral mean across
    utterances, so each stream gives the same hypotheses as a sequential run.
    """
    which, entries, tokenizer_dir = job
    torch.set_num_threads(1)  # one core per stream
    tokenizer = load_speech_tokenizer(tokenizer_dir) if which == "round_trip" else None
    asr = pocketsphinx.Decoder()
    hyps = []
    for utt, path in entries:
        wav, sr = load_utterance(utt, path)
        if tokenizer is not None:
            wav, sr = tokenizer.decode(tokenizer.encode(wav, sr))
        hyps.append(transcribe(asr, wav, sr))
    return hyps


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="directory with wav.scp and text")
    parser.add_argument("--tokenizer_dir", required=True)
    parser.add_argument("--max_utterances", type=int, default=None, help="only the first N utterances")
    parser.add_argument("--hyp_file", default=None, help="also write 'utt<TAB>ref<TAB>orig hyp<TAB>round-trip hyp'")
    args = parser.parse_args(argv)

    data_dir = Path(args.data_dir)
    refs = dict(line.split(maxsplit=1) for line in (data_dir / "text").read_text(encoding="utf-8").splitlines() if line.strip())
    entries = read_wav_scp(data_dir / "wav.scp")[: args.max_utterances]
    missing = [utt for utt, _ in entries if utt not in refs]
    if missing:
        raise ValueError(f"utterance {missing[0]!r} has no transcript in {data_dir / 'text'} ({len(missing)} such)")
    tokenizer = load_speech_tokenizer(args.tokenizer_dir)  # fails here, not in a worker, when unusable
    start = time.time()
    with Pool(2) as pool:  # the two streams run side by side
        hyps_orig, hyps_rt = pool.map(_stream, [(which, entries, args.tokenizer_dir) for which in ("original", "round_trip")])
    n_ref = err_orig = err_rt = 0
    rows = []
    for (utt, _), hyp_orig, hyp_rt in zip(entries, hyps_orig, hyps_rt):
        ref = normalize_words(refs[utt])
        n_ref += len(ref)
        err_orig += editdistance.eval(ref, normalize_words(hyp_orig))
        err_rt += editdistance.eval(ref, normalize_words(hyp_rt))
        rows.append(f"{utt}\t{refs[utt]}\t{hyp_orig}\t{hyp_rt}\n")
    if args.hyp_file:
        write_text_atomic(args.hyp_file, "".join(rows))
    wer_orig, wer_rt = 100.0 * err_orig / n_ref, 100.0 * err_rt / n_ref
    print(f"tokenizer: {args.tokenizer_dir} ({tokenizer.name}, {tokenizer.codebook_size} codes, {tokenizer.frame_rate:g} Hz)")
    print(f"utterances: {len(entries)}, reference words: {n_ref}, time: {time.time() - start:.0f} s")
    print(f"WER original:   {wer_orig:.1f}%")
    print(f"WER round trip: {wer_rt:.1f}%")
    print(f"ratio round trip / original: {wer_rt / wer_orig:.2f}" if err_orig else "ratio: undefined (original WER is 0)")


if __name__ == "__main__":
    main(sys.argv[1:])
