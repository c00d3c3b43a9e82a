"""The built-in backbone: RoPE, the KV-cache contract and the mask conventions (float64)."""
import pytest
import torch

from espnet2_ttt.mask import build_modality_mask, positions_in_span
from espnet2_ttt.models.transformer import FULL_ATTENTION, TtTTransformer, apply_rope


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TtTTransformer(50, d_model=32, n_layer=2, n_head=4, n_kv_head=2, max_len=64).double().eval()


def test_rope_equals_rotate_half_formula():
    x = torch.randn(2, 3, 5, 8, dtype=torch.float64)
    angle = torch.randn(5, 4, dtype=torch.float64)
    angle = torch.cat([angle, angle], dim=-1)
    cos, sin = angle.cos(), angle.sin()
    rotate_half = torch.cat([-x[..., 4:], x[..., :4]], dim=-1)
    sin_signed = torch.cat([-sin[:, :4], sin[:, 4:]], dim=-1)
    torch.testing.assert_close(apply_rope(x, cos, sin_signed), x * cos + rotate_half * sin, rtol=0, atol=1e-15)


def test_rope_tables_rotate_pairs_by_position(model):
    """Position p rotates pair (i, i + D/2) by p * theta_i: norms kept, relative angles matter only."""
    D = model.rope_cos.shape[1]
    x = torch.randn(D, dtype=torch.float64)
    rotated = apply_rope(x, model.rope_cos[7].double(), model.rope_sin_signed[7].double())
    pair_norm = lambda v: v[: D // 2] ** 2 + v[D // 2 :] ** 2  # noqa: E731
    torch.testing.assert_close(pair_norm(rotated), pair_norm(x))


@torch.no_grad()
def test_cache_pieces_equal_one_full_forward(model):
    """Prefix (causal), one AR token (mask None), 3 tokens (mask None = causal, bottom-right)
    and an audio span (modality mask) fed through the cache give the full forward's logits."""
    torch.manual_seed(1)
    ids = torch.randint(0, 50, (1, 20))
    is_audio = torch.zeros(1, 20, dtype=torch.bool)
    is_audio[0, 12:17] = True  # a span: bidirectional inside
    full = model(ids, build_modality_mask(is_audio))
    cache = model.new_cache()
    pieces = [
        model(ids[:, :8], None, cache=cache, extend_cache=True),
        model(ids[:, 8:9], None, cache=cache, extend_cache=True),
        model(ids[:, 9:12], None, cache=cache, extend_cache=True),
        model(ids[:, 12:20], build_modality_mask(is_audio, num_queries=8), cache=cache, extend_cache=True),
    ]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=1e-12)
    assert cache.length == 20


@torch.no_grad()
def test_full_attention_is_the_modality_mask_of_a_span_after_the_cache(model):
    """A span run right after the cache: FULL_ATTENTION (no mask tensor) gives the rows of the
    modality mask exactly; the same positions under plain causal attention differ."""
    torch.manual_seed(2)
    ids = torch.randint(0, 50, (1, 16))
    is_audio = torch.zeros(1, 16, dtype=torch.bool)
    is_audio[0, 10:] = True
    cache = model.new_cache()
    model(ids[:, :10], None, cache=cache, extend_cache=True)
    masked = model(ids[:, 10:], build_modality_mask(is_audio, num_queries=6), cache=cache)
    assert build_modality_mask(is_audio, num_queries=6).all()
    torch.testing.assert_close(model(ids[:, 10:], FULL_ATTENTION, cache=cache), masked, rtol=0, atol=1e-12)
    assert not torch.allclose(model(ids[:, 10:], None, cache=cache), masked)
    with pytest.raises(ValueError, match="attn_mask must be"):
        model(ids[:, 10:], "everything", cache=cache)


@torch.no_grad()
def test_logits_to_keep_gives_the_last_rows(model):
    """``logits_to_keep`` k: the last k rows of the full output, with and without a cache; the
    cache still receives every new position's keys and values."""
    ids = torch.randint(0, 50, (2, 12))
    full = model(ids, None)
    # the output layer runs on 3 rows instead of 12: BLAS may round differently per shape
    torch.testing.assert_close(model(ids, None, logits_to_keep=3), full[:, -3:], rtol=0, atol=1e-12)
    cache = model.new_cache()
    torch.testing.assert_close(model(ids[:1, :9], None, cache=cache, extend_cache=True, logits_to_keep=1),
                               full[:1, 8:9], rtol=0, atol=1e-12)
    assert cache.length == 9
    torch.testing.assert_close(model(ids[:1, 9:], None, cache=cache, logits_to_keep=2), full[:1, 10:],
                               rtol=0, atol=1e-12)


@torch.no_grad()
def test_forward_without_extend_leaves_the_cache(model):
    ids = torch.randint(0, 50, (1, 12))
    cache = model.new_cache()
    model(ids[:, :6], None, cache=cache, extend_cache=True)
    first = model(ids[:, 6:9], None, cache=cache)
    assert cache.length == 6
    model(ids[:, 9:12], None, cache=cache)  # overwrites the scratch part only
    torch.testing.assert_close(model(ids[:, 6:9], None, cache=cache), first, rtol=0, atol=0)
    cache.crop(4)
    assert cache.length == 4


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(2)
    ids = torch.randint(0, 50, (2, 10))
    grads = []
    for ckpt in (False, True):
        torch.manual_seed(0)
        m = TtTTransformer(50, d_model=32, n_layer=2, n_head=4, max_len=64, gradient_checkpointing=ckpt).double()
        m(ids, None).pow(2).mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


def test_positions_beyond_max_len_are_an_error(model):
    with pytest.raises(ValueError, match="max_len=64"):
        model(torch.zeros(1, 65, dtype=torch.long), None)


def test_cpu_relayout_keeps_values_parameters_and_ties():
    """Input-major storage of the wide linear weights: same logits (a forward through the cache
    included), same state_dict, same Parameter objects, the tied output layer still tied; idempotent;
    training still runs."""
    from espnet2_ttt.models.cpu_layout import relayout_linear_weights_for_cpu

    torch.manual_seed(3)
    m = TtTTransformer(50, d_model=32, n_layer=2, n_head=4, n_kv_head=2, max_len=64).eval()
    ids = torch.randint(0, 50, (1, 12))
    assert relayout_linear_weights_for_cpu(TtTTransformer(50, d_model=32, n_layer=1).double()) == 0  # float32 only
    with torch.no_grad():
        before, state = m(ids, None), {k: v.clone() for k, v in m.state_dict().items()}
    params = list(m.parameters())
    # q+k+v (64 > 32) and SwiGLU gate+up (2 x 128 > 32) per layer, the output layer (50 > 32);
    # o_proj (square) and down_proj (in 128 > out 32) keep their layout
    assert relayout_linear_weights_for_cpu(m) == 2 * 2 + 1
    assert relayout_linear_weights_for_cpu(m) == 0
    assert m.lm_head.weight is m.embed.weight and m.lm_head.weight.t().is_contiguous()
    assert m.blocks[0].mlp.gate_up_proj.weight.t().is_contiguous() and m.blocks[0].mlp.down_proj.weight.is_contiguous()
    assert list(m.parameters()) == params
    with torch.no_grad():
        torch.testing.assert_close(m(ids, None), before, rtol=0, atol=1e-6)
        cache = m.new_cache()
        pieces = [m(ids[:, :7], None, cache=cache, extend_cache=True), m(ids[:, 7:], None, cache=cache)]
        torch.testing.assert_close(torch.cat(pieces, dim=1), before, rtol=0, atol=1e-6)
    for k, v in m.state_dict().items():
        assert v.shape == state[k].shape and torch.equal(v, state[k]), k
    m.train()(ids, None).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in m.parameters())


def test_span_position_embeddings_add_one_row_per_position_in_span():
    torch.manual_seed(0)
    plain = TtTTransformer(vocab_size=50, d_model=32, n_layer=2, n_head=4, max_len=64).double()
    spans = TtTTransformer(vocab_size=50, d_model=32, n_layer=2, n_head=4, max_len=64, span_position_embeddings=3).double()
    spans.load_state_dict(plain.state_dict(), strict=False)  # all but span_embed
    ids = torch.randint(0, 50, (2, 12))
    is_audio = torch.rand(2, 12) < 0.6
    span_pos = positions_in_span(is_audio)
    mask = build_modality_mask(is_audio)
    with torch.no_grad():
        spans.span_embed.weight.zero_()
        assert torch.equal(spans(ids, mask, span_positions=span_pos), plain(ids, mask))
        # positions past the table share its last row
        spans.span_embed.weight.normal_()
        table = spans.span_embed.weight
        expected = plain.embed(ids) + table[span_pos.clamp(max=3)]
        grabbed = {}
        hook = spans.blocks[0].register_forward_pre_hook(lambda mod, args: grabbed.update(x=args[0]))
        spans(ids, mask, span_positions=span_pos)
        hook.remove()
        assert torch.equal(grabbed["x"], expected)
    assert spans.span_positions(is_audio, num_queries=5).equal(span_pos[:, -5:]) and plain.span_positions(is_audio) is None
    with pytest.raises(ValueError, match="span_positions"):
        spans(ids, mask)
