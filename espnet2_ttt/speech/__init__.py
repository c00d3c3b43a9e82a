"""Speech tokenizers: waveform <-> discrete codes (``<|audio_k|>`` tokens of the TtT vocabulary)."""
from espnet2_ttt.speech.abs_tokenizer import AbsSpeechTokenizer
from espnet2_ttt.speech.choices import build_speech_tokenizer, load_speech_tokenizer, speech_tokenizer_choices
from espnet2_ttt.speech.mel_kmeans import MelKMeansTokenizer
from espnet2_ttt.speech.precomputed import PrecomputedTokenizer

__all__ = [
    "AbsSpeechTokenizer",
    "MelKMeansTokenizer",
    "PrecomputedTokenizer",
    "build_speech_tokenizer",
    "load_speech_tokenizer",
    "speech_tokenizer_choices",
]
