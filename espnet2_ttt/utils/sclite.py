"""sclite ``trn`` files and reports: run sclite, or score the same files built-in.

A trn line is ``tok1 tok2 ... (spk-utt)``; like sclite, the speaker of a line is
the part of its id before the first "-". The built-in report has sclite's layout:
the percentage and count summaries by speaker (without the Mean/S.D./Median rows)
and the per-utterance alignments.
"""

import os
import re
import shutil
import subprocess
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from espnet2_ttt.utils.scoring import AlignedPair, ErrorCounts, align, fold_case
from espnet2_ttt.utils.table import TableError, c_order, read_lines

_TRN_LINE = re.compile(r"^(.*?)\s*\(([^()\s]+)\)\s*$")
SUM_AVG_FIELDS = ("Snt", "Wrd", "Corr", "Sub", "Del", "Ins", "Err", "S.Err")


def trn_line(tokens: Sequence[str], speaker: str, utt: str) -> str:
    return f"{' '.join(tokens)} ({speaker}-{utt})"


def read_trn(path: str) -> Dict[str, List[str]]:
    """``{id: tokens}`` of a trn file, in file order."""
    entries: Dict[str, List[str]] = {}
    for number, line in enumerate(read_lines(path), start=1):
        match = _TRN_LINE.match(line)
        if not match:
            raise TableError(f"{path}: line {number} does not end with '(<id>)': '{line}'")
        entries[match.group(2)] = match.group(1).split()
    return entries


def find_sclite() -> Optional[List[str]]:
    """The command that runs sclite: ``sclite`` on PATH, or Debian's ``sctk sclite``."""
    if shutil.which("sclite"):
        return ["sclite"]
    if shutil.which("sctk"):
        return ["sctk", "sclite"]
    return None


def run_sclite(sclite: Sequence[str], directory: str, ref_name: str, hyp_name: str) -> str:
    """Run sclite on two trn files of ``directory``; return its report."""
    command = list(sclite) + ["-r", ref_name, "trn", "-h", hyp_name, "trn", "-i", "rm",
                              "-o", "all", "stdout"]
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed in {directory} "
                           f"(code {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def builtin_report(ref_trn: str, hyp_trn: str) -> str:
    """An sclite-like report for two trn files with the same ids."""
    refs, hyps = read_trn(ref_trn), read_trn(hyp_trn)
    if set(refs) != set(hyps):
        differing = sorted(set(refs) ^ set(hyps), key=c_order)[0]
        raise TableError(f"{ref_trn} and {hyp_trn} have different ids, e.g. '{differing}'")
    by_speaker: Dict[str, List[Tuple[str, List[AlignedPair]]]] = {}
    for trn_id, ref in refs.items():
        by_speaker.setdefault(trn_id.split("-", 1)[0], []).append(
            (trn_id, align(ref, hyps[trn_id])))
    speakers = sorted(by_speaker, key=c_order)
    rows = [(spk, sum((ErrorCounts.of_sentence(p) for _, p in by_speaker[spk]),
                      ErrorCounts())) for spk in speakers]
    name = os.path.basename(hyp_trn)
    lines = ["", "", ""]
    lines += _summary_table(name, rows, "Sum/Avg", _percent_cells)
    lines += ["", "", ""]
    lines += _summary_table(name, rows, "Sum", _count_cells)
    lines += ["", "", "\t\tDUMP OF SYSTEM ALIGNMENT STRUCTURE", "", f"System name:   {name}",
              "", "Speakers: "]
    lines += [f"{index:5d}:  {spk}" for index, spk in enumerate(speakers)]
    lines.append("")
    for index, spk in enumerate(speakers):
        lines.append(f"Speaker sentences {index:3d}:  {spk}   #utts: {len(by_speaker[spk])}")
        for trn_id, pairs in by_speaker[spk]:
            lines += [f"id: ({trn_id})"] + _alignment_lines(pairs) + [""]
    return "\n".join(lines) + "\n"


def _summary_table(name: str, rows: Sequence[Tuple[str, ErrorCounts]], total_label: str,
                   cells: Callable[[ErrorCounts], str]) -> List[str]:
    """sclite's summary table (titled so even for counts): speaker rows and a total row.

    Unlike sclite, columns do not widen for large numbers (a blank always separates
    them, so the rows stay parseable)."""
    label_width = max([5, len(total_label)] + [len(spk) + 1 for spk, _ in rows])

    def row(label: str, counts: ErrorCounts) -> str:
        return (f"| {label:<{label_width}}|{counts.sentences:5d} {counts.words:6d} |"
                f"{cells(counts)} |")

    header = (f"| {'SPKR':<{label_width}}| # Snt # Wrd | Corr    Sub    Del    Ins    Err"
              f"  S.Err |")
    inner = len(header) - 2
    rule = "|" + "-" * (label_width + 1) + "+-------------+" + "-" * 41 + "|"
    body = []
    for spk, counts in rows:
        body += [row(spk, counts), rule]
    total = sum((counts for _, counts in rows), ErrorCounts())
    table = ["," + "-" * inner + ".", "|" + name.center(inner) + "|",
             "|" + "-" * inner + "|", header, rule] + body[:-1] + [
        "|" + "=" * inner + "|", row(total_label, total), "|" + "=" * inner + "|",
        "`" + "-" * inner + "'"]
    indent = " " * max(0, (80 - len(header)) // 2)
    return ["SYSTEM SUMMARY PERCENTAGES by SPEAKER".center(80), ""] + [
        indent + line for line in table]


def _percent_cells(counts: ErrorCounts) -> str:
    """Percentages of the reference words; raw counts marked * when there are none."""
    values = (counts.correct, counts.substitutions, counts.deletions, counts.insertions,
              counts.errors)
    sentence_error = 100.0 * counts.sentence_errors / max(counts.sentences, 1)
    if counts.words == 0:
        return (f"{values[0]:5d}*" + "".join(f" {v:5d}*" for v in values[1:])
                + f" {sentence_error:5.1f}")
    percents = [100.0 * v / counts.words for v in values] + [sentence_error]
    return f"{percents[0]:5.1f}" + "".join(f" {p:6.1f}" for p in percents[1:])


def _count_cells(counts: ErrorCounts) -> str:
    values = (counts.correct, counts.substitutions, counts.deletions, counts.insertions,
              counts.errors, counts.sentence_errors)
    return f"{values[0]:5d}" + "".join(f" {v:6d}" for v in values[1:])


def _alignment_lines(pairs: Sequence[AlignedPair]) -> List[str]:
    """sclite's Scores/REF/HYP/Eval lines: errors upper-cased, gaps as '*'."""
    counts = ErrorCounts.of_sentence(pairs)
    ref_cells, hyp_cells, eval_cells = [], [], []
    for op, ref, hyp in pairs:
        width = max(len(ref or ""), len(hyp or ""))
        show = fold_case if op == "C" else str.upper
        ref_cells.append(show(ref) if ref is not None else "*" * width)
        hyp_cells.append(show(hyp) if hyp is not None else "*" * width)
        eval_cells.append("" if op == "C" else op)
        for cells in (ref_cells, hyp_cells, eval_cells):
            cells[-1] = cells[-1].ljust(width)
    return [
        f"Scores: (#C #S #D #I) {counts.correct} {counts.substitutions} "
        f"{counts.deletions} {counts.insertions}",
        "REF:  " + "".join(cell + " " for cell in ref_cells),
        "HYP:  " + "".join(cell + " " for cell in hyp_cells),
        "Eval: " + "".join(cell + " " for cell in eval_cells),
    ]


def parse_sum_avg(report: str, source: str = "report") -> Dict[str, str]:
    """The first ``Sum/Avg`` row of an sclite report as ``{field: value}``."""
    for line in report.splitlines():
        if "Sum/Avg" in line:
            cells = [cell.split() for cell in line.split("|")[2:5]]
            values = [value for cell in cells for value in cell]
            if len(values) == len(SUM_AVG_FIELDS):
                return dict(zip(SUM_AVG_FIELDS, values))
            break
    raise TableError(f"{source}: no well-formed 'Sum/Avg' row")
