import math
import random

import pytest
import torch

from espnet2_ttt.corruption import (
    CorruptionConfig,
    banom_keeps_clean,
    diffusion_corruption,
    prefix_preservation,
    stochastic_span_truncation,
)
from espnet2_ttt.mask import span_starts

from helpers import chat_sequence, tiny_vocab


def _batch(v, seqs):
    L = max(map(len, seqs))
    ids = torch.tensor([v.tokens_to_ids(s) + [0] * (L - len(s)) for s in seqs])
    return ids, torch.tensor([len(s) for s in seqs])


def test_banom_rate():
    g = torch.Generator().manual_seed(0)
    cfg = CorruptionConfig(banom_prob=0.3)
    n = 20000
    clean = sum(banom_keeps_clean(cfg, g) for _ in range(n))
    assert abs(clean / n - 0.3) < 4 * math.sqrt(0.3 * 0.7 / n)
    assert not any(banom_keeps_clean(CorruptionConfig(banom_prob=0.0), g) for _ in range(100))


def test_ppm_keeps_a_clean_prefix_cut_at_a_span_start():
    g = torch.Generator().manual_seed(0)
    cfg = CorruptionConfig(ppm_prob=0.3)
    k, n = 4, 20000
    maskable = torch.zeros(n, 40, dtype=torch.bool)
    for s in range(k):  # 4 spans of 5 positions with gaps
        maskable[:, 2 + 9 * s : 7 + 9 * s] = True
    out = prefix_preservation(maskable, cfg, g)
    removed = maskable & ~out
    assert not (out & ~maskable).any()
    starts = span_starts(maskable)[0]
    for row_removed, row_out in zip(removed[:500], out[:500]):
        if row_removed.any():
            first_kept = int(torch.nonzero(row_out)[0])
            assert starts[first_kept]  # cut exactly at a span start
            assert torch.equal(row_removed, maskable[0] & (torch.arange(40) < first_kept))  # everything before it
    # a prefix is kept iff PPM fires and does not pick the first span: rate p * (k - 1) / k
    rate = removed.any(1).float().mean().item()
    expected = 0.3 * (k - 1) / k
    assert abs(rate - expected) < 4 * math.sqrt(expected * (1 - expected) / n)
    # the chosen span is uniform among the k spans
    kept_spans = (k - (removed.sum(1) // 5))[removed.any(1)]
    counts = torch.bincount(kept_spans, minlength=k + 1)[1:k]
    assert (counts.float() / counts.sum() - 1 / 3).abs().max() < 0.03


def test_sst_rate_and_kept_fraction():
    v = tiny_vocab()
    rng = random.Random(0)
    seqs = [chat_sequence(rng, 2, chunk=4, span=20) for _ in range(4000)]  # final span: 4 words x 6 = 24 codes
    ids, lengths = _batch(v, seqs)
    cfg = CorruptionConfig(sst_prob=0.5)
    new_ids, new_len = stochastic_span_truncation(ids, lengths, v, cfg, torch.Generator().manual_seed(0))
    cut = new_len < lengths
    assert abs(cut.float().mean().item() - 0.5) < 4 * math.sqrt(0.25 / len(seqs))
    n = 24
    lo, hi = max(int(0.3 * n), 5), int(0.9 * n)
    for b in torch.nonzero(cut).flatten()[:300].tolist():
        row = new_ids[b, : new_len[b]].tolist()
        s = max(i for i, t in enumerate(row) if t == v.soa_last_id)
        kept = len(row) - s - 1
        assert lo <= kept <= hi
        assert all(v.is_code(torch.tensor(row[s + 1 :])))  # no end marker, no <|im_end|>
        assert (new_ids[b, new_len[b] :] == v.pad_id).all()
        assert row == ids[b, : new_len[b]].tolist()  # a true prefix of the original
    kept_all = torch.tensor([int(new_len[b]) - max(i for i, t in enumerate(new_ids[b].tolist()) if t == v.soa_last_id) - 1
                             for b in torch.nonzero(cut).flatten().tolist()])
    freq = torch.bincount(kept_all - lo, minlength=hi - lo + 1).float() / len(kept_all)
    assert (freq - 1 / (hi - lo + 1)).abs().max() < 0.03  # uniform over [lo, hi]
    assert torch.equal(new_ids[~cut], ids[~cut])


def test_sst_leaves_short_spans_and_plain_text_alone():
    v = tiny_vocab()
    short = chat_sequence(random.Random(1), 1, chunk=2, span=4)  # 2 words x 3 = 6 codes <= 10
    pt = "▁w1 <|begin_of_quad|>".split() + [f"<|audio_{i % 16}|>" for i in range(30)] + ["<|end_of_audio_span_last|>"]
    ids, lengths = _batch(v, [short, pt])
    new_ids, new_len = stochastic_span_truncation(ids, lengths, v, CorruptionConfig(sst_prob=1.0), torch.Generator())
    assert torch.equal(new_ids, ids) and torch.equal(new_len, lengths)


def _sst_reference(ids, lengths, v, cfg, draw, frac):
    """SST one sample at a time, as the rule reads (method doc 6.3), with the given draws [B]."""
    ids, lengths = ids.clone(), lengths.clone()
    for b in range(ids.shape[0]):
        row = ids[b, : int(lengths[b])].tolist()
        if not row or row[0] != v.im_start_id or draw[b] >= cfg.sst_prob or v.soa_last_id not in row:
            continue  # PT data (no template) or not drawn
        s = max(i for i, t in enumerate(row) if t == v.soa_last_id)
        if s < max(i for i, t in enumerate(row) if t == v.im_start_id) or v.eoa_last_id not in row[s:]:
            continue  # the last turn has no final span, or it is truncated already
        n = row.index(v.eoa_last_id, s) - s - 1
        lo, hi = max(int(cfg.sst_keep_min * n), cfg.sst_keep_floor), int(cfg.sst_keep_max * n)
        if n <= cfg.sst_min_codes or lo >= hi:
            continue
        keep = lo + min(int(frac[b] * (hi - lo + 1)), hi - lo)
        lengths[b] = s + 1 + keep
        ids[b, s + 1 + keep :] = v.pad_id
    return ids, lengths


def test_sst_on_the_batch_equals_the_per_sample_rule():
    """The vectorised SST cuts exactly what the per-sample rule cuts, from the same two draws,
    over chat data with long, short and already cut final spans, turns after the final span and PT data."""
    v = tiny_vocab()
    rng = random.Random(2)
    tail_turn = "<|im_start|> <|user|> ▁w3 <|im_end|>".split()
    seqs = []
    for i in range(400):
        kind = i % 5
        if kind == 4:  # PT data
            seqs.append(["▁w1", "<|begin_of_quad|>"] + [f"<|audio_{j % 16}|>" for j in range(rng.randint(5, 40))]
                        + ["<|end_of_audio_span_last|>", "▁w2"])
        else:
            seq = chat_sequence(rng, rng.randint(1, 3), chunk=rng.randint(1, 6), span=rng.randint(2, 40))
            seqs.append(seq + tail_turn if kind == 3 else seq)
    ids, lengths = _batch(v, seqs)
    cfg = CorruptionConfig(sst_prob=0.5)
    ids, lengths = stochastic_span_truncation(ids, lengths, v, CorruptionConfig(sst_prob=0.3), torch.Generator().manual_seed(1))
    for seed in range(5):  # the rows cut above come again: nothing left to cut
        g = torch.Generator().manual_seed(seed)
        new_ids, new_len = stochastic_span_truncation(ids, lengths, v, cfg, g)
        g.manual_seed(seed)
        draw, frac = torch.rand(len(seqs), generator=g), torch.rand(len(seqs), generator=g)
        ref_ids, ref_len = _sst_reference(ids, lengths, v, cfg, draw, frac)
        assert torch.equal(new_len, ref_len) and torch.equal(new_ids, ref_ids)
        assert 0 < int((new_len < lengths).sum()) < len(seqs)


def test_diffusion_masks_each_position_with_probability_p():
    g = torch.Generator().manual_seed(0)
    cfg = CorruptionConfig(eps=1e-3)
    ids = torch.full((4000, 50), 7)
    maskable = torch.zeros_like(ids, dtype=torch.bool)
    maskable[:, 10:] = True
    noisy, masked, p = diffusion_corruption(ids, maskable, 99, cfg, g)
    assert not masked[:, :10].any() and torch.equal(noisy == 99, masked)
    assert p.min() >= 1e-3 and p.max() <= 1.0
    assert abs(p.mean().item() - 0.5) < 0.02  # t ~ U(0, 1)
    frac = masked[:, 10:].float().mean(1)
    assert (frac - p).abs().mean() < 0.07  # binomial(40, p) / 40 around p
    assert abs((frac - p).mean().item()) < 0.005


def test_cosine_mask_schedule_draws_high_masking_rates():
    """t = cos(pi u / 2), u ~ U(0, 1): P(t <= x) = 1 - (2 / pi) arccos(x), mean 2 / pi."""
    g = torch.Generator().manual_seed(0)
    ids = torch.full((20000, 2), 7)
    _, _, p = diffusion_corruption(ids, torch.ones_like(ids, dtype=torch.bool), 99, CorruptionConfig(eps=0.0, mask_schedule="cosine"), g)
    assert abs(p.mean().item() - 2 / math.pi) < 0.01
    for x in (0.25, 0.5, 0.9):  # Kolmogorov-Smirnov-style check at three points (n = 20000: sd < 0.004)
        assert abs((p <= x).double().mean().item() - (1 - 2 / math.pi * math.acos(x))) < 0.015
    with pytest.raises(ValueError, match="mask_schedule"):
        CorruptionConfig(mask_schedule="linear")
