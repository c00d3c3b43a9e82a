"""Run one entry-point call in a fork of the harness and record what a user would have seen.

The child inherits the imported modules (no interpreter start, no import time), so a call
costs what the entry point itself costs; its stdout and stderr (Python and C level: libsndfile,
SentencePiece) go to a file, the root logger starts without handlers as in a fresh
``python -m`` process, and the call runs under the same rules as the command line
(:func:`espnet2_ttt.utils.cli.run`): a ``SystemExit`` is its exit status and message, a user
error (:func:`espnet2_ttt.utils.cli.user_error_message`) escaping it is exit status 1 with that
message, any other exception a traceback with exit status 1.  The child runs in a process group of its own; when ``timeout`` passes the whole
group is killed and the run is a hang.  A crash of the child (a signal) cannot take the harness
down.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import select
import signal
import sys
import tempfile
import time
import traceback
from typing import Callable, Optional

STDERR_KEPT = 6000  # characters of the captured output kept (its end)


@dataclasses.dataclass
class Run:
    """What one call did, as the command line would show it."""

    status: str  # "returned" | "exit" (SystemExit) | "exception" | "signal" | "timeout"
    code: int  # exit status: 0 returned, SystemExit's, 1 exception, -signum signal, None timeout
    message: str  # SystemExit's message, the exception's "Type: message", or ""
    exc_type: str  # qualified class name of an escaped exception ("" otherwise)
    user_error: Optional[str]  # an escaped user error: the message the command line prints; else None
    output: str  # the end of everything written to stdout / stderr, log lines included
    seconds: float

    @property
    def ok(self) -> bool:
        return self.code == 0


def _child(call: Callable[[], object], result_fd: int, output_fd: int) -> None:
    """Body of the forked child: run ``call`` with the CLI's conventions, report, ``_exit``."""
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    root = logging.getLogger()
    for handler in list(root.handlers):  # a fresh process: the entry point configures logging
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    from espnet2_ttt.utils.cli import user_error_message

    result = dict(status="returned", code=0, message="", exc_type="", user_error=None)
    try:
        call()
    except SystemExit as e:
        code = e.code
        if code is None or isinstance(code, int):
            result.update(status="exit", code=code or 0)
        else:  # sys.exit("message"): printed to stderr, status 1
            print(code, file=sys.stderr)
            result.update(status="exit", code=1, message=str(code))
    except BaseException as e:  # noqa: B902 -- the traceback a command line would print
        traceback.print_exc()
        result.update(status="exception", code=1, message=f"{type(e).__name__}: {e}",
                      exc_type=f"{type(e).__module__}.{type(e).__qualname__}", user_error=user_error_message(e))
    sys.stdout.flush()
    sys.stderr.flush()
    data = json.dumps(result).encode("utf-8", "surrogateescape")
    with os.fdopen(result_fd, "wb") as f:
        f.write(data)
    os._exit(0)


def run_forked(call: Callable[[], object], timeout: float) -> Run:
    """``call()`` in a forked child with a ``timeout`` in seconds (module docstring)."""
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as output:
        read_fd, write_fd = os.pipe()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # child
            try:
                os.setpgid(0, 0)
                os.close(read_fd)
                _child(call, write_fd, output.fileno())
            finally:
                os._exit(70)
        os.close(write_fd)
        data, timed_out = _read_until_eof(read_fd, start + timeout)
        os.close(read_fd)
        if timed_out:
            _kill_group(pid)
        _, wait_status = os.waitpid(pid, 0)
        _kill_group(pid)  # pool workers the call may have left behind
        seconds = time.monotonic() - start
        output.seek(0)
        text = output.read().decode("utf-8", "replace")[-STDERR_KEPT:]
    if timed_out:
        return Run("timeout", None, f"no result after {timeout:.0f} s", "", None, text, seconds)
    if not data:
        signum = os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else 0
        how = f"killed by signal {signal.Signals(signum).name}" if signum else \
            f"exited with status {os.WEXITSTATUS(wait_status)} without a result"
        return Run("signal", -signum if signum else os.WEXITSTATUS(wait_status), how, "", None, text, seconds)
    result = json.loads(data.decode("utf-8", "surrogateescape"))
    return Run(result["status"], result["code"], result["message"], result["exc_type"],
               result["user_error"], text, seconds)


def _read_until_eof(fd: int, deadline: float) -> tuple:
    """(bytes read from ``fd`` until EOF, True if ``deadline`` passed first)."""
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), True
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def last_line(text: Optional[str]) -> str:
    """The last non-blank line of ``text`` ("" if none)."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
