"""Local parallel job runner with the command line of Kaldi's run.pl.

``run.pl [options] [VAR=a:b | VAR=n] LOG COMMAND...`` runs COMMAND with ``bash -c``
once per job index, replacing the literal VAR in LOG and COMMAND by the index, and
captures each job's stdout+stderr in its LOG between a header and a footer.
"""

import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List, NamedTuple, Optional, Sequence

USAGE = """\
usage: run.pl [--gpu N] [--mem M] [--num-threads N] [--max-jobs-run N] [--time T]
              [--config F] [VAR=a:b | VAR=n] LOG COMMAND...
Run COMMAND (through bash -c) once, or once per job index a..b with the literal VAR
replaced by the index in LOG and COMMAND; stdout and stderr go to LOG.
  --max-jobs-run N   run at most N jobs at a time (default: number of CPUs)
  --gpu, --mem, --num-threads, --time, --config: accepted for compatibility, ignored
Several COMMAND words are joined by spaces, quoting those that contain blanks; a
single COMMAND word is used as a shell command line as is (e.g. "a | b > out").
Exit status 0 if all jobs succeed, else 1.
"""
IGNORED_OPTIONS = ("gpu", "mem", "num-threads", "time", "config")
JOB_RANGE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$")


class UsageError(Exception):
    """The command line is invalid."""


class JobArray(NamedTuple):
    """What run.pl runs: ``command`` once per index, ``job_var`` replaced by it."""

    max_jobs: int
    job_var: Optional[str]  # None: a single job, nothing replaced
    indices: List[Optional[int]]
    log_pattern: str
    command: str


def parse_command_line(argv: Sequence[str]) -> JobArray:
    """Parse run.pl's command line (see USAGE)."""
    argv = list(argv)
    max_jobs = os.cpu_count() or 1
    while argv and argv[0].startswith("--"):
        name, has_value, value = argv.pop(0)[2:].partition("=")
        name = name.replace("_", "-")
        if name not in IGNORED_OPTIONS + ("max-jobs-run",):
            raise UsageError(f"unknown option --{name}")
        if not has_value:
            if not argv:
                raise UsageError(f"option --{name} needs a value")
            value = argv.pop(0)
        if name == "max-jobs-run":
            if not value.isdigit() or int(value) < 1:
                raise UsageError(f"--max-jobs-run needs a positive integer, got '{value}'")
            max_jobs = int(value)
    job_var, indices = None, [None]
    match = JOB_RANGE.match(argv[0]) if argv else None
    if match:
        argv.pop(0)
        job_var = match.group(1)
        first = int(match.group(2))
        last = int(match.group(3) or first)
        if first < 1 or last < first:
            raise UsageError(f"bad job range {match.group(0)}: need 1 <= a <= b")
        indices = list(range(first, last + 1))
    if len(argv) < 2:
        raise UsageError("need a log file and a command")
    log_pattern = argv[0]
    if len(indices) > 1 and job_var not in log_pattern:
        raise UsageError(f"{len(indices)} jobs would share the log file {log_pattern}; "
                         f"put {job_var} in its name")
    return JobArray(max_jobs, job_var, indices, log_pattern, join_command(argv[1:]))


def join_command(words: Sequence[str]) -> str:
    """Join COMMAND words into one shell command line (see USAGE)."""
    if len(words) == 1:
        return words[0]
    return " ".join(shlex.quote(w) if w == "" or re.search(r"\s", w) else w for w in words)


def _now() -> str:
    return time.strftime("%a %b %e %H:%M:%S %Z %Y")


def run_job(command: str, log_path: str) -> int:
    """Run ``command`` with its output in ``log_path``; return its exit status."""
    try:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        with open(log_path, "w", encoding="utf-8") as log:
            log.write(f"# {command}\n# Started at {_now()}\n")
            log.flush()
            start = time.monotonic()
            status = subprocess.run(["bash", "-c", command], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT).returncode
            log.write(f"# Accounting: time={round(time.monotonic() - start)} threads=1\n"
                      f"# Ended (code {status}) at {_now()}\n")
    except OSError as e:
        print(f"run.pl: cannot run job with log {log_path}: {e}", file=sys.stderr)
        return 1
    return status


def run_jobs(jobs: JobArray) -> List[int]:
    """Run all jobs, at most ``jobs.max_jobs`` at a time; return their exit statuses."""

    def substitute(text: str, index: Optional[int]) -> str:
        return text if jobs.job_var is None else text.replace(jobs.job_var, str(index))

    def run_index(index: Optional[int]) -> int:
        return run_job(substitute(jobs.command, index), substitute(jobs.log_pattern, index))

    with ThreadPoolExecutor(max_workers=min(jobs.max_jobs, len(jobs.indices))) as pool:
        return list(pool.map(run_index, jobs.indices))


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    try:
        jobs = parse_command_line(argv)
    except UsageError as e:
        print(f"run.pl: {e}\n{USAGE}", end="", file=sys.stderr)
        return 1
    statuses = run_jobs(jobs)
    failed = sum(status != 0 for status in statuses)
    if failed:
        print(f"run.pl: {failed} / {len(statuses)} failed, log is in {jobs.log_pattern}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
