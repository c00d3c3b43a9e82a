"""What every span writer shares (:class:`SpanColumns`), and the spans that are not diffused.

The diffusion span of Algorithm 1 is :meth:`TtTDecoder._diffusion_span`; here are the span
vocabulary and its forcing, the end of a span cut without an end marker, a span of known codes
(:func:`known_span`) and the AR-only baseline's span (:class:`ARSpanWriter`).  Every writer
yields :class:`AudioEvent` s, then one :class:`SpanEndEvent`.
"""
from __future__ import annotations

import logging
from typing import Iterator, List, Optional

import torch

from espnet2_ttt.inference.cache import FullRecompute
from espnet2_ttt.inference.events import AudioEvent, DecodeEvent, SpanEndEvent
from espnet2_ttt.inference.policy import SpanPlan
from espnet2_ttt.inference.sampler import gumbel_argmax
from espnet2_ttt.inference.timing import PhaseClock
from espnet2_ttt.vocabulary import TtTVocabulary

logger = logging.getLogger(__name__)


class SpanColumns:
    """The span vocabulary (codes + the two EOA markers), columns [V'] of span logits, on ``device``."""

    def __init__(self, vocab: TtTVocabulary, device: torch.device):
        self.vocab = vocab
        self.ids = torch.nonzero(vocab.span_vocab_table).squeeze(1).to(device)  # [V'] token id of each column
        self.is_code = vocab.is_code(self.ids)  # [V']
        self.end_ids = torch.tensor([vocab.eoa_id, vocab.eoa_last_id], device=device)

    def capacity(self, plan: SpanPlan, seq_len: int, limit: int, max_span_length: int) -> int:
        """Tokens the span after ``seq_len`` committed ones may hold: ``max_span_length``, the
        turn's ``limit``, and with a forced length its codes + EOA."""
        room = min(max_span_length, limit - seq_len)
        return room if plan.forced_len is None else min(room, plan.forced_len + 1)

    def allowed(self, plan: SpanPlan, offset: int, n: int) -> Optional[torch.Tensor]:
        """[n, V'] allowed columns for span positions ``offset..offset+n-1`` (None = all).

        With a forced length: codes before ``forced_len``, exactly the plan's EOA at it, codes
        after (positions after an EOA are dropped anyway).
        """
        if plan.forced_len is None:
            return None
        span_pos = torch.arange(offset, offset + n, device=self.ids.device)[:, None]
        return torch.where(span_pos == plan.forced_len, self.ids == plan.eoa, self.is_code)

    def first_end(self, block: torch.Tensor) -> Optional[int]:
        """Index of the earliest end-of-span marker in ``block`` [Bk], or None."""
        ends = torch.nonzero(torch.isin(block, self.end_ids)).squeeze(1)
        return int(ends[0]) if len(ends) else None

    def audio_event(self, ids: List[int], plan: SpanPlan, clock: PhaseClock) -> AudioEvent:
        """An AudioEvent of the committed span tokens ``ids`` (codes, possibly an EOA last)."""
        t = torch.tensor(ids)
        return AudioEvent(ids, clock.now(), self.vocab.id_to_code(t[self.vocab.is_code(t)]).tolist(), plan.index)


def unfinished_span_end(vocab: TtTVocabulary, plan: SpanPlan, seq_len: int, span_len: int, limit: int,
                        max_span_length: int, clock: PhaseClock) -> SpanEndEvent:
    """The end of a span that produced no end marker in its ``span_len`` tokens after ``seq_len``
    committed ones: closed with its EOA if the turn's ``limit`` leaves room, else the turn ends."""
    closing = [plan.eoa] if seq_len + span_len < limit else []
    logger.warning(
        f"span {plan.index} produced no end-of-span marker within {span_len} tokens "
        f"(max_span_length={max_span_length}, length limit {limit}); "
        + ("closing it with " + vocab.token_list[closing[0]] if closing else "the turn ends")
    )
    return SpanEndEvent(closing, clock.now(), plan.index, span_len, True)


def known_span(vocab: TtTVocabulary, seq_len: int, plan: SpanPlan, limit: int, clock: PhaseClock) -> Iterator[DecodeEvent]:
    """The span holds the plan's known codes, then its EOA (cut at the turn's ``limit``)."""
    codes = list(plan.codes)[: limit - seq_len]
    ids = vocab.code_to_id(torch.as_tensor(codes, dtype=torch.long)).tolist()
    closed = seq_len + len(ids) < limit
    yield AudioEvent(ids + [plan.eoa] * closed, clock.now(), codes, plan.index)
    yield SpanEndEvent([], clock.now(), plan.index, len(codes), not closed)


class ARSpanWriter:
    """The AR-only baseline's span (a model trained with ``audio_objective: ar``): one code per
    cached forward under the plain causal mask, over the span vocabulary (sampled at
    ``config.diffusion_temperature``); the earliest EOA ends it.  Streamed in blocks of
    ``config.block_length`` tokens; the same length limits as the diffusion span."""

    def __init__(self, columns: SpanColumns, config):
        self.columns, self.config = columns, config  # config: a DecodeConfig

    def __call__(self, runner: FullRecompute, seq: torch.Tensor, plan: SpanPlan, limit: int, generator: torch.Generator,
                 clock: PhaseClock) -> Iterator[DecodeEvent]:
        cols, cfg = self.columns, self.config
        room = cols.capacity(plan, len(seq), limit, cfg.max_span_length)
        written, block = seq, []  # written: seq and the span's tokens so far; block: those not yet streamed
        while len(written) - len(seq) < room:
            with clock.phase("audio_ar"):
                logits = runner.next_token_logits(written)[cols.ids]
                allowed = cols.allowed(plan, len(written) - len(seq), 1)
                if allowed is not None:
                    logits = logits.masked_fill(~allowed[0], -torch.inf)
                tok = int(cols.ids[gumbel_argmax(logits, cfg.diffusion_temperature, generator)])
            written = torch.cat([written, written.new_tensor([tok])])
            block.append(tok)
            ended = tok in (cols.vocab.eoa_id, cols.vocab.eoa_last_id)
            if ended or len(block) == cfg.block_length or len(written) - len(seq) == room:
                yield cols.audio_event(block, plan, clock)
                block = []
            if ended:
                yield SpanEndEvent([], clock.now(), plan.index, len(written) - len(seq) - 1, False)
                return
        yield unfinished_span_end(cols.vocab, plan, len(seq), len(written) - len(seq), limit, cfg.max_span_length, clock)
