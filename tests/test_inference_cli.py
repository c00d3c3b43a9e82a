"""TtT inference CLI and Python API on a tiny model trained in-process with ttt_train."""
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from espnet2_ttt.bin.ttt_inference import TtTInference, decode_options, get_parser, main as ttt_inference, utterance_seed
from espnet2_ttt.bin.ttt_train import main as ttt_train
from espnet2_ttt.models.cpu_layout import default_cpu_weight_layout
from espnet2_ttt.sequence_builder import SequenceLayout
from espnet2_ttt.speech import PrecomputedTokenizer
from espnet2_ttt.utils.cli import InputError

from espnet2_ttt.inference import DecodeConfig, Forcing

from helpers import chat_sequence, tiny_vocab, write_seq_file

ROOT = Path(__file__).resolve().parents[1]

DECODE = dict(max_new_tokens=40, block_length=8, steps_per_block=2, max_span_length=32, cfg_scale=0.1)
DECODE_ARGS = [a for k, v in DECODE.items() for a in (f"--{k}", str(v))]
CODES = {"u1": [1, 2, 3, 4, 5], "u2": [7, 7, 7], "u3": [0, 15, 3, 3], "u4": [9, 8]}


def fake_speech_decoder(codes, samples_per_code=4):
    """External decoder for the 'precomputed' speech tokenizer: code k -> k/100 constant samples."""
    return np.repeat(codes.astype(np.float32) / 100, samples_per_code), 8000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """config.yaml + valid.loss.best.pth of a 1-layer model trained 40 epochs on chat data."""
    d = tmp_path_factory.mktemp("ttt_model")
    rng = random.Random(0)
    tiny_vocab().save(d / "tokens.txt")
    seqs = {f"utt{i:02d}": chat_sequence(rng, n_spans=2) for i in range(8)}
    for split in ("train", "valid"):
        write_seq_file(d / split / "seq", seqs)
        (d / split / "seq_shape").write_text("".join(f"{k} {len(v)}\n" for k, v in sorted(seqs.items())))
    ttt_train([
        "--token_list", str(d / "tokens.txt"), "--output_dir", str(d / "exp"),
        "--train_data_path_and_name_and_type", f"{d}/train/seq,seq,text",
        "--valid_data_path_and_name_and_type", f"{d}/valid/seq,seq,text",
        "--train_shape_file", f"{d}/train/seq_shape", "--valid_shape_file", f"{d}/valid/seq_shape",
        "--batch_type", "unsorted", "--batch_size", "4", "--max_epoch", "40", "--ngpu", "0",
        "--backbone_conf", "{'d_model': 32, 'n_layer': 1, 'n_head': 2, 'max_len': 128}",
        "--optim", "adam", "--optim_conf", "lr=0.01", "--keep_nbest_models", "1", "--seed", "0",
        "--use_tensorboard", "false", "--use_matplotlib", "false", "--num_workers", "0",
    ])
    return d / "exp"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    (d / "codes").write_text("".join(f"{u} {' '.join(map(str, c))}\n" for u, c in CODES.items()))
    (d / "text").write_text("u1 ▁w1 ▁w3\nu2 ▁w2\nu3 ▁w4 ▁w4\nu4 ▁w5\n")
    return d


def run_cli(model_dir, inputs, out, *extra, key_file=None):
    cmd = [
        "--train_config", str(model_dir / "config.yaml"), "--model_file", str(model_dir / "valid.loss.best.pth"),
        "--data_path_and_name_and_type", f"{inputs / 'codes'},speech_codes,text_int",
        "--output_dir", str(out), "--mode", "chat", "--seed", "7", *DECODE_ARGS, *extra,
    ]
    ttt_inference(cmd + (["--key_file", str(key_file)] if key_file else []))


def read_kaldi(path):
    return dict(line.rstrip("\n").split(" ", 1) for line in Path(path).read_text().splitlines(keepends=True))


def test_cli_outputs_match_the_python_api(model_dir, inputs, tmp_path):
    run_cli(model_dir, inputs, tmp_path / "out")
    texts, tokens, codes = (read_kaldi(tmp_path / "out" / n) for n in ("text", "token", "audio_codes"))
    assert list(tokens) == list(CODES)  # input order
    api = TtTInference(model_dir / "config.yaml", model_dir / "valid.loss.best.pth", **DECODE)
    spoken = 0
    for utt, utt_codes in CODES.items():
        o = api("chat", None, utt_codes, seed=utterance_seed(7, utt))
        assert tokens[utt] == " ".join(o.tokens) and texts[utt] == o.text
        assert codes[utt] == " ".join(map(str, o.audio_codes))
        # the codes file is exactly the <|audio_k|> tokens of the token file, in order
        assert [int(t[8:-2]) for t in o.tokens if t.startswith("<|audio_")] == o.audio_codes
        spoken += len(o.audio_codes) > 0
    assert spoken >= 2  # the trained model does write spans
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["audio_codes", "prompt", "text", "token"]


def test_split_jobs_give_the_single_job_output(model_dir, inputs, tmp_path):
    run_cli(model_dir, inputs, tmp_path / "all")
    (tmp_path / "keys.1").write_text("u1\nu2\n")
    (tmp_path / "keys.2").write_text("u3\nu4\n")
    for j in (1, 2):
        run_cli(model_dir, inputs, tmp_path / f"out.{j}", key_file=tmp_path / f"keys.{j}")
    for name in ("prompt", "text", "token", "audio_codes"):
        merged = (tmp_path / "out.1" / name).read_text() + (tmp_path / "out.2" / name).read_text()
        assert merged == (tmp_path / "all" / name).read_text()


def test_text_input_tts_mode_and_waveforms(model_dir, inputs, tmp_path):
    tok_dir = tmp_path / "speech_tok"
    PrecomputedTokenizer(codebook_size=16, sample_rate=8000, decoder="test_inference_cli:fake_speech_decoder").save(tok_dir)
    run_cli(model_dir, inputs, tmp_path / "out", "--mode", "tts", "--text_is_pieces", "true",
            "--data_path_and_name_and_type", f"{inputs / 'text'},text,text", "--speech_tokenizer_dir", str(tok_dir))
    codes = read_kaldi(tmp_path / "out" / "audio_codes")
    wav_scp = read_kaldi(tmp_path / "out" / "wav.scp")
    assert set(wav_scp) == {u for u, c in codes.items() if c}  # a waveform for every answer with audio
    assert wav_scp
    import soundfile

    for utt, path in wav_scp.items():
        wav, sr = soundfile.read(path)
        expected = [int(c) / 100 for c in codes[utt].split() for _ in range(4)]
        assert sr == 8000 and np.allclose(wav, expected, atol=1e-4)
    run_cli(model_dir, inputs, tmp_path / "no_wav", "--mode", "tts", "--text_is_pieces", "true",
            "--data_path_and_name_and_type", f"{inputs / 'text'},text,text", "--speech_tokenizer_dir", str(tok_dir),
            "--write_wav", "false")
    assert sorted(p.name for p in (tmp_path / "no_wav").iterdir()) == ["audio_codes", "prompt", "text", "token"]
    assert read_kaldi(tmp_path / "no_wav" / "audio_codes") == codes


def test_packed_model_from_pretrained(model_dir, tmp_path):
    from espnet2.main_funcs.pack_funcs import pack

    zip_path = tmp_path / "model.zip"
    pack(files={"ttt_model_file": str(model_dir / "valid.loss.best.pth")},
         yaml_files={"ttt_train_config": str(model_dir / "config.yaml")}, option=[], outpath=str(zip_path))
    packed = TtTInference.from_pretrained(str(zip_path), cache_dir=str(tmp_path / "cache"), **DECODE)
    direct = TtTInference(model_dir / "config.yaml", model_dir / "valid.loss.best.pth", **DECODE)
    assert packed("asr", None, CODES["u1"], seed=3).tokens == direct("asr", None, CODES["u1"], seed=3).tokens


def test_cpu_weight_layout_changes_no_output(model_dir):
    """On CPU "input_major" stores the wide weights input-major (faster decoding steps on some
    CPUs), "as_trained" keeps them, "auto" picks one by CPU vendor; same tokens either way."""
    out = {}
    for layout in ("input_major", "as_trained"):
        api = TtTInference(model_dir / "config.yaml", model_dir / "valid.loss.best.pth", **DECODE, cpu_weight_layout=layout)
        backbone = api.decoder.backbone
        wide = (backbone.lm_head.weight, backbone.blocks[0].mlp.gate_up_proj.weight)
        assert all(w.t().is_contiguous() != w.is_contiguous() for w in wide)
        assert all(w.t().is_contiguous() == (layout == "input_major") for w in wide)
        out[layout] = api("chat", None, CODES["u3"], seed=1)
    assert out["input_major"].tokens == out["as_trained"].tokens
    assert out["input_major"].result.audio_codes == out["as_trained"].result.audio_codes
    auto = TtTInference(model_dir / "config.yaml", model_dir / "valid.loss.best.pth", **DECODE)
    relaid = auto.decoder.backbone.lm_head.weight.t().is_contiguous()
    assert relaid == (default_cpu_weight_layout() == "input_major")
    assert auto("chat", None, CODES["u3"], seed=1).tokens == out["as_trained"].tokens
    with pytest.raises(ValueError, match="cpu_weight_layout"):
        TtTInference(model_dir / "config.yaml", model_dir / "valid.loss.best.pth", cpu_weight_layout="fastest")


@pytest.mark.parametrize("vendor, layout", [("AuthenticAMD", "input_major"), ("GenuineIntel", "as_trained"),
                                            (None, "as_trained")])
def test_default_cpu_weight_layout_by_vendor(tmp_path, vendor, layout):
    cpuinfo = tmp_path / "cpuinfo"
    if vendor:
        cpuinfo.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: 25\n\nprocessor\t: 1\n")
    assert default_cpu_weight_layout(cpuinfo) == layout  # a missing file: PyTorch's own layout


def test_streaming_api_time_to_first_audio(model_dir):
    api = TtTInference(model_dir / "config.yaml", model_dir / "valid.loss.best.pth", **DECODE)
    events = list(api.stream("chat", None, CODES["u3"], seed=1))
    result = events[-1].result
    assert [i for e in events for i in e.ids] == result.token_ids
    assert result.time_to_first_audio is None or 0 < result.time_to_first_audio <= result.timings["total"]


def test_a_bad_utterance_fails_the_job_without_partial_outputs(model_dir, inputs, tmp_path):
    bad = tmp_path / "codes"
    bad.write_text("a1 1 2\na2 3 16\na3 4\n")  # 16 is outside the 16-code codebook
    with pytest.raises(InputError, match=r"codes:2: utterance 'a2': code 16 is out of range \[0, 16\)"):
        ttt_inference(["--train_config", str(model_dir / "config.yaml"),
                       "--model_file", str(model_dir / "valid.loss.best.pth"),
                       "--data_path_and_name_and_type", f"{bad},speech_codes,text_int",
                       "--output_dir", str(tmp_path / "out"), *DECODE_ARGS])
    assert not (tmp_path / "out").exists()  # refused before decoding: nothing is written


@pytest.mark.parametrize("content, message", [
    ("e1 " + " ".join(["1"] * 130) + "\n",
     "codes: utterance 'e1': prompt of 140 tokens leaves no room: the model's max length is 128"),
    ("e1 x 2\n", "codes:1: utterance 'e1': codes must be integers"),
])
def test_bad_prompts_name_the_utterance(model_dir, tmp_path, content, message):
    (tmp_path / "codes").write_text(content)
    with pytest.raises(InputError, match=message):
        ttt_inference(["--train_config", str(model_dir / "config.yaml"),
                       "--model_file", str(model_dir / "valid.loss.best.pth"),
                       "--data_path_and_name_and_type", f"{tmp_path / 'codes'},speech_codes,text",
                       "--output_dir", str(tmp_path / "out"), *DECODE_ARGS])


def test_bad_setups(model_dir, inputs, tmp_path):
    api = TtTInference(model_dir / "config.yaml", model_dir / "valid.loss.best.pth", **DECODE)
    with pytest.raises(ValueError, match="utt9: mode 'tts' needs user text"):
        api("tts", [], None, where="utt9")
    with pytest.raises(ValueError, match="raw text needs a SentencePiece model"):
        api("text", "hello")
    with pytest.raises(ValueError, match="give --train_config and --model_file, or --model_tag"):
        ttt_inference(["--data_path_and_name_and_type", f"{inputs / 'codes'},speech_codes,text_int",
                       "--output_dir", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="input must be one of"):
        run_cli(model_dir, inputs, tmp_path / "o", "--data_path_and_name_and_type", f"{inputs / 'text'},speech,sound")
    with pytest.raises(ValueError, match="raw text but no SentencePiece model"):
        run_cli(model_dir, inputs, tmp_path / "o", "--data_path_and_name_and_type", f"{inputs / 'text'},text,text")
    (tmp_path / "empty").write_text("u1\n")  # empty prompt text
    with pytest.raises(InputError, match="empty: utterance 'u1': mode 'tts' needs user text"):
        run_cli(model_dir, inputs, tmp_path / "o", "--mode", "tts", "--text_is_pieces", "true",
                "--data_path_and_name_and_type", f"{tmp_path / 'empty'},text,text", key_file=tmp_path / "empty")
    (tmp_path / "keys").write_text("u1\nnope\n")
    with pytest.raises(InputError, match=f"keys:2: utterance 'nope': not in the input {inputs / 'codes'}"):
        run_cli(model_dir, inputs, tmp_path / "o", key_file=tmp_path / "keys")
    # a model whose token list has no audio tokens
    config = yaml.safe_load((model_dir / "config.yaml").read_text())
    config["token_list"] = [t for t in config["token_list"] if not t.startswith("<|audio_")]
    (tmp_path / "no_audio.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(InputError, match="no_audio.yaml: cannot build a TtT model: token_list has no audio tokens"):
        TtTInference(tmp_path / "no_audio.yaml", model_dir / "valid.loss.best.pth")


def test_decode_yaml_sets_the_paper_settings():
    options = decode_options(str(ROOT / "conf" / "decode.yaml"), ["--top_k", "5"])
    conf = DecodeConfig(**options)
    assert (conf.block_length, conf.steps_per_block, conf.max_span_length, conf.cfg_scale) == (32, 10, 640, 0.1)
    assert (conf.top_k, conf.top_p, conf.cfg_uncond) == (5, 0.95, "official")  # the command line wins
    assert decode_options(None, ["--cfg_scale", "0.5"]) == {"cfg_scale": 0.5}  # unset options are absent


def test_help_states_the_effective_defaults():
    text = " ".join(get_parser().format_help().split())
    assert "--block_length BLOCK_LENGTH DecodeConfig default: 32 --diffusion_steps" in text
    assert "--bpemodel BPEMODEL default: the training config's --speech_tokenizer_dir" in text
    assert "text: text->text, asr: audio->text, tts: text->audio, chat: audio->text+audio (default: chat)" in text


def test_packed_decode_options_are_the_model_defaults(model_dir, tmp_path):
    """pack_ttt resolves --inference_config + --inference_args into the archive's decode.yaml;
    from_pretrained decodes with it, and its own keyword arguments win."""
    from espnet2_ttt.bin.pack import pack_ttt

    (tmp_path / "decode.yaml").write_text("block_length: 8\nsteps_per_block: 2\nlayout_span_len: 26\n")
    zip_path = tmp_path / "model.zip"
    pack_ttt(str(model_dir / "config.yaml"), str(model_dir / "valid.loss.best.pth"), str(zip_path),
             inference_config=str(tmp_path / "decode.yaml"), inference_args=["--layout_span_len", "5"])
    packed = TtTInference.from_pretrained(str(zip_path), cache_dir=str(tmp_path / "cache"), max_new_tokens=30)
    conf = packed.decoder.config
    assert (conf.block_length, conf.steps_per_block, conf.max_new_tokens) == (8, 2, 30)
    assert packed.forcing_options.layout_span_len == 5
    assert conf.cfg_scale == DecodeConfig().cfg_scale  # neither packed nor given: the default


def test_text_forced_tts_writes_the_input_text_in_the_training_layout(model_dir):
    """tts_force_text: the answer is the input pieces cut into chunks, non-final spans of exactly
    layout_span_len codes, then the final span and <|im_end|>; only the audio is generated."""
    api = TtTInference(model_dir / "config.yaml", model_dir / "valid.loss.best.pth", **DECODE,
                       tts_force_text=True, layout_chunk_len=2, layout_span_len=3)
    out = api("tts", ["▁w1", "▁w3", "▁w2"], seed=5)
    tokens = out.tokens
    assert tokens[:3] == ["▁w1", "▁w3", "<|begin_of_audio|>"]
    assert all(t.startswith("<|audio_") for t in tokens[3:6]) and tokens[6] == "<|end_of_audio_new|>"
    assert tokens[7:9] == ["▁w2", "<|begin_of_quad|>"]
    assert tokens[-1] == "<|im_end|>"  # the free final span ends with the model's end-of-span marker
    assert tokens[-2] in ("<|end_of_audio_span_last|>", "<|end_of_audio_new|>")
    final_span = tokens[9:-2]
    assert all(t.startswith("<|audio_") for t in final_span)  # its length is the model's choice
    assert len(out.audio_codes) == 3 + len(final_span)
    assert out.text == "▁w1 ▁w3 ▁w2"
    # off by default: the same call without forcing is the model's free choice
    free = TtTInference(model_dir / "config.yaml", model_dir / "valid.loss.best.pth", **DECODE)
    assert free.forcing_options.tts_force_text is False and free.forcing("tts", ["▁w1"]) is None


def test_asr_force_audio_makes_the_spans_the_input_speech(model_dir):
    """asr_force_audio: the ASR answer's spans are the input codes (written, not diffused)."""
    api = TtTInference(model_dir / "config.yaml", model_dir / "valid.loss.best.pth", **DECODE,
                       asr_force_audio=True, layout_span_len=3)
    codes = np.array([5, 0, 7, 7, 2, 9, 1])
    assert api.forcing("asr", None, codes) == Forcing(spoken_codes=[5, 0, 7, 7, 2, 9, 1], spoken_span_len=3)
    assert api.forcing("tts", ["▁w1"], codes) is None  # tts_force_text is off
    out = api("asr", speech_codes=codes, seed=1)
    assert codes.tolist()[: len(out.audio_codes)] == out.audio_codes  # whatever spans it opened re-speak the input
    assert out.result.forwards.get("diffusion", 0) == 0


def test_an_ar_objective_training_config_decodes_spans_one_code_per_forward(model_dir, tmp_path):
    """audio_objective comes from the training config: "ar" (the AR-only baseline) writes each
    span one code per forward, under a causal mask; the same weights serve both here."""
    conf = yaml.safe_load((model_dir / "config.yaml").read_text())
    conf["model_conf"]["audio_objective"] = "ar"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(conf))
    outs = {}
    for name, config in (("diffusion", model_dir / "config.yaml"), ("ar", tmp_path / "config.yaml")):
        api = TtTInference(config, model_dir / "valid.loss.best.pth", **DECODE, tts_force_text=True,
                           layout_chunk_len=2, layout_span_len=3)
        assert api.decoder.audio_ar == (name == "ar")
        outs[name] = api("tts", ["▁w1", "▁w3", "▁w2"], seed=5).result
    assert outs["ar"].forwards["audio_ar"] >= 4 and "diffusion" not in outs["ar"].forwards
    assert outs["diffusion"].forwards["diffusion"] >= 1 and "audio_ar" not in outs["diffusion"].forwards
    assert len(outs["ar"].spans[0]) == 3  # the forced non-final span length holds either way



def test_span_position_embeddings_from_the_training_config(model_dir, tmp_path):
    """backbone_conf.span_position_embeddings in the training config builds the table; with the
    trained weights and a zero table, the API and the packed model decode what the model without
    the table decodes (the positions travel through every path; a zero row adds nothing)."""
    import torch
    from espnet2.main_funcs.pack_funcs import pack

    config = yaml.safe_load((model_dir / "config.yaml").read_text())
    config["backbone_conf"]["span_position_embeddings"] = 4
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    weights = torch.load(model_dir / "valid.loss.best.pth", map_location="cpu", weights_only=True)
    weights["backbone.span_embed.weight"] = torch.zeros(5, config["backbone_conf"]["d_model"])
    torch.save(weights, tmp_path / "model.pth")
    zip_path = tmp_path / "model.zip"
    pack(files={"ttt_model_file": str(tmp_path / "model.pth")},
         yaml_files={"ttt_train_config": str(tmp_path / "config.yaml")}, option=[], outpath=str(zip_path))
    plain = TtTInference(model_dir / "config.yaml", model_dir / "valid.loss.best.pth", **DECODE)
    api = TtTInference(tmp_path / "config.yaml", tmp_path / "model.pth", **DECODE)
    packed = TtTInference.from_pretrained(str(zip_path), cache_dir=str(tmp_path / "cache"), **DECODE)
    assert api.decoder.backbone.span_embed.num_embeddings == 5
    for mode, codes in (("chat", CODES["u3"]), ("asr", CODES["u1"])):
        expected = plain(mode, None, codes, seed=1)
        for out in (api(mode, None, codes, seed=1), packed(mode, None, codes, seed=1)):
            assert out.tokens == expected.tokens and out.result.audio_codes == expected.result.audio_codes


# ---------------------------------------------------------------- the training layout
LAYOUT_TEXT = {"v1": "cat sat", "v2": "hi cat", "v3": "sat hi", "v4": "a cat"}


@pytest.fixture(scope="module")
def layout_model_dir(tmp_path_factory):
    """A model trained on build_sequences data with non-default prompts, chunks of 2 text pieces
    and spans of 3 codes, its layout recorded by ttt_train --sequence_layout."""
    from espnet2_ttt.bin import build_sequences, make_token_list

    d = tmp_path_factory.mktemp("layout_model")
    (d / "corpus.txt").write_text("write it down\nsay\n" + "\n".join(LAYOUT_TEXT.values()) + "\n")
    make_token_list.main([
        "--bpemodel", str(d / "spm" / "bpe.model"), "--spm_train_text", str(d / "corpus.txt"), "--nbpe", "40",
        "--spm_model_type", "char", "--spm_character_coverage", "1.0", "--spm_byte_fallback", "false",
        "--codebook_size", "16", "--output", str(d / "tokens.txt"),
    ])
    (d / "text").write_text("".join(f"{u} {t}\n" for u, t in LAYOUT_TEXT.items()))
    (d / "codes").write_text("".join(f"{u} {' '.join(str((i * 5 + j) % 16) for j in range(7))}\n"
                                     for i, u in enumerate(LAYOUT_TEXT)))
    build_sequences.main([
        "--bpemodel", str(d / "spm" / "bpe.model"), "--token_list", str(d / "tokens.txt"), "--codes", str(d / "codes"),
        "--text", str(d / "text"), "--tasks", "asr,tts", "--asr_prompt", "write it down", "--tts_prompt", "say",
        "--chunk_len", "2", "--span_len", "3", "--output", str(d / "seq"), "--shape_file", str(d / "seq_shape"),
        "--layout_file", str(d / "layout.yaml"),
    ])
    ttt_train([
        "--token_list", str(d / "tokens.txt"), "--bpemodel", str(d / "spm" / "bpe.model"),
        "--sequence_layout", str(d / "layout.yaml"), "--output_dir", str(d / "exp"),
        "--train_data_path_and_name_and_type", f"{d}/seq,seq,text", "--valid_data_path_and_name_and_type", f"{d}/seq,seq,text",
        "--train_shape_file", f"{d}/seq_shape", "--valid_shape_file", f"{d}/seq_shape",
        "--batch_type", "unsorted", "--batch_size", "4", "--max_epoch", "2", "--ngpu", "0",
        "--backbone_conf", "{'d_model': 16, 'n_layer': 1, 'n_head': 2, 'max_len': 128}",
        "--optim", "adam", "--keep_nbest_models", "1", "--seed", "0",
        "--use_tensorboard", "false", "--use_matplotlib", "false", "--num_workers", "0",
    ])
    return d


def test_decoding_prompts_are_the_training_prompts(layout_model_dir, tmp_path):
    """Data built with --asr_prompt / --tts_prompt: the training config records them, and the CLI
    decodes after exactly the prompt part (up to <|im_start|> <|assistant|>) of the training
    sequence of the same utterance, in asr mode (audio input) and tts mode (raw text input)."""
    d = layout_model_dir
    config = yaml.safe_load((d / "exp" / "config.yaml").read_text())
    assert config["sequence_layout"] == yaml.safe_load((d / "layout.yaml").read_text())
    assert config["sequence_layout"]["asr_prompt"] == "write it down"
    training = {k: v.split() for k, v in read_kaldi(d / "seq").items()}
    for mode, data in (("asr", f"{d / 'codes'},speech_codes,text_int"), ("tts", f"{d / 'text'},text,text")):
        ttt_inference([
            "--train_config", str(d / "exp" / "config.yaml"), "--model_file", str(d / "exp" / "valid.loss.best.pth"),
            "--data_path_and_name_and_type", data, "--output_dir", str(tmp_path / mode), "--mode", mode, *DECODE_ARGS,
        ])
        prompts = {k: v.split() for k, v in read_kaldi(tmp_path / mode / "prompt").items()}
        assert list(prompts) == list(LAYOUT_TEXT)
        for utt, prompt in prompts.items():
            assert prompt == training[f"{mode}-{utt}"][: len(prompt)]
            assert prompt[-2:] == ["<|im_start|>", "<|assistant|>"]
    assert prompts["v1"][:10] == ["<|im_start|>", "<|system|>", "<|im_end|>", "<|im_start|>", "<|user|>", "s", "a", "y", "▁", "c"]


def test_forced_answers_follow_the_training_layout(layout_model_dir):
    """tts_force_text / asr_force_audio cut the answer with the recorded chunk_len 2 / span_len 3;
    layout_* decode options replace them; a training config without a layout decodes with the defaults."""
    d = layout_model_dir
    model = (d / "exp" / "config.yaml", d / "exp" / "valid.loss.best.pth")
    api = TtTInference(*model, **DECODE, tts_force_text=True, asr_force_audio=True)
    assert api.layout == SequenceLayout(chunk_len=2, span_len=3, asr_prompt="write it down", tts_prompt="say")
    tokens = api("tts", "cat sat", seed=0).tokens
    assert tokens[:3] == ["c", "a", "<|begin_of_audio|>"] and tokens[6:10] == ["<|end_of_audio_new|>", "t", "▁", "<|begin_of_audio|>"]
    assert api.forcing("asr", None, [1, 2, 3, 4]) == Forcing(spoken_codes=[1, 2, 3, 4], spoken_span_len=3)
    replaced = TtTInference(*model, **DECODE, tts_force_text=True, layout_chunk_len=3, layout_span_len=5)
    assert (replaced.layout.chunk_len, replaced.layout.span_len, replaced.layout.asr_prompt) == (3, 5, "write it down")
    config = yaml.safe_load(model[0].read_text())
    config["sequence_layout"]["text_only_asr"] = True
    (d / "text_only.yaml").write_text(yaml.safe_dump(config))
    assert TtTInference(d / "text_only.yaml", model[1], **DECODE, asr_force_audio=True).forcing("asr", None, [1]) is None
    del config["sequence_layout"]
    (d / "old.yaml").write_text(yaml.safe_dump(config))
    assert TtTInference(d / "old.yaml", model[1], **DECODE).layout == SequenceLayout()
    config["sequence_layout"] = {"asr_promt": "x"}
    (d / "bad.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=r"bad.yaml: sequence_layout: unknown sequence layout keys \['asr_promt'\]"):
        TtTInference(d / "bad.yaml", model[1])
