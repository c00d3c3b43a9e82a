"""Reading, sorting and atomically writing Kaldi-style table files.

A table file has one entry per line: ``<key> <value>``, where the key is the first
run of non-blank characters and the value is the rest of the line after the blanks
that follow the key.

Two ways to read one.  The Kaldi data-dir tools (``utils/scp.py``, ``utils/data_dir.py``)
use :func:`read_lines`: UTF-8 with ``surrogateescape``, so that invalid bytes survive a
read/write round trip unchanged and can still be reported.  Every other input goes through
:func:`read_utf8_lines` / :func:`read_entries` / :func:`read_table`, which refuse what is not
text: invalid UTF-8, a NUL byte (UTF-16, a binary file) or a byte-order mark, each named
``<file>:<line>``; :func:`read_entries` also refuses a key given twice.

Outputs are written through :func:`atomic_path`: a temporary sibling
``.<stem>.tmp<pid><suffix>`` renamed into place.  A failing job removes its temporary; one
that was killed leaves it, and the next write of the same file removes it
(:func:`remove_stale_temps`).
"""

import contextlib
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Collection, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from espnet2_ttt.utils.cli import InputError

_KEY_SEPARATOR = re.compile(r"[ \t]+")
_TEMP_NAME = re.compile(r"\.(?P<stem>.+)\.(?:tmp|old)(?P<pid>\d+)(?P<suffix>\.[^.]*)?")


class TableError(InputError):
    """A table file or data directory is malformed; the message names file and line."""


class Entry(NamedTuple):
    """One line of a table file."""

    key: str
    value: str  # may be empty
    line: int  # 1-based line number


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
            raise TableError(f"{path}: cannot read: {e.strerror}") from e
    with stream:
        return [line[:-1] if line.endswith("\n") else line for line in stream]


def decode_utf8(data: bytes, path: Union[str, Path], first_line: int = 1) -> str:
    """``data`` (the bytes of ``path`` from line ``first_line`` on) as text; invalid UTF-8, a
    NUL byte or a byte-order mark is a TableError naming ``path:line``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line, column = _position(data, e.start)
        raise TableError(f"{path}:{first_line + line - 1}: not valid UTF-8 (byte 0x{data[e.start]:02x} at "
                         f"column {column})") from None
    if first_line == 1 and text.startswith("\ufeff"):
        raise TableError(f"{path}:1: starts with a byte-order mark (save it as UTF-8 without BOM)")
    nul = data.find(b"\0")
    if nul >= 0:
        line, column = _position(data, nul)
        raise TableError(f"{path}:{first_line + line - 1}: NUL byte at column {column} (UTF-16 or a binary file?)")
    return text


def iter_utf8_lines(path: Union[str, Path]) -> Iterator[Tuple[int, str]]:
    """``(line number, line with its newline)`` of file ``path``, read a line at a time (for
    files too large to hold), each line refused as :func:`decode_utf8` says."""
    try:
        stream = open(path, "rb")
    except OSError as e:
        raise TableError(f"{path}: cannot read: {e.strerror}") from None
    with stream:
        for number, data in enumerate(stream, start=1):
            yield number, decode_utf8(data, path, number)


def _position(data: bytes, offset: int) -> Tuple[int, int]:
    """1-based (line, character column) of byte ``offset`` of ``data``, valid UTF-8 before it."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, len(data[line_start:offset].decode("utf-8")) + 1


def check_utf8(lines: Sequence[str], path: Union[str, Path]) -> None:
    """Refuse lines read by :func:`read_lines` as :func:`decode_utf8` refuses a file."""
    decode_utf8("\n".join(lines).encode("utf-8", "surrogateescape"), path)


def read_utf8_text(path: Union[str, Path]) -> str:
    """The text of file ``path``, refused as :func:`decode_utf8` says."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TableError(f"{path}: cannot read: {e.strerror}") from None
    return decode_utf8(data, path)


def read_utf8_lines(path: Union[str, Path], complete_lines: bool = False) -> List[str]:
    """The lines of :func:`read_utf8_text` without their newline.

    With ``complete_lines`` (files a program writes), a last line without its newline is a
    TableError: the file was cut short.
    """
    lines = read_utf8_text(path).split("\n")
    if lines[-1] == "":
        return lines[:-1]
    if complete_lines:
        raise TableError(f"{path}:{len(lines)}: the last line has no newline: the file is cut short")
    return lines


def read_entries(path: Union[str, Path], need_value: bool = True, complete_lines: bool = False,
                 allow_empty: bool = False) -> List[Entry]:
    """The entries of table file ``path`` in file order (:func:`read_utf8_lines`).

    Blank lines are skipped and blanks around a line are ignored.  A key given twice is a
    TableError naming both lines; so is, with ``need_value``, a key without value, and unless
    ``allow_empty``, a file without entries.
    """
    entries: List[Entry] = []
    first_line: Dict[str, int] = {}
    for number, line in enumerate(read_utf8_lines(path, complete_lines), start=1):
        key, value = split_key(line.strip())
        if not key:
            continue
        if key in first_line:
            raise TableError(f"{path}:{number}: duplicate key '{key}' (first on line "
                             f"{first_line[key]})")
        if need_value and not value:
            raise TableError(f"{path}:{number}: key '{key}' has no value")
        first_line[key] = number
        entries.append(Entry(key, value, number))
    if not entries and not allow_empty:
        raise TableError(f"{path}: empty: it has no entries")
    return entries


@contextlib.contextmanager
def reading(path: Union[str, Path], errors: Tuple[type, ...] = (ValueError,),
            problem: str = "") -> Iterator[None]:
    """Errors of a parser reading ``path`` become InputErrors naming it.

    For readers outside this module (yaml, token lists, torch files): an exception of type
    ``errors`` becomes ``<path>: [<problem>: ]<its first line>``.  (A text file is best read
    with :func:`read_utf8_text` first: its errors name the line.)
    """
    try:
        yield
    except InputError:
        raise
    except errors as e:
        message = str(e).strip().split("\n")[0] or type(e).__name__
        raise InputError(f"{path}: {problem + ': ' if problem else ''}{message}") from e


def json_lines(lines: Iterable[str], path: Union[str, Path]) -> Iterator[Tuple[str, object]]:
    """``(where, value)`` for every non-blank line of a JSON-lines text, ``where`` = ``path:line``.

    A line that is not valid JSON is a TableError naming it.
    """
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise TableError(f"{where}: not valid JSON: {e}") from None
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


def read_table(path: Union[str, Path]) -> Dict[str, str]:
    """Read a table file into an ordered ``{key: value}`` dict (:func:`read_entries`; values and
    the file may be empty)."""
    return {entry.key: entry.value for entry in read_entries(path, need_value=False, allow_empty=True)}


def temp_sibling(path: Path, tag: str = "tmp") -> Path:
    """``.<stem>.<tag><pid><suffix>`` beside ``path``: this process's temporary for it (``tag``
    "tmp", or "old" for a replaced directory on its way out)."""
    return path.with_name(f".{path.stem}.{tag}{os.getpid()}{path.suffix}")


def remove_stale_temps(directory: Union[str, Path], targets: Optional[Collection[str]] = None) -> int:
    """Remove what killed jobs left in ``directory``: the temporaries (:func:`temp_sibling`) of
    the files named ``targets`` (default: of any file) whose process is no longer running.

    Returns how many were removed.  A job calls it for the outputs it owns before writing them.
    """
    removed = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(directory) as found:
        for entry in found:
            match = _TEMP_NAME.fullmatch(entry.name)
            if match is None or _running(int(match["pid"])):
                continue
            if targets is not None and match["stem"] + (match["suffix"] or "") not in targets:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                Path(entry.path).unlink(missing_ok=True)
            removed += 1
    return removed


def _running(pid: int) -> bool:
    """True when process ``pid`` exists on this host (this process included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: Union[str, Path], sweep: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; it replaces ``path`` only if the block succeeds.

    The temporary name keeps the suffix of ``path`` (soundfile picks the format from it).
    On an exception the temporary file is removed, so no partial output is ever left.
    With ``sweep``, stale temporaries of ``path`` are removed first (:func:`remove_stale_temps`,
    one listing of the directory: a job writing many files into one directory sweeps it once
    and passes ``sweep=False``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if sweep:
        remove_stale_temps(path.parent, {path.name})
    tmp = temp_sibling(path)
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
        raise TableError(f"{path}: cannot write: {e.strerror}") from e


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
