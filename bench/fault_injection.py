#!/usr/bin/env python3
"""Fault injection: malformed inputs for every entry point, kill -9 at random points, hostile archives.

    OMP_NUM_THREADS=1 tools/venv/bin/python bench/fault_injection.py [--seed 0] [--cases 1000]
        [--sections inputs,kill,archives] [--verbose] [--report cases.jsonl]
        [--case I --keep DIR]   # rerun case I alone, keep its files, print its command line

Sections:

inputs    ``--cases`` malformed inputs, generated from ``--seed`` by the families of
          ``bench/faults/cases.py`` (truncation, byte flips, wrong encodings, wrong shapes and ids,
          out-of-range codes, broken structure) over format_wav, speech_tokenize,
          speech_detokenize, build_sequences, make_token_list, convert_official, ttt_train
          (--collect_stats and a 1-epoch training), ttt_inference, pack, and model loading
          (``TtTInference``, ``TtTInference.from_pretrained``).  Case i runs family
          ``perm[i mod F]`` (``perm``: a seeded permutation of the F families) with its own
          generator seeded by ``"<seed>:<i>"``, so a shorter run is a prefix of a longer one
          and case i is the same in both.  The valid fixtures (``bench/faults/fixtures.py``) are
          built once; each case corrupts copies in a directory of its own.  Each case runs
          in a fork of this process (``bench/faults/runner.py``): the entry point's ``main(argv)``
          or the API call, its stdout/stderr captured, a ``SystemExit`` taken as the exit
          status, an escaped exception as a traceback with status 1, and a time limit
          (``--timeout``, twice that for training) after which its process group is killed.
kill      ``bench/faults/kill.py``: ttt_train killed with SIGKILL at random points (mid-epoch
          and while checkpoint.pth is written) and resumed; ttt_inference, speech_tokenize,
          format_wav and pack killed at random points, checked for half-written outputs and
          left-over temporary files, and rerun.
archives  ``bench/faults/archives.py``: packed models with path-traversal members, absolute
          paths, symlinks pointing outside, pickle payloads, loaded by ``from_pretrained`` and
          ``ttt_inference --model_tag``.

Classification of an input case (first rule that applies):

hang           the time limit passed.
logged_skip    exit status 0, a line of the output (log) says the bad item was skipped: one of
               skip(ped) / drop(ped) / discard(ed) / ignored within three blank-separated words
               of a number (the count), and the output holds no trace of the bad item (each case
               knows which output keys come from its bad input; a duplicated id may remain once).
silent_wrong   exit status 0 otherwise: every case's input is malformed, so accepting it
               without a logged skip, or logging one while the output still holds the bad item,
               is a silently wrong result.  (A loader that returns a model built from a
               malformed file is silent_wrong.)
clear_error    the call failed with a user error, and the one line the command line prints for it
               names the offending file (its path, or its directory and its name) and, when the
               fault is in one line, record or tensor, that line number (``file:N``, ``line N``)
               or key.  A user error is a non-zero ``SystemExit`` (its message, else the last
               line written, is the line) or an exception that
               :func:`espnet2_ttt.utils.cli.user_error_message` accepts (``InputError``, an
               ``OSError`` naming its file; the line is that message): the test ``cli.run`` and
               the API's callers use.  A packed model's member may be named instead of the archive.
unclear_crash  any other failure: an internal error (any other exception: a traceback on the
               command line), a user error whose line names neither the file nor the line/key,
               a crash by a signal.

The report is a per-entry-point table of the outcomes, the kill and archive lines, and last, exactly:
``cases=N``, ``clear_error=N``, ``logged_skip=N``, ``unclear_crash=N``, ``silent_wrong=N``,
``hang=N``.  Targets: 0 unclear_crash, 0 silent_wrong, 0 hang; kill: no partial output, every
rerun and resumed training complete and identical; archives: every hostile archive refused,
nothing written outside the cache, no code run.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import logging
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from faults import archives, fixtures, kill  # noqa: E402
from faults.cases import FAMILIES, Case, Ctx  # noqa: E402
from faults.runner import Run, run_forked  # noqa: E402

OUTCOMES = ("clear_error", "logged_skip", "unclear_crash", "silent_wrong", "hang")
SECTIONS = ("inputs", "kill", "archives")
_SKIP_WORD = r"(?:skip(?:ped|ping)?|drop(?:ped|ping)?|discard(?:ed|ing)?|ignor(?:ed|ing))"
_WORDS = r"(?:[^\W\d]+[ \t]+){0,3}"  # up to three words, blanks between: one clause
SKIP_LINE = re.compile(rf"\b{_SKIP_WORD}\b:?[ \t]+{_WORDS}\d+\b|\b\d+[ \t]+{_WORDS}{_SKIP_WORD}\b", re.IGNORECASE)


def plan(seed: int, index: int):
    """The family and generator of input case ``index`` (module docstring)."""
    order = list(range(len(FAMILIES)))
    random.Random(seed).shuffle(order)
    return FAMILIES[order[index % len(order)]], random.Random(f"{seed}:{index}")


def names_file(path: str, line: str) -> bool:
    """``line`` names file ``path``: the path itself, or its directory and its name."""
    directory, _, name = path.rpartition("/")
    named_in_directory = directory and directory in line and re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", line)
    return path in line or bool(named_in_directory)


def names_the_fault(case: Case, line: str) -> bool:
    return any(names_file(file, line) and (pattern is None or re.search(pattern, line)) for file, pattern in case.named)


def classify(case: Case, run: Run) -> str:
    """The outcome of ``run`` of ``case`` (rules in the module docstring)."""
    if run.status == "timeout":
        return "hang"
    if run.ok:
        skipped = any(SKIP_LINE.search(line) for line in run.output.splitlines())
        return "logged_skip" if skipped and case.clean() else "silent_wrong"
    if run.status == "exception" and run.user_error is None or run.status == "signal":
        return "unclear_crash"
    return "clear_error" if names_the_fault(case, run.final_line) else "unclear_crash"


def run_inputs(args, fx: fixtures.Fixtures, work: Path, report) -> Dict[str, collections.Counter]:
    """Run the input cases; returns {entry: Counter of outcomes (and "by_exception")}."""
    table: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    indices = [args.case] if args.case is not None else range(args.cases)
    for index in indices:
        fam, rng = plan(args.seed, index)
        case_dir = work / f"case{index:05d}"
        shutil.rmtree(case_dir, ignore_errors=True)
        case_dir.mkdir(parents=True)
        case = fam.make(Ctx(rng, fx, case_dir))
        run = run_forked(case.call, args.timeout * (2 if case.slow else 1))
        outcome = classify(case, run)
        table[case.entry][outcome] += 1
        record = dict(index=index, entry=case.entry, mutation=case.mutation, outcome=outcome,
                      exit=run.code, exception=run.exc_type, message=run.final_line[:500],
                      seconds=round(run.seconds, 3), command=case.command)
        if report:
            report.write(json.dumps(record) + "\n")
        if args.verbose or args.case is not None:
            print(f"[{index}] {case.entry} {case.mutation}: {outcome} (exit {run.code}, {run.seconds:.2f}s): "
                  f"{record['message'][:300]}", flush=True)
        if args.case is not None:
            print(f"command: {case.command}\nfiles: {case_dir}\noutput:\n{run.output}")
        else:
            shutil.rmtree(case_dir, ignore_errors=True)
    return table


def print_table(table: Dict[str, collections.Counter]) -> None:
    columns = ("cases",) + OUTCOMES
    print(f"{'entry point':18s}" + "".join(f"{c:>14s}" for c in columns))
    for entry in sorted(table):
        counts = table[entry]
        row = [sum(counts[o] for o in OUTCOMES)] + [counts[c] for c in columns[1:]]
        print(f"{entry:18s}" + "".join(f"{n:14d}" for n in row))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, default=1000, help="number of malformed-input cases")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per input case (training: twice)")
    parser.add_argument("--kill_train_runs", type=int, default=5, help="ttt_train runs killed and resumed")
    parser.add_argument("--kill_jobs", type=int, default=2, help="kills of each of the four other jobs")
    parser.add_argument("--verbose", action="store_true", help="one line per input case")
    parser.add_argument("--report", default=None, help="write every input case as a JSON line here")
    parser.add_argument("--case", type=int, default=None, help="run input case I alone (with --keep)")
    parser.add_argument("--keep", default=None, help="work in this directory and keep it")
    args = parser.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    if set(sections) - set(SECTIONS):
        parser.error(f"--sections must be a subset of {SECTIONS}, got {args.sections!r}")
    if args.case is not None:
        sections = ["inputs"]
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    sys.stdout.reconfigure(errors="backslashreplace")  # messages may quote undecodable bytes
    torch.set_num_threads(1)

    work = Path(args.keep or tempfile.mkdtemp(prefix="fault_injection.")).resolve()
    start = time.monotonic()
    try:
        built = run_forked(lambda: fixtures.build(work / "fixtures"), 600) if not (work / "fixtures").is_dir() else None
        if built is not None and not built.ok:
            sys.exit(f"fault_injection: error: building the fixtures failed: {built.final_line}\n{built.output}")
        fx = fixtures.Fixtures(work / "fixtures")
        for section in sections:  # a kept directory's earlier results
            shutil.rmtree(work / section, ignore_errors=True)
        lines = []
        if "kill" in sections:
            lines += kill.run(fx, work / "kill", args.seed, args.kill_train_runs, args.kill_jobs)
        if "archives" in sections:
            lines += archives.run(fx, work / "archives")
        table: Dict[str, collections.Counter] = {}
        if "inputs" in sections:
            with contextlib.ExitStack() as stack:
                report = stack.enter_context(open(args.report, "w", encoding="utf-8")) if args.report else None
                table = run_inputs(args, fx, work / "inputs", report)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if table:
        print_table(table)
    print(f"seconds={time.monotonic() - start:.0f}")
    for line in lines:
        print(line)
    if "inputs" in sections:
        totals = collections.Counter()
        for counts in table.values():
            totals.update(counts)
        print(f"cases={sum(totals[o] for o in OUTCOMES)}")
        for outcome in OUTCOMES:
            print(f"{outcome}={totals[outcome]}")


if __name__ == "__main__":
    main()
