"""TtT decoding: AR text + block-wise diffusion audio with an exact KV cache."""
from espnet2_ttt.inference.decoder import DecodeConfig, TtTDecoder  # noqa: F401
from espnet2_ttt.inference.events import (  # noqa: F401
    AudioEvent,
    DecodeEvent,
    DecodeResult,
    SpanEndEvent,
    TextEvent,
    TurnEndEvent,
)
from espnet2_ttt.inference.policy import Forcing  # noqa: F401
from espnet2_ttt.inference.prompts import MODES, build_prompt, mode_text  # noqa: F401
