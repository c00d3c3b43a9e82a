"""File helpers of the speech tokenizer tools: wav.scp, audio files, code files.

Each input kind is validated here, and every problem is an
:class:`~espnet2_ttt.utils.cli.InputError` naming the file and the line or utterance:

* ``wav.scp``: ``<utt_id> <path>`` per line (:func:`~espnet2_ttt.utils.table.read_entries`:
  UTF-8, unique ids); the value must be an audio file path that soundfile can read (Kaldi
  ``cmd |`` pipes and ``ark:offset`` values are rejected).
* audio file (:func:`audio_info`, :func:`load_audio`): readable, with samples, whole (a
  RIFF/WAVE data chunk longer than the file holds, or fewer frames read than the header
  declares, is a truncated file) and finite (no NaN / inf sample).  The error is an
  :class:`AudioError` whose ``reason`` is the short cause (format_wav drops by it).
* code file: ``<utt_id> <c1> <c2> ...`` per line, integer speech codes in ``[0, K)``
  (:func:`parse_codes`); written by a program, so a last line without its newline is a file
  cut short.

torch is imported only to resample: format_wav reads audio without loading it.
"""
from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile

from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.utils.table import read_entries

PathLike = Union[str, Path]


class AudioError(InputError):
    """An audio file that cannot be used: ``<path>: [utterance '<utt>': ]<reason>[ (<detail>)]``."""

    def __init__(self, path: PathLike, reason: str, detail: str = "", utt: Optional[str] = None):
        where = f"{path}: utterance '{utt}'" if utt is not None else str(path)
        super().__init__(f"{where}: {reason}" + (f" ({detail})" if detail else ""))
        self.path, self.reason, self.detail = path, reason, detail

    def of_utterance(self, utt: str) -> "AudioError":
        """The same error, naming the utterance too."""
        return AudioError(self.path, self.reason, self.detail, utt)


def read_wav_scp(path: PathLike, key_file: Optional[PathLike] = None) -> List[Tuple[str, str]]:
    """``[(utt_id, audio_path)]`` in file order; with ``key_file`` only those keys, in key-file order."""
    entries = []
    for utt, value, no in read_entries(path):
        if value.endswith("|") or value.startswith("ark:"):
            raise InputError(
                f"{path}:{no}: utterance '{utt}': wav.scp value {value!r} is not a plain file path "
                "(Kaldi pipes / ark offsets are not supported; dump the audio to files first)"
            )
        entries.append((utt, value))
    if key_file is None:
        return entries
    table = dict(entries)
    keys = read_entries(key_file, need_value=False)
    missing = [key for key in keys if key.key not in table]
    if missing:
        raise InputError(f"{key_file}:{missing[0].line}: key '{missing[0].key}' is not in {path} "
                         f"({len(missing)} such keys)")
    return [(key.key, table[key.key]) for key in keys]


def _riff_data_bytes(path: PathLike) -> Optional[Tuple[int, int]]:
    """``(declared, present)`` bytes of the data chunk of a RIFF/WAVE file; None for another
    format, a streamed size (0 or 0xFFFFFFFF) or no data chunk."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        size_format = "<4sI" if head[:4] == b"RIFF" else ">4sI"
        end = f.seek(0, 2)
        position = 12
        while position + 8 <= end:
            f.seek(position)
            chunk, length = struct.unpack(size_format, f.read(8))
            if chunk == b"data":
                return None if length in (0, 0xFFFFFFFF) else (length, end - position - 8)
            position += 8 + length + (length & 1)
    return None


def audio_info(path: PathLike) -> soundfile._SoundFileInfo:
    """soundfile's info of ``path`` after the checks the header allows (module docstring)."""
    path = str(path)
    try:
        info = soundfile.info(path)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        if not Path(path).exists():
            raise AudioError(path, "missing file") from None
        if Path(path).is_file() and Path(path).stat().st_size == 0:
            raise AudioError(path, "empty file") from None
        raise AudioError(path, "unreadable", str(e)) from None
    if info.frames <= 0:
        raise AudioError(path, "zero-length audio")
    data = _riff_data_bytes(path)
    if data is not None and data[1] < data[0]:
        raise AudioError(path, "truncated", f"its header declares {data[0]} bytes of samples, "
                                            f"the file holds {data[1]}")
    return info


def load_audio(path: PathLike) -> Tuple[np.ndarray, int]:
    """Read an audio file -> (wav float32 [N], sample rate), checked (module docstring).

    Multi-channel audio is down-mixed to mono by averaging the channels.
    """
    info = audio_info(path)
    try:
        data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)  # [N, C]
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(path, "unreadable", str(e)) from None
    if data.shape[0] < info.frames:
        raise AudioError(path, "truncated", f"{data.shape[0]} of the {info.frames} frames its "
                                            f"header declares")
    finite = np.isfinite(data)
    if not finite.all():
        raise AudioError(path, "non-finite samples",
                         f"{data.size - int(finite.sum())} NaN or infinite samples")
    return data.mean(axis=1), int(sr)


def load_utterance(utt: str, path: str, min_seconds: float = 0.0) -> Tuple[np.ndarray, int]:
    """``load_audio`` whose errors name the utterance; audio shorter than ``min_seconds`` is an
    AudioError ("too short")."""
    try:
        wav, sr = load_audio(path)
    except AudioError as e:
        raise e.of_utterance(utt) from None
    if len(wav) < min_seconds * sr:
        raise AudioError(path, "too short", f"{len(wav)} samples at {sr} Hz, under "
                                            f"{min_seconds:g} s", utt)
    return wav, sr


def resample(wav: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """[N] float32 at ``sr`` -> [M] float32 at ``target_sr`` (torchaudio sinc resampling)."""
    if sr == target_sr:
        return wav
    import torch
    import torchaudio

    out = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(wav)), sr, target_sr)
    return out.numpy()


def iter_training_audio(
    entries: Sequence[Tuple[str, str]],
    seed: int,
    max_utterances: Optional[int] = None,
    max_seconds: Optional[float] = None,
    min_seconds: float = 0.0,
) -> Iterator[Tuple[str, np.ndarray, int]]:
    """Yield ``(utt_id, wav [N], sr)`` for a seeded random subset of ``entries``.

    Stops after ``max_utterances`` utterances or once ``max_seconds`` of audio were yielded
    (the utterance crossing the limit is included).  A bad file, or one shorter than
    ``min_seconds``, raises naming the utterance.
    """
    order = list(entries)
    random.Random(seed).shuffle(order)
    total = 0.0
    for n, (utt, path) in enumerate(order):
        if (max_utterances is not None and n >= max_utterances) or (max_seconds is not None and total >= max_seconds):
            return
        wav, sr = load_utterance(utt, path, min_seconds)
        total += len(wav) / sr
        yield utt, wav, sr


def format_codes(utt: str, codes: np.ndarray) -> str:
    """One code-file line (with newline)."""
    return utt + " " + " ".join(str(int(c)) for c in codes) + "\n"


def parse_codes(value: str, where: str, codebook_size: Optional[int] = None) -> np.ndarray:
    """codes int64 [T] of a code-file value; InputError naming ``where`` (``file:line:
    utterance 'id'``) unless they are one or more integers in ``[0, codebook_size)``."""
    fields = value.split()
    if not fields:
        raise InputError(f"{where}: no codes")
    upper = codebook_size if codebook_size is not None else np.iinfo(np.int64).max
    codes = []
    for field in fields:
        try:
            code = int(field)
        except ValueError:
            raise InputError(f"{where}: codes must be integers, got {field!r}") from None
        if not 0 <= code < upper:
            raise InputError(f"{where}: code {code} is out of range "
                             f"[0, {'inf' if codebook_size is None else codebook_size})")
        codes.append(code)
    return np.array(codes, dtype=np.int64)


def read_codes(path: PathLike, codebook_size: Optional[int] = None) -> List[Tuple[str, np.ndarray]]:
    """``[(utt_id, codes int64 [T])]`` of a code file, in file order (checked: module docstring)."""
    return [(utt, parse_codes(value, f"{path}:{no}: utterance '{utt}'", codebook_size))
            for utt, value, no in read_entries(path, complete_lines=True)]
