"""One assistant turn of TtT decoding (doc section 7, Algorithm 1), as a stream of events.

Algorithm 1 alternates two phases until ``<|im_end|>`` or the length limit:

* **AR text step** (:meth:`TtTDecoder._text_step`): one forward at the last position, one text
  token; an SOA (``<|begin_of_audio|>`` / ``<|begin_of_quad|>``) switches to
* **diffusion span** (:meth:`TtTDecoder._diffusion_span`): the span is written block by block by
  masked diffusion until the earliest generated EOA, then AR resumes.

What the model does not decide (forced text or spans, the AR vocabulary, stop rules) is one
:class:`~espnet2_ttt.inference.policy.TurnPolicy`.  A model trained with ``audio_objective: ar``
(the AR-only baseline) writes its spans one code per forward under a plain causal mask instead
(:class:`~espnet2_ttt.inference.spans.ARSpanWriter`); spans of known codes are written as they are.

Deviations from the official code (documented choices):
* diffusion may only write the span vocabulary (codes + the two EOA markers,
  ``vocab.span_vocab_table``); the official code only forbids ``<|im_end|>``;
* AR may only write text pieces, the two SOA tokens and ``<|im_end|>``
  (:func:`~espnet2_ttt.inference.policy.ar_vocabulary`); the official code does not restrict AR;
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

import math
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence

import torch

from espnet2_ttt.espnet_model import AUDIO_OBJECTIVES
from espnet2_ttt.inference.cache import CachedRunner, FullRecompute
from espnet2_ttt.inference.events import AudioEvent, DecodeEvent, DecodeResult, SpanEndEvent, TextEvent, TurnEndEvent
from espnet2_ttt.inference.policy import Forcing, SpanPlan, TurnPolicy, ar_vocabulary
from espnet2_ttt.inference.sampler import commit_schedule, diffusion_step, sample_text, steps_per_block
from espnet2_ttt.inference.spans import ARSpanWriter, SpanColumns, known_span, unfinished_span_end
from espnet2_ttt.inference.timing import PhaseClock
from espnet2_ttt.models.transformer import AbsBackbone
from espnet2_ttt.vocabulary import TtTVocabulary

CFG_UNCOND_INPUTS = ("official", "span_only")


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
    the turn stops after ``max(1, int(maxlenratio * prompt audio codes))`` text pieces
    (stop reason "maxlenratio"); SOA markers and audio codes do not count, so the turn never
    ends on an SOA without its span.  0 = no such bound.
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

    def __post_init__(self):
        if self.steps_per_block is None:
            self.steps_per_block = steps_per_block(self.diffusion_steps, self.max_span_length, self.block_length)
        commit_schedule(self.block_length, self.steps_per_block)  # validates the pair
        if self.remasking not in ("low_confidence", "random"):
            raise ValueError(f"remasking must be 'low_confidence' or 'random', got {self.remasking!r}")
        if self.cfg_uncond not in CFG_UNCOND_INPUTS:
            raise ValueError(f"cfg_uncond must be one of {CFG_UNCOND_INPUTS}, got {self.cfg_uncond!r}")
        if min(self.max_new_tokens, self.max_span_length) < 1:
            raise ValueError("max_new_tokens and max_span_length must be >= 1")
        if self.min_text_tokens_after_audio < 0 or self.maxlenratio < 0:
            raise ValueError("min_text_tokens_after_audio and maxlenratio must be >= 0")
        if self.cfg_scale < 0 or self.diffusion_temperature < 0 or self.ar_temperature < 0 or self.top_k < 0:
            raise ValueError("cfg_scale, temperatures and top_k must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


class _Turn:
    """What a turn has committed: ``seq`` [L] (prompt + generated ids), the generated ids, the
    codes of each span and the time of the first audio; :meth:`add` takes every event."""

    def __init__(self, prompt: torch.Tensor, limit: int):
        self.seq, self.limit = prompt, limit
        self.generated: List[int] = []
        self.spans: List[List[int]] = []
        self.time_to_first_audio: Optional[float] = None

    def add(self, event: DecodeEvent) -> DecodeEvent:
        if event.ids:
            self.seq = torch.cat([self.seq, self.seq.new_tensor(event.ids)])
            self.generated.extend(event.ids)
        if isinstance(event, (AudioEvent, SpanEndEvent)) and event.span_index == len(self.spans):
            self.spans.append([])  # the span's first event
        if isinstance(event, AudioEvent):
            self.spans[-1].extend(event.codes)
            if self.time_to_first_audio is None:
                self.time_to_first_audio = event.time_s
        return event

    def result(self, stop_reason: str, clock: PhaseClock) -> DecodeResult:
        return DecodeResult(self.generated, self.spans, stop_reason, clock.timings(), dict(clock.forwards),
                            self.time_to_first_audio)


class TtTDecoder:
    """Decodes one assistant turn with a backbone + vocabulary (batch size 1).

    ``stream(prompt_ids, generator)`` yields :class:`DecodeEvent` s and ends with a
    :class:`TurnEndEvent`; ``decode`` returns its :class:`DecodeResult`.  ``time_phases``: the
    result's ``timings`` hold the seconds of every phase, not only the total
    (:class:`~espnet2_ttt.inference.timing.PhaseClock`).
    """

    def __init__(
        self, backbone: AbsBackbone, vocab: TtTVocabulary, config: Optional[DecodeConfig] = None,
        audio_objective: str = "diffusion", time_phases: bool = False,
    ):
        if backbone.vocab_size != len(vocab):
            raise ValueError(f"backbone vocab_size={backbone.vocab_size} != token list size {len(vocab)}")
        if audio_objective not in AUDIO_OBJECTIVES:
            raise ValueError(f"audio_objective must be one of {AUDIO_OBJECTIVES}, got {audio_objective!r}")
        self.backbone, self.vocab = backbone.eval(), vocab
        self.config = config or DecodeConfig()
        self.audio_ar = audio_objective == "ar"  # the AR-only baseline: causal, one code per forward
        self.time_phases = time_phases
        self.max_len = getattr(backbone, "max_len", None)  # longest sequence the backbone accepts
        device = next(backbone.parameters()).device
        self.ar_allowed = ar_vocabulary(vocab).to(device)  # [V]
        self.columns = SpanColumns(vocab, device)
        self.ar_span = ARSpanWriter(self.columns, self.config)
        self.soas = (vocab.soa_id, vocab.soa_last_id)

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
        cfg = self.config
        prompt = self._prompt_tensor(prompt_ids, where)
        turn = _Turn(prompt, self._length_limit(len(prompt)))
        policy = TurnPolicy(self.vocab, self.ar_allowed, forcing or Forcing(), cfg.min_text_tokens_after_audio,
                            self._text_budget(prompt))
        runner = (CachedRunner if cfg.use_cache else FullRecompute)(self.backbone, self.vocab, causal=self.audio_ar)
        clock = PhaseClock(prompt.device, self.time_phases)
        phase, stop_reason = "prefix", None
        while stop_reason is None and len(turn.seq) < turn.limit:
            tok = self._text_step(runner, turn.seq, policy, generator, clock, phase)
            yield turn.add(TextEvent([tok], clock.now(), self.vocab.token_list[tok]))
            phase, stop_reason = "ar", policy.after_text(tok)
            if stop_reason is None and tok in self.soas:
                for event in self._span(runner, turn.seq, policy.open_span(tok), turn.limit, generator, clock):
                    yield turn.add(event)
                phase = "span_close"  # the next AR step also caches the finished span
        yield TurnEndEvent([], clock.now(), turn.result(stop_reason or "length", clock))

    # ------------------------------------------------------------------ the two phases
    def _text_step(self, runner, seq: torch.Tensor, policy: TurnPolicy, generator, clock, phase: str) -> int:
        """AR text step: the logits after ``seq`` [L]; the policy's forced token, else a sample of
        the logits it allows."""
        cfg = self.config
        with clock.phase(phase):
            logits = runner.next_token_logits(seq)
            tok = policy.forced_text()
            if tok is None:
                tok = sample_text(policy.restrict(logits), cfg.ar_temperature, cfg.top_k, cfg.top_p, generator)
        return tok

    def _span(self, runner, seq, plan: SpanPlan, limit, generator, clock) -> Iterator[DecodeEvent]:
        """The span ``plan`` opens after ``seq`` (ending with its SOA): known codes are written,
        else it is diffused (the AR-only baseline: generated one code per forward)."""
        if plan.codes is not None:
            return known_span(self.vocab, len(seq), plan, limit, clock)
        if self.audio_ar:
            return self.ar_span(runner, seq, plan, limit, generator, clock)
        return self._diffusion_span(runner, seq, plan, limit, generator, clock)

    def _diffusion_span(self, runner, seq, plan: SpanPlan, limit, generator, clock) -> Iterator[DecodeEvent]:
        """Diffusion span: blocks of ``[M]`` denoised in ``steps_per_block`` steps each; yields
        an AudioEvent per block and a SpanEndEvent.

        ``seq``: [L] committed ids ending with the SOA.  The span holds at most
        ``max_span_length`` tokens and never passes ``limit`` positions in all.
        """
        cfg, vocab, cols = self.config, self.vocab, self.columns
        capacity = cols.capacity(plan, len(seq), limit, cfg.max_span_length)
        span = seq.new_empty(0)
        while len(span) < capacity:  # the last block of a forced length ends at its EOA: no [M] after it
            block = seq.new_full((min(cfg.block_length, capacity - len(span)),), vocab.mask_id)
            allowed = cols.allowed(plan, len(span), len(block))
            for num_commit in commit_schedule(len(block), min(cfg.steps_per_block, len(block))):
                with clock.phase("diffusion"):
                    logits = self._block_logits(runner, seq, span, block, clock)
                    if allowed is not None:
                        logits = logits.masked_fill(~allowed, -torch.inf)
                    block = diffusion_step(block, logits, cols.ids, num_commit, vocab.mask_id,
                                           cfg.diffusion_temperature, cfg.remasking, generator)
                end = cols.first_end(block)
                if end is not None and not bool((block[:end] == vocab.mask_id).any()):
                    break  # settled: later steps could only fill positions after the EOA, which are dropped
            end = cols.first_end(block)
            block = block if end is None else block[: end + 1]  # the earliest EOA ends the span
            yield cols.audio_event(block.tolist(), plan, clock)
            span = torch.cat([span, block])
            if end is not None:
                yield SpanEndEvent([], clock.now(), plan.index, len(span) - 1, False)
                return
        yield unfinished_span_end(vocab, plan, len(seq), len(span), limit, cfg.max_span_length, clock)

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
        return logits[:, self.columns.ids]

    # ------------------------------------------------------------------ limits
    def _length_limit(self, prompt_len: int) -> int:
        """Positions the turn may fill: ``max_new_tokens`` after the prompt, within the model's max length."""
        limit = prompt_len + self.config.max_new_tokens
        return limit if self.max_len is None else min(limit, self.max_len)

    def _text_budget(self, prompt: torch.Tensor) -> float:
        """Text pieces allowed in the turn by ``maxlenratio`` (inf when off or no prompt audio)."""
        prompt_codes = int(self.vocab.is_code(prompt).sum())
        if self.config.maxlenratio <= 0 or prompt_codes == 0:
            return math.inf
        return max(1, int(self.config.maxlenratio * prompt_codes))

    def _prompt_tensor(self, prompt_ids: Sequence[int], where: str) -> torch.Tensor:
        device = self.ar_allowed.device
        prompt = torch.as_tensor(list(prompt_ids), dtype=torch.long, device=device)
        if prompt.numel() == 0:
            raise ValueError(f"{where}: empty prompt")
        self.vocab.check_ids(prompt, where)
        if self.max_len is not None and len(prompt) >= self.max_len:
            raise ValueError(f"{where}: prompt of {len(prompt)} tokens leaves no room: the model's max length is {self.max_len}")
        return prompt
