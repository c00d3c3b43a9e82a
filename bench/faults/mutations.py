"""Seeded corruptions of the input kinds the entry points read; each result is malformed for certain.

Text tables are edited as lists of lines (``key value``), binary files as bytes; every function
takes the ``random.Random`` of its case and returns what it changed (the line number, the key)
so that the case knows what a clear message must name and what a correct output must not hold.
Only corruptions that no valid file can show are made: an invalid UTF-8 byte, a UTF-16 or
BOM-prefixed table, a WAV header field no WAV has, a cut inside a WAV's data section (the
header promises more), a zip member whose bytes no longer match its CRC-32, and so on.
"""
from __future__ import annotations

import io
import random
import struct
import zipfile
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import soundfile

# bytes that never occur in UTF-8 text, or not at that place (lone continuation bytes, overlong leads)
INVALID_UTF8 = [0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xF5, 0xF8, 0xFE, 0xFF]
BOM = "\ufeff".encode("utf-8")


# ------------------------------------------------------------------------------ text
def read_lines(path: Path) -> List[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def insert_invalid_byte(path: Path, rng: random.Random) -> int:
    """Put one invalid UTF-8 byte after the key of a random line.  Returns the line number (1-based)."""
    raw = path.read_bytes().split(b"\n")
    candidates = [i + 1 for i, line in enumerate(raw) if line.strip()]
    number = rng.choice(candidates)
    line = raw[number - 1]
    key_end = line.find(b" ") + 1 if b" " in line else len(line)
    pos = rng.randint(key_end, len(line))
    raw[number - 1] = line[:pos] + bytes([rng.choice(INVALID_UTF8)]) + line[pos:]
    path.write_bytes(b"\n".join(raw))
    return number


def to_utf16(path: Path) -> None:
    """Re-encode the text as UTF-16 (with its byte-order mark)."""
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))


def add_bom(path: Path) -> None:
    """Prefix a UTF-8 byte-order mark (its first key then starts with U+FEFF)."""
    path.write_bytes(BOM + path.read_bytes())


def duplicate_key(path: Path, rng: random.Random) -> Tuple[int, str]:
    """Insert a second line with the key of a random line (and another line's value) after it.

    Returns (line number of the duplicate, key)."""
    lines = read_lines(path)
    i = rng.randrange(len(lines))
    key = lines[i].split(maxsplit=1)[0]
    donor = lines[rng.randrange(len(lines))].split(maxsplit=1)
    lines.insert(i + 1, f"{key} {donor[1] if len(donor) > 1 else ''}".rstrip())
    write_lines(path, lines)
    return i + 2, key


def drop_value(path: Path, rng: random.Random) -> Tuple[int, str]:
    """Keep only the key of a random line.  Returns (line number, key)."""
    lines = read_lines(path)
    i = rng.randrange(len(lines))
    key = lines[i].split(maxsplit=1)[0]
    lines[i] = key
    write_lines(path, lines)
    return i + 1, key


def replace_value(path: Path, rng: random.Random, value: str, keys: Sequence[str] = ()) -> Tuple[int, str]:
    """Give a random line (one whose key is in ``keys`` if given) ``value``.  Returns (line number, key)."""
    lines = read_lines(path)
    choices = [i for i, line in enumerate(lines) if not keys or line.split(maxsplit=1)[0] in keys]
    i = rng.choice(choices)
    key = lines[i].split(maxsplit=1)[0]
    lines[i] = f"{key} {value}"
    write_lines(path, lines)
    return i + 1, key


def edit_value(path: Path, rng: random.Random, edit) -> Tuple[int, str]:
    """Replace the value fields of a random line by ``edit(fields, rng)``.  Returns (line number, key)."""
    lines = read_lines(path)
    i = rng.randrange(len(lines))
    key, *fields = lines[i].split()
    lines[i] = " ".join([key, *edit(list(fields), rng)])
    write_lines(path, lines)
    return i + 1, key


def cut_line(path: Path, rng: random.Random) -> int:
    """Cut the file inside a random line, at a random character after its first one, keeping
    nothing after it (a JSON record stops in the middle).  Returns the line number."""
    lines = read_lines(path)
    i = rng.randrange(len(lines))
    cut = rng.randrange(1, len(lines[i]) - 1)
    path.write_text("".join(line + "\n" for line in lines[:i]) + lines[i][:cut], encoding="utf-8")
    return i + 1


# ------------------------------------------------------------------------------ binary
def truncate(path: Path, rng: random.Random, low: float = 0.05, high: float = 0.95) -> int:
    """Cut the file at a random byte in [low, high) of its length.  Returns the new length."""
    data = path.read_bytes()
    size = rng.randrange(max(1, int(len(data) * low)), max(2, int(len(data) * high)))
    path.write_bytes(data[:size])
    return size


def random_bytes(path: Path, rng: random.Random, size: int = 0) -> None:
    """Replace the file by ``size`` (default: its length) random bytes."""
    size = size or max(path.stat().st_size if path.exists() else 0, 64)
    path.write_bytes(bytes(rng.randrange(256) for _ in range(size)))


WHOLE_FILE_FAULTS = ("cut", "random", "empty")


def whole_file_fault(path: Path, rng: random.Random, kind: str) -> None:
    """A fault any file can take (``WHOLE_FILE_FAULTS``): cut at a random byte, random bytes, empty."""
    if kind == "cut":
        truncate(path, rng)
    elif kind == "random":
        random_bytes(path, rng)
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        raise ValueError(kind)


def flip_zip_member(path: Path, rng: random.Random, suffix: str = "") -> str:
    """Flip one byte inside the stored data of a random member (whose name ends with ``suffix``):
    the zip structure stays readable, the member no longer matches its CRC-32.  Returns its name."""
    with zipfile.ZipFile(path) as z:
        members = [i for i in z.infolist() if i.file_size > 0 and i.filename.endswith(suffix)]
    info = rng.choice(members)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start + rng.randrange(info.compress_size)] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))
    return info.filename


# ------------------------------------------------------------------------------ WAV
# (byte offset, value, field) of a canonical 44-byte PCM WAV header that no readable WAV has
BAD_HEADER_FIELDS = [
    (0, b"RIFX", "RIFF id"),
    (8, b"WAVX", "WAVE id"),
    (12, b"fmx ", "fmt id"),
    (20, struct.pack("<H", 0x99), "format code"),
    (22, struct.pack("<H", 0), "channel count 0"),
    (24, struct.pack("<I", 0), "sample rate 0"),
    (34, struct.pack("<H", 0), "bits per sample 0"),
    (36, b"datx", "data id"),
]


def wav_bytes(wav: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, wav, sr, subtype=subtype, format="WAV")
    return buf.getvalue()


def cut_wav_data(path: Path, rng: random.Random) -> None:
    """Cut a PCM WAV inside its data section: the header announces more samples than follow."""
    data = path.read_bytes()
    path.write_bytes(data[: rng.randrange(46, len(data) - 2)])


def cut_wav_header(path: Path, rng: random.Random) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: rng.randrange(1, 44)])


def corrupt_wav_header(path: Path, rng: random.Random) -> str:
    """Set one canonical header field to a value no WAV has.  Returns the field's name."""
    offset, value, field = rng.choice(BAD_HEADER_FIELDS)
    data = bytearray(path.read_bytes())
    data[offset: offset + len(value)] = value
    path.write_bytes(bytes(data))
    return field


def non_finite_wav(path: Path, rng: random.Random, wav: np.ndarray, sr: int, kind: str) -> None:
    """A float WAV of ``wav`` with NaN or inf samples: ``kind`` "nan" / "inf" (a few random
    samples) or "all_nan" (every sample)."""
    wav = wav.astype(np.float32).copy()
    if kind == "all_nan":
        wav[:] = np.nan
    else:
        where = rng.sample(range(len(wav)), rng.randint(1, 5))
        wav[where] = np.nan if kind == "nan" else rng.choice([np.inf, -np.inf])
    path.write_bytes(wav_bytes(wav, sr, "FLOAT"))
