"""bench/fault_injection.py: its classification rules, its seeded cases, and a reduced run that meets the targets.

The reduced run is 100 malformed-input cases (a prefix of the full run's 1000), one killed and
resumed training, one kill of each job, and every hostile archive; targets: no unclear crash,
no silent_wrong outcome, no hang, training identical after the kill, no partial output or
left-over file after a kill, every archive refused with nothing written outside its cache and
no code run.
"""
import json
import re
import sys
from pathlib import Path

import pytest

from helpers import run_bounded

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import fault_injection  # noqa: E402
from faults.cases import Case, Ctx, loc  # noqa: E402
from faults.runner import Run  # noqa: E402

FILE = "/data/train/text"


def _case(clean: bool = True) -> Case:
    """A case whose fault is line 3 (utterance u3) of FILE."""
    return Case("tool", "text.non_utf8", lambda: None, "tool", [(FILE, loc(3, "u3"))], lambda: clean)


def _run(status="exception", code=1, user_error=None, message="", output="") -> Run:
    return Run(status, code, message, "", user_error, output, 0.1)


@pytest.mark.parametrize("run, clean, outcome", [
    (_run(user_error=f"{FILE}:3: not valid UTF-8"), True, "clear_error"),
    (_run(user_error=f"{FILE}: utterance 'u3': empty transcript"), True, "clear_error"),
    (_run(user_error="/data/train: text: u3 is not valid UTF-8"), True, "clear_error"),  # directory and name
    (_run(user_error=f"{FILE}: not valid UTF-8"), True, "unclear_crash"),  # no line, no key
    (_run(user_error="line 3: not valid UTF-8"), True, "unclear_crash"),  # no file
    (_run(user_error=f"{FILE}:30: not valid UTF-8"), True, "unclear_crash"),  # another line
    (_run(message=f"UnicodeDecodeError: {FILE}:3"), True, "unclear_crash"),  # internal error
    (_run("exit", 1, message=f"tool: error: {FILE}:3: bad byte"), True, "clear_error"),
    (_run("exit", 2, output=f"usage: tool\ntool: error: {FILE}: line 3 is bad"), True, "clear_error"),
    (_run("signal", -11, message="killed by signal SIGSEGV"), True, "unclear_crash"),
    (_run("timeout", None), True, "hang"),
    (_run("returned", 0, output="INFO skipped 1 of 4 utterances (not UTF-8): u3"), True, "logged_skip"),
    (_run("returned", 0, output="WARNING: 2 lines dropped"), True, "logged_skip"),
    (_run("returned", 0, output="INFO skipped 1 of 4 utterances"), False, "silent_wrong"),  # u3 still written
    (_run("returned", 0, output="INFO wrote 4 utterances; skipping the stamp"), True, "silent_wrong"),  # no count
    (_run("returned", 0, output="INFO drop_last_iter=False, 12 batches"), True, "silent_wrong"),
])
def test_classification_rules(run, clean, outcome):
    assert fault_injection.classify(_case(clean), run) == outcome


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    """The harness's fixtures, built here (in ``<work>/fixtures``, which the reduced run reuses)."""
    return fault_injection.fixtures.build(tmp_path_factory.mktemp("fault_injection") / "fixtures")


def _tree(root: Path) -> dict:
    """{relative path: bytes with ``root`` replaced by a placeholder} of the files under ``root``."""
    return {str(p.relative_to(root)): p.read_bytes().replace(bytes(root), b"<DIR>")
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_case_i_is_seeded_and_the_same_in_runs_of_any_length(fx, tmp_path):
    """The first F cases run each of the F families once; making case i twice writes the same
    bytes and the same command (its directory aside)."""
    count = len(fault_injection.FAMILIES)
    assert {fault_injection.plan(0, i)[0] for i in range(count)} == set(fault_injection.FAMILIES)
    for i in range(count):
        made = []
        for copy in ("a", "b"):
            family, rng = fault_injection.plan(0, i)
            work = tmp_path / f"{i}{copy}"
            work.mkdir()
            case = family.make(Ctx(rng, fx, work))
            made.append((_tree(work), case.command.replace(str(work), "<DIR>"), case.named))
        assert made[0][:2] == made[1][:2], family
        assert [pattern for _, pattern in made[0][2]] == [pattern for _, pattern in made[1][2]], family


def _counts(lines, prefix):
    """{name: int} of the ``name=value`` fields of the report line starting with ``prefix``."""
    line = next(line for line in lines if line.startswith(prefix))
    return {k: int(v) for k, v in (field.split("=") for field in line.split())}


@pytest.mark.timeout(1200)
def test_reduced_run_meets_the_targets(fx, tmp_path):
    report = tmp_path / "cases.jsonl"
    res = run_bounded([
        sys.executable, str(ROOT / "bench" / "fault_injection.py"), "--cases", "100", "--kill_train_runs", "1",
        "--kill_jobs", "1", "--report", str(report), "--keep", str(fx.root.parent),
    ], timeout=1150, capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    counts = dict(line.split("=") for line in lines[-6:])
    assert list(counts) == ["cases", *fault_injection.OUTCOMES]
    assert int(counts["cases"]) == 100 == sum(int(counts[o]) for o in fault_injection.OUTCOMES)
    cases = [json.loads(line) for line in report.read_text().splitlines()]
    problems = [f"{c['entry']} {c['mutation']}: {c['outcome']}: {c['message'][:200]}\n    {c['command']}"
                for c in cases if c["outcome"] in ("unclear_crash", "silent_wrong", "hang")]
    problems += [line for line in lines if re.match(r"(kill|archive)\w*\[", line)]  # the section's failures
    figures = {k: v for p in ("kill_train_runs=", "kill_jobs=", "archive_cases=") for k, v in _counts(lines, p).items()}
    targets = dict(kill_train_runs=1, kill_train_identical=1, kill_jobs=4, kill_partial_outputs=0, kill_leftovers=0,
                   kill_rerun_ok=4, archive_cases=32, archive_refused=32, archive_escaped=0, archive_code_ran=0)
    assert not problems and {k: figures[k] for k in targets} == targets, "\n".join(problems + lines[-12:])
