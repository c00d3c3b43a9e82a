"""What decoding a turn yields: streaming events, ending with the turn's :class:`DecodeResult`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class DecodeResult:
    """A decoded turn.  ``token_ids``: every generated id, in order (prompt excluded)."""

    token_ids: List[int]
    spans: List[List[int]]  # codes of every span (EOA excluded)
    stop_reason: str  # "im_end" | "length" | "maxlenratio"
    # seconds: total, and with TtTDecoder(time_phases=True) per phase: prefix (first forward), ar (text
    # steps), diffusion (whole denoising steps, including cfg_uncond = the unconditional forwards),
    # audio_ar (the AR-only baseline's code steps), span_close (the AR step that also caches the
    # finished span)
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
