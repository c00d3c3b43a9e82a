#!/usr/bin/env python3
"""Score one test set's TtT outputs (recipe stage 12) into ESPnet-style ``score_*`` dirs.

    python -m espnet2_ttt.bin.score_eval --eval_dir dump/eval/test --decode_dir exp/ttt/decode_x \
        --test_set test --raw_dir dump/raw/test [--tasks "asr tts qa"] [--asr_backends "espnet pocketsphinx"]

Inputs: ``prepare_eval``'s per-task references, the decoder outputs in
``<decode_dir>/<test>_<task>/`` (``text``) and the independent ASR transcripts of the
generated speech (``asr_<backend>``), plus ``<decode_dir>/<test>_original/asr_<backend>``
(the same ASR on the original test audio).  Each scored "dataset" is a dir under
``decode_dir`` holding ``score_cer``, ``score_mer`` (mixed: CJK characters + English words)
and/or ``score_answer_accuracy``:

    <test>_asr                      text output vs transcript (the ASR task)
    <test>_tts_speech_<b>           ASR <b> of generated speech vs the text it should say
    <test>_qa                       answer text: accuracy, and error rate vs the reference answer
    <test>_qa_speech_<b>            ASR <b> of the spoken answer: accuracy
    <test>_qa_consistency_<b>       ASR <b> of the spoken answer vs the model's own answer text
    <test>_original_<b>             ASR <b> on the original test audio (its own error floor)

pocketsphinx is English-only: its datasets keep English utterances only.
"""
import argparse
import logging
import os
from typing import List, Optional

from espnet2_ttt.bin.score import score_answer_accuracy, score_error_rate
from espnet2_ttt.utils.cli import run
from espnet2_ttt.utils.table import read_table, write_lines

ENGLISH_ONLY = {"pocketsphinx"}
ERROR_METRICS = ("cer", "mer")


def _restrict(table_file: str, keep: Optional[set], out_file: str) -> str:
    """``table_file`` itself, or a copy in ``out_file`` holding only the keys in ``keep``."""
    if keep is None:
        return table_file
    rows = read_table(table_file)
    write_lines(out_file, [f"{k} {v}".rstrip() for k, v in rows.items() if k in keep])
    return out_file


def _error_rates(dataset_dir: str, ref: str, hyp: str, utt2spk: str, keep: Optional[set]) -> None:
    os.makedirs(dataset_dir, exist_ok=True)
    ref = _restrict(ref, keep, os.path.join(dataset_dir, "ref_text"))
    for metric in ERROR_METRICS:
        score_error_rate(ref, hyp, utt2spk, metric, os.path.join(dataset_dir, f"score_{metric}"))


def _accuracy(dataset_dir: str, answers: str, hyp: str, keep: Optional[set]) -> None:
    os.makedirs(dataset_dir, exist_ok=True)
    answers = _restrict(answers, keep, os.path.join(dataset_dir, "answer_key"))
    score_answer_accuracy(answers, hyp, os.path.join(dataset_dir, "score_answer_accuracy"))


def score_eval(eval_dir: str, decode_dir: str, test_set: str, raw_dir: str, tasks: List[str], backends: List[str]):
    def keep_for(backend: str, utt2lang_file: str) -> Optional[set]:
        if backend not in ENGLISH_ONLY:
            return None
        return {k for k, lang in read_table(utt2lang_file).items() if lang == "en"}

    def transcripts(dirname: str, backend: str) -> Optional[str]:
        path = os.path.join(decode_dir, dirname, f"asr_{backend}")
        return path if os.path.exists(path) else None

    for task in tasks:
        ref_dir, out = os.path.join(eval_dir, task), os.path.join(decode_dir, f"{test_set}_{task}")
        ref, utt2spk, utt2lang = (os.path.join(ref_dir, f) for f in ("ref_text", "utt2spk", "utt2lang"))
        if task in ("asr", "qa"):
            _error_rates(out, ref, os.path.join(out, "text"), utt2spk, None)
        if task == "qa":
            _accuracy(out, os.path.join(ref_dir, "answer_key"), os.path.join(out, "text"), None)
        for b in backends:
            hyp = transcripts(f"{test_set}_{task}", b)
            if hyp is None or task == "asr":
                continue
            keep = keep_for(b, utt2lang)
            _error_rates(f"{out}_speech_{b}", ref, hyp, utt2spk, keep)
            if task == "qa":
                _accuracy(f"{out}_speech_{b}", os.path.join(ref_dir, "answer_key"), hyp, keep)
                _error_rates(f"{out}_consistency_{b}", os.path.join(out, "text"), hyp, utt2spk, keep)
    for b in backends:
        hyp = transcripts(f"{test_set}_original", b)
        if hyp is not None:
            _error_rates(os.path.join(decode_dir, f"{test_set}_original_{b}"), os.path.join(raw_dir, "text"), hyp,
                         os.path.join(raw_dir, "utt2spk"), keep_for(b, os.path.join(raw_dir, "utt2lang")))


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval_dir", required=True)
    parser.add_argument("--decode_dir", required=True)
    parser.add_argument("--test_set", required=True)
    parser.add_argument("--raw_dir", required=True, help="the formatted test data dir (text, utt2spk, utt2lang)")
    parser.add_argument("--tasks", default="asr tts qa")
    parser.add_argument("--asr_backends", default="espnet pocketsphinx")
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    score_eval(args.eval_dir, args.decode_dir, args.test_set, args.raw_dir, args.tasks.split(), args.asr_backends.split())


if __name__ == "__main__":
    run(main, "score_eval")
