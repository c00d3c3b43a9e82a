"""Training-time corruption: absorbing-diffusion masking and the three train/test-gap strategies.

* BANOM (batch-level AR/NAR mixing): with probability ``banom_prob`` a micro-batch keeps its
  audio clean and trains the AR loss only.  One draw per forward call (per device micro-batch).
* PPM (prefix preservation masking): per sample, with probability ``ppm_prob``, pick one of the
  maskable span starts uniformly and keep every maskable position before it clean.  Choosing
  the first span preserves nothing, so single-span samples are unaffected.
* SST (stochastic span truncation): per sample, with probability ``sst_prob``, cut the final
  span of the last assistant turn after ``k ~ UniformInt[max(floor(0.3 n), 5), floor(0.9 n)]`` of
  its ``n`` codes (only when ``n > 10`` and the bounds are ordered), dropping its end marker and
  everything after it (the turn's ``<|im_end|>`` included).  Not applied to PT data.

Masking rate (``diffusion_corruption``): per sample ``t ~ U(0, 1)`` (official), or with
``mask_schedule: cosine`` ``t = cos(pi u / 2)``, ``u ~ U(0, 1)`` (MaskGIT's schedule: mean 2/pi,
more nearly fully masked spans, as decoding starts from); the loss keeps its ``1/p`` weight, so
"cosine" trains a reweighted bound, not the ELBO.

All draws come from the ``generator`` argument (CPU), so a run is reproducible from its seed;
training seeds its generator with :func:`per_rank_seed`, so that DDP ranks draw apart.
Shapes: ``ids`` [B, L] long, ``valid`` / masks [B, L] bool, per-sample values [B].
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from espnet2_ttt.mask import span_starts
from espnet2_ttt.vocabulary import TtTVocabulary


MASK_SCHEDULES = ("uniform", "cosine")


@dataclass
class CorruptionConfig:
    banom_prob: float = 0.3  # p_mix: probability of a clean (AR-only) micro-batch
    ppm_prob: float = 0.3  # p_prefix
    sst_prob: float = 0.5  # p_trunc
    eps: float = 1e-3  # floor of the masking probability p = (1 - eps) t + eps
    mask_schedule: str = "uniform"  # t ~ U(0, 1) ("uniform") or t = cos(pi u / 2), u ~ U(0, 1) ("cosine")
    sst_min_codes: int = 10  # final spans of <= this many codes are never truncated
    sst_keep_min: float = 0.3
    sst_keep_max: float = 0.9
    sst_keep_floor: int = 5

    def __post_init__(self):
        for name in ("banom_prob", "ppm_prob", "sst_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if not 0.0 <= self.eps < 1.0:
            raise ValueError(f"eps must be in [0, 1), got {self.eps}")
        if self.mask_schedule not in MASK_SCHEDULES:
            raise ValueError(f"mask_schedule must be one of {MASK_SCHEDULES}, got {self.mask_schedule!r}")


def per_rank_seed() -> int:
    """A seed for this process's training draws: a draw from the global torch RNG plus the
    ``torch.distributed`` rank (0 without a process group).  Ranks whose global RNGs agree
    (ESPnet seeds them alike) get distinct seeds; the same global state and rank give the same seed."""
    dist = torch.distributed
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    return int(torch.randint(2**62, ())) + rank


def _uniform(shape, generator: Optional[torch.Generator], device) -> torch.Tensor:
    return torch.rand(shape, generator=generator).to(device, non_blocking=True)  # host to device: no stream sync


def banom_keeps_clean(cfg: CorruptionConfig, generator: Optional[torch.Generator] = None) -> bool:
    """BANOM: one draw per micro-batch; True -> clean audio, AR loss only."""
    return bool(torch.rand((), generator=generator) < cfg.banom_prob)


def stochastic_span_truncation(
    ids: torch.Tensor,
    lengths: torch.Tensor,
    vocab: TtTVocabulary,
    cfg: CorruptionConfig,
    generator: Optional[torch.Generator] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """SST on the whole batch at once (no per-sample host syncs).  Returns (ids, lengths) with
    truncated samples cut and re-padded with <pad>."""
    draw = _uniform(ids.shape[0], generator, ids.device)
    frac = _uniform(ids.shape[0], generator, ids.device)
    pos = torch.arange(ids.shape[1], device=ids.device)[None, :]
    valid = pos < lengths[:, None]
    none = torch.full_like(pos, -1)

    def last(token_id):  # [B] position of the last valid token_id, -1 if none
        return torch.where(valid & (ids == token_id), pos, none).amax(1)

    s = last(vocab.soa_last_id)  # <|begin_of_quad|> of the final span
    e = torch.where(valid & (ids == vocab.eoa_last_id) & (pos > s[:, None]), pos, ids.shape[1]).amin(1)
    n = e - s - 1  # codes of the final span
    lo = torch.clamp_min((cfg.sst_keep_min * n.double()).floor().long(), cfg.sst_keep_floor)
    hi = (cfg.sst_keep_max * n.double()).floor().long()
    keep = lo + torch.minimum((frac * (hi - lo + 1)).long(), hi - lo)
    cut = (
        (ids[:, 0] == vocab.im_start_id) & (lengths > 0)  # chat data, not PT
        & (draw < cfg.sst_prob)
        & (s > last(vocab.im_start_id))  # the last turn has a final span ...
        & (e < ids.shape[1])  # ... not truncated already
        & (n > cfg.sst_min_codes) & (lo < hi)
    )
    lengths = torch.where(cut, s + 1 + keep, lengths)
    ids = torch.where(cut[:, None] & (pos >= lengths[:, None]), vocab.pad_id, ids)
    return ids, lengths


def prefix_preservation(
    maskable: torch.Tensor,
    cfg: CorruptionConfig,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """PPM.  [B, L] maskable -> [B, L] maskable with a clean prefix removed for drawn samples."""
    starts = span_starts(maskable)
    n_starts = starts.sum(1)
    draw = _uniform(maskable.shape[0], generator, maskable.device)
    pick = _uniform(maskable.shape[0], generator, maskable.device)
    chosen = torch.minimum((pick * n_starts).long(), (n_starts - 1).clamp(min=0))  # index of the kept span
    rank = torch.cumsum(starts.long(), dim=1) - 1  # which span each position belongs to (-1 before the first)
    apply = (draw < cfg.ppm_prob) & (n_starts > 0)
    preserved = apply[:, None] & (rank < chosen[:, None])
    return maskable & ~preserved


def diffusion_corruption(
    ids: torch.Tensor,
    maskable: torch.Tensor,
    mask_id: int,
    cfg: CorruptionConfig,
    generator: Optional[torch.Generator] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Absorbing forward process: t ~ U(0,1), p = (1 - eps) t + eps per sample; each maskable
    position becomes [M] independently with probability p.

    Returns (noisy_ids [B, L], masked [B, L] bool, p [B]).
    """
    t = _uniform(ids.shape[0], generator, ids.device)
    if cfg.mask_schedule == "cosine":
        t = torch.cos(0.5 * torch.pi * t)
    p = (1.0 - cfg.eps) * t + cfg.eps
    masked = maskable & (_uniform(ids.shape, generator, ids.device) < p[:, None])
    return torch.where(masked, torch.full_like(ids, mask_id), ids), masked, p
