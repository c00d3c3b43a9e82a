"""ttt_inference and pack under kill -9 and failure: no output is ever half-written, a failing job
removes its temporaries, and a rerun removes what a killed one left and completes the job."""
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from espnet2_ttt.bin import pack as pack_module
from espnet2_ttt.bin.pack import make_hf_folder, pack_ttt
from espnet2_ttt.bin.ttt_inference import main as ttt_inference
from espnet2_ttt.utils.cli import InputError

from tiny_model import WEIGHTS, train_tiny_model
from user_errors import dead_pid

OUTPUTS = ["audio_codes", "prompt", "text", "token"]
DECODE_ARGS = ["--max_new_tokens", "24", "--block_length", "4", "--steps_per_block", "2", "--max_span_length", "8"]


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("tiny"))


def decode_args(exp, codes, out):
    return ["--train_config", str(exp / "config.yaml"), "--model_file", str(exp / WEIGHTS), "--seed", "3",
            "--data_path_and_name_and_type", f"{codes},speech_codes,text_int", "--output_dir", str(out), *DECODE_ARGS]


def kill_when(cmd, ready, limit=300.0):
    """Start ``cmd`` in a process group of its own and SIGKILL the group as soon as ``ready()``
    holds (polled every millisecond; the condition, not a time, picks the moment).  Fails if
    the command ends first or ``limit`` seconds pass."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          process_group=0, env=env) as proc:
        try:
            deadline = time.monotonic() + limit
            while not ready():
                assert proc.poll() is None, f"ended before the kill point: {proc.stderr.read().decode()[-2000:]}"
                assert time.monotonic() < deadline, "kill point not reached"
                time.sleep(0.001)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def hidden(directory: Path):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_ttt_inference_killed_mid_decoding_leaves_no_output_and_a_rerun_completes(exp, tmp_path):
    codes = tmp_path / "codes"
    codes.write_text("".join(f"u{i:03d} {i % 16} {(3 * i) % 16} {(5 * i) % 16}\n" for i in range(160)))
    out = tmp_path / "out"

    def mid_decoding():  # several utterances written to the temporary token file
        return any(p.name.startswith(".token.tmp") and p.stat().st_size > 0 for p in out.glob(".*")) if out.exists() else False

    kill_when([sys.executable, "-m", "espnet2_ttt.bin.ttt_inference", *decode_args(exp, codes, out)], mid_decoding)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == []  # nothing final, nothing partial
    assert len(hidden(out)) == 4  # the killed job's temporaries
    ttt_inference(decode_args(exp, codes, out))
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS  # the rerun removed them
    keys = [line.split()[0] for line in codes.read_text().splitlines()]
    for name in OUTPUTS:
        assert [line.split(" ", 1)[0] for line in (out / name).read_text().splitlines()] == keys


def test_ttt_inference_that_fails_mid_job_removes_its_temporaries(exp, tmp_path):
    codes = tmp_path / "codes"
    codes.write_text("u1 1 2 3\nu2 4 5\nu3 " + " ".join(["1"] * 130) + "\n")  # u3: longer than the model
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".text.tmp{dead_pid()}"
    stale.write_text("u0 left by a killed job\n")
    with pytest.raises(InputError, match="utterance 'u3': prompt of 140 tokens leaves no room"):
        ttt_inference(decode_args(exp, codes, out))
    assert list(out.iterdir()) == []


def test_pack_killed_while_writing_leaves_no_archive_and_a_rerun_completes(exp, tmp_path):
    option = tmp_path / "big.bin"
    with open(option, "wb") as f:
        f.truncate(64 << 20)  # a 64 MiB file to ship: the archive takes a while to write
    target = tmp_path / "out" / "packed.zip"

    def archive_being_written():  # the staging copy is complete and the zip inside it started
        return any((stage / "packed.zip").exists() for stage in target.parent.glob(".packed.tmp*.zip"))

    cmd = [sys.executable, "-m", "espnet2_ttt.bin.pack", "--train_config", str(exp / "config.yaml"),
           "--model_file", str(exp / WEIGHTS), "--option", str(option), "--outpath", str(target)]
    kill_when(cmd, archive_being_written)
    assert not target.exists()
    [stage] = hidden(target.parent)  # the staging directory with its partial zip
    assert (target.parent / stage / "ttt" / "big.bin").exists()
    pack_ttt(str(exp / "config.yaml"), str(exp / WEIGHTS), str(target), options=[str(option)])
    assert sorted(p.name for p in target.parent.iterdir()) == ["packed.zip"]
    with zipfile.ZipFile(target) as z:
        assert z.testzip() is None
        assert sorted(z.namelist()) == ["meta.yaml", "ttt/big.bin", "ttt/config.yaml", "ttt/model.pth"]


def test_pack_that_fails_removes_its_staging_copy(exp, tmp_path, monkeypatch):
    def failing_pack(files, yaml_files, option, outpath):
        Path(outpath).write_bytes(b"PK partial")
        raise OSError(28, "No space left on device", outpath)

    monkeypatch.setattr(pack_module, "pack", failing_pack)
    with pytest.raises(OSError, match="No space left on device"):
        pack_ttt(str(exp / "config.yaml"), str(exp / WEIGHTS), str(tmp_path / "packed.zip"))
    assert list(tmp_path.iterdir()) == []


def test_the_upload_folder_replaces_the_old_one_whole(exp, tmp_path):
    packed = tmp_path / "packed.zip"
    pack_ttt(str(exp / "config.yaml"), str(exp / WEIGHTS), str(packed))
    hf = tmp_path / "hf"
    (hf / "old_file").parent.mkdir()
    (hf / "old_file").write_text("from the last upload folder")
    stale = tmp_path / f".hf.tmp{dead_pid()}"
    stale.mkdir()
    make_hf_folder(str(packed), str(hf), str(exp / "config.yaml"), None, "", "user/tiny")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "packed.zip"]
    assert sorted(p.name for p in hf.iterdir()) == ["README.md", "meta.yaml", "ttt"]
    assert "user/tiny" in (hf / "README.md").read_text()
