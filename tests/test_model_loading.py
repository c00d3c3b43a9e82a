"""Loading a trained model (config.yaml + weights) and the inputs of ttt_inference: every bad file is
refused with one line naming it (and the key), never loaded or decoded silently."""
import re
import struct
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from espnet2_ttt.bin.ttt_inference import TtTInference, main as ttt_inference, read_decode_yaml
from espnet2_ttt.models.weights import read_weights, tied_names
from espnet2_ttt.tasks.ttt import TtTTask
from espnet2_ttt.utils.cli import InputError

from tiny_model import WEIGHTS, train_tiny_model
from user_errors import error_line

DECODE_ARGS = ["--max_new_tokens", "8", "--block_length", "4", "--steps_per_block", "2", "--max_span_length", "8"]


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def codes(tmp_path_factory):
    path = tmp_path_factory.mktemp("inputs") / "codes"
    path.write_text("u1 1 2 3\nu2 4 5\n")
    return path


def decode_argv(exp, codes, out, *extra, model_file=None):
    return ["--train_config", exp / "config.yaml", "--model_file", model_file or exp / WEIGHTS,
            "--data_path_and_name_and_type", f"{codes},speech_codes,text_int", "--output_dir", out,
            *DECODE_ARGS, *extra]


def build(exp, weights):
    return TtTTask.build_model_from_file(exp / "config.yaml", weights)


def saved_state(exp, path, change) -> Path:
    """The weights of ``exp`` with ``change(state)`` applied, saved at ``path``."""
    state = torch.load(exp / WEIGHTS, weights_only=True)
    change(state)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("damage", ["half", "100 bytes", "empty", "random"])
def test_unreadable_weights_name_the_file(exp, codes, tmp_path, capsys, damage):
    data = (exp / WEIGHTS).read_bytes()
    bad = tmp_path / "model.pth"
    bad.write_bytes({"half": data[: len(data) // 2], "100 bytes": data[:100], "empty": b"",
                     "random": bytes(range(256)) * 8}[damage])
    prefix = f"{bad}: cannot be read as PyTorch weights (truncated or corrupt?): "
    with pytest.raises(InputError, match=re.escape(prefix)):
        TtTInference(exp / "config.yaml", bad)
    line = error_line(capsys, ttt_inference, "ttt_inference", decode_argv(exp, codes, tmp_path / "out", model_file=bad))
    assert line.startswith(f"ttt_inference: error: {prefix}") and "Errno" not in line
    assert not (tmp_path / "out").exists()


def test_a_flipped_byte_in_a_tensor_is_refused_not_loaded(exp, tmp_path):
    """torch.load skips the zip CRCs: the flipped byte would load as a different weight."""
    data = bytearray((exp / WEIGHTS).read_bytes())
    with zipfile.ZipFile(exp / WEIGHTS) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("/data/0"))
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)  # the local header's own
    data[info.header_offset + 30 + name_len + extra_len + 5] ^= 0x40
    bad = tmp_path / "flipped.pth"
    bad.write_bytes(bytes(data))
    state, good = torch.load(bad, weights_only=True), torch.load(exp / WEIGHTS, weights_only=True)
    assert any(not torch.equal(state[k], good[k]) for k in good)  # what torch.load alone gives
    with pytest.raises(InputError) as e:
        build(exp, bad)
    assert str(e.value) == f"{bad}: {info.filename}: CRC check failed (the file is corrupt)"


def test_non_finite_weights_are_refused_naming_the_first_bad_key(exp, codes, tmp_path, capsys):
    def poison(state):
        state["backbone.norm.weight"][0] = float("nan")
        state["backbone.blocks.0.mlp.down_proj.weight"][3, 5] = float("inf")
        state["backbone.blocks.0.mlp.down_proj.weight"][4, 5] = float("-inf")

    bad = saved_state(exp, tmp_path / "nan.pth", poison)
    numel = torch.load(bad, weights_only=True)["backbone.blocks.0.mlp.down_proj.weight"].numel()
    message = f"{bad}: backbone.blocks.0.mlp.down_proj.weight: 2 of {numel} values are NaN or inf"
    with pytest.raises(InputError) as e:
        build(exp, bad)
    assert str(e.value) == message  # the first in the model's key order, not the file's
    assert error_line(capsys, ttt_inference, "ttt_inference",
                      decode_argv(exp, codes, tmp_path / "out", model_file=bad)) == f"ttt_inference: error: {message}"


def test_tied_weights_that_differ_are_refused_naming_both_keys(exp, tmp_path):
    model, _ = build(exp, exp / WEIGHTS)
    assert tied_names(model) == [["backbone.embed.weight", "backbone.lm_head.weight"]]  # tie_embeddings
    assert model.backbone.lm_head.weight is model.backbone.embed.weight

    def untie(state):
        state["backbone.lm_head.weight"] = state["backbone.lm_head.weight"].clone()
        state["backbone.lm_head.weight"][7, 0] += 1e-3

    bad = saved_state(exp, tmp_path / "untied.pth", untie)
    with pytest.raises(InputError) as e:
        build(exp, bad)
    assert str(e.value) == (f"{bad}: backbone.lm_head.weight: differs from backbone.embed.weight, which the model "
                            f"ties it to (one tensor under both names)")


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("backbone.norm.weight"), "backbone.norm.weight: missing (the model has it; 1 missing in all)"),
    (lambda s: s.update(extra=torch.zeros(2)), "extra: not in the model (1 unknown keys in all)"),
    (lambda s: s.update({"backbone.norm.weight": torch.ones(17)}),
     "backbone.norm.weight: shape [17] in the file, [16] in the model"),
    (lambda s: s.update(step=3), "step: int, not a tensor (a state dict maps parameter names to tensors)"),
    (lambda s: s.update({"backbone.norm.weight": torch.ones(16, dtype=torch.long)}),
     "backbone.norm.weight: dtype torch.int64 in the file, torch.float32 in the model (loading would convert "
     "its values)"),
])
def test_keys_and_shapes_that_do_not_fit_name_the_key(exp, tmp_path, change, message):
    bad = saved_state(exp, tmp_path / "bad.pth", change)
    with pytest.raises(InputError) as e:
        build(exp, bad)
    assert str(e.value) == f"{bad}: {message}"


def test_deepspeed_module_wrapper_loads(exp, tmp_path):
    wrapped = tmp_path / "mp_rank_00_model_states.pth"
    torch.save({"module": torch.load(exp / WEIGHTS, weights_only=True)}, wrapped)
    model, _ = build(exp, wrapped)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in read_weights(exp / WEIGHTS).items())


class Payload:
    """Unpickling calls ``open(marker, "w")``: the file appears if the pickle runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_pickle_payload_in_weights_never_runs(exp, tmp_path):
    probe, marker = tmp_path / "probe", tmp_path / "marker"
    torch.save({"x": Payload(probe)}, tmp_path / "probe.pth")
    torch.load(tmp_path / "probe.pth", weights_only=False)  # what an unsafe loader would do
    assert probe.exists()
    bad = saved_state(exp, tmp_path / "payload.pth", lambda s: s.update({"backbone.norm.weight": Payload(marker)}))
    with pytest.raises(InputError) as e:
        build(exp, bad)
    assert str(e.value).startswith(f"{bad}: refused: it holds pickled Python objects, not only tensors "
                                   f"(loading them could run code): ")
    assert "GLOBAL io.open" in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("text, message", [
    (b"token_list: [a, b\n", "while parsing a flow sequence"),
    (b"- 1\n- 2\n", "not a training config (a YAML mapping of option names)"),
    (b"token_list: caf\xe9\n", ":1: not valid UTF-8 (byte 0xe9 at column 16)"),
])
def test_unreadable_configs_name_the_config(exp, tmp_path, text, message):
    bad = tmp_path / "config.yaml"
    bad.write_bytes(text)
    with pytest.raises(InputError) as e:
        TtTInference(bad, exp / WEIGHTS)
    assert str(e.value).startswith(str(bad)) and message in str(e.value)


def test_a_config_that_cannot_build_the_model_names_the_config(exp, tmp_path):
    config = yaml.safe_load((exp / "config.yaml").read_text())
    config["backbone_conf"]["d_modle"] = 16
    bad = tmp_path / "config.yaml"
    bad.write_text(yaml.safe_dump(config))
    with pytest.raises(InputError) as e:
        TtTInference(bad, exp / WEIGHTS)
    assert str(e.value).startswith(f"{bad}: cannot build a TtT model: ") and "d_modle" in str(e.value)


@pytest.mark.parametrize("key_text", ["", "\n  \n"])
def test_an_empty_key_file_is_an_error_naming_it(exp, codes, tmp_path, capsys, key_text):
    keys = tmp_path / "keys"
    keys.write_text(key_text)
    assert error_line(capsys, ttt_inference, "ttt_inference",
                      decode_argv(exp, codes, tmp_path / "out", "--key_file", keys)) == (
        f"ttt_inference: error: {keys}: empty: it has no entries")
    assert not (tmp_path / "out").exists()


def test_an_empty_input_and_unknown_keys_are_errors_naming_the_file(exp, codes, tmp_path, capsys):
    empty = tmp_path / "empty_codes"
    empty.write_text("")
    assert error_line(capsys, ttt_inference, "ttt_inference", decode_argv(exp, empty, tmp_path / "out")) == (
        f"ttt_inference: error: {empty}: empty: it has no entries")
    keys = tmp_path / "keys"
    keys.write_text("u2\nu9 extra columns\n")
    assert error_line(capsys, ttt_inference, "ttt_inference",
                      decode_argv(exp, codes, tmp_path / "out", "--key_file", keys)) == (
        f"ttt_inference: error: {keys}:2: utterance 'u9': not in the input {codes}")
    keys.write_text("u2\nu2\n")
    assert error_line(capsys, ttt_inference, "ttt_inference",
                      decode_argv(exp, codes, tmp_path / "out", "--key_file", keys)) == (
        f"ttt_inference: error: {keys}:2: duplicate key 'u2' (first on line 1)")
    assert not (tmp_path / "out").exists()


def test_a_missing_model_file_is_one_line(exp, codes, tmp_path, capsys):
    missing = tmp_path / "nope.pth"
    assert error_line(capsys, ttt_inference, "ttt_inference",
                      decode_argv(exp, codes, tmp_path / "out", model_file=missing)) == (
        f"ttt_inference: error: {missing}: No such file or directory")


@pytest.mark.parametrize("text, message", [
    ("block_length: 8\nblok_length: 4\n", "blok_length: not a decode option (1 unknown in all)"),
    ("block_length: eight\n", "block_length: invalid literal for int() with base 10: 'eight'"),
    ("[8]\n", "not a mapping of decode options"),
])
def test_a_bad_decode_yaml_names_the_file_and_option(tmp_path, text, message):
    path = tmp_path / "decode.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        read_decode_yaml(path)
    assert str(e.value) == f"{path}: {message}"


def test_decode_yaml_values_are_read_by_their_command_line_types(tmp_path):
    path = tmp_path / "decode.yaml"
    path.write_text("block_length: 8\ncfg_scale: 1\ntts_force_text: true\nlayout_span_len: null\n")
    assert read_decode_yaml(path) == {"block_length": 8, "cfg_scale": 1.0, "tts_force_text": True,
                                      "layout_span_len": None}
    assert isinstance(read_decode_yaml(path)["cfg_scale"], float)


def test_every_torch_load_in_the_package_is_weights_only():
    root = Path(__file__).resolve().parents[1] / "espnet2_ttt"
    calls = [(p, line) for p in root.rglob("*.py") for line in p.read_text(encoding="utf-8").splitlines()
             if "torch.load(" in line]
    assert calls and all("weights_only=True" in line for _, line in calls), calls
    unsafe_yaml = [(p, line) for p in root.rglob("*.py") for line in p.read_text(encoding="utf-8").splitlines()
                   if re.search(r"yaml\.(load|unsafe_load|full_load)\(", line)]
    assert unsafe_yaml == []


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("token_list"),
     "token_list: missing (the model is built from token_list, backbone, backbone_conf, model, model_conf, init)"),
    (lambda c: c["backbone_conf"].update(d_model=-2),
     "cannot build a TtT model: backbone_conf d_model: -2 is not a positive integer"),
    (lambda c: c["backbone_conf"].update(n_layer="big"),
     "cannot build a TtT model: backbone_conf n_layer: 'big' is not a positive integer"),
])
def test_configs_that_cannot_build_the_model_name_the_option(exp, tmp_path, change, message):
    config = yaml.safe_load((exp / "config.yaml").read_text(encoding="utf-8"))
    change(config)
    bad = tmp_path / "config.yaml"
    bad.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(InputError) as e:
        TtTInference(bad, exp / WEIGHTS)
    assert str(e.value) == f"{bad}: {message}"


def test_pack_refuses_tokenizers_that_do_not_load(exp, tmp_path):
    from espnet2_ttt.bin.pack import pack_ttt

    bpe = tmp_path / "bpe.model"
    bpe.write_bytes(b"not a model")
    out = tmp_path / "packed.zip"
    with pytest.raises(InputError) as e:
        pack_ttt(str(exp / "config.yaml"), str(exp / WEIGHTS), str(out), bpemodel=str(bpe))
    assert str(e.value) == f"{bpe}: not a SentencePiece model (it does not parse)"
    speech = tmp_path / "speech_tokenizer"
    speech.mkdir()
    with pytest.raises(InputError) as e:
        pack_ttt(str(exp / "config.yaml"), str(exp / WEIGHTS), str(out), speech_tokenizer_dir=str(speech))
    assert str(e.value) == (f"{speech / 'tokenizer.yaml'}: not found: {speech} is not a (complete) speech "
                            "tokenizer directory")
    assert not out.exists()
