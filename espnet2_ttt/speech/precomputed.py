"""``precomputed``: codes made by an external tokenizer (e.g. GLM-4-Voice, 16384 codes at 12.5 Hz).

This class cannot encode; the codes must be dumped by the external tool into a code file.
It decodes through an optional external function given as ``"package.module:function"``,
called as ``function(codes int64 [T], **decoder_conf) -> (wav [M], sample_rate)``.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from espnet2_ttt.speech.abs_tokenizer import AbsSpeechTokenizer, require_positive


def import_function(spec: str) -> Callable:
    """``"package.module:function"`` -> the function; a clear error when it cannot be found."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"decoder {spec!r} must have the form 'package.module:function'")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ImportError(f"cannot import the external speech decoder {spec!r}: {e}") from e
    if not callable(fn):
        raise TypeError(f"external speech decoder {spec!r} is not callable")
    return fn


class PrecomputedTokenizer(AbsSpeechTokenizer):
    """Codes from an external tokenizer; decoding via a pluggable external function."""

    name = "precomputed"

    def __init__(
        self,
        frame_rate: float = 12.5,
        codebook_size: int = 16384,
        sample_rate: int = 16000,
        decoder: Optional[str] = None,
        decoder_conf: Optional[Dict[str, Any]] = None,
    ):
        require_positive(int, codebook_size=codebook_size, sample_rate=sample_rate)
        require_positive(float, frame_rate=frame_rate)
        super().__init__(dict(
            frame_rate=frame_rate, codebook_size=codebook_size, sample_rate=sample_rate,
            decoder=decoder, decoder_conf=dict(decoder_conf or {}),
        ))

    def encode(self, wav: np.ndarray, sr: int) -> np.ndarray:
        raise NotImplementedError(
            "the 'precomputed' speech tokenizer cannot encode audio: run the external tokenizer "
            "(e.g. GLM-4-Voice) and give its codes as a code file ('utt_id c1 c2 ...')"
        )

    def decode(self, codes: np.ndarray) -> Tuple[np.ndarray, int]:
        codes = self.check_codes(codes)
        if not self._conf["decoder"]:
            raise RuntimeError(
                "the 'precomputed' speech tokenizer has no external decoder: set "
                "speech_tokenizer_conf.decoder to 'package.module:function' (codes -> (wav, sr))"
            )
        wav, sr = import_function(self._conf["decoder"])(codes, **self._conf["decoder_conf"])
        return self.check_wav(wav), int(sr)
