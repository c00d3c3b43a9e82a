"""End-to-end training through ESPnet's trainer: outputs, strict reload, resume, DDP, bad data."""
import os
import random
import sys
from pathlib import Path
from typing import List

import pytest
import torch

from espnet2_ttt.bin.ttt_train import main as ttt_train
from espnet2_ttt.tasks.ttt import TtTTask
from espnet2_ttt.utils.cli import InputError, run

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


def test_checkpoints_reload_strictly(trained, tmp_path):
    for name in ("valid.acc.ave.pth", "4epoch.pth"):
        model, args = TtTTask.build_model_from_file(trained / "config.yaml", trained / name, "cpu")
        state = torch.load(trained / name, weights_only=True)
        assert set(state) == set(model.state_dict())
        assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert isinstance(args.token_list, list) and args.token_list == tiny_vocab().token_list
    # a missing key is an error naming the file and the key, never a partial load (tests/test_model_loading.py)
    state.pop("backbone.norm.weight")
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(InputError, match=r"broken\.pth: backbone\.norm\.weight: missing"):
        TtTTask.build_model_from_file(trained / "config.yaml", tmp_path / "broken.pth", "cpu")


def _kill_points(seed: int, epochs: int = 4, steps: int = 8) -> List[str]:
    """Five kill points of tests/kill_worker.py drawn with ``seed``, in the order a run meets
    them: two mid-epoch steps, two writes of checkpoint.pth, one write of an epoch file or an
    n-best average (the fixture's 32 utterances in batches of 4: 8 steps an epoch)."""
    order = []
    for epoch in range(1, epochs + 1):
        order += [f"step:{epoch}:{n}" for n in range(1, steps)]
        order += [f"save:{epoch}:checkpoint.pth", f"save:{epoch}:{epoch}epoch.pth"]
    order += [f"save:{epochs}:train.loss.ave_2best.pth", f"save:{epochs}:valid.acc.ave_2best.pth"]
    rng = random.Random(seed)
    mid_epoch = [p for p in order if p.startswith("step:")]
    checkpoint = [p for p in order if p.endswith(":checkpoint.pth")]
    other_saves = [p for p in order if p.startswith("save:") and p not in checkpoint]
    chosen = rng.sample(mid_epoch, 2) + rng.sample(checkpoint, 2) + rng.sample(other_saves, 1)
    return sorted(chosen, key=order.index)


def _assert_same_tensors(a, b, where=""):
    """Nested dicts / lists of tensors and numbers are equal, tensor by tensor (torch.equal)."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same_tensors(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tensors(x, y, f"{where}/{i}")
    else:
        assert a == b, where


def test_training_killed_at_five_points_resumes_to_the_uninterrupted_result(data, trained):
    """SIGKILL mid-epoch and half-way through writing checkpoint.pth, an epoch file or an
    average, each time resumed with --resume true: every output equals the uninterrupted
    run's (weights, optimizer and scheduler state) and no temporary is left."""
    out = data / "exp_killed"
    points = _kill_points(seed=0)
    cmd = [sys.executable, str(ROOT / "tests" / "kill_worker.py"), *points, "--", *_train_args(data, out, 4)]
    res = run_bounded(cmd, timeout=280, env=_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert [line for line in res.stderr.splitlines() if line.startswith("kill point")] == [
        f"kill point {p}: exit code -9" for p in points
    ]
    assert sorted(os.listdir(out)) == sorted(os.listdir(trained))
    for name in sorted(os.listdir(trained)):
        if name.endswith(".pth"):
            a = torch.load(trained / name, weights_only=False)
            b = torch.load(out / name, weights_only=False)
            if name == "checkpoint.pth":  # the reporter's stats hold times
                a, b = ([x[k] for k in ("model", "optimizers", "schedulers")] for x in (a, b))
            _assert_same_tensors(a, b, name)
        else:
            assert os.path.islink(out / name) == os.path.islink(trained / name), name
            if os.path.islink(trained / name):
                assert os.readlink(out / name) == os.readlink(trained / name), name


def test_resume_refuses_a_checkpoint_cut_short(data, trained, tmp_path):
    out = tmp_path / "exp"
    out.mkdir()
    data_bytes = (trained / "checkpoint.pth").read_bytes()
    (out / "checkpoint.pth").write_bytes(data_bytes[: len(data_bytes) // 2])
    with pytest.raises(InputError) as error:
        ttt_train(_train_args(data, out, 4) + ["--resume", "true"])
    assert str(error.value) == (f"{out / 'checkpoint.pth'}: not a complete checkpoint (cut short?): remove it "
                                "to train from the start, or put back an intact copy")


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


SPAN = "<|im_start|> <|system|> <|im_end|> <|im_start|> <|assistant|> ▁w1 <|begin_of_quad|> <|audio_1|>"


@pytest.mark.parametrize(
    "text, message",
    [
        ("bad001\n", "{seq}:1: utterance 'bad001' has no tokens"),
        ("", "{seq}: no utterances (the sequence file is empty)"),
        ("a ▁w1\nb ▁w2\na ▁w3\n", "{seq}:3: duplicate utterance id 'a' (first on line 1)"),
        ("\ufeffa ▁w1\n", "{seq}:1: starts with a byte-order mark (save it as UTF-8 without BOM)"),
        ("a ▁w1\nb ▁w2", "{seq}:2: the last line has no newline: the file is cut short"),
        (f"bad001 {SPAN} <|im_end|>\n", "{seq}: utterance 'bad001': token #8 '<|im_end|>': the audio span opened "
                                         "at token #6 '<|begin_of_quad|>' is not closed (a code or "
                                         "<|end_of_audio_span_last|> expected)"),
        (f"bad001 {SPAN}\n", "{seq}: utterance 'bad001': the audio span opened at token #6 '<|begin_of_quad|>' "
                             "is never closed (missing <|end_of_audio_span_last|>)"),
        ("bad001 <|im_start|> ▁w1 <|audio_16|>\n",
         "{seq}: utterance 'bad001': token #2 '<|audio_16|>' is invalid: audio code 16 is out of range for "
         "codebook size 16"),
        ("bad001 " + " ".join(["▁w1"] * 3000) + "\n",
         "{seq}: utterance 'bad001': 3000 tokens exceed max_seq_len=2048 (filter long sequences when building "
         "the data, e.g. build_sequences --max_len)"),
        ("bad001 ▁w1 <unk>\n", "{seq}: utterance 'bad001': token #1 '<unk>' never appears in training data"),
    ],
)
def test_bad_sequences_are_one_error_line_naming_file_and_utterance(data, tmp_path, capsys, text, message):
    """--collect_stats (the first pass over the data) refuses them: ``ttt_train: error: ...``, exit 1."""
    seq = tmp_path / "bad" / "seq"
    seq.parent.mkdir()
    seq.write_text(text, encoding="utf-8")
    args = _common(data) + ["--collect_stats", "true", "--output_dir", str(tmp_path / "stats")]
    args[args.index("--train_data_path_and_name_and_type") + 1] = f"{seq},seq,text"
    with pytest.raises(SystemExit) as exit_status:
        run(ttt_train, "ttt_train", args)
    assert exit_status.value.code == 1
    assert capsys.readouterr().err.splitlines()[-1] == "ttt_train: error: " + message.format(seq=seq)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda lines: lines + ["ghost_utt 12"], "{shape}:33: utterance 'ghost_utt' is not in {seq}"),
        (lambda lines: lines[:5], "{shape}: utterance 'utt005' of {seq} is missing (27 utterances are)"),
        (lambda lines: lines[:1] + lines, "{shape}:2: utterance 'utt000' is given twice"),
        (lambda lines: [lines[0].split()[0] + " 7"] + lines[1:],
         "{shape}:1: utterance 'utt000' has length 7, but 36 tokens in {seq} (a shape file of other data?)"),
        (lambda lines: ["utt000"] + lines[1:], "{shape}:1: expected '<utt_id> <length>'"),
    ],
)
def test_shape_files_that_do_not_match_the_sequences_are_errors_naming_them(data, tmp_path, edit, message):
    lines = (data / "stats" / "train" / "seq_shape").read_text().splitlines()
    assert lines[0] == "utt000 36"
    shape = tmp_path / "seq_shape"
    shape.write_text("".join(line + "\n" for line in edit(lines)))
    args = _train_args(data, tmp_path / "exp", 1)
    args[args.index("--train_shape_file") + 1] = str(shape)
    with pytest.raises(InputError) as error:
        ttt_train(args)
    assert str(error.value) == message.format(shape=shape, seq=data / "train" / "seq")


def test_training_without_fold_lengths_is_an_error_naming_the_option(data, tmp_path):
    args = _train_args(data, tmp_path / "exp", 1)
    at = args.index("--fold_length")
    del args[at:at + 2]
    with pytest.raises(InputError) as error:
        ttt_train(args)
    assert str(error.value) == "--fold_length: give one per shape file (1 for train, e.g. --fold_length 2048), got 0"


def _collect_stats_error(data, tmp_path, capsys, option, value):
    """The error line of ``ttt_train --collect_stats`` with ``option`` set to ``value``."""
    args = _common(data) + ["--collect_stats", "true", "--output_dir", str(tmp_path / "stats"), option, str(value)]
    with pytest.raises(SystemExit) as exit_status:
        run(ttt_train, "ttt_train", args)
    assert exit_status.value.code == 1
    return capsys.readouterr().err.splitlines()[-1]


def test_a_bad_token_list_is_an_error_naming_its_line(data, tmp_path, capsys):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text((data / "tokens.txt").read_text(encoding="utf-8").replace("\n", "\n\n", 1), encoding="utf-8")
    assert _collect_stats_error(data, tmp_path, capsys, "--token_list", tokens) == (
        f"ttt_train: error: {tokens}:2: a blank line, or blanks around the token ''")


def test_sequence_and_shape_files_that_are_not_utf8_name_the_line(data, tmp_path, capsys):
    seq = tmp_path / "seq"
    seq.write_bytes(b"a \xe2\x96\x81w1\nb \xff\n")
    args = _common(data) + ["--collect_stats", "true", "--output_dir", str(tmp_path / "stats")]
    args[args.index("--train_data_path_and_name_and_type") + 1] = f"{seq},seq,text"
    with pytest.raises(InputError) as error:
        ttt_train(args)
    assert str(error.value) == f"{seq}:2: not valid UTF-8 (byte 0xff at column 3)"
    shape = tmp_path / "seq_shape"
    shape.write_bytes((data / "stats" / "train" / "seq_shape").read_bytes().replace(b"utt003", b"utt\xa03", 1))
    args = _train_args(data, tmp_path / "exp", 1)
    args[args.index("--train_shape_file") + 1] = str(shape)
    with pytest.raises(InputError) as error:
        ttt_train(args)
    assert str(error.value) == f"{shape}:4: not valid UTF-8 (byte 0xa0 at column 4)"


@pytest.mark.parametrize("change, message", [
    (lambda s: s["backbone.norm.weight"].fill_(float("nan")), "backbone.norm.weight: 32 of 32 values are NaN or inf"),
    (lambda s: s.update({"backbone.norm.weight": [1.0]}),
     "backbone.norm.weight: list, not a tensor (a state dict maps parameter names to tensors)"),
    (lambda s: s.update({"backbone.norm.weight": torch.ones(5)}),
     "backbone.norm.weight: shape [5] in the file, [32] in the model"),
])
def test_init_param_files_are_checked_before_espnet_loads_them(data, trained, tmp_path, capsys, change, message):
    state = torch.load(trained / "4epoch.pth", weights_only=True)
    change(state)
    bad = tmp_path / "init.pth"
    torch.save(state, bad)
    assert _collect_stats_error(data, tmp_path, capsys, "--init_param", bad) == f"ttt_train: error: {bad}: {message}"


def test_a_cut_init_param_file_names_it(data, trained, tmp_path, capsys):
    bad = tmp_path / "init.pth"
    bad.write_bytes((trained / "4epoch.pth").read_bytes()[:1000])
    assert _collect_stats_error(data, tmp_path, capsys, "--init_param", bad).startswith(
        f"ttt_train: error: {bad}: cannot be read as PyTorch weights (truncated or corrupt?): ")
