"""The modality-aware attention mask: causal for text, bidirectional inside an audio span.

    seg[i]      = #{k <= i : not audio[k]}        (a span shares the seg of the token before it)
    allow[i, j] = (j <= i) or (audio[i] and audio[j] and seg[i] == seg[j])
    allow[i, j] = False where key j is padding

A span is a maximal run of audio-side ids (user audio included).  The same mask serves
training, AR decoding and diffusion decoding; with a KV cache only its last rows are built.
"""
from typing import Optional

import torch


def segment_ids(is_audio: torch.Tensor) -> torch.Tensor:
    """[B, L] bool -> [B, L] long: inclusive running count of text-side tokens."""
    return torch.cumsum((~is_audio).long(), dim=-1)


def span_starts(is_audio: torch.Tensor) -> torch.Tensor:
    """[B, L] bool -> [B, L] bool: first position of every audio span."""
    prev = torch.nn.functional.pad(is_audio[:, :-1], (1, 0), value=False)
    return is_audio & ~prev


def positions_in_span(is_audio: torch.Tensor) -> torch.Tensor:
    """[B, L] bool -> [B, L] long: 1, 2, ... along every audio span, 0 at text positions.

    Input of a backbone's span-position embedding (``span_positions`` in
    :class:`~espnet2_ttt.models.transformer.TtTTransformer`): a fully masked span's positions
    differ only by RoPE otherwise.  Position ``i`` of a span depends only on the ids up to ``i``,
    so with a KV cache the new positions' values are the tail of the whole sequence's.
    """
    pos = torch.arange(is_audio.shape[-1], device=is_audio.device).expand_as(is_audio)
    last_text = torch.where(is_audio, -1, pos).cummax(dim=-1).values  # -1 before any text
    return torch.where(is_audio, pos - last_text, 0)


def build_modality_mask(
    is_audio: torch.Tensor,
    key_valid: Optional[torch.Tensor] = None,
    num_queries: Optional[int] = None,
) -> torch.Tensor:
    """Boolean "may attend" mask for torch SDPA (True = attend).

    Args:
        is_audio: [B, L] audio side of every position of the whole sequence (cache + new).
        key_valid: [B, L] False at padding keys (None: no padding).
        num_queries: build only the rows of the last ``num_queries`` positions (the
            positions being run against a cached prefix); default all L rows.
    Returns:
        [B, 1, Lq, L] bool.  With right padding and non-empty sequences every row has at
        least one True entry (key 0), so SDPA never sees an all-masked row.
    """
    B, L = is_audio.shape
    Lq = L if num_queries is None else num_queries
    seg = segment_ids(is_audio)
    pos = torch.arange(L, device=is_audio.device)
    q = slice(L - Lq, L)
    allow = pos[None, L - Lq :, None] >= pos[None, None, :]  # [1, Lq, L] causal
    same_span = (
        is_audio[:, q, None] & is_audio[:, None, :] & (seg[:, q, None] == seg[:, None, :])
    )  # [B, Lq, L]
    allow = allow | same_span
    if key_valid is not None:
        allow = allow & key_valid[:, None, :]
    return allow.unsqueeze(1)


def causal_mask(length: int, device=None) -> torch.Tensor:
    """[1, 1, L, L] plain causal bool mask (AR-only baseline)."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()[None, None]
