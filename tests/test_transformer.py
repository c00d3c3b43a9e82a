"""The built-in backbone: RoPE, the KV-cache contract and the mask conventions (float64)."""
import pytest
import torch

from espnet2_ttt.mask import build_modality_mask
from espnet2_ttt.models.transformer import TtTTransformer, apply_rope


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
