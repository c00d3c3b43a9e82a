"""TtT decoding: AR text + block-wise diffusion audio with an exact KV cache."""
from espnet2_ttt.inference.decoder import (  # noqa: F401
    AudioEvent,
    DecodeConfig,
    DecodeEvent,
    DecodeResult,
    Forcing,
    SpanEndEvent,
    TextEvent,
    TtTDecoder,
    TurnEndEvent,
)
from espnet2_ttt.inference.prompts import MODES, build_prompt, mode_text  # noqa: F401
