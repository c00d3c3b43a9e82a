"""The speech tokenizer interface: waveform <-> one stream of discrete codes.

A tokenizer directory holds ``tokenizer.yaml`` (which registered class it is and its
constructor arguments) plus whatever state files the class writes.  ``tokenizer.yaml`` is
written last, so a directory that has it is complete.
"""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Dict, Iterable, Tuple

import numpy as np
import yaml

from espnet2_ttt.speech.io import PathLike
from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.utils.table import read_utf8_text, reading, write_text_atomic

TOKENIZER_YAML = "tokenizer.yaml"

# (utt_id, wav float32 [N], sample rate): what the training methods consume
Utterance = Tuple[str, np.ndarray, int]


def read_tokenizer_yaml(directory: PathLike) -> Tuple[str, Dict[str, Any]]:
    """``(registered name, constructor kwargs)`` recorded in ``directory/tokenizer.yaml``."""
    path = Path(directory) / TOKENIZER_YAML
    if not path.is_file():
        raise InputError(f"{path}: not found: {directory} is not a (complete) speech tokenizer directory")
    with reading(path, (ValueError, yaml.YAMLError)):
        info = yaml.safe_load(read_utf8_text(path))
    if not isinstance(info, dict) or not isinstance(info.get("speech_tokenizer"), str):
        raise InputError(f"{path}: no 'speech_tokenizer' name")
    conf = info.get("speech_tokenizer_conf") or {}
    if not isinstance(conf, dict):
        raise InputError(f"{path}: 'speech_tokenizer_conf' must be a mapping, got {conf!r}")
    return info["speech_tokenizer"], conf


def require_positive(kind: type, **values: Any) -> None:
    """Each of ``values`` must be a positive ``kind`` (int; float also takes an int); else a
    ValueError naming it (tokenizer.yaml's option, once :meth:`AbsSpeechTokenizer.load` adds the file)."""
    for name, value in values.items():
        number = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
        if not (number and 0 < value < float("inf")):
            raise ValueError(f"{name} must be a positive {kind.__name__}, got {value!r}")


class AbsSpeechTokenizer(ABC):
    """Speech <-> codes int64 in ``[0, codebook_size)``, one code per ``1 / frame_rate`` seconds.

    Subclasses set ``name`` (their registry key), pass their constructor arguments to
    ``super().__init__`` (so ``config()`` can rebuild them) and implement encode / decode.
    """

    name: str = ""

    def __init__(self, conf: Dict[str, Any]):
        """``conf``: the constructor keyword arguments; must hold frame_rate, codebook_size, sample_rate."""
        self._conf = copy.deepcopy(conf)

    @property
    def frame_rate(self) -> float:
        """Codes per second."""
        return float(self._conf["frame_rate"])

    @property
    def codebook_size(self) -> int:
        """K: codes are in [0, K)."""
        return int(self._conf["codebook_size"])

    @property
    def sample_rate(self) -> int:
        """Sample rate the tokenizer works at: encode resamples its input to it."""
        return int(self._conf["sample_rate"])

    def config(self) -> Dict[str, Any]:
        """Constructor keyword arguments (yaml-serialisable), as saved in tokenizer.yaml."""
        return copy.deepcopy(self._conf)

    @abstractmethod
    def encode(self, wav: np.ndarray, sr: int) -> np.ndarray:
        """wav float32 [N] mono at ``sr`` -> codes int64 [T]."""

    @abstractmethod
    def decode(self, codes: np.ndarray) -> Tuple[np.ndarray, int]:
        """codes int [T] -> (wav float32 [M], its sample rate)."""

    # ------------------------------------------------------------------ training (optional)
    def train_tokenizer(self, utterances: Iterable[Utterance], seed: int = 0, **kwargs) -> None:
        """Fit the encoder on ``utterances``; tokenizers without a trainable encoder raise."""
        raise NotImplementedError(f"speech tokenizer {self.name!r} has no trainable encoder")

    def train_detokenizer(self, utterances: Iterable[Utterance], seed: int = 0, **kwargs) -> None:
        """Fit the codes-to-speech decoder; tokenizers without a trainable decoder raise."""
        raise NotImplementedError(f"speech tokenizer {self.name!r} has no trainable decoder")

    # ------------------------------------------------------------------ checks
    def check_codes(self, codes: np.ndarray) -> np.ndarray:
        """Validate codes [T] (integers in [0, K)) and return them as int64."""
        codes = np.asarray(codes)
        if codes.ndim != 1 or codes.size == 0:
            raise ValueError(f"codes must be a non-empty 1-D array, got shape {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
        if codes.min() < 0 or codes.max() >= self.codebook_size:
            raise ValueError(
                f"codes out of range [0, {self.codebook_size}): min {codes.min()}, max {codes.max()}"
            )
        return codes.astype(np.int64)

    @staticmethod
    def check_wav(wav: np.ndarray) -> np.ndarray:
        """Validate a mono waveform [N] (non-empty, finite) and return it as float32."""
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1:
            raise ValueError(
                f"expected a mono waveform [N], got shape {wav.shape} "
                "(down-mix multi-channel audio first, e.g. with espnet2_ttt.speech.io.load_audio)"
            )
        if wav.size == 0:
            raise ValueError("waveform has no samples")
        if not np.isfinite(wav).all():
            raise ValueError("waveform contains NaN or Inf")
        return wav

    # ------------------------------------------------------------------ persistence
    def save(self, directory: PathLike) -> None:
        """Write the state files, then ``tokenizer.yaml`` (all atomically)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / TOKENIZER_YAML).unlink(missing_ok=True)  # incomplete until rewritten below
        self._save_state(directory)
        info = {"speech_tokenizer": self.name, "speech_tokenizer_conf": self.config()}
        write_text_atomic(directory / TOKENIZER_YAML, yaml.safe_dump(info, sort_keys=False))

    @classmethod
    def load(cls, directory: PathLike) -> "AbsSpeechTokenizer":
        """The tokenizer saved in ``directory``; a directory that does not hold a whole one is an
        InputError naming the file."""
        name, conf = read_tokenizer_yaml(directory)
        if name != cls.name:
            raise InputError(f"{Path(directory) / TOKENIZER_YAML}: holds a {name!r} speech tokenizer, not {cls.name!r}")
        with reading(Path(directory) / TOKENIZER_YAML, (ValueError, TypeError)):
            tokenizer = cls(**conf)
        tokenizer._load_state(Path(directory))
        return tokenizer

    def _save_state(self, directory: Path) -> None:
        """Write learned state into ``directory`` (atomically); nothing by default."""

    def _load_state(self, directory: Path) -> None:
        """Read what ``_save_state`` wrote (a bad file is an InputError naming it); nothing by default."""
