"""One assistant turn of TtT decoding (doc section 7, Algorithm 1), as a stream of events.

Control loop: AR text (one token per forward) until an SOA (``<|begin_of_audio|>`` or
``<|begin_of_quad|>``), then the span by block-wise masked diffusion until the earliest
generated EOA, then AR again, until ``<|im_end|>`` or the length limit.  A model trained with
``audio_objective: ar`` (the AR-only baseline) writes its spans one code per forward under a
plain causal mask instead (``TtTDecoder(..., audio_objective="ar")``).

Deviations from the official code (documented choices):
* diffusion may only write the span vocabulary (codes + the two EOA markers,
  ``vocab.span_vocab_table``); the official code only forbids ``<|im_end|>``;
* AR may only write text pieces, the two SOA tokens and ``<|im_end|>`` (no audio-side id,
  which would open a span the decoder did not start, and no prompt/data-only special such as
  ``<pad>``, ``<unk>``, ``<|im_start|>``, role tokens, ``<|end_of_audio|>``,
  ``<|truncated|>``); the official code does not restrict AR;
* the earliest EOA of a block ends the span (the official code checks the two EOA types in a
  fixed order); once an EOA is committed with no ``[M]`` before it, the block's remaining
  steps are skipped (they could only fill positions after the EOA, which are dropped: the
  output distribution is unchanged, fewer random numbers are drawn); the official code runs
  every step of the block;
* a span without EOA after ``max_span_length`` tokens is closed with the EOA matching its SOA
  (``<|end_of_audio_new|>`` / ``<|end_of_audio_span_last|>``), a warning is logged and AR
  continues; the official code keeps diffusing the same span until the turn's length limit;
* ``steps_per_block`` must be in [1, block length] (no forward that commits nothing).
"""
from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence

import torch

from espnet2_ttt.espnet_model import AUDIO_OBJECTIVES
from espnet2_ttt.inference.cache import CachedRunner, FullRecompute
from espnet2_ttt.inference.sampler import commit_schedule, diffusion_step, gumbel_argmax, sample_text, steps_per_block
from espnet2_ttt.models.transformer import AbsBackbone
from espnet2_ttt.sequence_builder import CHUNK_LEN, SPAN_LEN
from espnet2_ttt.vocabulary import TtTVocabulary

CFG_UNCOND_INPUTS = ("official", "span_only")
logger = logging.getLogger(__name__)


@dataclass
class DecodeConfig:
    """Decoding hyper-parameters (``conf/decode.yaml``).

    Steps per block: ``steps_per_block`` if set, else the official rule
    ``diffusion_steps / (max_span_length / block_length)`` (paper: 200, 640, 32 -> 10).
    ``cfg_scale`` w: ``z = z_u + (w + 1)(z_c - z_u)``, 0 = off.  ``cfg_uncond``: "official"
    (every context position -> ``[M]``, full uncached pass) or "span_only" (the unconditional
    branch sees only the current span's positions: cheap, an approximation).
    ``ar_temperature`` 0 with top-k/top-p set samples at temperature 1 (official).
    ``min_text_tokens_after_audio``: after a span, ``<|im_end|>`` is forbidden until this
    many other AR tokens were written (official option, default 0).
    ``maxlenratio`` (as ESPnet's ASR decoding): when > 0 and the prompt holds audio codes,
    the turn stops after ``max(1, int(maxlenratio * prompt audio codes))`` AR tokens
    (stop reason "maxlenratio"); audio codes do not count.  0 = no such bound.
    Forcing options, read by :class:`~espnet2_ttt.bin.ttt_inference.TtTInference`; the training
    layout is chunks of ``layout_chunk_len`` text tokens and non-final spans of
    ``layout_span_len`` codes (:func:`~espnet2_ttt.sequence_builder.interleave`):
    ``tts_force_text``: in tts mode the answer's text side is the input text in that layout
    (:func:`~espnet2_ttt.sequence_builder.spoken_text_layout`); only the audio is generated.
    ``asr_force_audio``: in asr mode the answer's spans are the input speech in that layout
    (:attr:`Forcing.spoken_codes`), which the ASR answer re-speaks in training; only the text is
    generated, and no span is diffused.
    """

    max_new_tokens: int = 2048
    block_length: int = 32
    diffusion_steps: int = 200
    max_span_length: int = 640
    steps_per_block: Optional[int] = None
    remasking: str = "low_confidence"
    diffusion_temperature: float = 0.0
    ar_temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    cfg_scale: float = 0.1
    cfg_uncond: str = "official"
    min_text_tokens_after_audio: int = 0
    maxlenratio: float = 0.0
    use_cache: bool = True
    tts_force_text: bool = False
    asr_force_audio: bool = False
    layout_chunk_len: int = CHUNK_LEN
    layout_span_len: int = SPAN_LEN

    def __post_init__(self):
        if self.steps_per_block is None:
            self.steps_per_block = steps_per_block(self.diffusion_steps, self.max_span_length, self.block_length)
        commit_schedule(self.block_length, self.steps_per_block)  # validates the pair
        if self.remasking not in ("low_confidence", "random"):
            raise ValueError(f"remasking must be 'low_confidence' or 'random', got {self.remasking!r}")
        if self.cfg_uncond not in CFG_UNCOND_INPUTS:
            raise ValueError(f"cfg_uncond must be one of {CFG_UNCOND_INPUTS}, got {self.cfg_uncond!r}")
        if min(self.max_new_tokens, self.max_span_length, self.layout_chunk_len, self.layout_span_len) < 1:
            raise ValueError("max_new_tokens, max_span_length, layout_chunk_len and layout_span_len must be >= 1")
        if self.min_text_tokens_after_audio < 0 or self.maxlenratio < 0:
            raise ValueError("min_text_tokens_after_audio and maxlenratio must be >= 0")
        if self.cfg_scale < 0 or self.diffusion_temperature < 0 or self.ar_temperature < 0 or self.top_k < 0:
            raise ValueError("cfg_scale, temperatures and top_k must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


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


@dataclass
class DecodeResult:
    """A decoded turn.  ``token_ids``: every generated id, in order (prompt excluded)."""

    token_ids: List[int]
    spans: List[List[int]]  # codes of every span (EOA excluded)
    stop_reason: str  # "im_end" | "length" | "maxlenratio"
    # seconds per phase: prefix (first forward), ar (text steps), diffusion (whole denoising steps,
    # including cfg_uncond = the unconditional forwards), span_close (the AR step that also caches
    # the finished span), total.  forwards: calls per phase.
    timings: Dict[str, float]
    forwards: Dict[str, int]  # forward passes per phase
    time_to_first_audio: Optional[float]  # seconds from the start to the first committed block

    @property
    def audio_codes(self) -> List[int]:
        return [c for span in self.spans for c in span]


@dataclass
class DecodeEvent:
    """Streaming event.  Invariant: concatenating ``ids`` of all events = ``token_ids``."""

    ids: List[int]
    time_s: float  # seconds since the decoding started


@dataclass
class TextEvent(DecodeEvent):
    """One AR token (text piece, SOA or ``<|im_end|>``)."""

    token: str


@dataclass
class AudioEvent(DecodeEvent):
    """One committed block of span ``span_index`` (cut after its EOA, if any)."""

    codes: List[int]
    span_index: int


@dataclass
class SpanEndEvent(DecodeEvent):
    """Span ``span_index`` is finished; ``ids`` holds the EOA appended when it was cut."""

    span_index: int
    num_codes: int
    truncated: bool  # no EOA was generated (max_span_length or the length limit)


@dataclass
class TurnEndEvent(DecodeEvent):
    result: DecodeResult = field(repr=False)


class _PhaseClock:
    """Wall time and forward count per phase; synchronises CUDA so times are attributed right."""

    def __init__(self, device: torch.device):
        self.start = time.perf_counter()
        self.sync = device.type == "cuda"
        self.seconds: Dict[str, float] = {}
        self.forwards: Dict[str, int] = {}

    def now(self) -> float:
        return time.perf_counter() - self.start

    @contextmanager
    def phase(self, name: str):
        t0 = time.perf_counter()
        yield
        if self.sync:
            torch.cuda.synchronize()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        self.forwards[name] = self.forwards.get(name, 0) + 1


class TtTDecoder:
    """Decodes one assistant turn with a backbone + vocabulary (batch size 1).

    ``stream(prompt_ids, generator)`` yields :class:`DecodeEvent` s and ends with a
    :class:`TurnEndEvent`; ``decode`` returns its :class:`DecodeResult`.
    """

    def __init__(
        self, backbone: AbsBackbone, vocab: TtTVocabulary, config: Optional[DecodeConfig] = None,
        audio_objective: str = "diffusion",
    ):
        if backbone.vocab_size != len(vocab):
            raise ValueError(f"backbone vocab_size={backbone.vocab_size} != token list size {len(vocab)}")
        if audio_objective not in AUDIO_OBJECTIVES:
            raise ValueError(f"audio_objective must be one of {AUDIO_OBJECTIVES}, got {audio_objective!r}")
        self.backbone, self.vocab = backbone.eval(), vocab
        self.config = config or DecodeConfig()
        self.audio_ar = audio_objective == "ar"  # the AR-only baseline: causal, one code per forward
        self.max_len = getattr(backbone, "max_len", None)  # longest sequence the backbone accepts
        device = next(backbone.parameters()).device
        self.text_allowed = (~vocab.audio_side_table).to(device)  # [V] what AR may write
        self.text_allowed[self._never_written_by_ar(vocab)] = False
        self.span_vocab_ids = torch.nonzero(vocab.span_vocab_table).squeeze(1).to(device)  # [V']
        self.span_column_is_code = vocab.is_code(self.span_vocab_ids)  # [V']
        self.end_of_span_ids = torch.tensor([vocab.eoa_id, vocab.eoa_last_id], device=device)
        self.eoa_of_soa = {vocab.soa_id: vocab.eoa_id, vocab.soa_last_id: vocab.eoa_last_id}

    # ------------------------------------------------------------------ public
    def decode(
        self, prompt_ids: Sequence[int], generator: torch.Generator, forcing: Optional[Forcing] = None,
        where: str = "prompt",
    ) -> DecodeResult:
        """-> :class:`DecodeResult` of the turn."""
        for event in self.stream(prompt_ids, generator, forcing, where):
            if isinstance(event, TurnEndEvent):
                return event.result
        raise AssertionError("stream ended without a TurnEndEvent")

    @torch.inference_mode()
    def stream(
        self, prompt_ids: Sequence[int], generator: torch.Generator, forcing: Optional[Forcing] = None,
        where: str = "prompt",
    ) -> Iterator[DecodeEvent]:
        """Decode one turn after ``prompt_ids`` (ending with ``<|im_start|> <|assistant|>``).

        ``generator`` (on the model's device) makes every random choice; ``where`` names the
        input in errors (e.g. the utterance id).
        """
        cfg, vocab = self.config, self.vocab
        seq = self._prompt_tensor(prompt_ids, where)
        limit = len(seq) + cfg.max_new_tokens
        if self.max_len is not None:
            limit = min(limit, self.max_len)
        forcing = forcing or Forcing()
        forced_text = iter(forcing.text_ids)
        runner = (CachedRunner if cfg.use_cache else FullRecompute)(self.backbone, vocab, causal=self.audio_ar)
        clock = _PhaseClock(seq.device)
        generated: List[int] = []
        spans: List[List[int]] = []
        ttfa = None
        phase, stop_reason = "prefix", "length"
        no_end_for = 0  # AR tokens before <|im_end|> is allowed again (min_text_tokens_after_audio)
        ar_budget = self._ar_budget(seq)
        ar_written = 0
        spoken_next = 0  # next of forcing.spoken_codes to write
        while len(seq) < limit:
            with clock.phase(phase):
                logits = runner.next_token_logits(seq)
                tok = next(forced_text, None)
                if tok is None:
                    logits = logits.masked_fill(~self.text_allowed, -torch.inf)
                    if no_end_for > 0:
                        logits[vocab.im_end_id] = -torch.inf
                    if forcing.spoken_codes is not None:
                        left = len(forcing.spoken_codes) - spoken_next
                        if left <= forcing.spoken_span_len:
                            logits[vocab.soa_id] = -torch.inf
                        if left == 0:
                            logits[vocab.soa_last_id] = -torch.inf
                    tok = sample_text(logits, cfg.ar_temperature, cfg.top_k, cfg.top_p, generator)
            seq = torch.cat([seq, seq.new_tensor([tok])])
            generated.append(tok)
            yield TextEvent([tok], clock.now(), vocab.token_list[tok])
            phase = "ar"
            ar_written += 1
            if tok == vocab.im_end_id:
                stop_reason = "im_end"
                break
            if ar_written >= ar_budget:
                stop_reason = "maxlenratio"
                break
            if tok in self.eoa_of_soa:
                spans.append([])
                if forcing.spoken_codes is not None:
                    n = forcing.spoken_span_len if tok == vocab.soa_id else len(forcing.spoken_codes) - spoken_next
                    codes = forcing.spoken_codes[spoken_next : spoken_next + n]
                    spoken_next += n
                    events = self._written_span(seq, tok, codes, limit, clock, len(spans) - 1)
                else:
                    forced_len = forcing.span_lengths[len(spans) - 1] if len(spans) <= len(forcing.span_lengths) else None
                    write_span = self._ar_span if self.audio_ar else self._span
                    events = write_span(runner, seq, tok, limit, generator, clock, len(spans) - 1, forced_len)
                for event in events:
                    if isinstance(event, AudioEvent):
                        ttfa = event.time_s if ttfa is None else ttfa
                        spans[-1].extend(event.codes)
                    generated.extend(event.ids)
                    seq = torch.cat([seq, seq.new_tensor(event.ids, dtype=torch.long)])
                    yield event
                phase = "span_close"
                no_end_for = cfg.min_text_tokens_after_audio
            else:
                no_end_for = max(no_end_for - 1, 0)
        timings = dict(clock.seconds, total=clock.now())
        result = DecodeResult(generated, spans, stop_reason, timings, dict(clock.forwards), ttfa)
        yield TurnEndEvent([], clock.now(), result)

    # ------------------------------------------------------------------ internals
    def _ar_budget(self, prompt: torch.Tensor) -> float:
        """AR tokens allowed in the turn by ``maxlenratio`` (inf when off or no prompt audio)."""
        prompt_codes = int(self.vocab.is_code(prompt).sum())
        if self.config.maxlenratio <= 0 or prompt_codes == 0:
            return math.inf
        return max(1, int(self.config.maxlenratio * prompt_codes))

    @staticmethod
    def _never_written_by_ar(vocab: TtTVocabulary) -> List[int]:
        """Text-side ids that only occur in prompts or data files, never in a response."""
        return [vocab.pad_id, vocab.unk_id, vocab.im_start_id, vocab.user_eoa_id, vocab.truncated_id,
                *vocab.role_ids.values()]

    def _prompt_tensor(self, prompt_ids: Sequence[int], where: str) -> torch.Tensor:
        device = self.span_vocab_ids.device
        prompt = torch.as_tensor(list(prompt_ids), dtype=torch.long, device=device)
        if prompt.numel() == 0:
            raise ValueError(f"{where}: empty prompt")
        self.vocab.check_ids(prompt, where)
        if self.max_len is not None and len(prompt) >= self.max_len:
            raise ValueError(f"{where}: prompt of {len(prompt)} tokens leaves no room: the model's max length is {self.max_len}")
        return prompt

    def _span(self, runner, seq, soa, limit, generator, clock, span_index, forced_len) -> Iterator[DecodeEvent]:
        """Diffuse the span opened by ``soa`` block by block; yields AudioEvents and a SpanEndEvent.

        ``seq``: [L] committed ids ending with the SOA.  The span holds at most
        ``max_span_length`` tokens and never passes ``limit`` positions in all.
        """
        cfg, vocab = self.config, self.vocab
        span = seq.new_empty(0)
        while True:
            room = min(cfg.max_span_length - len(span), limit - len(seq) - len(span))
            if forced_len is not None:  # the last block ends at the forced EOA: no [M] after it (as in training)
                room = min(room, forced_len + 1 - len(span))
            if room <= 0:
                break
            block = seq.new_full((min(cfg.block_length, room),), vocab.mask_id)
            allowed = self._forced_columns(len(span), len(block), forced_len, self.eoa_of_soa[soa])
            for num_commit in commit_schedule(len(block), min(cfg.steps_per_block, len(block))):
                with clock.phase("diffusion"):
                    logits = self._block_logits(runner, seq, span, block, clock)
                    if allowed is not None:
                        logits = logits.masked_fill(~allowed, -torch.inf)
                    block = diffusion_step(
                        block, logits, self.span_vocab_ids, num_commit, vocab.mask_id,
                        cfg.diffusion_temperature, cfg.remasking, generator,
                    )
                if self._span_settled(block):
                    break  # the remaining steps could only fill positions after the EOA, which are dropped
            ends = torch.nonzero(torch.isin(block, self.end_of_span_ids)).squeeze(1)
            if len(ends):
                block = block[: int(ends[0]) + 1]  # earliest EOA ends the span; the rest is dropped
            codes = vocab.id_to_code(block[vocab.is_code(block)]).tolist()
            yield AudioEvent(block.tolist(), clock.now(), codes, span_index)
            span = torch.cat([span, block])
            if len(ends):
                yield SpanEndEvent([], clock.now(), span_index, len(span) - 1, False)
                return
        yield self._cut_span(seq, soa, len(span), limit, clock, span_index)

    def _cut_span(self, seq, soa, span_len, limit, clock, span_index) -> "SpanEndEvent":
        """A span that produced no end marker: closed with the EOA matching ``soa`` if there is room."""
        cfg, vocab = self.config, self.vocab
        closing = [self.eoa_of_soa[soa]] if len(seq) + span_len < limit else []
        logger.warning(
            f"span {span_index} produced no end-of-span marker within {span_len} tokens "
            f"(max_span_length={cfg.max_span_length}, length limit {limit}); "
            + ("closing it with " + vocab.token_list[closing[0]] if closing else "the turn ends")
        )
        return SpanEndEvent(closing, clock.now(), span_index, span_len, True)

    def _ar_span(self, runner, seq, soa, limit, generator, clock, span_index, forced_len) -> Iterator[DecodeEvent]:
        """The AR-only baseline's span: one code per cached forward (the span vocabulary, the
        earliest EOA ends it; sampled at ``diffusion_temperature``), streamed in blocks of
        ``block_length`` tokens; the same length limits as :meth:`_span`."""
        cfg, vocab = self.config, self.vocab
        room = min(cfg.max_span_length, limit - len(seq))
        if forced_len is not None:
            room = min(room, forced_len + 1)
        written, block = seq, []  # written: seq and the span's tokens so far; block: those not yet streamed
        while len(written) - len(seq) < room:
            with clock.phase("audio_ar"):
                logits = runner.next_token_logits(written)[self.span_vocab_ids]
                allowed = self._forced_columns(len(written) - len(seq), 1, forced_len, self.eoa_of_soa[soa])
                if allowed is not None:
                    logits = logits.masked_fill(~allowed[0], -torch.inf)
                tok = int(self.span_vocab_ids[gumbel_argmax(logits, cfg.diffusion_temperature, generator)])
            written = torch.cat([written, written.new_tensor([tok])])
            block.append(tok)
            ended = tok in self.eoa_of_soa.values()
            if ended or len(block) == cfg.block_length or len(written) - len(seq) == room:
                ids = torch.tensor(block)
                yield AudioEvent(block, clock.now(), vocab.id_to_code(ids[vocab.is_code(ids)]).tolist(), span_index)
                block = []
            if ended:
                yield SpanEndEvent([], clock.now(), span_index, len(written) - len(seq) - 1, False)
                return
        yield self._cut_span(seq, soa, len(written) - len(seq), limit, clock, span_index)

    def _written_span(self, seq, soa, codes, limit, clock, span_index) -> Iterator[DecodeEvent]:
        """The span opened by ``soa`` holds the known ``codes``, then its EOA (cut at ``limit``)."""
        codes = list(codes)[: limit - len(seq)]
        ids = self.vocab.code_to_id(torch.as_tensor(codes, dtype=torch.long)).tolist()
        closed = len(seq) + len(ids) < limit
        yield AudioEvent(ids + [self.eoa_of_soa[soa]] * closed, clock.now(), codes, span_index)
        yield SpanEndEvent([], clock.now(), span_index, len(codes), not closed)

    def _span_settled(self, block: torch.Tensor) -> bool:
        """True when ``block`` [Bk] holds a committed end-of-span marker with no ``[M]`` before
        the earliest one: the span's tokens are then final whatever later steps commit."""
        ends = torch.nonzero(torch.isin(block, self.end_of_span_ids))
        if not len(ends):
            return False
        return not bool((block[: int(ends[0])] == self.vocab.mask_id).any())

    def _block_logits(self, runner, seq, span, block, clock) -> torch.Tensor:
        """[Bk, V'] CFG-combined logits of the current block over the span vocabulary."""
        cfg = self.config
        n = len(block)
        logits = runner.span_logits(seq, torch.cat([span, block]), n)
        if cfg.cfg_scale > 0:
            with clock.phase("cfg_uncond"):
                masked_context = len(span) + (len(seq) if cfg.cfg_uncond == "official" else 0)
                uncond = torch.cat([block.new_full((masked_context,), self.vocab.mask_id), block])
                start = len(seq) + len(span) + n - len(uncond)
                uncond_logits = runner.uncond_logits(uncond, start, n)
            logits = uncond_logits + (cfg.cfg_scale + 1) * (logits - uncond_logits)
        return logits[:, self.span_vocab_ids]

    def _forced_columns(self, offset, n, forced_len, eoa) -> Optional[torch.Tensor]:
        """[n, V'] allowed columns for span positions ``offset..offset+n-1`` (None = all).

        With a forced length: codes before ``forced_len``, exactly ``eoa`` at it, codes after
        (positions after an EOA are dropped anyway).
        """
        if forced_len is None:
            return None
        span_pos = torch.arange(offset, offset + n, device=self.span_vocab_ids.device)[:, None]
        is_eoa_column = self.span_vocab_ids == eoa
        return torch.where(span_pos == forced_len, is_eoa_column, self.span_column_is_code)
