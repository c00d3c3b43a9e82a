"""The built-in TtT backbone: a decoder-only Transformer in one file.

RoPE positions, RMSNorm (pre-norm), SwiGLU MLP, grouped-query attention through
``torch.nn.functional.scaled_dot_product_attention`` with an explicit boolean mask (the
modality-aware mask of :mod:`espnet2_ttt.mask`).  Nothing here knows about text or audio:
the caller decides which position may see which.

KV cache contract (used by the decoder):
    cache = model.new_cache()
    logits = model(ids_prefix, mask_prefix, pos_prefix, cache=cache, extend_cache=True)
        # the prefix keys/values are appended to the cache
    logits = model(ids_new, mask_new, pos_new, cache=cache)
        # ids_new attend to cache + themselves; the cache is left unchanged
``mask_new`` is [B, 1, L_new, cache.length + L_new]; ``None`` means plain causal with the
new positions last (a single new position then sees the whole cache: the AR step);
:data:`FULL_ATTENTION` means every new position sees the whole cache and every new position
(an audio span run right after the cache: what the modality mask allows there), with no mask
tensor built.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from espnet2_ttt.mask import positions_in_span

FULL_ATTENTION = "full"  # attn_mask value: no position is hidden from any query (module docstring)


def is_full_attention(attn_mask) -> bool:
    """True for :data:`FULL_ATTENTION`; False for a mask tensor or None; other values are refused."""
    if not isinstance(attn_mask, str):
        return False
    if attn_mask != FULL_ATTENTION:
        raise ValueError(f"attn_mask must be a bool tensor, None or {FULL_ATTENTION!r}, got {attn_mask!r}")
    return True


class KVCache:
    """Keys/values of a fixed prefix, per layer [B, H_kv, T, D], in storage allocated once.

    Each layer owns [B, H_kv, capacity, D] buffers.  New keys/values are written after the
    cached ``length``; a call that does not ``extend`` writes into the scratch part beyond it,
    which the next call overwrites, so nothing is copied per step but the new positions.
    """

    def __init__(self, num_layers: int, capacity: int):
        self.capacity = capacity
        self.lengths = [0] * num_layers  # per layer: a forward updates them one after another
        self.keys: List[Optional[torch.Tensor]] = [None] * num_layers
        self.values: List[Optional[torch.Tensor]] = [None] * num_layers

    @property
    def length(self) -> int:
        return self.lengths[0]

    def crop(self, length: int) -> None:
        """Keep the first ``length`` positions."""
        self.lengths = [min(n, length) for n in self.lengths]

    def attend_to(self, layer: int, k: torch.Tensor, v: torch.Tensor, extend: bool):
        """Keys/values the new positions attend to (cache + new); stores them when ``extend``."""
        start = self.lengths[layer]
        end = start + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache capacity {self.capacity} exceeded ({end} positions)")
        if self.keys[layer] is None:
            shape = (k.shape[0], k.shape[1], self.capacity, k.shape[3])
            self.keys[layer], self.values[layer] = k.new_empty(shape), v.new_empty(shape)
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        if extend:
            self.lengths[layer] = end
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


class AbsBackbone(nn.Module, ABC):
    """What the TtT model and decoder need from a backbone."""

    vocab_size: int
    # True: forward needs ``span_positions`` ([B, Lq] long, :func:`espnet2_ttt.mask.positions_in_span`
    # of the whole sequence, the new positions' tail when a cache is used)
    uses_span_positions: bool = False

    @abstractmethod
    def forward(
        self,
        input_ids: torch.Tensor,
        attn_mask: Optional[torch.Tensor],
        position_ids: Optional[torch.Tensor] = None,
        cache=None,
        extend_cache: bool = False,
        span_positions: Optional[torch.Tensor] = None,
        logits_to_keep: int = 0,
    ) -> torch.Tensor:
        """[B, Lq] ids, [B, 1, Lq, Lk] bool mask (None = plain causal, :data:`FULL_ATTENTION` = none
        hidden) -> [B, Lq, V] logits; ``logits_to_keep`` k > 0: those of the last k positions
        only, [B, k, V] (the output layer runs on them alone; keys/values of all are computed)."""

    def span_positions(self, is_audio: torch.Tensor, num_queries: Optional[int] = None) -> Optional[torch.Tensor]:
        """What to pass as ``span_positions`` for a sequence with audio side ``is_audio`` [B, L]
        (cache + new): the last ``num_queries`` columns (default all), or None when not used."""
        if not self.uses_span_positions:
            return None
        return positions_in_span(is_audio)[:, -(num_queries or is_audio.shape[1]) :]

    @abstractmethod
    def new_cache(self):
        """An empty cache object accepted by ``forward(cache=...)``."""


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps, self.normalized_shape = eps, (dim,)
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)


def apply_rope(x, cos, sin_signed):
    """Rotary embedding of [..., L, head_dim] ``x``: ``x cos + rotate_half(x) sin``.

    ``rotate_half([x1, x2]) = [-x2, x1]`` is written as ``roll(x, D/2) * [-sin, sin]``
    (``sin_signed``): two fewer ops per call, which matters in one-token decoding steps.
    """
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * sin_signed


class Attention(nn.Module):
    def __init__(self, d_model, n_head, n_kv_head, dropout):
        super().__init__()
        self.n_head, self.n_kv_head = n_head, n_kv_head
        self.head_dim = d_model // n_head
        # one projection for q, k and v: fewer kernel launches per (decoding) step
        self.qkv_proj = nn.Linear(d_model, (n_head + 2 * n_kv_head) * self.head_dim, bias=True)
        self.o_proj = nn.Linear(n_head * self.head_dim, d_model, bias=False)
        self.dropout = dropout

    def forward(self, x, cos, sin, attn_mask, is_causal, cache, layer, extend_cache):
        B, L, _ = x.shape
        qkv = self.qkv_proj(x).view(B, L, self.n_head + 2 * self.n_kv_head, self.head_dim).transpose(1, 2)
        n_qk = self.n_head + self.n_kv_head
        qk = apply_rope(qkv[:, :n_qk], cos, sin)  # q and k rotated together
        q, k, v = qk[:, : self.n_head], qk[:, self.n_head :], qkv[:, n_qk:]
        if cache is not None:
            k, v = cache.attend_to(layer, k, v, extend_cache)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
            enable_gqa=self.n_kv_head != self.n_head,
        )
        return self.o_proj(y.transpose(1, 2).reshape(B, L, -1))


class SwiGLU(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.gate_up_proj = nn.Linear(d_model, 2 * d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, d_model, n_head, n_kv_head, d_ff, dropout):
        super().__init__()
        self.attn_norm = RMSNorm(d_model)
        self.attn = Attention(d_model, n_head, n_kv_head, dropout)
        self.mlp_norm = RMSNorm(d_model)
        self.mlp = SwiGLU(d_model, d_ff)
        self.dropout = dropout

    def forward(self, x, cos, sin, attn_mask, is_causal, cache, layer, extend_cache):
        y = self.attn(self.attn_norm(x), cos, sin, attn_mask, is_causal, cache, layer, extend_cache)
        if self.training and self.dropout:
            y = F.dropout(y, self.dropout)
        x = x + y
        y = self.mlp(self.mlp_norm(x))
        if self.training and self.dropout:
            y = F.dropout(y, self.dropout)
        return x + y


class TtTTransformer(AbsBackbone):
    """Decoder-only Transformer.  Sizes come from ``backbone_conf`` in the training config.

    Args:
        vocab_size: set by the task from the token list.
        d_model, n_layer, n_head: width, depth, query heads (d_model % n_head == 0).
        n_kv_head: key/value heads for grouped-query attention (default n_head).
        d_ff: SwiGLU hidden size (default 8/3 d_model rounded up to 64).
        max_len: longest position RoPE tables are built for.
        tie_embeddings: share the input embedding with the output layer.
        gradient_checkpointing: recompute blocks in backward (training memory).
        span_position_embeddings: N > 0 adds a learned embedding of the position inside the
            audio span (1..N, later positions share N; text positions row 0) to the input, so
            the positions of a fully masked span are told apart by more than RoPE; 0 = none
            (the official architecture).
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 256,
        n_layer: int = 4,
        n_head: int = 4,
        n_kv_head: Optional[int] = None,
        d_ff: Optional[int] = None,
        max_len: int = 2048,
        rope_theta: float = 10000.0,
        dropout: float = 0.0,
        tie_embeddings: bool = True,
        init_std: float = 0.02,
        gradient_checkpointing: bool = False,
        span_position_embeddings: int = 0,
    ):
        super().__init__()
        for name, size in (("d_model", d_model), ("n_layer", n_layer), ("n_head", n_head), ("max_len", max_len)):
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"backbone_conf {name}: {size!r} is not a positive integer")
        if d_model % n_head:
            raise ValueError(f"d_model={d_model} is not divisible by n_head={n_head}")
        n_kv_head = n_kv_head or n_head
        if n_head % n_kv_head:
            raise ValueError(f"n_head={n_head} is not a multiple of n_kv_head={n_kv_head}")
        d_ff = d_ff or 64 * math.ceil(8 * d_model / 3 / 64)
        self.vocab_size, self.max_len, self.n_layer = vocab_size, max_len, n_layer
        self.gradient_checkpointing = gradient_checkpointing
        self.embed = nn.Embedding(vocab_size, d_model)
        self.uses_span_positions = span_position_embeddings > 0
        self.span_embed = nn.Embedding(span_position_embeddings + 1, d_model) if self.uses_span_positions else None
        self.blocks = nn.ModuleList(Block(d_model, n_head, n_kv_head, d_ff, dropout) for _ in range(n_layer))
        self.norm = RMSNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        if tie_embeddings:
            self.lm_head.weight = self.embed.weight
        head_dim = d_model // n_head
        inv_freq = 1.0 / rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)
        angles = torch.cat([angles, angles], dim=-1)  # [max_len, head_dim]
        sin_signed = torch.cat([-angles[:, : head_dim // 2].sin(), angles[:, head_dim // 2 :].sin()], dim=-1)
        self.register_buffer("rope_cos", angles.cos().float(), persistent=False)
        self.register_buffer("rope_sin_signed", sin_signed.float(), persistent=False)  # see apply_rope
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = init_std / math.sqrt(2 * n_layer) if name.endswith(("o_proj.weight", "down_proj.weight")) else init_std
                nn.init.normal_(p, mean=0.0, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def new_cache(self) -> KVCache:
        return KVCache(self.n_layer, self.max_len)

    def forward(self, input_ids, attn_mask, position_ids=None, cache=None, extend_cache=False, span_positions=None,
                logits_to_keep=0):
        B, L = input_ids.shape
        past = 0 if cache is None else cache.length
        x = self.embed(input_ids)
        if self.span_embed is not None:
            if span_positions is None:
                raise ValueError("this backbone has span_position_embeddings: pass span_positions")
            x = x + self.span_embed(span_positions.clamp(max=self.span_embed.num_embeddings - 1))
        if position_ids is None:  # contiguous positions after the cache: a slice, no gather
            if past + L > self.max_len:
                raise ValueError(f"position {past + L - 1} exceeds the backbone's max_len={self.max_len}")
            cos = self.rope_cos[past : past + L].to(x.dtype)[None, None]  # [1, 1, L, head_dim]
            sin = self.rope_sin_signed[past : past + L].to(x.dtype)[None, None]
        else:
            if int(position_ids.max()) >= self.max_len:
                raise ValueError(f"position {int(position_ids.max())} exceeds the backbone's max_len={self.max_len}")
            cos = self.rope_cos[position_ids].to(x.dtype).unsqueeze(1)  # [B, 1, L, head_dim]
            sin = self.rope_sin_signed[position_ids].to(x.dtype).unsqueeze(1)
        is_causal = attn_mask is None and past == 0
        if attn_mask is None and past > 0 and L > 1:  # causal with the new positions last
            attn_mask = torch.ones(L, past + L, dtype=torch.bool, device=x.device).tril(past)
        elif is_full_attention(attn_mask):
            attn_mask = None  # SDPA without a mask and not causal: every key is seen
        for i, block in enumerate(self.blocks):
            if self.gradient_checkpointing and self.training and cache is None:
                x = checkpoint(block, x, cos, sin, attn_mask, is_causal, None, i, False, use_reentrant=False)
            else:
                x = block(x, cos, sin, attn_mask, is_causal, cache, i, extend_cache)
        if logits_to_keep:
            x = x[:, -logits_to_keep:]
        return self.lm_head(self.norm(x))
