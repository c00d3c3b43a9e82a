"""Pretrained LLM backbone (hf_causal_lm): tokenizer, vocabulary rows, 4-D mask, cache, training through
ttt_train, decoding, official checkpoints, DeepSpeed configs.  All models are tiny random Qwen2s
written by the tests (tiny_qwen.py); nothing is downloaded."""
import json
import math
import random
import shutil
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from espnet2_ttt.bin.make_token_list import main as make_token_list
from espnet2_ttt.bin.ttt_train import main as ttt_train
from espnet2_ttt.inference import DecodeConfig, Forcing, TtTDecoder, build_prompt
from espnet2_ttt.mask import build_modality_mask
from espnet2_ttt.models.hf_backbone import HFCausalLM
from espnet2_ttt.models.transformer import FULL_ATTENTION
from espnet2_ttt.pretrained_vocab import HFTextTokenizer, official_codebook_size, pretrained_rows
from espnet2_ttt.tasks.ttt import TtTTask
from espnet2_ttt.text_tokenizer import load_text_tokenizer
from espnet2_ttt.vocabulary import PAD, SPECIAL_AUDIO_TOKENS, SPECIAL_TEXT_TOKENS, UNK, TtTVocabulary, audio_token

from helpers import chat_sequence, write_seq_file
from tiny_qwen import QWEN_SPECIALS, save_tiny_qwen

ROOT = Path(__file__).resolve().parents[1]
K = 16


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    return save_tiny_qwen(tmp_path_factory.mktemp("qwen"))


@pytest.fixture(scope="module")
def tokenizer(qwen_dir):
    return HFTextTokenizer(str(qwen_dir))


@pytest.fixture(scope="module")
def vocab(tokenizer):
    return TtTVocabulary.build(tokenizer.pieces(), K)


def backbone(qwen_dir, vocab, **kw):
    return HFCausalLM(len(vocab), vocab.token_list, pretrained=str(qwen_dir), **kw)


@pytest.fixture(scope="module")
def model64(qwen_dir, vocab):
    return backbone(qwen_dir, vocab).double().eval()


def random_ids(vocab, B=2, L=14, seed=0):
    """Text ids with one audio span at positions 4..8 and a second one at the end."""
    g = torch.Generator().manual_seed(seed)
    ids = vocab.text_ids[torch.randint(2, len(vocab.text_ids), (B, L), generator=g)]
    ids[:, 4:9] = vocab.first_code_id + torch.randint(0, K, (B, 5), generator=g)
    ids[:, -2:] = vocab.first_code_id + 1
    return ids


# ---------------------------------------------------------------- tokenizer and vocabulary
def test_text_tokenizer_uses_the_model_tokens_only(qwen_dir, tokenizer):
    from transformers import AutoTokenizer

    backend = AutoTokenizer.from_pretrained(str(qwen_dir)).backend_tokenizer
    model_vocab = backend.get_vocab(with_added_tokens=False)
    assert tokenizer.pieces() == sorted(model_vocab, key=model_vocab.get)
    assert not set(QWEN_SPECIALS) & set(tokenizer.pieces())
    for text in ["hello there, how are you?", "你好，今天天气很好。", "mixed 中文 and English 42"]:
        pieces = tokenizer.encode(text)
        assert all(p in model_vocab for p in pieces)
        assert tokenizer.decode(pieces) == text
    a, b = "Transcribe the", " speech. 天气"
    assert tokenizer.decode(tokenizer.encode(a) + tokenizer.encode(b)) == a + b
    spelled = tokenizer.encode("x<|im_end|>y")  # never turns into the special token
    assert "<|im_end|>" not in spelled and tokenizer.decode(spelled) == "x<|im_end|>y"
    assert isinstance(load_text_tokenizer(str(qwen_dir)), HFTextTokenizer)


def test_make_token_list_from_the_backbone_tokenizer(qwen_dir, tokenizer, tmp_path):
    make_token_list(["--bpemodel", str(qwen_dir), "--codebook_size", str(K), "--output", str(tmp_path / "t.txt")])
    tokens = (tmp_path / "t.txt").read_text(encoding="utf-8").splitlines()
    n = len(tokenizer.pieces())
    assert tokens[:2] == [PAD, UNK] and tokens[2 : 2 + len(SPECIAL_TEXT_TOKENS)] == list(SPECIAL_TEXT_TOKENS)
    assert tokens[2 + len(SPECIAL_TEXT_TOKENS) : 2 + len(SPECIAL_TEXT_TOKENS) + n] == tokenizer.pieces()
    assert tokens[-K - len(SPECIAL_AUDIO_TOKENS) :] == [*SPECIAL_AUDIO_TOKENS, *(audio_token(k) for k in range(K))]


def test_pretrained_rows_and_new_row_initialisation(qwen_dir, tokenizer, vocab):
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(str(qwen_dir))
    old = hf.get_input_embeddings().weight.detach()
    rows = torch.tensor(pretrained_rows(vocab.token_list, tokenizer.vocab))
    assert rows[vocab.pad_id] == tokenizer.vocab["<|endoftext|>"]
    assert rows[vocab.im_start_id] == tokenizer.vocab["<|im_start|>"] and rows[vocab.im_end_id] == tokenizer.vocab["<|im_end|>"]
    assert rows[vocab.role_ids["user"]] == tokenizer.vocab["user"]  # the role word the official template writes
    for piece in tokenizer.pieces():
        assert rows[vocab.token2id[piece]] == tokenizer.vocab[piece]
    assert (rows[vocab.first_code_id :] == -1).all() and rows[vocab.unk_id] == -1 and rows[vocab.mask_id] == -1

    exact = backbone(qwen_dir, vocab, new_row_noise=0.0)
    emb = exact.model.get_input_embeddings().weight.detach()
    assert exact.model.get_output_embeddings().weight is exact.model.get_input_embeddings().weight  # still tied
    mapped = rows >= 0
    assert torch.equal(emb[mapped], old[rows[mapped]])
    known = old[sorted(set(tokenizer.vocab.values()))]
    assert torch.allclose(emb[~mapped], known.mean(0).expand(int((~mapped).sum()), -1), atol=1e-6)
    noisy = backbone(qwen_dir, vocab).model.get_input_embeddings().weight.detach()
    assert torch.equal(noisy[mapped], emb[mapped])
    new = noisy[~mapped]
    assert len(torch.unique(new, dim=0)) == len(new)  # distinct new rows, around the mean
    assert ((new - known.mean(0)).abs() <= 6 * 0.1 * known.std(0)).all()  # new_row_noise 0.1: within 6 sigma
    assert torch.equal(noisy, backbone(qwen_dir, vocab).model.get_input_embeddings().weight.detach())  # seeded


def test_untied_output_layer_rows(tmp_path, vocab):
    untied = save_tiny_qwen(tmp_path / "untied", tie=False)
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(str(untied))
    b = backbone(untied, vocab)
    rows = torch.tensor(pretrained_rows(vocab.token_list, HFTextTokenizer(str(untied)).vocab))
    out = b.model.get_output_embeddings().weight
    assert out is not b.model.get_input_embeddings().weight
    assert torch.equal(out[rows >= 0], hf.get_output_embeddings().weight[rows[rows >= 0]])


# ---------------------------------------------------------------- mask and cache
def brute_force_logits(hf, ids, allow):
    """Qwen2 forward written out with an explicit masked softmax (float64 reference)."""
    cfg, m = hf.config, hf.model
    B, L = ids.shape
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
    hd = cfg.hidden_size // nh
    inv = 1.0 / cfg.rope_parameters["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.outer(torch.arange(L, dtype=torch.float64), inv).repeat(1, 2)
    cos, sin = ang.cos(), ang.sin()

    def rms(x, w):
        return w * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg.rms_norm_eps)

    def rope(x):
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin

    x = m.embed_tokens(ids)
    for layer in m.layers:
        a, h = layer.self_attn, rms(x, layer.input_layernorm.weight)
        q = rope(a.q_proj(h).view(B, L, nh, hd).transpose(1, 2))
        k = rope(a.k_proj(h).view(B, L, nkv, hd).transpose(1, 2)).repeat_interleave(nh // nkv, dim=1)
        v = a.v_proj(h).view(B, L, nkv, hd).transpose(1, 2).repeat_interleave(nh // nkv, dim=1)
        scores = (q @ k.transpose(-1, -2) / math.sqrt(hd)).masked_fill(~allow, -torch.inf)
        x = x + a.o_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(B, L, -1))
        h = rms(x, layer.post_attention_layernorm.weight)
        x = x + layer.mlp.down_proj(F.silu(layer.mlp.gate_proj(h)) * layer.mlp.up_proj(h))
    return hf.lm_head(rms(x, m.norm.weight))


@torch.no_grad()
def test_4d_modality_mask_matches_brute_force_attention(qwen_dir, vocab, model64):
    ids = random_ids(vocab)
    valid = torch.ones_like(ids, dtype=torch.bool)
    valid[1, 10:] = False  # right padding: padded rows must stay finite
    allow = build_modality_mask(vocab.is_audio_side(ids), valid)
    assert not torch.equal(allow[0, 0], torch.ones(14, 14, dtype=torch.bool).tril())  # really non-causal
    logits = model64(ids, allow)
    assert torch.isfinite(logits).all()
    ref = brute_force_logits(model64.model, ids, allow)
    assert torch.allclose(logits, ref, atol=1e-5, rtol=0)  # HF's RoPE tables are float32
    causal = model64(ids, None)  # attn_mask=None is plain causal
    assert torch.allclose(causal, brute_force_logits(model64.model, ids, torch.ones(14, 14, dtype=torch.bool).tril()), atol=1e-5)
    assert not torch.allclose(causal[0, 4:9], logits[0, 4:9], atol=1e-3)  # the span rows do differ
    eager = backbone(qwen_dir, vocab, attn_implementation="eager").double().eval()
    assert torch.allclose(eager(ids, allow), logits, atol=1e-5)  # additive float mask path


@torch.no_grad()
def test_cache_extend_crop_and_bottom_right_causal(model64, vocab):
    ids = random_ids(vocab, B=1, L=16, seed=1)
    allow = build_modality_mask(vocab.is_audio_side(ids))
    full = model64(ids, allow)
    cache = model64.new_cache()
    # cached and uncached runs use different shapes, so BLAS may round differently: float64 to 1e-12
    close = partial(torch.testing.assert_close, rtol=0, atol=1e-12)
    close(model64(ids[:, :4], allow[:, :, :4, :4], cache=cache, extend_cache=True), full[:, :4])
    assert cache.length == 4
    rows = build_modality_mask(vocab.is_audio_side(ids), num_queries=12)
    for _ in range(2):  # a non-extending call leaves the cache as it was
        close(model64(ids[:, 4:], rows, cache=cache), full[:, 4:])
        assert cache.length == 4
    model64(ids[:, 4:10], rows[:, :, :6, :10], cache=cache, extend_cache=True)
    assert cache.length == 10
    cache.crop(7)
    assert cache.length == 7
    text = vocab.text_ids[5:15][None]
    causal = model64(text, None)
    cache = model64.new_cache()
    model64(text[:, :6], None, cache=cache, extend_cache=True)
    assert torch.allclose(model64(text[:, 6:], None, cache=cache), causal[:, 6:], atol=1e-12)
    assert torch.allclose(model64(text[:, 6:7], None, cache=cache), causal[:, 6:7], atol=1e-12)
    cache = model64.new_cache()
    model64(ids[:, :7], None, cache=cache, extend_cache=True)
    nothing_hidden = torch.ones(1, 1, 9, 16, dtype=torch.bool)
    close(model64(ids[:, 7:], FULL_ATTENTION, cache=cache), model64(ids[:, 7:], nothing_hidden, cache=cache))
    assert torch.allclose(model64(ids[:, 7:], FULL_ATTENTION, cache=cache, logits_to_keep=2),
                          model64(ids[:, 7:], FULL_ATTENTION, cache=cache)[:, -2:], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="attn_mask must be bool"):
        model64(ids[:, :3], allow[:, :, :3, :3].float())


@pytest.mark.parametrize("mode,cfg_scale", [("chat", 0.0), ("tts", 0.5)])
def test_decoding_cached_equals_reference(model64, vocab, mode, cfg_scale):
    pieces = vocab.ids_to_tokens(vocab.text_ids[20:23])
    prompt = (build_prompt(vocab, "chat", user_codes=[3, 1, 4, 1, 5]) if mode == "chat"
              else build_prompt(vocab, "tts", user_text=pieces))
    conf = dict(max_new_tokens=60, block_length=8, steps_per_block=3, max_span_length=24, top_k=6, top_p=0.9,
                diffusion_temperature=0.8, cfg_scale=cfg_scale)
    forcing = Forcing(text_ids=[vocab.token2id[pieces[0]], vocab.soa_id], span_lengths=[11])
    out = [TtTDecoder(model64, vocab, DecodeConfig(**conf, use_cache=c)).decode(prompt, torch.Generator().manual_seed(0), forcing)
           for c in (True, False)]
    assert out[0].token_ids == out[1].token_ids and len(out[0].spans[0]) == 11
    assert out[0].forwards == out[1].forwards


def test_bad_backbone_configurations(qwen_dir, vocab, tmp_path):
    with pytest.raises(ValueError, match="attn_implementation"):
        backbone(qwen_dir, vocab, attn_implementation="flash_attention_2")
    with pytest.raises(ValueError, match="needs pretrained"):
        HFCausalLM(len(vocab), vocab.token_list)
    with pytest.raises(ValueError, match="vocab_size"):
        HFCausalLM(len(vocab) + 1, vocab.token_list, pretrained=str(qwen_dir))
    spm_layout = TtTVocabulary.build(["▁w1", "▁w2"], K)  # a token list made for another tokenizer
    with pytest.raises(ValueError, match=r"2 text pieces .* not tokens of the pretrained tokenizer"):
        backbone(qwen_dir, spm_layout)
    from transformers import AutoConfig

    sliding = tmp_path / "sliding"
    shutil.copytree(qwen_dir, sliding)
    config = AutoConfig.from_pretrained(str(sliding))
    config.use_sliding_window, config.sliding_window, config.max_window_layers = True, 4, 0
    config.layer_types = ["sliding_attention"] * config.num_hidden_layers
    config.save_pretrained(str(sliding))
    with pytest.raises(ValueError, match="sliding-window"):
        backbone(sliding, vocab)


# ---------------------------------------------------------------- training through ESPnet
@pytest.fixture(scope="module")
def trained(tmp_path_factory, qwen_dir, vocab):
    d = tmp_path_factory.mktemp("hf_train")
    vocab.save(d / "tokens.txt")
    words = vocab.ids_to_tokens(vocab.text_ids[30:50])
    rng = random.Random(0)
    write_seq_file(d / "train" / "seq", {f"utt{i:03d}": chat_sequence(rng, rng.randint(1, 2), K, words=words) for i in range(24)})
    write_seq_file(d / "valid" / "seq", {f"val{i:03d}": chat_sequence(rng, rng.randint(1, 2), K, words=words) for i in range(6)})
    common = [
        "--token_list", str(d / "tokens.txt"), "--bpemodel", str(qwen_dir),
        "--train_data_path_and_name_and_type", f"{d / 'train' / 'seq'},seq,text",
        "--valid_data_path_and_name_and_type", f"{d / 'valid' / 'seq'},seq,text",
        "--backbone", "hf_causal_lm", "--backbone_conf", f"pretrained={qwen_dir}",
        "--ngpu", "0", "--batch_size", "4", "--num_workers", "0", "--use_tensorboard", "false", "--use_matplotlib", "false",
    ]
    ttt_train(common + ["--collect_stats", "true", "--output_dir", str(d / "stats")])
    out = d / "exp"
    ttt_train(common + [
        "--output_dir", str(out), "--train_shape_file", str(d / "stats" / "train" / "seq_shape"),
        "--valid_shape_file", str(d / "stats" / "valid" / "seq_shape"), "--fold_length", "150",
        "--max_epoch", "3", "--seed", "1", "--optim", "adamw", "--optim_conf", "lr=0.003", "--keep_nbest_models", "1",
    ])
    return out


def test_ttt_train_with_the_hf_backbone_loss_falls(trained, qwen_dir):
    import yaml

    stats = torch.load(trained / "checkpoint.pth", weights_only=False)["reporter"]["stats"]
    valid = [stats[e]["valid"] for e in sorted(stats)]
    assert valid[-1]["loss"] < valid[0]["loss"] and valid[-1]["loss_diff"] < valid[0]["loss_diff"]
    config = yaml.safe_load((trained / "config.yaml").read_text())
    assert config["backbone"] == "hf_causal_lm" and config["backbone_conf"]["pretrained"] == str(qwen_dir)
    assert config["backbone_conf"]["hf_config"]["model_type"] == "qwen2"
    assert config["backbone_conf"]["hf_config"]["vocab_size"] == len(config["token_list"])


def test_trained_model_reloads_from_config_alone_and_decodes(trained, qwen_dir, tmp_path):
    from espnet2_ttt.bin.ttt_inference import TtTInference

    weights = qwen_dir / "model.safetensors"
    moved = tmp_path / "model.safetensors"
    shutil.move(weights, moved)  # the pretrained weights are not needed: config.yaml + .pth suffice
    try:
        model, _ = TtTTask.build_model_from_file(trained / "config.yaml", trained / "valid.acc.ave.pth")
        state = torch.load(trained / "valid.acc.ave.pth", weights_only=True)
        assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
        outs = [TtTInference(trained / "config.yaml", trained / "valid.acc.ave.pth", dtype="float64", use_cache=c,
                             max_new_tokens=40, block_length=8, steps_per_block=2, max_span_length=16,
                             top_k=5, diffusion_temperature=0.5)("chat", speech_codes=[1, 2, 3], seed=4)
                for c in (True, False)]
    finally:
        shutil.move(moved, weights)
    assert outs[0].tokens == outs[1].tokens and outs[0].tokens
    assert isinstance(outs[0].text, str)


def test_packed_model_needs_no_pretrained_directory(trained, qwen_dir, tmp_path):
    from espnet2_ttt.bin.pack import pack_ttt
    from espnet2_ttt.bin.ttt_inference import TtTInference

    packed = tmp_path / "packed.zip"
    pack_ttt(str(trained / "config.yaml"), str(trained / "valid.acc.ave.pth"), str(packed))
    hidden = qwen_dir.with_name(qwen_dir.name + "_hidden")
    qwen_dir.rename(hidden)  # model and tokenizer must come from the archive
    try:
        ttt = TtTInference.from_pretrained(str(packed), cache_dir=str(tmp_path / "zoo"), max_new_tokens=20,
                                           block_length=8, steps_per_block=2, max_span_length=16)
        assert Path(ttt.bpemodel).name == "text_tokenizer" and Path(ttt.bpemodel).is_dir()
        out = ttt("tts", "hello there")
    finally:
        hidden.rename(qwen_dir)
    assert out.tokens


def test_tied_output_rows_that_differ_are_refused(trained, tmp_path):
    """The tiny Qwen2 ties lm_head to embed_tokens (tie_word_embeddings): a weights file whose two
    copies differ is refused naming both keys, not loaded with the last one silently winning."""
    from espnet2_ttt.models.weights import tied_names
    from espnet2_ttt.utils.cli import InputError

    model, _ = TtTTask.build_model_from_file(trained / "config.yaml", trained / "valid.acc.ave.pth")
    [[embed, head]] = tied_names(model)
    assert (embed, head) == ("backbone.model.model.embed_tokens.weight", "backbone.model.lm_head.weight")
    state = torch.load(trained / "valid.acc.ave.pth", weights_only=True)
    assert torch.equal(state[embed], state[head])
    state[head] = state[head].clone()
    state[head][5, 0] += 1.0
    torch.save(state, tmp_path / "untied.pth")
    with pytest.raises(InputError) as e:
        TtTTask.build_model_from_file(trained / "config.yaml", tmp_path / "untied.pth")
    assert str(e.value) == (f"{tmp_path / 'untied.pth'}: {head}: differs from {embed}, which the model ties it to "
                            f"(one tensor under both names)")


def test_gradient_checkpointing_gives_the_same_gradients(qwen_dir, vocab):
    ids = random_ids(vocab)
    allow = build_modality_mask(vocab.is_audio_side(ids))
    grads = []
    for ckpt in (False, True):
        b = backbone(qwen_dir, vocab, gradient_checkpointing=ckpt).double().train()
        b(ids, allow).pow(2).mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in b.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


def test_paper_config_builds_the_hf_backbone(qwen_dir, vocab, tmp_path):
    vocab.save(tmp_path / "tokens.txt")
    args = TtTTask.get_parser().parse_args([
        "--config", str(ROOT / "conf" / "train_ttt_qwen2.5.yaml"), "--token_list", str(tmp_path / "tokens.txt"),
        "--backbone_conf", f"pretrained={qwen_dir}", "--output_dir", str(tmp_path / "exp"),
    ])
    assert args.backbone_conf["gradient_checkpointing"] is True and args.optim_conf["lr"] == 2e-5
    model = TtTTask.build_model(args)
    assert model.backbone.model.is_gradient_checkpointing
    assert model.corruption.banom_prob == 0.3 and args.max_seq_len == 2048


def test_init_option_is_refused_with_pretrained_weights(qwen_dir, vocab, tmp_path):
    import argparse

    vocab.save(tmp_path / "tokens.txt")
    args = argparse.Namespace(**TtTTask.get_default_config())
    args.token_list, args.init = str(tmp_path / "tokens.txt"), "xavier_uniform"
    args.backbone, args.backbone_conf = "hf_causal_lm", {"pretrained": str(qwen_dir)}
    with pytest.raises(ValueError, match="overwrite the pretrained weights"):
        TtTTask.build_model(args)


# ---------------------------------------------------------------- official checkpoints
@pytest.fixture(scope="module")
def official(tmp_path_factory):
    from espnet2_ttt.bin.import_official import main as import_official

    d = tmp_path_factory.mktemp("official")
    src = save_tiny_qwen(d / "ttt_official", official=True, codebook_size=24, seed=1)
    import_official(["--model_dir", str(src), "--output_dir", str(d / "imported")])
    return src, d / "imported"


@torch.no_grad()
def test_official_checkpoint_rows_and_logits_map_onto_ours(official):
    from transformers import AutoModelForCausalLM

    src, imported = official
    model, _ = TtTTask.build_model_from_file(imported / "config.yaml", imported / "model.pth")
    vocab = model.vocab
    off_vocab = HFTextTokenizer(str(src)).vocab
    assert vocab.codebook_size == official_codebook_size(off_vocab) == 24
    rows = torch.tensor(pretrained_rows(vocab.token_list, off_vocab))
    for token in ["<|begin_of_audio|>", "<|end_of_audio|>", "<|begin_of_quad|>", "<|mask_token|>",
                  "<|end_of_audio_new|>", "<|end_of_audio_span_last|>", "<|audio_0|>", "<|audio_23|>", "<|im_end|>"]:
        assert rows[vocab.token2id[token]] == off_vocab[token]
    assert rows[vocab.pad_id] == off_vocab["<|endoftext|>"]
    unmapped = {t for t, r in zip(vocab.token_list, rows.tolist()) if r < 0}
    assert unmapped == {"<unk>", "<|assistant|>", "<|truncated|>"}  # "assistant" is no single tiny-BPE token

    ref = AutoModelForCausalLM.from_pretrained(str(src)).double().eval()
    ours = model.backbone.double().eval()
    mapped = rows >= 0
    emb = ours.model.get_input_embeddings().weight
    assert torch.equal(emb[mapped], ref.get_input_embeddings().weight[rows[mapped]])
    ids = torch.tensor([build_prompt(vocab, "chat", user_codes=[5, 7, 23, 0], system_text=vocab.ids_to_tokens([300, 301]))
                        + [vocab.token2id["<|begin_of_quad|>"], vocab.code_to_id(torch.tensor(3)).item(), vocab.mask_id]])
    ids = ids[:, ids[0] != vocab.role_ids["assistant"]]  # every id of this sequence has an official row
    allow = build_modality_mask(vocab.is_audio_side(ids))
    ours_logits = ours(ids, allow)
    ref_logits = ref(input_ids=rows[ids], attention_mask=allow).logits
    assert torch.allclose(ours_logits[..., mapped], ref_logits[..., rows[mapped]], atol=1e-10)


def test_official_checkpoint_prompts_follow_the_official_template(official):
    """Imported models prompt as the official training code built its sequences: every piece
    tokenized on its own, "<|im_start|>" role "\\n" content "<|im_end|>" "\\n" (doc 2.3)."""
    from espnet2_ttt.bin.ttt_inference import TtTInference

    src, imported = official
    inference = TtTInference(imported / "config.yaml", imported / "model.pth")
    assert inference.chat_template == "official"
    ours = inference.prompt("text", "hello there")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(src))  # the official tokenizer, pieces encoded one by one
    enc = lambda text: tok.encode(text, add_special_tokens=False)  # noqa: E731
    start, end, nl = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>"), enc("\n")
    official_ids = ([start, *enc("system"), *nl, end, *nl, start, *enc("user"), *nl, *enc("hello there"), end, *nl]
                    + [start, *enc("assistant"), *nl])
    rows = pretrained_rows(inference.vocab.token_list, HFTextTokenizer(str(src)).vocab)
    mapped = [rows[i] for i in ours]
    # "assistant" is several pieces of the tiny BPE (one token in Qwen's), so <|assistant|> has no row
    assert mapped[-2] < 0 and ours[-2] == inference.vocab.role_ids["assistant"]
    assert mapped[:-2] == official_ids[: len(mapped) - 2] and mapped[-1] == official_ids[-1]
    assert len(official_ids) - len(mapped) == len(enc("assistant")) - 1


def test_official_checkpoint_decodes_with_our_inference(official):
    from espnet2_ttt.bin.ttt_inference import TtTInference

    src, imported = official
    outs = [TtTInference(imported / "config.yaml", imported / "model.pth", dtype="float64", use_cache=c,
                         max_new_tokens=30, block_length=8, steps_per_block=2, max_span_length=16, top_k=5)
            ("asr", speech_codes=[1, 2, 3, 4], seed=0) for c in (True, False)]
    assert outs[0].tokens == outs[1].tokens and outs[0].tokens
    assert outs[0].text == HFTextTokenizer(str(src)).decode(
        [t for t in outs[0].tokens if not t.startswith("<|")])


def test_plain_llm_is_not_an_official_checkpoint(qwen_dir, tmp_path):
    from espnet2_ttt.bin.import_official import import_official

    with pytest.raises(ValueError, match="not an official TtT checkpoint"):
        import_official(str(qwen_dir), str(tmp_path / "x"))


# ---------------------------------------------------------------- DeepSpeed configs
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_configs_are_consistent_and_accepted_by_espnet(stage):
    from espnet2.train.deepspeed_trainer import DeepSpeedTrainer

    path = ROOT / "conf" / "deepspeed" / f"zero{stage}_bf16.json"
    ds = json.loads(path.read_text())
    assert ds["zero_optimization"]["stage"] == stage and ds["bf16"]["enabled"] is True
    assert "fp16" not in ds and "amp" not in ds  # ESPnet picks the batch dtype from the keys present
    assert DeepSpeedTrainer.setup_data_dtype(ds) == torch.bfloat16
    # the paper's global batch: 2048 sequences = micro batch x accumulation x 32 GPUs
    assert ds["train_micro_batch_size_per_gpu"] * ds["gradient_accumulation_steps"] * 32 == 2048
    opt = ds["optimizer"]["params"]
    assert ds["optimizer"]["type"] == "AdamW" and opt["lr"] == 2e-5 and opt["betas"] == [0.9, 0.95]
    assert opt["weight_decay"] == 0.01 and ds["gradient_clipping"] == 1.0
    sched = ds["scheduler"]["params"]
    assert sched["warmup_num_steps"] == round(0.01 * sched["total_num_steps"])
    if stage == 3:  # the n-best averaging reads full weights from mp_rank_00_model_states.pt
        assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    args = TtTTask.get_parser().parse_args(["--use_deepspeed", "true", "--deepspeed_config", str(path), "--token_list", "x",
                                            "--output_dir", "exp", "--backbone", "hf_causal_lm"])
    options = DeepSpeedTrainer.build_options(args)
    assert options.deepspeed_config == str(path)
