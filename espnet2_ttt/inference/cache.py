"""How the decoder obtains logits: exact KV caching, or the official full recompute.

Both runners answer the same two questions about a committed sequence ``seq`` ([L] ids):

* ``next_token_logits(seq)`` -> [V]: logits at the last position (AR text step).
* ``span_logits(seq, span, n)`` -> [n, V]: logits of the last ``n`` of the current span's
  positions ``span`` ([S] ids: committed blocks of this span + the current block, with
  ``[M]``), placed right after ``seq`` (which ends with the span's SOA).

:class:`CachedRunner` is exact under the modality mask (doc 7.6): everything before the
current span's first audio position never changes, so it is cached once; the span itself is
bidirectional and is recomputed at every step against the cache; a finished span enters the
cache with the next AR step (whose last row gives the first token after the span); its
output layer runs only on the rows asked for (``logits_to_keep``).
:class:`FullRecompute` reruns the whole sequence at every call and computes the logits of every
position (the official behaviour: the output layer over the whole sequence); it is the
reference the cached path is tested against.
"""
from __future__ import annotations

import torch

from espnet2_ttt.mask import build_modality_mask
from espnet2_ttt.models.transformer import FULL_ATTENTION, AbsBackbone
from espnet2_ttt.vocabulary import TtTVocabulary


class FullRecompute:
    """Reference runner: one full forward over ``seq (+ span)`` per call, no cache.

    ``causal``: plain causal attention everywhere (a model trained with
    ``audio_objective: ar``), instead of the modality mask.
    """

    def __init__(self, backbone: AbsBackbone, vocab: TtTVocabulary, causal: bool = False):
        self.backbone, self.vocab, self.causal = backbone, vocab, causal
        self.audio_side = vocab.audio_side_table.to(next(backbone.parameters()).device)  # [V] bool, looked up per step

    def bidirectional(self, is_audio: torch.Tensor) -> torch.Tensor:
        """[1, L] audio side -> [1, L] bool: the spans the mask makes bidirectional (none when causal)."""
        return torch.zeros_like(is_audio) if self.causal else is_audio

    def run(self, ids: torch.Tensor, start: int = 0, keep: int = 0) -> torch.Tensor:
        """[L] ids at positions ``start..start+L-1``, no context -> [L, V] logits (``keep`` > 0:
        the last ``keep`` rows only, [keep, V])."""
        is_audio = self.audio_side[ids][None]
        mask = build_modality_mask(self.bidirectional(is_audio))
        pos = torch.arange(start, start + len(ids), device=ids.device)[None]
        span_pos = self.backbone.span_positions(is_audio)
        return self.backbone(ids[None], mask, pos, span_positions=span_pos, logits_to_keep=keep)[0]

    def uncond_logits(self, ids: torch.Tensor, start: int, n: int) -> torch.Tensor:
        """CFG's unconditional branch: ``ids`` alone (no cache) -> [n, V] logits of its last ``n`` positions."""
        return self.run(ids, start)[-n:]

    def next_token_logits(self, seq: torch.Tensor) -> torch.Tensor:
        return self.run(seq)[-1]

    def span_logits(self, seq: torch.Tensor, span: torch.Tensor, n: int) -> torch.Tensor:
        return self.run(torch.cat([seq, span]))[-n:]


class CachedRunner(FullRecompute):
    """Exact KV-cached runner.  Invariant: the cache holds a prefix of every ``seq`` it is given."""

    def __init__(self, backbone: AbsBackbone, vocab: TtTVocabulary, causal: bool = False):
        super().__init__(backbone, vocab, causal)
        self.cache = backbone.new_cache()

    def _forward(self, seq: torch.Tensor, new: torch.Tensor, extend: bool, keep: int) -> torch.Tensor:
        """Run ``new`` ([N] ids placed after ``seq``) against the cache, which holds all of ``seq``;
        -> [keep, V] logits of the last ``keep`` new positions.

        A single new position is the last one and sees everything before it and itself, under
        the modality mask for either side, so it runs without a mask (plain causal).  New
        positions that are all audio side (a span's positions, and its EOA) are one span run:
        the modality mask lets each see every position, so they run with ``FULL_ATTENTION``.
        """
        mask = span_pos = None
        if len(new) > 1 or self.backbone.uses_span_positions:
            is_audio = self.audio_side[torch.cat([seq, new])][None]
            span_pos = self.backbone.span_positions(is_audio, len(new))
            if len(new) > 1:
                bidirectional = self.bidirectional(is_audio)
                mask = FULL_ATTENTION if bool(bidirectional[0, len(seq):].all()) else \
                    build_modality_mask(bidirectional, num_queries=len(new))
        return self.backbone(new[None], mask, cache=self.cache, extend_cache=extend, span_positions=span_pos,
                             logits_to_keep=keep)[0]

    def uncond_logits(self, ids: torch.Tensor, start: int, n: int) -> torch.Tensor:
        return self.run(ids, start, keep=n)

    def next_token_logits(self, seq: torch.Tensor) -> torch.Tensor:
        """Appends the uncached tail of ``seq`` (one AR token, or a finished span + EOA) to the cache."""
        done = self.cache.length
        return self._forward(seq[:done], seq[done:], extend=True, keep=1)[-1]

    def span_logits(self, seq: torch.Tensor, span: torch.Tensor, n: int) -> torch.Tensor:
        """The span runs against the cache, uncached.  At a span's first step the cache lacks the
        tail of ``seq`` (the SOA): it runs in the same forward, and the cache is cut back after it."""
        done = self.cache.length
        if done < len(seq):
            logits = self._forward(seq[:done], torch.cat([seq[done:], span]), extend=True, keep=n)
            self.cache.crop(len(seq))
            return logits
        return self._forward(seq, span, extend=False, keep=n)
