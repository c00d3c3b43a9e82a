"""The TtT hybrid loss: AR cross-entropy on text + 1/p-weighted masked cross-entropy on audio.

    L_AR   = (1/B) sum_b  sum_{i in Tx_b} CE(z[b, i-1], x[b, i]) / max(|Tx_b|, 1)
    L_diff = (1/B) sum_b  sum_{i masked in b} CE(z[b, i], x[b, i]) / (p_b * n_b)
    loss   = ar_weight * L_AR + diffusion_weight * L_diff

``Tx_b`` = supervised text-side target positions (shifted: logits at i-1 predict i);
masked positions are scored unshifted (the logits at i predict the clean token at i);
``n_b = max(|C_b|, 1)`` is the size of the maskable set after PPM, not the masked count.
Each returns (loss, number correct, number scored) so accuracies can be reported.
"""
from typing import Tuple

import torch
import torch.nn.functional as F


def _per_sample_ce(logits, targets, select):
    """CE of logits [B, L, V] against targets [B, L] at select [B, L] -> (sum per sample [B], #correct)."""
    rows = logits[select]  # [N, V]
    rows = rows.to(torch.promote_types(rows.dtype, torch.float32))  # CE in >= fp32
    tgt = targets[select]
    ce = F.cross_entropy(rows, tgt, reduction="none")
    sample = torch.nonzero(select)[:, 0]
    per_sample = torch.zeros(select.shape[0], dtype=ce.dtype, device=ce.device).index_add_(0, sample, ce)
    return per_sample, (rows.argmax(-1) == tgt).sum()


def ar_text_loss(
    logits: torch.Tensor, ids: torch.Tensor, targets: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logits [B, L, V], clean ids [B, L], targets [B, L] bool (positions whose token is a
    supervised text-side target; position 0 is never a target)."""
    tgt = targets[:, 1:]
    ce_sum, correct = _per_sample_ce(logits[:, :-1], ids[:, 1:], tgt)
    return (ce_sum / tgt.sum(1).clamp(min=1)).mean(), correct, tgt.sum()


def masked_diffusion_loss(
    logits: torch.Tensor, ids: torch.Tensor, masked: torch.Tensor, p: torch.Tensor, n_maskable: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logits [B, L, V], clean ids [B, L], masked [B, L] bool, p [B], n_maskable [B] (>= 1)."""
    ce_sum, correct = _per_sample_ce(logits, ids, masked)
    return (ce_sum / (p.to(ce_sum.dtype) * n_maskable)).mean(), correct, masked.sum()
