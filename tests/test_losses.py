import math
import random

import pytest
import torch
import torch.nn.functional as F

from espnet2_ttt.corruption import diffusion_corruption
from espnet2_ttt.espnet_model import TtTModel
from espnet2_ttt.models.transformer import AbsBackbone, TtTTransformer
from espnet2_ttt.sequence import supervised_mask

from helpers import chat_sequence, tiny_vocab


class ConstantLogits(AbsBackbone):
    """Uniform predictions: every cross-entropy equals log V."""

    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size
        self.bias = torch.nn.Parameter(torch.zeros(vocab_size))

    def forward(self, input_ids, attn_mask, position_ids=None, cache=None, extend_cache=False, span_positions=None,
                logits_to_keep=0):
        return self.bias.expand(*input_ids.shape, -1)[:, -logits_to_keep:]

    def new_cache(self):
        return None


def _batch(v, seqs):
    L = max(map(len, seqs))
    ids = torch.tensor([v.tokens_to_ids(s) + [0] * (L - len(s)) for s in seqs])
    return ids, torch.tensor([len(s) for s in seqs])


def _replay_masking(model, ids, lengths):
    """The eval-mode draw of the model, replayed: (noisy ids, masked, p, maskable)."""
    v = model.vocab
    valid = torch.arange(ids.shape[1])[None] < lengths[:, None]
    maskable = v.is_audio_side(ids) & supervised_mask(ids, valid, v)
    g = torch.Generator().manual_seed(model.eval_seed)
    noisy, masked, p = diffusion_corruption(ids, maskable, v.mask_id, model.corruption, g)
    return noisy, masked, p, maskable


def test_loss_equals_hand_computed_value_for_uniform_model():
    v = tiny_vocab()
    model = TtTModel(v, ConstantLogits(len(v))).eval()
    seq = chat_sequence(random.Random(3), 2)
    ids, lengths = _batch(v, [seq])
    _, masked, p, maskable = _replay_masking(model, ids, lengths)
    loss, stats, weight = model(ids, lengths)
    log_v = math.log(len(v))
    m, n = int(masked.sum()), int(maskable.sum())
    assert m > 0
    assert math.isclose(stats["loss_ar"].item(), log_v, rel_tol=1e-6)
    assert math.isclose(stats["loss_diff"].item(), m * log_v / (p.item() * n), rel_tol=1e-5)
    assert math.isclose(loss.item(), log_v * (1 + m / (p.item() * n)), rel_tol=1e-5)
    assert weight.item() == 1


@pytest.mark.parametrize("span_position_embeddings", [0, 4])
def test_loss_equals_reference_loops_on_a_random_model(span_position_embeddings):
    torch.manual_seed(0)
    v = tiny_vocab()
    backbone = TtTTransformer(len(v), d_model=32, n_layer=2, n_head=2, span_position_embeddings=span_position_embeddings)
    model = TtTModel(v, backbone, ar_weight=0.7, diffusion_weight=1.3).double().eval()
    rng = random.Random(4)
    ids, lengths = _batch(v, [chat_sequence(rng, k) for k in (1, 3, 2)])
    noisy, masked, p, maskable = _replay_masking(model, ids, lengths)
    loss, stats, _ = model(ids, lengths)
    from espnet2_ttt.mask import build_modality_mask, positions_in_span
    valid = torch.arange(ids.shape[1])[None] < lengths[:, None]
    span_pos = positions_in_span(v.is_audio_side(ids))
    attn_mask = build_modality_mask(v.is_audio_side(ids), valid)
    logp_noisy = backbone(noisy, attn_mask, span_positions=span_pos).log_softmax(-1)
    logp_clean = backbone(ids, attn_mask, span_positions=span_pos).log_softmax(-1)  # eval scores text on clean audio
    sup = supervised_mask(ids, valid, v)
    l_ar = l_diff = 0.0
    ok = scored = 0
    for b in range(ids.shape[0]):
        text = [i for i in range(1, int(lengths[b])) if sup[b, i] and not v.is_audio_side(ids[b, i])]
        l_ar += sum(-logp_clean[b, i - 1, ids[b, i]].item() for i in text) / max(len(text), 1)
        n_b = max(int(maskable[b].sum()), 1)
        audio = [i for i in range(ids.shape[1]) if masked[b, i]]
        l_diff += sum(-logp_noisy[b, i, ids[b, i]].item() for i in audio) / (p[b].item() * n_b)
        ok += sum(int(logp_clean[b, i - 1].argmax() == ids[b, i]) for i in text)
        ok += sum(int(logp_noisy[b, i].argmax() == ids[b, i]) for i in audio)
        scored += len(text) + len(audio)
    l_ar, l_diff = l_ar / 3, l_diff / 3
    assert math.isclose(stats["loss_ar"].item(), l_ar, rel_tol=1e-9)
    assert math.isclose(stats["loss_diff"].item(), l_diff, rel_tol=1e-9)
    assert math.isclose(loss.item(), 0.7 * l_ar + 1.3 * l_diff, rel_tol=1e-9)
    assert stats["acc"].item() == (torch.tensor(ok).float() / scored).item()  # pooled over text and masked audio


@pytest.mark.parametrize("ar_on_masked_inputs", [True, False])
def test_eval_text_stats_equal_a_clean_forward(ar_on_masked_inputs):
    """Validation scores text as decoding sees it: eval loss_ar / acc_text are those of the
    clean (BANOM) forward of the same batch, the same computation, so exactly equal."""
    torch.manual_seed(0)
    v = tiny_vocab()
    backbone = TtTTransformer(len(v), d_model=32, n_layer=2, n_head=2)  # dropout 0: train and eval forwards agree
    model = TtTModel(v, backbone, ar_on_masked_inputs=ar_on_masked_inputs)
    ids, lengths = _batch(v, [chat_sequence(random.Random(7), k) for k in (2, 3, 1)])
    with torch.no_grad():
        _, ev, _ = model.eval()(ids, lengths)
        model.train()
        model.corruption.banom_prob, model.corruption.sst_prob = 1.0, 0.0  # every training batch clean, uncut
        _, clean, _ = model(ids, lengths)
    assert torch.isnan(clean["loss_diff"]) and not torch.isnan(ev["loss_diff"])  # eval still scores the audio
    assert torch.equal(ev["loss_ar"], clean["loss_ar"]) and torch.equal(ev["acc_text"], clean["acc_text"])
    assert torch.equal(ev["loss"], ev["loss_ar"] + ev["loss_diff"])  # ar_weight = diffusion_weight = 1


def test_text_only_batch_reduces_to_the_plain_lm_loss():
    torch.manual_seed(0)
    v = tiny_vocab()
    backbone = TtTTransformer(len(v), d_model=32, n_layer=2, n_head=2)
    model = TtTModel(v, backbone).double()
    ids = torch.tensor([v.tokens_to_ids([f"▁w{i % 7}" for i in range(3, 15)])])
    for mode in (True, False):  # training (BANOM draws, SST) and evaluation
        model.train(mode)
        loss, stats, _ = model(ids, torch.tensor([ids.shape[1]]))
        plain = F.cross_entropy(backbone(ids, None)[0, :-1], ids[0, 1:])  # is_causal=True path
        assert torch.allclose(loss, plain, rtol=1e-10)
        assert torch.isnan(stats["loss_diff"]) and torch.isnan(stats["acc_audio"])  # absent, not zero


def test_gradients_reach_only_supervised_positions():
    torch.manual_seed(0)
    v = tiny_vocab()
    backbone = TtTTransformer(len(v), d_model=32, n_layer=2, n_head=2)
    grabbed = {}

    def keep_logits(module, args, out):
        out.retain_grad()
        grabbed["noisy" if (args[0] == v.mask_id).any() else "clean"] = out

    backbone.register_forward_hook(keep_logits)
    model = TtTModel(v, backbone).eval()
    ids, lengths = _batch(v, [chat_sequence(random.Random(5), 3), chat_sequence(random.Random(6), 1)])
    _, masked, _, _ = _replay_masking(model, ids, lengths)
    loss, _, _ = model(ids, lengths)
    loss.backward()
    valid = torch.arange(ids.shape[1])[None] < lengths[:, None]
    text_target = supervised_mask(ids, valid, v) & ~v.is_audio_side(ids)
    # eval: the text loss reads the clean forward (shifted), the diffusion loss the noisy one
    for name, expected in (("clean", F.pad(text_target[:, 1:], (0, 1), value=False)), ("noisy", masked)):
        touched = grabbed[name].grad.abs().sum(-1) > 0  # [B, L]
        assert torch.equal(touched, expected), name
        assert not touched[~valid].any()


def test_ar_baseline_loss_equals_reference_loops():
    """audio_objective "ar": plain causal attention, every supervised token by shifted CE."""
    torch.manual_seed(0)
    v = tiny_vocab()
    backbone = TtTTransformer(len(v), d_model=32, n_layer=2, n_head=2)
    model = TtTModel(v, backbone, ar_weight=0.7, diffusion_weight=1.3, audio_objective="ar").double()
    ids, lengths = _batch(v, [chat_sequence(random.Random(5), k) for k in (1, 3, 2)])
    valid = torch.arange(ids.shape[1])[None] < lengths[:, None]
    causal = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool).tril() & valid[:, None, :]
    logp = backbone(ids, causal[:, None]).log_softmax(-1)
    sup = supervised_mask(ids, valid, v)
    terms = {False: 0.0, True: 0.0}
    for b in range(ids.shape[0]):
        for audio in (False, True):
            pos = [i for i in range(1, int(lengths[b])) if sup[b, i] and bool(v.is_audio_side(ids[b, i])) == audio]
            terms[audio] += sum(-logp[b, i - 1, ids[b, i]].item() for i in pos) / max(len(pos), 1) / 3
    model.corruption.sst_prob = 0.0  # no truncation draw; BANOM/PPM do not apply to this objective
    for mode in (True, False):  # training and evaluation: one clean causal forward alike
        loss, stats, _ = model.train(mode)(ids, lengths)
        assert math.isclose(stats["loss_ar"].item(), terms[False], rel_tol=1e-9)
        assert math.isclose(stats["loss_audio_ar"].item(), terms[True], rel_tol=1e-9)
        assert math.isclose(loss.item(), 0.7 * terms[False] + 1.3 * terms[True], rel_tol=1e-9)
        assert 0.0 <= stats["acc_audio"].item() <= 1.0
    with pytest.raises(ValueError, match="audio_objective"):
        TtTModel(v, backbone, audio_objective="nar")
