"""End-to-end training through ESPnet's trainer: outputs, strict reload, resume, DDP, bad data."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from espnet2_ttt.bin.ttt_train import main as ttt_train
from espnet2_ttt.tasks.ttt import TtTTask

from helpers import chat_sequence, run_bounded, tiny_vocab, write_seq_file

ROOT = Path(__file__).resolve().parents[1]
SMALL = "--backbone_conf d_model=32 --backbone_conf n_layer=2 --backbone_conf n_head=2".split()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("ttt_data")
    rng = random.Random(0)
    tiny_vocab().save(d / "tokens.txt")
    write_seq_file(d / "train" / "seq", {f"utt{i:03d}": chat_sequence(rng, rng.randint(1, 3)) for i in range(32)})
    write_seq_file(d / "valid" / "seq", {f"val{i:03d}": chat_sequence(rng, rng.randint(1, 3)) for i in range(8)})
    ttt_train(_common(d) + ["--collect_stats", "true", "--output_dir", str(d / "stats")])
    return d


def _common(d, train="train"):
    return [
        "--token_list", str(d / "tokens.txt"),
        "--train_data_path_and_name_and_type", f"{d / train / 'seq'},seq,text",
        "--valid_data_path_and_name_and_type", f"{d / 'valid' / 'seq'},seq,text",
        "--ngpu", "0", "--batch_size", "4", "--num_workers", "0",
        "--use_tensorboard", "false", "--use_matplotlib", "false", *SMALL,
    ]


def _train_args(d, out, epochs):
    return _common(d) + [
        "--output_dir", str(out),
        "--train_shape_file", str(d / "stats" / "train" / "seq_shape"),
        "--valid_shape_file", str(d / "stats" / "valid" / "seq_shape"),
        "--fold_length", "150", "--max_epoch", str(epochs), "--seed", "3",
        "--optim", "adamw", "--optim_conf", "lr=0.01", "--keep_nbest_models", "2",
    ]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return env


@pytest.fixture(scope="module")
def trained(data):
    out = data / "exp_full"
    ttt_train(_train_args(data, out, 4))
    return out


def test_training_writes_espnet_outputs_and_loss_falls(trained):
    for name in ("checkpoint.pth", "config.yaml", "valid.acc.ave.pth", "valid.acc.best.pth", "4epoch.pth"):
        assert (trained / name).exists(), name
    stats = torch.load(trained / "checkpoint.pth", weights_only=False)["reporter"]["stats"]
    valid = [stats[e]["valid"] for e in sorted(stats)]
    assert valid[-1]["loss"] < valid[0]["loss"]
    assert valid[-1]["acc_audio"] > valid[0]["acc_audio"]
    assert {"loss", "loss_ar", "loss_diff", "acc", "acc_text", "acc_audio"} <= set(valid[0])


def test_checkpoints_reload_strictly(trained):
    for name in ("valid.acc.ave.pth", "4epoch.pth"):
        model, args = TtTTask.build_model_from_file(trained / "config.yaml", trained / name, "cpu")
        state = torch.load(trained / name, weights_only=True)
        assert set(state) == set(model.state_dict())
        assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert isinstance(args.token_list, list) and args.token_list == tiny_vocab().token_list
    # a missing or extra key is an error, never a partial load
    state.pop("backbone.norm.weight")
    torch.save(state, trained / "broken.pth")
    with pytest.raises(RuntimeError, match="norm.weight"):
        TtTTask.build_model_from_file(trained / "config.yaml", trained / "broken.pth", "cpu")


def test_resume_after_kill_matches_uninterrupted_run(data, trained):
    out = data / "exp_killed"
    cmd = [sys.executable, "-m", "espnet2_ttt.bin.ttt_train", *_train_args(data, out, 4)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "1epoch.pth").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "1epoch.pth").exists() and not (out / "4epoch.pth").exists()
    ttt_train(_train_args(data, out, 4) + ["--resume", "true"])
    a = torch.load(trained / "4epoch.pth", weights_only=True)
    b = torch.load(out / "4epoch.pth", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_process_gloo_training_keeps_ranks_identical(data, tmp_path):
    out = tmp_path / "exp_ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(ROOT / "tests" / "dist_worker.py"), *_train_args(data, out, 2), "--dist_backend", "gloo",
    ]
    res = run_bounded(cmd, timeout=600, env=_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    r0 = torch.load(out / "rank0_final.pth", weights_only=True)
    r1 = torch.load(out / "rank1_final.pth", weights_only=True)
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    assert (out / "2epoch.pth").exists()


@pytest.mark.parametrize(
    "line, error, message",
    [
        ("bad001", RuntimeError, "bad/seq.*L1: bad001"),  # ESPnet's reader names file, line and utterance
        ("bad001 <|im_start|> ▁w1 <|audio_16|>", ValueError,
         r"bad001.*token #2 '<\|audio_16\|>'.*out of range for codebook size 16"),
        ("bad001 " + " ".join(["▁w1"] * 3000), ValueError, "bad001.*3000 tokens exceed max_seq_len=2048"),
        ("bad001 ▁w1 <unk>", ValueError, "bad001.*<unk>, not allowed"),
    ],
)
def test_bad_sequences_are_errors_naming_the_utterance(data, tmp_path, line, error, message):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "seq").write_text(line + "\n", encoding="utf-8")
    args = _common(data) + ["--collect_stats", "true", "--output_dir", str(tmp_path / "stats")]
    args[args.index("--train_data_path_and_name_and_type") + 1] = f"{d / 'seq'},seq,text"
    with pytest.raises(error, match=message):
        ttt_train(args)


def test_shape_file_naming_a_missing_utterance_is_an_error(data, tmp_path):
    shape = tmp_path / "seq_shape"
    shape.write_text((data / "stats" / "train" / "seq_shape").read_text() + "ghost_utt 12\n")
    args = _train_args(data, tmp_path / "exp", 1)
    args[args.index("--train_shape_file") + 1] = str(shape)
    with pytest.raises(Exception, match="ghost_utt"):
        ttt_train(args)
