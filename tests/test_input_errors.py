"""The command-line error convention (utils/cli) and the table reader every input goes through (utils/table)."""
import json
import os

import pytest

from espnet2_ttt.bin import merge_outputs, prepare_eval
from espnet2_ttt.utils.cli import DEBUG_ENV, InputError, run
from espnet2_ttt.utils.table import atomic_path, read_entries, remove_stale_temps

from user_errors import dead_pid, error_line


# ---------------------------------------------------------------------- cli.run
def failing(error: Exception):
    def main(argv):
        raise error
    return main


def test_a_user_error_is_one_line_and_exit_status_1(capsys, monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    main = failing(InputError("data/text:3: not valid UTF-8\n(byte 0xff)"))
    assert error_line(capsys, main, "tool", []) == "tool: error: data/text:3: not valid UTF-8 (byte 0xff)"
    assert error_line(capsys, failing(FileNotFoundError(2, "No such file or directory", "data/wav.scp")), "tool", []) \
        == "tool: error: data/wav.scp: No such file or directory"


def test_debug_shows_the_traceback_and_internal_errors_keep_theirs(monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(InputError, match="bad"):
        run(failing(InputError("bad")), "tool", [])
    monkeypatch.delenv(DEBUG_ENV)
    for internal in (RuntimeError("bug"), OSError("no file named"), KeyError("k")):
        with pytest.raises(type(internal)):
            run(failing(internal), "tool", [])


def test_an_input_error_raised_in_a_dataloader_worker_is_reported_as_the_worker_raised_it(capsys):
    from torch._utils import ExceptionWrapper

    try:
        raise InputError("dump/train/seq: utterance 'u1': audio span opened at 7 is never closed")
    except InputError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(SystemExit) as exit_:
        run(lambda argv: wrapped.reraise(), "ttt_train", [])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == ("ttt_train: error: dump/train/seq: utterance 'u1': audio span opened at 7 "
                                       "is never closed\n")


def test_success_exits_0_with_the_arguments_given():
    seen = []
    with pytest.raises(SystemExit) as exit_info:
        run(seen.append, "tool", ["--x", "1"])
    assert (exit_info.value.code, seen) == (0, [["--x", "1"]])


# ---------------------------------------------------------------------- table files
@pytest.mark.parametrize("data, message", [
    (b"a 1\nb \xff2\n", ":2: not valid UTF-8 (byte 0xff at column 3)"),
    ("a 1\nb caf\u00e9 ".encode("utf-8") + b"\xe9\n", ":2: not valid UTF-8 (byte 0xe9 at column 8)"),  # characters
    ("a 1\n".encode("utf-16"), ":1: not valid UTF-8 (byte 0xff at column 1)"),
    ("\ufeffa 1\n".encode("utf-8"), ":1: starts with a byte-order mark (save it as UTF-8 without BOM)"),
    (b"a 1\nb\x002\n", ":2: NUL byte at column 2 (UTF-16 or a binary file?)"),
    (b"a 1\n\nb 2\na 3\n", ":4: duplicate key 'a' (first on line 1)"),
    (b"a 1\nb\n", ":2: key 'b' has no value"),
    (b"\n \n", ": empty: it has no entries"),
])
def test_read_entries_refuses_what_is_not_a_table(tmp_path, data, message):
    (tmp_path / "t").write_bytes(data)
    with pytest.raises(InputError) as err:
        read_entries(tmp_path / "t")
    assert str(err.value) == f"{tmp_path}/t{message}"


def test_read_entries(tmp_path):
    (tmp_path / "t").write_text("a  1 2 \n\n  b x\nc\n")
    assert read_entries(tmp_path / "t", need_value=False) == [("a", "1 2", 1), ("b", "x", 3), ("c", "", 4)]
    (tmp_path / "t").write_text("a 1\nb 2")
    with pytest.raises(InputError, match=r"t:2: the last line has no newline: the file is cut short$"):
        read_entries(tmp_path / "t", complete_lines=True)


def test_stale_temporaries_of_a_target_are_removed_those_of_live_processes_kept(tmp_path):
    dead, live = dead_pid(), os.getppid()
    names = [f".codes.tmp{dead}.1", f".codes.tmp{live}.1", f".codes.tmp{dead}.2", f".x.old{dead}"]
    for name in names:
        (tmp_path / name).write_text("partial")
    (tmp_path / f".d.tmp{dead}" / "wav").mkdir(parents=True)
    with atomic_path(tmp_path / "codes.1") as tmp:
        tmp.write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".codes.tmp{live}.1", f".codes.tmp{dead}.2", f".d.tmp{dead}", f".x.old{dead}", "codes.1"])
    assert remove_stale_temps(tmp_path) == 3  # every target's
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".codes.tmp{live}.1", "codes.1"]


# ---------------------------------------------------------------------- prepare_eval, merge_outputs
@pytest.fixture
def eval_inputs(tmp_path):
    (tmp_path / "codes").write_text("q1 1 2 3\nq2 4 5\n")
    (tmp_path / "utt2lang").write_text("q1 en\nq2 zh\n")
    records = [{"id": "qa-q1", "task": "qa", "lang": "en", "question_utt": "q1", "question_text": "what?",
                "answer_text": "this", "answer_utt": "q2", "answer_key": ["this"]},
               {"id": "asr-q2", "task": "asr", "lang": "zh", "question_utt": "q2", "question_text": None,
                "answer_text": "你好", "answer_utt": None, "answer_key": []}]
    (tmp_path / "dialogues.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return tmp_path


def prepare_eval_error(capsys, d) -> str:
    line = error_line(capsys, prepare_eval.main, "prepare_eval", [
        "--dialogues", d / "dialogues.jsonl", "--codes", d / "codes", "--utt2lang", d / "utt2lang",
        "--output_dir", d / "out", "--tasks", "asr,qa"])
    return line.replace(str(d), "D")


def test_prepare_eval_names_the_bad_input(eval_inputs, capsys):
    d = eval_inputs
    prepare_eval.main([f"--{k}={d / v}" for k, v in [("dialogues", "dialogues.jsonl"), ("codes", "codes"),
                                                      ("utt2lang", "utt2lang"), ("output_dir", "out")]] + ["--tasks", "asr,qa"])
    assert (d / "out" / "qa" / "codes").read_text() == "qa-q1 1 2 3\n"
    (d / "codes").write_text("q1 1 2 3\nq2 4 five\n")
    assert prepare_eval_error(capsys, d) == "prepare_eval: error: D/codes:2: utterance 'q2': codes must be integers, got 'five'"
    (d / "codes").write_text("q1 1 2 3\n")
    assert prepare_eval_error(capsys, d) == \
        "prepare_eval: error: D/dialogues.jsonl:2 (asr-q2): utterance q2 has no codes in D/codes"
    (d / "codes").write_text("q1 1 2 3\nq2 4 5\n")
    (d / "dialogues.jsonl").write_text(
        (d / "dialogues.jsonl").read_text().replace('"answer_key": ["this"]', '"answer_key": "this"'))
    assert prepare_eval_error(capsys, d) == ("prepare_eval: error: D/dialogues.jsonl:1 (qa-q1): field 'answer_key' "
                                             "must be a non-empty list of strings, got 'this'")


def test_merge_outputs_names_both_jobs_of_a_key(tmp_path, capsys):
    for job, text in (("1", "a x\nb y\n"), ("2", "c z\na w\n")):
        (tmp_path / job).mkdir()
        (tmp_path / job / "text").write_text(text)
    argv = ["--inputs", tmp_path / "1", tmp_path / "2", "--output_dir", tmp_path / "out", "--files", "text"]
    assert error_line(capsys, merge_outputs.main, "merge_outputs", argv) == \
        f"merge_outputs: error: {tmp_path}/2/text: key 'a' is also in {tmp_path}/1/text"
    (tmp_path / "2" / "text").write_bytes(b"c z\nd \xe9\n")
    assert error_line(capsys, merge_outputs.main, "merge_outputs", argv) == \
        f"merge_outputs: error: {tmp_path}/2/text:2: not valid UTF-8 (byte 0xe9 at column 3)"
    assert not (tmp_path / "out" / "text").exists()
