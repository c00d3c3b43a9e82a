"""Reading, sorting and atomically writing Kaldi-style table files.

A table file has one entry per line: ``<key> <value>``, where the key is the first
run of non-blank characters and the value is the rest of the line after the blanks
that follow the key. Files are decoded as UTF-8 with ``surrogateescape`` so that
invalid bytes survive a read/write round trip unchanged and can still be reported.
"""

import contextlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Tuple, Union

_KEY_SEPARATOR = re.compile(r"[ \t]+")


class TableError(Exception):
    """A table file or data directory is malformed; the message names file and line."""


def read_lines(path: str) -> List[str]:
    """Return the lines of ``path`` ("-" = stdin) without their trailing newline."""
    if path == "-":
        stream = open(
            sys.stdin.fileno(), encoding="utf-8", errors="surrogateescape",
            newline="\n", closefd=False,
        )
    else:
        try:
            stream = open(path, encoding="utf-8", errors="surrogateescape", newline="\n")
        except OSError as e:
            raise TableError(f"cannot read {path}: {e.strerror}") from e
    with stream:
        return [line[:-1] if line.endswith("\n") else line for line in stream]


def json_lines(lines: Iterable[str], path: Union[str, Path]) -> Iterator[Tuple[str, object]]:
    """``(where, value)`` for every non-blank line of a JSON-lines text, ``where`` = ``path:line``.

    A line that is not valid JSON is a ValueError naming it.
    """
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON: {e}") from None
        yield where, value


def split_key(line: str) -> Tuple[str, str]:
    """Split a table line into (key, value); the value may be empty."""
    parts = _KEY_SEPARATOR.split(line, maxsplit=1)
    return parts[0], (parts[1] if len(parts) > 1 else "")


def line_key(line: str) -> str:
    """Return the key (first field) of a table line."""
    return split_key(line)[0]


def c_order(text: str) -> bytes:
    """Sort key giving the byte order of ``LC_ALL=C sort`` (UTF-8 bytes)."""
    return text.encode("utf-8", errors="surrogateescape")


def sort_lines(lines: Iterable[str]) -> List[str]:
    """Sort table lines by key in C byte order (stable for equal keys)."""
    return sorted(lines, key=lambda line: c_order(line_key(line)))


def read_table(path: str) -> Dict[str, str]:
    """Read a table file into an ordered ``{key: value}`` dict.

    Raises TableError on an empty line or a duplicate key.
    """
    table: Dict[str, str] = {}
    for number, line in enumerate(read_lines(path), start=1):
        key, value = split_key(line)
        if key == "":
            raise TableError(f"{path}: line {number} has no key")
        if key in table:
            raise TableError(f"{path}: duplicate key '{key}' on line {number}")
        table[key] = value
    return table


@contextlib.contextmanager
def atomic_path(path: Union[str, Path]) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; it replaces ``path`` only if the block succeeds.

    The temporary name keeps the suffix of ``path`` (soundfile picks the format from it).
    On an exception the temporary file is removed, so no partial output is ever left.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Union[str, Path], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_lines(path: str, lines: Iterable[str]) -> None:
    """Write ``lines`` (newline added to each) atomically: temp file then rename."""
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as f:
                for line in lines:
                    f.write(line + "\n")
            os.chmod(tmp, 0o644)
    except OSError as e:
        raise TableError(f"cannot write {path}: {e.strerror}") from e


def write_stdout(lines: Iterable[str]) -> None:
    """Write ``lines`` to stdout, keeping undecodable bytes as they were read."""
    sys.stdout.flush()
    out = open(
        sys.stdout.fileno(), "w", encoding="utf-8", errors="surrogateescape",
        newline="\n", closefd=False,
    )
    with out:
        for line in lines:
            out.write(line + "\n")
