#!/usr/bin/env python3
"""Score recognised text: error rates (sclite or built-in) and answer accuracy.

Error rates (``--metric wer|cer|mer``, units in espnet2_ttt.utils.scoring):

    python -m espnet2_ttt.bin.score --metric cer --ref data/test/text \\
        --hyp exp/.../test/text --utt2spk data/test/utt2spk --output_dir .../score_cer

writes ``ref.trn``/``hyp.trn`` (tokens then ``(spk-utt)``) and ``result.txt``: the
report of sclite (``sclite`` on PATH or Debian's ``sctk sclite``) or, when it is
absent or ``--scorer builtin``, a built-in report with the same ``Sum/Avg`` numbers.
A reference utterance without hypothesis is scored as all deletions.

Answer accuracy (``--metric answer_accuracy``, ``--ref`` = lines ``utt key1|key2|...``):
the fraction of utterances whose normalised hypothesis contains one of the keys
(whole words for English, a substring for Mandarin); writes ``result.txt`` (Snt,
Correct, Accuracy) and ``details.txt`` (utt, 1/0, matched key or "-").
"""

import argparse
import logging
import os
from typing import Callable, Dict, Optional, Sequence, Tuple

from espnet2_ttt.utils.scoring import (
    METRIC_UNITS,
    answer_accuracy,
    parse_answers,
    tokenize,
)
from espnet2_ttt.utils.sclite import (
    builtin_report,
    find_sclite,
    parse_sum_avg,
    run_sclite,
    trn_line,
)
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.utils.table import TableError, c_order, read_table, write_lines

ANSWER_ACCURACY = "answer_accuracy"


def make_cleaner(name: Optional[str]) -> Callable[[str], str]:
    """ESPnet's TextCleaner ``name`` (e.g. tacotron, whisper_en), or identity."""
    if not name or name == "none":
        return lambda text: text
    from espnet2.text.cleaner import TextCleaner

    return TextCleaner(name)


def _report_unmatched(refs: Dict[str, str], hyps: Dict[str, str]) -> None:
    """Log the reference utterances without hypothesis and vice versa."""
    missing = [utt for utt in refs if utt not in hyps]
    if missing:
        logging.warning(f"{len(missing)} of {len(refs)} reference utterances have no "
                        f"hypothesis and count as all deletions, e.g. '{missing[0]}'")
    extra = [utt for utt in hyps if utt not in refs]
    if extra:
        logging.warning(f"{len(extra)} hypotheses have no reference and are ignored, "
                        f"e.g. '{extra[0]}'")


def score_error_rate(
    ref_text: str, hyp_text: str, utt2spk_file: str, metric: str, output_dir: str,
    cleaner: Optional[str] = None, hyp_cleaner: Optional[str] = None, scorer: str = "auto",
) -> Dict[str, str]:
    """Write ref.trn, hyp.trn and result.txt into ``output_dir``; return the Sum/Avg row."""
    refs, hyps = read_table(ref_text), read_table(hyp_text)
    utt2spk = read_table(utt2spk_file)
    _report_unmatched(refs, hyps)
    clean_ref, clean_hyp = make_cleaner(cleaner), make_cleaner(hyp_cleaner)
    unit = METRIC_UNITS[metric]
    ref_lines, hyp_lines = [], []
    for utt in sorted(refs, key=c_order):
        if utt not in utt2spk:
            raise TableError(f"{utt2spk_file}: no speaker for utterance '{utt}' of {ref_text}")
        ref_lines.append(trn_line(tokenize(clean_ref(refs[utt]), unit), utt2spk[utt], utt))
        hyp_lines.append(trn_line(tokenize(clean_hyp(hyps.get(utt, "")), unit),
                                  utt2spk[utt], utt))
    os.makedirs(output_dir, exist_ok=True)
    write_lines(os.path.join(output_dir, "ref.trn"), ref_lines)
    write_lines(os.path.join(output_dir, "hyp.trn"), hyp_lines)

    sclite = find_sclite() if scorer != "builtin" else None
    if scorer == "sclite" and sclite is None:
        raise InputError("--scorer sclite: neither 'sclite' nor 'sctk' is on PATH "
                         "(apt-get install sctk)")
    if sclite:
        report = run_sclite(sclite, output_dir, "ref.trn", "hyp.trn")
    else:
        report = builtin_report(os.path.join(output_dir, "ref.trn"),
                                os.path.join(output_dir, "hyp.trn"))
    result_path = os.path.join(output_dir, "result.txt")
    write_lines(result_path, report.splitlines())
    summary = parse_sum_avg(report, result_path)
    logging.info(f"{metric.upper()} ({'sclite' if sclite else 'built-in'}) {result_path}: "
                 + " ".join(f"{k}={v}" for k, v in summary.items()))
    return summary


def score_answer_accuracy(answer_file: str, hyp_text: str, output_dir: str
                          ) -> Tuple[int, int]:
    """Write result.txt and details.txt into ``output_dir``; return (correct, total)."""
    answer_keys = {utt: parse_answers(value) for utt, value in read_table(answer_file).items()}
    hyps = read_table(hyp_text)
    _report_unmatched(answer_keys, hyps)
    matches = answer_accuracy(answer_keys, hyps)
    correct = sum(match is not None for _, match in matches)
    total = len(matches)
    accuracy = 100.0 * correct / max(total, 1)
    os.makedirs(output_dir, exist_ok=True)
    write_lines(os.path.join(output_dir, "details.txt"),
                [f"{utt} {int(match is not None)} {match or '-'}" for utt, match in matches])
    write_lines(os.path.join(output_dir, "result.txt"), [
        "# answer accuracy: the hypothesis contains an answer key (English: whole words, "
        "Mandarin: substring)",
        f"Snt: {total}", f"Correct: {correct}", f"Accuracy: {accuracy:.1f}",
    ])
    logging.info(f"answer accuracy: {correct} / {total} correct ({accuracy:.1f}%)")
    return correct, total


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metric", required=True,
                        choices=sorted(METRIC_UNITS) + [ANSWER_ACCURACY])
    parser.add_argument("--ref", required=True,
                        help="reference text (utt transcript), or answer keys "
                        "(utt key1|key2|...) for answer_accuracy")
    parser.add_argument("--hyp", required=True, help="hypothesis text (utt transcript)")
    parser.add_argument("--utt2spk", help="utt2spk of the references (error rates)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--cleaner", help="ESPnet text cleaner applied to the references")
    parser.add_argument("--hyp_cleaner", help="ESPnet text cleaner applied to hypotheses")
    parser.add_argument("--scorer", choices=("auto", "sclite", "builtin"), default="auto",
                        help="auto: sclite when available, else built-in")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s (score:%(lineno)d) %(levelname)s: %(message)s")
    args = get_parser().parse_args(cmd)
    if args.metric == ANSWER_ACCURACY:
        score_answer_accuracy(args.ref, args.hyp, args.output_dir)
    else:
        if not args.utt2spk:
            raise InputError(f"--metric {args.metric} needs --utt2spk")
        score_error_rate(args.ref, args.hyp, args.utt2spk, args.metric, args.output_dir,
                         args.cleaner, args.hyp_cleaner, args.scorer)


if __name__ == "__main__":
    run(main, "score")
