"""The rules of a decoded turn that are not the model's choice, in one object (:class:`TurnPolicy`).

:class:`Forcing` states what a caller knows of the answer (text-forced TTS, re-spoken ASR input,
benchmarks, tests); :class:`TurnPolicy` applies it together with the decoding options that
constrain AR (``min_text_tokens_after_audio``, ``maxlenratio``) and the AR vocabulary.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from espnet2_ttt.sequence_builder import SPAN_LEN
from espnet2_ttt.vocabulary import TtTVocabulary


@dataclass
class Forcing:
    """Forced decisions: text-forced TTS, benchmarks and tests (a random model never follows a layout).

    ``text_ids``: the first AR tokens are these instead of samples (the forward still runs).
    ``span_lengths``: span i writes exactly ``span_lengths[i]`` codes then its EOA (the
    logits of the other choices are set to -inf); spans beyond the list are free.
    ``spoken_codes``: the answer re-speaks this known audio (ASR: the input speech, as the
    training layout does), so its spans are written, not diffused: one opened by
    ``<|begin_of_audio|>`` holds the next ``spoken_span_len`` codes, one opened by
    ``<|begin_of_quad|>`` all that remain.  As in training, AR may open a non-final span only
    while more than ``spoken_span_len`` codes remain and a final one while any remain.
    """

    text_ids: Sequence[int] = ()
    span_lengths: Sequence[int] = ()
    spoken_codes: Optional[Sequence[int]] = None
    spoken_span_len: int = SPAN_LEN

    def __post_init__(self):
        if self.spoken_codes is not None and self.span_lengths:
            raise ValueError("Forcing: spoken_codes writes every span; span_lengths cannot be given with it")
        if self.spoken_span_len < 1:
            raise ValueError(f"Forcing: spoken_span_len must be >= 1, got {self.spoken_span_len}")


@dataclass(frozen=True)
class SpanPlan:
    """How span ``index`` (opened by ``soa``, closed by ``eoa``) is written.

    ``codes``: known codes, written as they are (then ``eoa``); ``forced_len``: generated, exactly
    that many codes then ``eoa``; both None: generated freely.
    """

    index: int
    soa: int
    eoa: int
    forced_len: Optional[int] = None
    codes: Optional[Sequence[int]] = None


def ar_vocabulary(vocab: TtTVocabulary) -> torch.Tensor:
    """[V] bool: what AR may write: text pieces, the two SOA and ``<|im_end|>``.

    Not the audio side (an id there would open a span the decoder did not start), nor the
    text-side ids that only occur in prompts or data files (``<pad>``, ``<unk>``, ``<|im_start|>``,
    role tokens, ``<|end_of_audio|>``, the reserved ``<|truncated|>``).
    """
    allowed = ~vocab.audio_side_table
    allowed[[vocab.pad_id, vocab.unk_id, vocab.im_start_id, vocab.user_eoa_id, vocab.truncated_id,
             *vocab.role_ids.values()]] = False
    return allowed


class TurnPolicy:
    """What one turn forces and forbids; the decoder asks it at every AR step and every span.

    * AR step: :meth:`forced_text` (the next of ``Forcing.text_ids``), else the model samples
      from :meth:`restrict` ed logits: the AR vocabulary, ``<|im_end|>`` forbidden for
      ``min_text_tokens_after_audio`` tokens after a span, and with ``Forcing.spoken_codes`` an
      SOA only while codes remain for its span;
    * :meth:`after_text`: the stop the token causes: ``<|im_end|>``, or ``maxlenratio`` when
      ``text_budget`` text pieces were written;
    * :meth:`open_span`: the :class:`SpanPlan` of the span an SOA opens.
    """

    def __init__(self, vocab: TtTVocabulary, ar_allowed: torch.Tensor, forcing: Forcing,
                 min_text_tokens_after_audio: int, text_budget: float = math.inf):
        self.vocab, self.forcing = vocab, forcing
        self.ar_allowed = ar_allowed  # [V] bool, on the model's device
        self.min_text_tokens_after_audio = min_text_tokens_after_audio
        self.text_budget = text_budget
        self.eoa_of_soa = {vocab.soa_id: vocab.eoa_id, vocab.soa_last_id: vocab.eoa_last_id}
        self._forced_text = iter(forcing.text_ids)
        self._no_end_for = 0  # AR tokens before <|im_end|> is allowed again
        self._pieces_written = 0  # text pieces written, against text_budget
        self._spans_opened = 0
        self._spoken_next = 0  # next of forcing.spoken_codes to write

    def forced_text(self) -> Optional[int]:
        """The forced next AR token, or None: the model's choice."""
        return next(self._forced_text, None)

    def restrict(self, logits: torch.Tensor) -> torch.Tensor:
        """[V] AR logits -> [V] with every token AR may not write now at -inf."""
        vocab = self.vocab
        logits = logits.masked_fill(~self.ar_allowed, -torch.inf)
        if self._no_end_for > 0:
            logits[vocab.im_end_id] = -torch.inf
        spoken = self.forcing.spoken_codes
        if spoken is not None:
            left = len(spoken) - self._spoken_next
            if left <= self.forcing.spoken_span_len:
                logits[vocab.soa_id] = -torch.inf
            if left == 0:
                logits[vocab.soa_last_id] = -torch.inf
        return logits

    def after_text(self, tok: int) -> Optional[str]:
        """Records the AR token ``tok``; -> the stop reason it causes ("im_end", "maxlenratio") or None.

        Only text pieces count against ``text_budget``: an SOA never ends the turn, so the span
        it opens is always written.
        """
        if tok == self.vocab.im_end_id:
            return "im_end"
        if tok in self.eoa_of_soa:
            return None
        self._no_end_for = max(self._no_end_for - 1, 0)
        self._pieces_written += 1
        return "maxlenratio" if self._pieces_written >= self.text_budget else None

    def open_span(self, soa: int) -> SpanPlan:
        """The plan of the span that ``soa`` opens."""
        index, self._spans_opened = self._spans_opened, self._spans_opened + 1
        self._no_end_for = self.min_text_tokens_after_audio  # counted from the end of this span
        forcing, eoa = self.forcing, self.eoa_of_soa[soa]
        if forcing.spoken_codes is not None:
            start = self._spoken_next
            n = forcing.spoken_span_len if soa == self.vocab.soa_id else len(forcing.spoken_codes) - start
            self._spoken_next += n
            return SpanPlan(index, soa, eoa, codes=forcing.spoken_codes[start : start + n])
        forced_len = forcing.span_lengths[index] if index < len(forcing.span_lengths) else None
        return SpanPlan(index, soa, eoa, forced_len=forced_len)
