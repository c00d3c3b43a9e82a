"""File helpers of the speech tokenizer tools: wav.scp, audio files, code files.

Kaldi-style files used here:

* ``wav.scp``: ``<utt_id> <path>`` per line; the value must be an audio file path that
  soundfile can read (Kaldi ``cmd |`` pipes and ``ark:offset`` values are rejected).
* code file: ``<utt_id> <c1> <c2> ...`` per line, integer speech codes.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile
import torch
import torchaudio

PathLike = Union[str, Path]


def _read_kaldi_lines(path: PathLike, what: str) -> List[Tuple[str, str, int]]:
    """``(key, value, line_no)`` of a Kaldi-style ``key value`` file; duplicate keys raise."""
    out, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            parts = line.strip().split(maxsplit=1)
            if not parts:
                continue
            if len(parts) != 2:
                raise ValueError(f"{path}:{no}: {what} line has a key but no value: {line.strip()!r}")
            if parts[0] in seen:
                raise ValueError(f"{path}:{no}: duplicate utterance id {parts[0]!r}")
            seen.add(parts[0])
            out.append((parts[0], parts[1], no))
    return out


def read_wav_scp(path: PathLike, key_file: Optional[PathLike] = None) -> List[Tuple[str, str]]:
    """``[(utt_id, audio_path)]`` in file order; with ``key_file`` only those keys, in key-file order."""
    entries = []
    for utt, value, no in _read_kaldi_lines(path, "wav.scp"):
        if value.endswith("|") or value.startswith("ark:"):
            raise ValueError(
                f"{path}:{no}: utterance {utt!r}: wav.scp value {value!r} is not a plain file path "
                "(Kaldi pipes / ark offsets are not supported; dump the audio to files first)"
            )
        entries.append((utt, value))
    if key_file is None:
        return entries
    table = dict(entries)
    keys = [line.split()[0] for line in Path(key_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    missing = [k for k in keys if k not in table]
    if missing:
        raise ValueError(f"{key_file}: {len(missing)} keys are not in {path}, e.g. {missing[:3]}")
    return [(k, table[k]) for k in keys]


def load_audio(path: PathLike) -> Tuple[np.ndarray, int]:
    """Read an audio file -> (wav float32 [N], sample rate).

    Multi-channel audio is down-mixed to mono by averaging the channels.  A missing,
    unreadable (not audio) or zero-length file raises ``ValueError`` naming the path.
    """
    try:
        data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)  # [N, C]
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        raise ValueError(f"{path}: cannot read audio file ({e})") from e
    if data.shape[0] == 0:
        raise ValueError(f"{path}: audio file has no samples (zero length)")
    return data.mean(axis=1), int(sr)


def load_utterance(utt: str, path: str) -> Tuple[np.ndarray, int]:
    """``load_audio`` whose errors also name the utterance id."""
    try:
        return load_audio(path)
    except ValueError as e:
        raise ValueError(f"utterance {utt!r}: {e}") from e


def resample(wav: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """[N] float32 at ``sr`` -> [M] float32 at ``target_sr`` (torchaudio sinc resampling)."""
    if sr == target_sr:
        return wav
    out = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(wav)), sr, target_sr)
    return out.numpy()


def iter_training_audio(
    entries: Sequence[Tuple[str, str]],
    seed: int,
    max_utterances: Optional[int] = None,
    max_seconds: Optional[float] = None,
) -> Iterator[Tuple[str, np.ndarray, int]]:
    """Yield ``(utt_id, wav [N], sr)`` for a seeded random subset of ``entries``.

    Stops after ``max_utterances`` utterances or once ``max_seconds`` of audio were yielded
    (the utterance crossing the limit is included).  A bad file raises naming the utterance.
    """
    order = list(entries)
    random.Random(seed).shuffle(order)
    total = 0.0
    for n, (utt, path) in enumerate(order):
        if (max_utterances is not None and n >= max_utterances) or (max_seconds is not None and total >= max_seconds):
            return
        wav, sr = load_utterance(utt, path)
        total += len(wav) / sr
        yield utt, wav, sr


def format_codes(utt: str, codes: np.ndarray) -> str:
    """One code-file line (with newline)."""
    return utt + " " + " ".join(str(int(c)) for c in codes) + "\n"


def read_codes(path: PathLike) -> List[Tuple[str, np.ndarray]]:
    """``[(utt_id, codes int64 [T])]`` of a code file, in file order."""
    out = []
    for utt, value, no in _read_kaldi_lines(path, "code file"):
        try:
            codes = np.array([int(c) for c in value.split()], dtype=np.int64)
        except ValueError as e:
            raise ValueError(f"{path}:{no}: utterance {utt!r}: codes must be integers ({e})") from e
        out.append((utt, codes))
    return out
