"""Recipe utilities in egs/ttt_bilingual/utils and their python core espnet2_ttt.utils."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from espnet2_ttt.utils.data_dir import (
    ValidationOptions,
    combine_data,
    copy_data_dir,
    fix_data_dir,
    validate_data_dir,
)
from espnet2_ttt.utils.scp import split_into_chunks, spk2utt_to_utt2spk, utt2spk_to_spk2utt
from espnet2_ttt.utils.table import TableError

from helpers import run_bounded

UTILS = Path(__file__).resolve().parents[1] / "egs" / "ttt_bilingual" / "utils"


def run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a bash snippet with the recipe utilities and this python on PATH."""
    path = f"{UTILS}:{Path(sys.executable).parent}:$PATH"
    return run_bounded(["bash", "-c", f'PATH="{path}"; {command}'], timeout=60, cwd=cwd,
                       capture_output=True, text=True)


def write_dir(path: Path, files: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    return path


def read_dir(path: Path) -> dict:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(path.iterdir()) if p.is_file()}


# ----------------------------------------------------------------- parse_options.sh

PARSE_SCRIPT = r"""#!/usr/bin/env bash
set -euo pipefail
stage=1
use_gpu=false
train_config=conf/train.yaml
inference_args=""
help_message="Usage: demo.sh [options] <set>"
. parse_options.sh
printf '%s\n' "stage=${stage}" "use_gpu=${use_gpu}" "train_config=[${train_config}]" \
    "inference_args=[${inference_args}]" "rest=[$*]"
"""


@pytest.fixture
def demo(tmp_path):
    script = tmp_path / "demo.sh"
    script.write_text(PARSE_SCRIPT)
    script.chmod(0o755)
    return tmp_path


def test_parse_options_sets_variables_and_keeps_positional_args(demo):
    result = run("./demo.sh --stage 3 --use-gpu true --train_config 'my conf.yaml' "
                 "--inference_args= test_set --stage 9", demo)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stage=3", "use_gpu=true", "train_config=[my conf.yaml]", "inference_args=[]",
        "rest=[test_set --stage 9]",
    ]


def test_parse_options_name_equals_value_config_and_double_dash(demo):
    (demo / "extra.conf").write_text("stage=7\ninference_args='--beam 5'\n")
    result = run("./demo.sh --config extra.conf --use_gpu=true -- --not-an-option", demo)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stage=7", "use_gpu=true", "train_config=[conf/train.yaml]",
        "inference_args=[--beam 5]", "rest=[--not-an-option]",
    ]


@pytest.mark.parametrize("args,message", [
    ("--bogus 1", "./demo.sh: invalid option --bogus"),
    ("--use_gpu yes", "./demo.sh: option --use_gpu takes true or false, got 'yes'"),
    ("--stage", "./demo.sh: option --stage needs a value"),
    ("--config missing.conf", "./demo.sh: config file 'missing.conf' not found"),
])
def test_parse_options_errors(demo, args, message):
    result = run(f"./demo.sh {args}", demo)
    assert result.returncode == 1
    assert result.stderr.strip() == message
    assert result.stdout == ""


def test_parse_options_help(demo):
    result = run("./demo.sh --stage 2 --help", demo)
    assert (result.returncode, result.stdout) == (0, "Usage: demo.sh [options] <set>\n")


def test_print_args_quotes_only_where_needed(tmp_path):
    result = run("print_args.py ./run.sh --stage 2 --args 'a b' '' \"it's\"", tmp_path)
    assert result.stdout == "./run.sh --stage 2 --args 'a b' '' 'it'\"'\"'s'\n"


# -------------------------------------------------------------------------- run.pl

LOG_HEADER = re.compile(r"# (?P<command>.*)\n# Started at \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d .*\n")
LOG_FOOTER = re.compile(r"# Accounting: time=\d+ threads=1\n# Ended \(code (?P<rc>-?\d+)\) at .*\n$")


def parse_log(path: Path):
    """(command, job output, exit code) of a run.pl log."""
    text = path.read_text()
    header, footer = LOG_HEADER.match(text), LOG_FOOTER.search(text)
    assert header and footer, text
    return header["command"], text[header.end():footer.start()], int(footer["rc"])


def test_run_pl_substitutes_job_index_in_log_and_command(tmp_path):
    result = run("run.pl JOB=1:3 exp/log/job.JOB.log echo job JOB of 3 '|' tr a-z A-Z", tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    for job in (1, 2, 3):
        command, output, rc = parse_log(tmp_path / f"exp/log/job.{job}.log")
        assert command == f"echo job {job} of 3 | tr a-z A-Z"
        assert (output, rc) == (f"JOB {job} OF 3\n", 0)


def test_run_pl_reports_failed_jobs(tmp_path):
    result = run("run.pl --max-jobs-run 2 JOB=1:3 log/t.JOB.log "
                 "'echo start JOB; [ JOB -ne 2 ] || exit 3'", tmp_path)
    assert result.returncode == 1
    assert result.stderr == "run.pl: 1 / 3 failed, log is in log/t.JOB.log\n"
    assert parse_log(tmp_path / "log/t.2.log")[1:] == ("start 2\n", 3)
    assert parse_log(tmp_path / "log/t.3.log")[1:] == ("start 3\n", 0)


def test_run_pl_launch_form_quotes_arguments_with_blanks(tmp_path):
    """espnet2.bin.launch calls: run.pl --gpu N LOG CMD..."""
    result = run("run.pl --gpu 0 --mem 2G exp/train.log printf %s, 'a b' '' c", tmp_path)
    assert result.returncode == 0, result.stderr
    assert parse_log(tmp_path / "exp/train.log") == ("printf %s, 'a b' '' c", "a b,,c,", 0)


def test_run_pl_max_jobs_run_limits_concurrency(tmp_path):
    job = "'echo start >> trace; sleep 0.3; echo end >> trace'"
    assert run(f"run.pl --max-jobs-run 1 JOB=1:3 log/s.JOB.log {job}", tmp_path).returncode == 0
    assert (tmp_path / "trace").read_text().split() == ["start", "end"] * 3
    (tmp_path / "trace").unlink()
    assert run(f"run.pl --max-jobs-run 3 JOB=1:3 log/p.JOB.log {job}", tmp_path).returncode == 0
    assert (tmp_path / "trace").read_text().split()[:2] == ["start", "start"]


@pytest.mark.parametrize("args,message", [
    ("--bogus 1 log true", "run.pl: unknown option --bogus"),
    ("JOB=1:2 one.log true", "run.pl: 2 jobs would share the log file one.log; put JOB in its name"),
    ("JOB=0:2 x.JOB.log true", "run.pl: bad job range JOB=0:2: need 1 <= a <= b"),
    ("log.txt", "run.pl: need a log file and a command"),
])
def test_run_pl_usage_errors(tmp_path, args, message):
    result = run(f"run.pl {args}", tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == message


# ------------------------------------------------------- split_scp / filter_scp / spk


def test_split_scp_sizes_differ_by_at_most_one(tmp_path):
    lines = [f"u{i:02d} /w/{i}.wav" for i in range(10)]
    (tmp_path / "wav.scp").write_text("\n".join(lines) + "\n")
    assert run("split_scp.pl wav.scp a b c", tmp_path).returncode == 0
    parts = [(tmp_path / name).read_text().splitlines() for name in "abc"]
    assert [len(p) for p in parts] == [3, 4, 3]
    assert sum(parts, []) == lines
    result = run("split_scp.pl -j 3 1 wav.scp", tmp_path)
    assert result.stdout.splitlines() == parts[1]


def test_split_scp_interleave_deals_lines_round_robin(tmp_path):
    lines = [f"u{i} x" for i in range(7)]
    (tmp_path / "in.scp").write_text("\n".join(lines) + "\n")
    assert run("split_scp.pl --interleave in.scp a b c", tmp_path).returncode == 0
    assert [(tmp_path / n).read_text().splitlines() for n in "abc"] == [
        ["u0 x", "u3 x", "u6 x"], ["u1 x", "u4 x"], ["u2 x", "u5 x"]]
    assert run("split_scp.pl --interleave -j 3 2 in.scp", tmp_path).stdout == "u2 x\nu5 x\n"
    result = run("split_scp.pl --interleave --utt2spk=in.scp in.scp a b", tmp_path)
    assert result.returncode != 0 and "exclude each other" in result.stderr


def test_split_scp_keeps_speakers_together():
    sizes = {"A": 3, "B": 1, "C": 2, "D": 4}
    lines = [f"{spk}-{i}" for spk, n in sizes.items() for i in range(n)]
    utt2spk = {line: line[0] for line in lines}
    chunks = split_into_chunks(lines, 3, utt2spk)
    assert [[line[0] for line in chunk] for chunk in chunks] == [
        ["A"] * 3, ["B", "C", "C"], ["D"] * 4]
    assert [len(c) for c in split_into_chunks(lines, 2, utt2spk)] == [4, 6]


def test_split_scp_errors(tmp_path):
    (tmp_path / "in.scp").write_text("a-1 x\nb-1 y\na-2 z\n")
    (tmp_path / "utt2spk").write_text("a-1 a\nb-1 b\na-2 a\n")
    result = run("split_scp.pl in.scp o1 o2 o3 o4", tmp_path)
    assert (result.returncode, result.stderr) == (
        1, "split_scp.pl: error: cannot split 3 lines of in.scp into 4 parts\n")
    assert not (tmp_path / "o1").exists()
    result = run("split_scp.pl --utt2spk=utt2spk in.scp o1 o2", tmp_path)
    assert result.stderr == ("split_scp.pl: error: in.scp: lines of speaker 'a' are not contiguous "
                             "(again at line 3); sort the file by speaker\n")


def test_filter_scp(tmp_path):
    (tmp_path / "ids").write_text("u2 anything\nu4\n")
    (tmp_path / "in.scp").write_text("u1 a\nu2 b\nu3 u4\nu4 d\n")
    assert run("filter_scp.pl ids in.scp", tmp_path).stdout == "u2 b\nu4 d\n"
    assert run("filter_scp.pl --exclude ids in.scp", tmp_path).stdout == "u1 a\nu3 u4\n"
    assert run("cat in.scp | filter_scp.pl -f 2 ids", tmp_path).stdout == "u3 u4\n"


def test_utt2spk_spk2utt_round_trip(tmp_path):
    utt2spk = ["s2-a s2", "s1-b s1", "s2-c s2"]
    assert utt2spk_to_spk2utt(utt2spk) == ["s2 s2-a s2-c", "s1 s1-b"]
    assert spk2utt_to_utt2spk(["s2 s2-a s2-c", "s1 s1-b"]) == ["s2-a s2", "s2-c s2", "s1-b s1"]
    (tmp_path / "utt2spk").write_text("\n".join(utt2spk) + "\n")
    result = run("utt2spk_to_spk2utt.pl utt2spk | spk2utt_to_utt2spk.pl", tmp_path)
    assert result.stdout == "s2-a s2\ns2-c s2\ns1-b s1\n"


# --------------------------------------------------------------------- data dirs

MESSY = {
    "utt2spk": "spkB-u3 spkB\nspkA-u1 spkA\nspkA-u2 spkA\nspkC-u4 spkC\n",
    "text": "spkA-u1 hello world\nspkA-u2 你好 世界\nspkB-u3 bye\nspkA-u1 duplicate\n",
    "wav.scp": "spkA-u1 /a.wav\nspkA-u2 sox /b.wav -t wav - |\nspkB-u3 /c.wav\nspkC-u4 /d.wav\n",
    "utt2lang": "spkA-u1 en\nspkA-u2 zh\nspkB-u3 en\nspkC-u4 en\n",
    "spk2gender": "spkA f\nspkB m\nspkC m\n",
    "spk2utt": "stale line\n",
}
CLEAN = {
    "spk2gender": "spkA f\nspkB m\n",
    "spk2utt": "spkA spkA-u1 spkA-u2\nspkB spkB-u3\n",
    "text": "spkA-u1 hello world\nspkA-u2 你好 世界\nspkB-u3 bye\n",
    "utt2lang": "spkA-u1 en\nspkA-u2 zh\nspkB-u3 en\n",
    "utt2spk": "spkA-u1 spkA\nspkA-u2 spkA\nspkB-u3 spkB\n",
    "wav.scp": "spkA-u1 /a.wav\nspkA-u2 sox /b.wav -t wav - |\nspkB-u3 /c.wav\n",
}


def test_fix_data_dir_sorts_intersects_and_backs_up(tmp_path):
    data = write_dir(tmp_path / "data", MESSY)
    result = run("fix_data_dir.sh data", tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "fix_data_dir.sh: data/utt2spk: removed 1 of 4 lines",
        "fix_data_dir.sh: data/text: removed 1 of 4 lines",
        "fix_data_dir.sh: data/utt2lang: removed 1 of 4 lines",
        "fix_data_dir.sh: data/spk2gender: removed 1 of 3 lines",
        "fix_data_dir.sh: data/wav.scp: removed 1 of 4 lines",
        "fix_data_dir.sh: kept 3 utterances out of 4",
    ]
    assert read_dir(data) == CLEAN
    assert read_dir(data / ".backup") == MESSY
    validate_data_dir(str(data), ValidationOptions(no_feats=True))


def test_fix_data_dir_segments_and_extra_files(tmp_path):
    data = write_dir(tmp_path / "data", {
        "utt2spk": "s-1 s\ns-2 s\ns-3 s\n",
        "segments": "s-1 rec1 0.0 1.5\ns-2 rec2 0 2\ns-3 recX 0 1\n",
        "wav.scp": "rec1 /r1.wav\nrec2 /r2.wav\nrec3 /r3.wav\n",
        "emotion": "s-1 happy\ns-2 sad\ns-3 calm\n",
        "text": "s-1 a\ns-2 b\ns-3 c\n",
    })
    messages = fix_data_dir(str(data), utt_extra_files=["emotion"])
    assert messages[-1] == "kept 2 utterances out of 3"
    assert (data / "wav.scp").read_text() == "rec1 /r1.wav\nrec2 /r2.wav\n"
    assert (data / "emotion").read_text() == "s-1 happy\ns-2 sad\n"
    assert (data / "spk2utt").read_text() == "s s-1 s-2\n"


def test_fix_data_dir_fails_without_common_utterances(tmp_path):
    data = write_dir(tmp_path / "data", {"utt2spk": "a-1 a\n", "text": "b-1 hi\n"})
    result = run("fix_data_dir.sh data", tmp_path)
    assert result.returncode == 1
    assert result.stderr == ("fix_data_dir.sh: error: no utterances remain in data (no id is in all "
                             "of utt2spk, text)\n")
    assert read_dir(data) == {"text": "b-1 hi\n", "utt2spk": "a-1 a\n"}


@pytest.mark.parametrize("change,options,message", [
    ({"utt2spk": "spkA-u2 spkA\nspkA-u1 spkA\nspkB-u3 spkB\n"}, {},
     "data/utt2spk: not sorted: 'spkA-u1' on line 2 comes after 'spkA-u2' "
     "(sort with LC_ALL=C sort -k1,1)"),
    ({"text": "spkA-u1 hello world\nspkB-u3 bye\n"}, {},
     "data/text: utterance 'spkA-u2' of utt2spk is missing (1 missing in all)"),
    ({"spk2utt": "spkA spkA-u1\nspkB spkA-u2 spkB-u3\n"}, {},
     "data/spk2utt: utterance 'spkA-u2' is under speaker 'spkB' but utt2spk says 'spkA'"),
    ({"utt2spk": "spkA-u1 spkB\nspkA-u2 spkB\nspkB-u3 spkA\n",
      "spk2utt": "spkA spkB-u3\nspkB spkA-u1 spkA-u2\n"}, {},
     "data/utt2spk: not sorted by speaker: utterance 'spkB-u3' of speaker 'spkA' comes after "
     "speaker 'spkB'"),
    ({"text": "spkA-u1 hello\x07world\nspkA-u2 x\nspkB-u3 bye\n"}, {},
     "data/text: utterance 'spkA-u1' (line 1) contains the non-printable character U+0007 "
     "(or pass --non-print)"),
    ({"wav.scp": "spkA-u1 /a.wav\nspkB-u3 /c.wav\n"}, {},
     "data/wav.scp: utterance 'spkA-u2' of utt2spk is missing (1 missing in all)"),
    ({}, {"no_feats": False}, "data/feats.scp does not exist (or pass --no-feats)"),
    ({"spk2gender": "spkA female\nspkB m\n"}, {},
     "data/spk2gender: gender of speaker 'spkA' must be m or f, got 'female'"),
])
def test_validate_data_dir_reports_first_problem(tmp_path, monkeypatch, change, options,
                                                 message):
    monkeypatch.chdir(tmp_path)
    write_dir(tmp_path / "data", {**CLEAN, **change})
    flags = {"no_feats": True, **options}
    with pytest.raises(TableError) as error:
        validate_data_dir("data", ValidationOptions(**flags))
    assert str(error.value).startswith(message), str(error.value)


def test_validate_data_dir_command_line(tmp_path):
    write_dir(tmp_path / "data", {**CLEAN, "text": "spkA-u1 \x01\nspkA-u2 x\nspkB-u3 y\n"})
    result = run("validate_data_dir.sh --no-feats data", tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("validate_data_dir.sh: error: data/text: utterance 'spkA-u1'")
    result = run("validate_data_dir.sh --no-feats --non-print data", tmp_path)
    assert (result.returncode, result.stdout) == (
        0, "validate_data_dir.sh: Successfully validated data-directory data\n")


def test_validate_data_dir_segments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_dir(tmp_path / "data", {
        **CLEAN, "wav.scp": "r1 /r1.wav\n",
        "segments": "spkA-u1 r1 0 1\nspkA-u2 r1 1 2.5\nspkB-u3 r2 0 1\n",
    })
    with pytest.raises(TableError, match=r"^data/segments: recording 'r2' of utterance "
                                         r"'spkB-u3' is not in wav.scp$"):
        validate_data_dir("data", ValidationOptions(no_feats=True))


def test_copy_data_dir_with_prefixes(tmp_path):
    write_dir(tmp_path / "src", CLEAN)
    result = run("copy_data_dir.sh --utt-prefix sp0.9- --spk-prefix sp0.9- src dst", tmp_path)
    assert result.returncode == 0, result.stderr
    copied = read_dir(tmp_path / "dst")
    assert copied["utt2spk"] == ("sp0.9-spkA-u1 sp0.9-spkA\nsp0.9-spkA-u2 sp0.9-spkA\n"
                                 "sp0.9-spkB-u3 sp0.9-spkB\n")
    assert copied["spk2utt"] == "sp0.9-spkA sp0.9-spkA-u1 sp0.9-spkA-u2\nsp0.9-spkB sp0.9-spkB-u3\n"
    assert copied["spk2gender"] == "sp0.9-spkA f\nsp0.9-spkB m\n"
    assert copied["wav.scp"].splitlines()[1] == "sp0.9-spkA-u2 sox /b.wav -t wav - |"
    assert read_dir(tmp_path / "src") == CLEAN


def test_copy_data_dir_validates_before_writing(tmp_path):
    write_dir(tmp_path / "src", {**CLEAN, "text": "spkA-u1 a\tb\nspkA-u2 x\nspkB-u3 y\n"})
    with pytest.raises(TableError, match="contains the non-printable character U[+]0009"):
        copy_data_dir(str(tmp_path / "src"), str(tmp_path / "dst"), utt_suffix="-x")
    assert not (tmp_path / "dst").exists()
    copy_data_dir(str(tmp_path / "src"), str(tmp_path / "dst"), utt_suffix="-x",
                  options=ValidationOptions(non_print=True))
    assert (tmp_path / "dst" / "text").read_text().startswith("spkA-u1-x a\tb\n")


def test_combine_data(tmp_path):
    write_dir(tmp_path / "a", CLEAN)
    write_dir(tmp_path / "b", {"utt2spk": "spkC-u9 spkC\n", "text": "spkC-u9 more\n",
                               "wav.scp": "spkC-u9 /z.wav\n", "spk2gender": "spkC f\n",
                               "utt2lang": "spkC-u9 en\n"})
    messages = combine_data(str(tmp_path / "c"), [str(tmp_path / "b"), str(tmp_path / "a")])
    assert messages == [f"combined 4 utterances from 2 directories into {tmp_path / 'c'}",
                        "kept 4 utterances out of 4"]
    combined = read_dir(tmp_path / "c")
    assert combined["spk2utt"] == CLEAN["spk2utt"] + "spkC spkC-u9\n"
    assert combined["text"] == CLEAN["text"] + "spkC-u9 more\n"
    write_dir(tmp_path / "d", {"utt2spk": "spkA-u1 spkA\n", "text": "spkA-u1 other\n"})
    with pytest.raises(TableError, match=r"^id 'spkA-u1' has different lines in .*/a/text "
                                         r"and .*/d/text$"):
        combine_data(str(tmp_path / "e"), [str(tmp_path / "a"), str(tmp_path / "d")])
