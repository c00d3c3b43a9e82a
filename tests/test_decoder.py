"""TtT decoder: exact KV cache, sampler, diffusion step, span control, streaming, bad inputs."""
import copy
import logging

import pytest
import torch

from espnet2_ttt.inference import (
    AudioEvent,
    DecodeConfig,
    Forcing,
    SpanEndEvent,
    TextEvent,
    TtTDecoder,
    TurnEndEvent,
    build_prompt,
)
from espnet2_ttt.inference.cache import CachedRunner, FullRecompute
from espnet2_ttt.inference.sampler import (
    commit_schedule,
    diffusion_step,
    gumbel_argmax,
    sample_text,
    steps_per_block,
)
from espnet2_ttt.models.transformer import AbsBackbone, TtTTransformer
from espnet2_ttt.vocabulary import TtTVocabulary

PIECES = [f"w{i}" for i in range(24)]


@pytest.fixture(scope="module")
def vocab():
    return TtTVocabulary.build(PIECES, codebook_size=16)


@pytest.fixture(scope="module")
def model(vocab):
    torch.manual_seed(0)
    return TtTTransformer(vocab_size=len(vocab), d_model=64, n_layer=2, n_head=4, max_len=400, init_std=0.2).double()


@pytest.fixture(scope="module")
def span_model(vocab):
    """With a span-position table shorter than the test spans (11 codes, 8 prompt codes): clamped rows used."""
    torch.manual_seed(1)
    return TtTTransformer(vocab_size=len(vocab), d_model=64, n_layer=2, n_head=4, max_len=400, init_std=0.2,
                          span_position_embeddings=6).double()


def prompt_for(vocab, mode):
    text = ["w1", "w2", "w3"]
    codes = [3, 1, 4, 1, 5, 9, 2, 6]
    return {
        "text": build_prompt(vocab, "text", user_text=text),
        "asr": build_prompt(vocab, "asr", user_codes=codes, system_text=["w7"]),
        "tts": build_prompt(vocab, "tts", user_text=text),
        "chat": build_prompt(vocab, "chat", user_codes=codes),
    }[mode]


def config(**kw):
    base = dict(max_new_tokens=90, block_length=8, steps_per_block=3, max_span_length=24,
                top_k=6, top_p=0.9, diffusion_temperature=0.8, cfg_scale=0.0)
    return DecodeConfig(**{**base, **kw})


def decode(model, vocab, prompt, seed=0, forcing=None, **kw):
    return TtTDecoder(model, vocab, config(**kw)).decode(prompt, torch.Generator().manual_seed(seed), forcing)


# ---------------------------------------------------------------- exact cache
@pytest.mark.parametrize("span_positions", [False, True])
@pytest.mark.parametrize("cfg_scale", [0.0, 0.5])
@pytest.mark.parametrize("mode", ["text", "asr", "tts", "chat"])
def test_cached_equals_reference(model, span_model, vocab, mode, cfg_scale, span_positions):
    """Same seed, float64: the cached path writes exactly the reference (full recompute) tokens."""
    model = span_model if span_positions else model
    prompt = prompt_for(vocab, mode)
    # start with one forced span so that every mode has diffusion and AR after a span
    forcing = Forcing(text_ids=[vocab.token2id["w5"], vocab.soa_id], span_lengths=[11])
    cached = decode(model, vocab, prompt, forcing=forcing, cfg_scale=cfg_scale, use_cache=True)
    reference = decode(model, vocab, prompt, forcing=forcing, cfg_scale=cfg_scale, use_cache=False)
    assert cached.token_ids == reference.token_ids
    assert cached.spans == reference.spans and len(cached.spans) >= 1
    assert len(cached.spans[0]) == 11
    assert cached.forwards == reference.forwards


@pytest.mark.parametrize("kw", [dict(remasking="random"), dict(cfg_scale=0.5, cfg_uncond="span_only"),
                                dict(diffusion_temperature=0.0, ar_temperature=0.0, top_k=0, top_p=1.0)])
def test_cached_equals_reference_options(model, vocab, kw):
    prompt = prompt_for(vocab, "chat")
    forcing = Forcing(text_ids=[vocab.soa_last_id], span_lengths=[13])
    cached = decode(model, vocab, prompt, seed=3, forcing=forcing, use_cache=True, **kw)
    reference = decode(model, vocab, prompt, seed=3, forcing=forcing, use_cache=False, **kw)
    assert cached.token_ids == reference.token_ids


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cfg_scale", [0.0, 0.5])
def test_cached_equals_reference_on_cuda(model, vocab, cfg_scale):
    gpu = copy.deepcopy(model).cuda()
    forcing = Forcing(text_ids=[vocab.token2id["w5"], vocab.soa_id], span_lengths=[11])
    cached, reference = (
        TtTDecoder(gpu, vocab, config(cfg_scale=cfg_scale, use_cache=c)).decode(
            prompt_for(vocab, "chat"), torch.Generator("cuda").manual_seed(0), forcing)
        for c in (True, False)
    )
    assert cached.token_ids == reference.token_ids and len(cached.spans[0]) == 11


def test_cfg_changes_the_audio(model, vocab):
    """Guidance is really applied: a large scale changes the written codes."""
    prompt = prompt_for(vocab, "chat")
    forcing = Forcing(text_ids=[vocab.soa_last_id], span_lengths=[16])
    plain = decode(model, vocab, prompt, forcing=forcing, diffusion_temperature=0.0)
    guided = decode(model, vocab, prompt, forcing=forcing, diffusion_temperature=0.0, cfg_scale=3.0)
    assert plain.spans[0] != guided.spans[0]


def test_phase_timing_is_optional(model, vocab):
    """Without time_phases only the total is timed (no per-phase CUDA sync); the tokens and the
    forward counts are the same either way."""
    forcing = Forcing(text_ids=[vocab.token2id["w5"], vocab.soa_id], span_lengths=[11])
    plain, timed = (
        TtTDecoder(model, vocab, config(cfg_scale=0.5), time_phases=t).decode(
            prompt_for(vocab, "chat"), torch.Generator().manual_seed(0), forcing)
        for t in (False, True)
    )
    assert plain.token_ids == timed.token_ids and plain.forwards == timed.forwards
    assert set(plain.timings) == {"total"}
    assert set(timed.timings) == {"prefix", "ar", "diffusion", "cfg_uncond", "span_close", "total"}


@pytest.mark.parametrize("use_cache", [True, False])
def test_runners_read_the_side_table_on_the_model_device(model, vocab, monkeypatch, use_cache):
    """The runners look the audio side up in their own device copy, never through the vocabulary
    (which copies its table to the device at every call)."""
    def host_table(*args):
        raise AssertionError("TtTVocabulary.is_audio_side called while decoding")

    monkeypatch.setattr(TtTVocabulary, "is_audio_side", host_table)
    forcing = Forcing(text_ids=[vocab.token2id["w5"], vocab.soa_id], span_lengths=[11])
    result = decode(model, vocab, prompt_for(vocab, "chat"), forcing=forcing, cfg_scale=0.5, use_cache=use_cache)
    assert len(result.spans[0]) == 11
    runner = (CachedRunner if use_cache else FullRecompute)(model, vocab)
    assert runner.audio_side.device == next(model.parameters()).device
    assert torch.equal(runner.audio_side, vocab.audio_side_table)


# ---------------------------------------------------------------- schedule and sampler
def test_commit_schedule_official_split():
    assert commit_schedule(26, 2) == [13, 13]
    assert commit_schedule(32, 10) == [4, 4, 3, 3, 3, 3, 3, 3, 3, 3]
    assert commit_schedule(5, 5) == [1] * 5
    for bk in range(1, 40):
        for s in range(1, bk + 1):
            ks = commit_schedule(bk, s)
            assert sum(ks) == bk and max(ks) - min(ks) <= 1
    with pytest.raises(ValueError):
        commit_schedule(4, 5)
    assert steps_per_block(200, 640, 32) == 10  # paper
    assert steps_per_block(200, 2600, 26) == 2  # repository example
    with pytest.raises(ValueError, match="multiple"):
        steps_per_block(200, 650, 32)
    with pytest.raises(ValueError, match="multiple"):
        steps_per_block(30, 640, 32)
    assert DecodeConfig().steps_per_block == 10


def test_low_confidence_commits_the_most_confident_masked_positions():
    M = 99
    vocab_ids = torch.tensor([10, 11, 12])
    block = torch.tensor([M, 11, M, M, M])
    logits = torch.tensor([
        [0.0, 1.0, 0.0],   # conf of argmax 1: ~0.58
        [9.0, 0.0, 0.0],   # already committed: never touched
        [5.0, 0.0, 0.0],   # ~0.987 -> committed
        [0.0, 0.0, 3.0],   # ~0.91  -> committed
        [0.0, 0.2, 0.0],   # ~0.38
    ], dtype=torch.float64)
    out = diffusion_step(block, logits, vocab_ids, 2, M, 0.0, "low_confidence", torch.Generator().manual_seed(0))
    assert out.tolist() == [M, 11, 10, 12, M]
    out = diffusion_step(out, logits, vocab_ids, 2, M, 0.0, "low_confidence", torch.Generator().manual_seed(0))
    assert out.tolist() == [11, 11, 10, 12, 11]


def test_random_remasking_commits_only_masked_positions():
    M = 99
    block = torch.tensor([M, 10, M, M, 12, M])
    logits = torch.zeros(6, 3, dtype=torch.float64)
    out = diffusion_step(block, logits, torch.tensor([10, 11, 12]), 3, M, 0.0, "random", torch.Generator().manual_seed(1))
    assert out[1] == 10 and out[4] == 12
    assert int((out == M).sum()) == 1 and int((out != M).sum()) == 5


def test_gumbel_sampling_matches_softmax_with_temperature():
    z = torch.tensor([1.0, 0.0, -0.5, 2.0], dtype=torch.float64)
    n, T = 40000, 0.7
    draws = gumbel_argmax(z.expand(n, 4), T, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).double() / n
    expected = torch.softmax(z / T, dim=0)
    assert torch.allclose(freq, expected, atol=0.01), (freq, expected)
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    assert gumbel_argmax(z.expand(3, 4), 0.0, g).tolist() == [3, 3, 3]
    assert torch.equal(g.get_state(), state)  # greedy draws nothing


def test_text_sampling_top_k_top_p():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    z = probs.log()
    g = torch.Generator().manual_seed(0)
    assert sample_text(z, 0.0, 0, 1.0, g) == 0  # greedy
    n = 3000
    top_p = torch.bincount(torch.tensor([sample_text(z, 0.0, 0, 0.7, g) for _ in range(n)]), minlength=4)
    # keep tokens whose preceding mass < 0.7: {0, 1}, renormalised 0.625 / 0.375 (T = 1 implicit)
    assert top_p[2:].sum() == 0 and abs(top_p[0] / n - 0.625) < 0.025
    top_k = torch.bincount(torch.tensor([sample_text(z, 0.0, 3, 1.0, g) for _ in range(n)]), minlength=4)
    assert top_k[3] == 0 and abs(top_k[2] / n - 0.15 / 0.95) < 0.02


# ---------------------------------------------------------------- span control
class ScriptedBackbone(AbsBackbone):
    """No network: the row at position p favours ``at_mask[p]`` if its input is ``[M]``, else
    ``at_token[p]`` (``default`` when unscripted).  Used with the reference runner only."""

    def __init__(self, vocab, at_mask, at_token, default):
        super().__init__()
        self.vocab_size, self.mask_id = len(vocab), vocab.mask_id
        self.at_mask, self.at_token, self.default = at_mask, at_token, default
        self.anchor = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))  # gives a device

    def forward(self, input_ids, attn_mask, position_ids=None, cache=None, extend_cache=False, span_positions=None,
                logits_to_keep=0):
        logits = torch.zeros(*input_ids.shape, self.vocab_size, dtype=torch.float64)
        for i, (tok, p) in enumerate(zip(input_ids[0].tolist(), position_ids[0].tolist())):
            table = self.at_mask if tok == self.mask_id else self.at_token
            logits[0, i, table.get(p, self.default)] = 10.0 + p / 100  # distinct confidences
        return logits[:, -logits_to_keep:]

    def new_cache(self):
        raise NotImplementedError("scripted backbone has no cache")


def test_earliest_eoa_ends_the_span_and_drops_the_rest(vocab):
    prompt = prompt_for(vocab, "text")
    P = len(prompt)  # AR writes the SOA at P; the span's first block covers P+1 .. P+8
    code = vocab.first_code_id + 7
    at_mask = {P + 1 + i: code for i in range(8)}
    at_mask[P + 3] = vocab.eoa_last_id  # earliest EOA (the official check order would pick the other)
    at_mask[P + 5] = vocab.eoa_id
    at_token = {P - 1: vocab.soa_id, P + 3: vocab.im_end_id}  # AR rows: SOA, then <|im_end|> after the EOA
    backbone = ScriptedBackbone(vocab, at_mask, at_token, vocab.token2id["w0"])
    dec = TtTDecoder(backbone, vocab, config(use_cache=False, top_k=0, top_p=1.0, diffusion_temperature=0.0))
    events = list(dec.stream(prompt, torch.Generator().manual_seed(0)))
    result = events[-1].result
    assert vocab.ids_to_tokens(result.token_ids) == [
        "<|begin_of_audio|>", "<|audio_7|>", "<|audio_7|>", "<|end_of_audio_span_last|>", "<|im_end|>"
    ]
    audio = [e for e in events if isinstance(e, AudioEvent)]
    assert len(audio) == 1 and audio[0].codes == [7, 7] and len(audio[0].ids) == 3
    assert result.stop_reason == "im_end" and result.spans == [[7, 7]]


def test_min_text_tokens_after_audio_delays_im_end(vocab):
    """The model wants <|im_end|> right after the span; with 2 required text tokens it comes third."""
    prompt = prompt_for(vocab, "text")
    P = len(prompt)
    at_mask = {P + 1: vocab.first_code_id, P + 2: vocab.eoa_id}
    at_token = {P - 1: vocab.soa_id, P + 2: vocab.im_end_id, P + 3: vocab.im_end_id, P + 4: vocab.im_end_id}
    w0 = vocab.token2id["w0"]

    class SecondChoiceW0(ScriptedBackbone):
        def forward(self, *args, **kwargs):
            logits = super().forward(*args, **kwargs)
            logits[..., w0] = logits[..., w0].clamp_min(5.0)  # runner-up everywhere
            return logits

    backbone = SecondChoiceW0(vocab, at_mask, at_token, w0)
    results = [
        TtTDecoder(backbone, vocab, config(use_cache=False, top_k=0, top_p=1.0, block_length=2, steps_per_block=1, diffusion_temperature=0.0,
                                           min_text_tokens_after_audio=n)).decode(prompt, torch.Generator())
        for n in (0, 2)
    ]
    toks = [vocab.ids_to_tokens(r.token_ids) for r in results]
    assert toks[0] == ["<|begin_of_audio|>", "<|audio_0|>", "<|end_of_audio_new|>", "<|im_end|>"]
    assert toks[1] == toks[0][:3] + ["w0", "w0", "<|im_end|>"]


def test_maxlenratio_bounds_text_after_an_audio_prompt(vocab):
    """A model that never ends: 8 prompt codes x 0.4 -> 3 text pieces (ESPnet maxlenratio); a
    prompt without audio is bounded only by max_new_tokens; a span's SOA and codes do not count."""
    w0 = vocab.token2id["w0"]
    never_ends = ScriptedBackbone(vocab, {}, {}, w0)

    def run(mode, ratio, backbone=never_ends):
        dec = TtTDecoder(backbone, vocab, config(use_cache=False, top_k=0, top_p=1.0, max_new_tokens=12, maxlenratio=ratio))
        return dec.decode(prompt_for(vocab, mode), torch.Generator())

    bounded = run("asr", 0.4)
    assert vocab.ids_to_tokens(bounded.token_ids) == ["w0"] * 3 and bounded.stop_reason == "maxlenratio"
    assert run("asr", 0.01).token_ids == [w0]  # at least one token
    assert len(run("asr", 0.0).token_ids) == 12 and run("asr", 0.0).stop_reason == "length"
    assert len(run("text", 0.4).token_ids) == 12  # no prompt audio: no bound
    P = len(prompt_for(vocab, "chat"))
    spoken = ScriptedBackbone(vocab, {P + 1 + i: vocab.first_code_id for i in range(5)} | {P + 6: vocab.eoa_id},
                              {P - 1: vocab.soa_id}, w0)
    toks = vocab.ids_to_tokens(run("chat", 0.4, spoken).token_ids)  # SOA, 5 codes + EOA, then 3 text pieces
    assert toks == ["<|begin_of_audio|>"] + ["<|audio_0|>"] * 5 + ["<|end_of_audio_new|>", "w0", "w0", "w0"]
    with pytest.raises(ValueError, match="maxlenratio must be >= 0"):
        config(maxlenratio=-1)


@pytest.mark.parametrize("use_cache", [False, True])
@pytest.mark.parametrize("audio_objective", ["diffusion", "ar"])
def test_maxlenratio_never_leaves_a_begin_of_span_marker_without_its_span(vocab, model, use_cache, audio_objective):
    """Budget 3 (8 prompt codes x 0.4): the third AR token is an SOA, which does not count, so its
    span is written and the third text piece after it ends the turn."""
    P = len(prompt_for(vocab, "asr"))  # AR writes w0 at P, w0 at P+1, the SOA at P+2
    spoken = ScriptedBackbone(vocab, {P + 3: vocab.first_code_id + 4, P + 4: vocab.eoa_id}, {P + 1: vocab.soa_id},
                              vocab.token2id["w0"])
    dec = TtTDecoder(spoken, vocab, config(use_cache=False, top_k=0, top_p=1.0, maxlenratio=0.4))
    result = dec.decode(prompt_for(vocab, "asr"), torch.Generator())
    assert vocab.ids_to_tokens(result.token_ids) == [
        "w0", "w0", "<|begin_of_audio|>", "<|audio_4|>", "<|end_of_audio_new|>", "w0"]
    assert result.stop_reason == "maxlenratio" and result.spans == [[4]]
    # any model: the turn never ends on an SOA, its span always follows it (forced here at the budget's end)
    forcing = Forcing(text_ids=[vocab.token2id["w1"], vocab.token2id["w2"], vocab.soa_last_id], span_lengths=[6])
    result = TtTDecoder(model, vocab, config(use_cache=use_cache, maxlenratio=0.4), audio_objective=audio_objective
                        ).decode(prompt_for(vocab, "asr"), torch.Generator().manual_seed(0), forcing)
    toks = vocab.ids_to_tokens(result.token_ids)
    assert toks[2] == "<|begin_of_quad|>" and toks[9] == "<|end_of_audio_span_last|>" and len(result.spans[0]) == 6
    assert result.token_ids[-1] not in (vocab.soa_id, vocab.soa_last_id)


def test_block_stops_once_its_eoa_is_settled(vocab):
    """Block of 8 in 4 steps of 2 commits.  Code then EOA first in the block, both most confident:
    committed in step 1, steps 2-4 are skipped.  EOA committed in step 1 but the code before it
    least confident: the block runs all 4 steps.  Same tokens either way."""
    prompt = prompt_for(vocab, "text")
    P = len(prompt)  # SOA at P, block at P+1 .. P+8
    at_mask = {P + 1: vocab.first_code_id + 2, P + 2: vocab.eoa_last_id} | {P + i: vocab.first_code_id for i in range(3, 9)}
    at_token = {P - 1: vocab.soa_id, P + 2: vocab.im_end_id}

    class Boosted(ScriptedBackbone):
        def __init__(self, boost):
            super().__init__(vocab, at_mask, at_token, vocab.token2id["w0"])
            self.boost = boost

        def forward(self, input_ids, attn_mask, position_ids=None, cache=None, extend_cache=False, span_positions=None,
                    logits_to_keep=0):
            logits = super().forward(input_ids, attn_mask, position_ids, cache, extend_cache)
            for i, p in enumerate(position_ids[0].tolist()):
                logits[0, i] *= self.boost.get(p, 1.0)
            return logits[:, -logits_to_keep:]

    def run(boost):
        dec = TtTDecoder(Boosted(boost), vocab, config(use_cache=False, top_k=0, top_p=1.0, diffusion_temperature=0.0,
                                                       block_length=8, steps_per_block=4))
        return dec.decode(prompt, torch.Generator())

    settled = run({P + 1: 3.0, P + 2: 3.0})
    assert vocab.ids_to_tokens(settled.token_ids) == [
        "<|begin_of_audio|>", "<|audio_2|>", "<|end_of_audio_span_last|>", "<|im_end|>"]
    assert settled.forwards["diffusion"] == 1
    unsettled = run({P + 2: 3.0, P + 8: 3.0, P + 1: 0.5})
    assert unsettled.token_ids == settled.token_ids and unsettled.forwards["diffusion"] == 4


def test_a_forced_span_length_ends_the_last_block_at_its_eoa(vocab):
    """Span forced to 5 codes, blocks of 8: the block is the 5 codes + EOA, no [M] after the EOA
    (training never shows a span anything after its end marker)."""
    prompt = prompt_for(vocab, "text")
    P = len(prompt)
    lengths = []

    class Recording(ScriptedBackbone):
        def forward(self, input_ids, *args, **kwargs):
            lengths.append(input_ids.shape[1])
            return super().forward(input_ids, *args, **kwargs)

    backbone = Recording(vocab, {}, {P - 1: vocab.soa_id, P + 6: vocab.im_end_id}, vocab.first_code_id)
    dec = TtTDecoder(backbone, vocab, config(use_cache=False, top_k=0, top_p=1.0, block_length=8, steps_per_block=3))
    result = dec.decode(prompt, torch.Generator(), Forcing(span_lengths=[5]))
    assert result.spans == [[0] * 5] and vocab.token_list[result.token_ids[-1]] == "<|im_end|>"
    assert max(lengths) == P + 7  # prompt + SOA + 5 codes + EOA


def test_spoken_codes_are_written_in_the_training_layout(vocab):
    """A model that always wants a non-final span: 30 known codes, spans of 8 -> three spans of 8
    written as they are; with 6 left the non-final SOA is forbidden, so the final span takes
    them; with none left both SOAs are forbidden and the runner-up <|im_end|> ends the turn."""
    codes = [c % 16 for c in range(3, 33)]

    class AlwaysSpeaks(ScriptedBackbone):
        def forward(self, *args, **kwargs):
            logits = super().forward(*args, **kwargs)
            logits[..., vocab.soa_last_id] = 5.0
            logits[..., vocab.im_end_id] = 3.0
            return logits

    dec = TtTDecoder(AlwaysSpeaks(vocab, {}, {}, vocab.soa_id), vocab, config(use_cache=False, top_k=0, top_p=1.0))
    result = dec.decode(prompt_for(vocab, "asr"), torch.Generator(), Forcing(spoken_codes=codes, spoken_span_len=8))
    assert result.spans == [codes[:8], codes[8:16], codes[16:24], codes[24:]]
    audio = [f"<|audio_{c}|>" for c in codes]
    span = lambda lo, hi: ["<|begin_of_audio|>", *audio[lo:hi], "<|end_of_audio_new|>"]
    assert vocab.ids_to_tokens(result.token_ids) == [
        *span(0, 8), *span(8, 16), *span(16, 24),
        "<|begin_of_quad|>", *audio[24:], "<|end_of_audio_span_last|>", "<|im_end|>"]
    assert "diffusion" not in result.forwards


def test_spoken_codes_cached_equals_reference(model, vocab):
    codes = [(7 * i) % 16 for i in range(20)]
    forcing = Forcing(text_ids=[vocab.token2id["w5"], vocab.soa_id, vocab.token2id["w2"], vocab.soa_last_id],
                      spoken_codes=codes, spoken_span_len=7)
    cached, reference = (decode(model, vocab, prompt_for(vocab, "asr"), forcing=forcing, use_cache=c) for c in (True, False))
    assert cached.token_ids == reference.token_ids and cached.spans == [codes[:7], codes[7:]]
    with pytest.raises(ValueError, match="spoken_codes writes every span"):
        Forcing(spoken_codes=codes, span_lengths=[3])


def test_forced_span_length_and_ar_after_eoa(model, vocab):
    forcing = Forcing(text_ids=[vocab.token2id["w2"], vocab.soa_id, vocab.token2id["w3"]], span_lengths=[5])
    result = decode(model, vocab, prompt_for(vocab, "tts"), forcing=forcing)
    toks = vocab.ids_to_tokens(result.token_ids)
    assert toks[:2] == ["w2", "<|begin_of_audio|>"]
    assert all(t.startswith("<|audio_") for t in toks[2:7]) and toks[7] == "<|end_of_audio_new|>"
    assert toks[8] == "w3" and len(result.spans[0]) == 5


def test_max_span_length_closes_the_span_with_a_warning(model, vocab, caplog):
    forcing = Forcing(text_ids=[vocab.soa_last_id], span_lengths=[1000])  # EOA never allowed in budget
    with caplog.at_level(logging.WARNING):
        result = decode(model, vocab, prompt_for(vocab, "chat"), forcing=forcing, max_span_length=20)
    assert "span 0 produced no end-of-span marker within 20 tokens" in caplog.text
    toks = vocab.ids_to_tokens(result.token_ids)
    assert len(result.spans[0]) == 20
    assert toks[21] == "<|end_of_audio_span_last|>"  # closed with the EOA matching <|begin_of_quad|>
    assert len(toks) > 22 and not vocab.audio_side_table[result.token_ids[22]]  # AR continued


def test_length_limit_inside_a_span(model, vocab):
    forcing = Forcing(text_ids=[vocab.soa_id], span_lengths=[1000])
    result = decode(model, vocab, prompt_for(vocab, "chat"), forcing=forcing, max_new_tokens=15, max_span_length=800)
    assert len(result.token_ids) == 15 and result.stop_reason == "length"
    assert len(result.spans[0]) == 14  # no room left for an EOA


@pytest.mark.parametrize("seed", range(4))
def test_forbidden_tokens_never_written(model, vocab, seed):
    """Spans hold only codes + EOA; AR writes only text pieces, SOAs and <|im_end|>."""
    result = decode(model, vocab, prompt_for(vocab, "chat"), seed=seed, max_new_tokens=120)
    ids = torch.tensor(result.token_ids)
    in_span = vocab.is_audio_side(ids)
    assert vocab.span_vocab_table[ids[in_span]].all()
    ar_ok = set(vocab.tokens_to_ids(PIECES + ["<|begin_of_audio|>", "<|begin_of_quad|>", "<|im_end|>"]))
    assert set(ids[~in_span].tolist()) <= ar_ok
    # one span per SOA (the last may be empty when the SOA took the last position)
    assert int(torch.isin(ids, torch.tensor([vocab.soa_id, vocab.soa_last_id])).sum()) == len(result.spans)
    assert sum(map(len, result.spans)) == int(vocab.is_code(ids).sum())


# ---------------------------------------------------------------- streaming
def test_stream_events_reassemble_the_result(model, vocab):
    forcing = Forcing(text_ids=[vocab.token2id["w4"], vocab.soa_id], span_lengths=[19])
    dec = TtTDecoder(model, vocab, config(block_length=6, steps_per_block=2))
    events = list(dec.stream(prompt_for(vocab, "chat"), torch.Generator().manual_seed(2), forcing))
    result = events[-1].result
    assert isinstance(events[-1], TurnEndEvent)
    assert [i for e in events for i in e.ids] == result.token_ids
    per_span = {}
    for e in events:
        if isinstance(e, AudioEvent):
            per_span.setdefault(e.span_index, []).extend(e.codes)
    assert [per_span[i] for i in sorted(per_span)] == result.spans
    first = [e for e in events if isinstance(e, AudioEvent)][:4]
    assert [len(e.codes) for e in first[:3]] == [6, 6, 6] and first[3].codes == result.spans[0][18:]
    assert all(isinstance(e, TextEvent) and len(e.ids) == 1 for e in events[:2])
    assert any(isinstance(e, SpanEndEvent) and e.num_codes == 19 for e in events)
    assert result.time_to_first_audio == first[0].time_s
    times = [e.time_s for e in events]
    assert times == sorted(times)


# ---------------------------------------------------------------- bad inputs
def test_bad_inputs(model, vocab):
    dec = TtTDecoder(model, vocab, config())
    g = torch.Generator()
    with pytest.raises(ValueError, match="empty prompt"):
        dec.decode([], g)
    with pytest.raises(ValueError, match="max length is 400"):
        dec.decode([vocab.token2id["w1"]] * 400, g)
    with pytest.raises(ValueError, match="out of range"):
        dec.decode([len(vocab)], g)
    with pytest.raises(ValueError, match="utt7: audio code 16 is out of range"):
        build_prompt(vocab, "asr", user_codes=[1, 16], where="utt7")
    with pytest.raises(ValueError, match="utt7: mode 'asr' needs user audio"):
        build_prompt(vocab, "asr", user_text=["w1"], where="utt7")
    with pytest.raises(ValueError, match="utt7: mode 'tts' needs user text"):
        build_prompt(vocab, "tts", user_codes=[1], where="utt7")
    with pytest.raises(ValueError, match="utt7: token #5 'nope' is invalid"):
        build_prompt(vocab, "text", user_text=["nope"], where="utt7")
    with pytest.raises(ValueError, match="unknown mode"):
        build_prompt(vocab, "sing", user_text=["w1"])
    with pytest.raises(ValueError, match="vocab_size"):
        TtTDecoder(TtTTransformer(vocab_size=len(vocab) + 1, d_model=16, n_layer=1, n_head=2), vocab)
    with pytest.raises(ValueError, match="remasking"):
        config(remasking="best")
    with pytest.raises(ValueError, match="cfg_uncond"):
        config(cfg_uncond="none")


@pytest.mark.parametrize("mode", ["text", "asr", "tts", "chat"])
def test_ar_baseline_cached_equals_reference(model, vocab, mode):
    """audio_objective "ar": spans one code per forward, cached == full causal recompute."""
    forcing = Forcing(text_ids=[vocab.token2id["w5"], vocab.soa_id], span_lengths=[11])
    cached, reference = (
        TtTDecoder(model, vocab, config(use_cache=c), audio_objective="ar").decode(
            prompt_for(vocab, mode), torch.Generator().manual_seed(0), forcing)
        for c in (True, False)
    )
    assert cached.token_ids == reference.token_ids and len(cached.spans[0]) == 11
    assert cached.forwards == reference.forwards and cached.forwards["audio_ar"] >= 12


def test_ar_baseline_span_is_causal_greedy_decoding_streamed_in_blocks(model, vocab):
    prompt = prompt_for(vocab, "tts")
    forcing = Forcing(text_ids=[vocab.soa_last_id, vocab.im_end_id], span_lengths=[11])
    dec = TtTDecoder(model, vocab, config(diffusion_temperature=0.0), audio_objective="ar")
    audio = [e for e in dec.stream(prompt, torch.Generator().manual_seed(0), forcing) if isinstance(e, AudioEvent)]
    assert [len(e.ids) for e in audio] == [8, 4]  # block_length 8: 8 codes, then 3 codes + the EOA
    assert audio[1].ids[-1] == vocab.eoa_last_id and len(audio[0].codes + audio[1].codes) == 11
    seq, codes = list(prompt) + [vocab.soa_last_id], vocab.is_code(torch.arange(len(vocab)))
    for _ in range(11):
        causal = torch.ones(len(seq), len(seq), dtype=torch.bool).tril()[None, None]
        with torch.no_grad():
            seq.append(int(model(torch.tensor([seq]), causal)[0, -1].masked_fill(~codes, -torch.inf).argmax()))
    assert audio[0].ids + audio[1].ids[:-1] == seq[len(prompt) + 1:]
    with pytest.raises(ValueError, match="audio_objective"):
        TtTDecoder(model, vocab, config(), audio_objective="nar")
