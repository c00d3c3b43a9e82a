"""Speech tokenizers: waveform <-> discrete codes (``<|audio_k|>`` tokens of the TtT vocabulary).

The names below are imported on first use (they load torch and ESPnet, seconds), so that
``espnet2_ttt.speech.io`` alone stays light: format_wav reads and checks audio without them.
"""
import importlib

_MODULE_OF = {
    "AbsSpeechTokenizer": "abs_tokenizer",
    "MelKMeansTokenizer": "mel_kmeans",
    "PrecomputedTokenizer": "precomputed",
    "build_speech_tokenizer": "choices",
    "load_speech_tokenizer": "choices",
    "speech_tokenizer_choices": "choices",
}

__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
