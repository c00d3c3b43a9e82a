"""Registry of speech tokenizers: a recipe picks one by name (``speech_tokenizer: mel_kmeans``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from espnet2.train.class_choices import ClassChoices

from espnet2_ttt.speech.abs_tokenizer import TOKENIZER_YAML, AbsSpeechTokenizer, read_tokenizer_yaml
from espnet2_ttt.speech.io import PathLike
from espnet2_ttt.speech.mel_kmeans import MelKMeansTokenizer
from espnet2_ttt.speech.precomputed import PrecomputedTokenizer
from espnet2_ttt.utils.table import reading

speech_tokenizer_choices = ClassChoices(
    name="speech_tokenizer",
    classes={cls.name: cls for cls in (MelKMeansTokenizer, PrecomputedTokenizer)},
    type_check=AbsSpeechTokenizer,
    default=MelKMeansTokenizer.name,
)


def build_speech_tokenizer(name: str, conf: Optional[Dict[str, Any]] = None) -> AbsSpeechTokenizer:
    """A new (untrained) tokenizer of the registered class ``name`` with keyword arguments ``conf``."""
    cls = speech_tokenizer_choices.get_class(name)
    try:
        return cls(**(conf or {}))
    except TypeError as e:
        raise TypeError(f"bad speech_tokenizer_conf for {name!r}: {e}") from e


def load_speech_tokenizer(directory: PathLike) -> AbsSpeechTokenizer:
    """The tokenizer saved in ``directory`` (its class is read from ``tokenizer.yaml``); what
    ``directory`` lacks or holds wrongly is an InputError naming the file."""
    name, _ = read_tokenizer_yaml(directory)
    with reading(Path(directory) / TOKENIZER_YAML):  # an unknown name
        cls = speech_tokenizer_choices.get_class(name)
    return cls.load(directory)
