"""Run entry-point calls in forks of the harness, as the command line would run them.

A forked child inherits the imported modules (no interpreter start: importing espnet2 takes
tens of seconds on a loaded machine), so a call costs what the entry point itself costs.  The
child runs in a process group of its own, in the given directory and environment
(``TMPDIR`` included), its stdout and stderr (Python and C level: libsndfile, SentencePiece) go
to a file, and its root logger starts without handlers as in a fresh ``python -m`` process.
The call runs under the rules of :func:`espnet2_ttt.utils.cli.run`: a ``SystemExit`` is its exit
status and message, a user error (:func:`espnet2_ttt.utils.cli.user_error_message`) escaping it
is exit status 1 with that message, any other exception a traceback with exit status 1.

:func:`run_forked` runs one input case with a time limit after which the whole group is
killed (a hang); :class:`Forked` is a child the kill section kills with SIGKILL.  A crash of a
child cannot take the harness down.
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
from pathlib import Path
from typing import Callable, Dict, Optional

STDERR_KEPT = 6000  # characters of the captured output kept (its end)


@dataclasses.dataclass
class Run:
    """What one call did, as the command line would show it."""

    status: str  # "returned" | "exit" (SystemExit) | "exception" | "signal" | "timeout"
    code: Optional[int]  # exit status: 0 returned, SystemExit's, 1 exception, -signum signal, None timeout
    message: str  # SystemExit's message, the exception's "Type: message", or ""
    exc_type: str  # qualified class name of an escaped exception ("" otherwise)
    user_error: Optional[str]  # an escaped user error: the message the command line prints; else None
    output: str  # the end of everything written to stdout / stderr, log lines included
    seconds: float

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def final_line(self) -> str:
        """The line the command line ends with: a user error's line, else the message's last
        line, else the last line written."""
        if self.user_error is not None:
            return " ".join(self.user_error.split())
        return last_line(self.message) or last_line(self.output)


def _execute(call: Callable[[], object]) -> dict:
    """Run ``call`` in the child; its outcome as a JSON-able dict (fields of :class:`Run`)."""
    from espnet2_ttt.utils.cli import user_error_message

    result = dict(status="returned", code=0, message="", exc_type="", user_error=None)
    try:
        call()
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            result.update(status="exit", code=e.code or 0)
        else:  # sys.exit("message"): printed to stderr, status 1
            print(e.code, file=sys.stderr)
            result.update(status="exit", code=1, message=str(e.code))
    except BaseException as e:  # noqa: B902 -- the traceback a command line would print
        traceback.print_exc()
        result.update(status="exception", code=1, message=f"{type(e).__name__}: {e}",
                      exc_type=f"{type(e).__module__}.{type(e).__qualname__}", user_error=user_error_message(e))
    sys.stdout.flush()
    sys.stderr.flush()
    return result


def fork(call: Callable[[], object], output_fd: int, result_fd: Optional[int] = None,
         cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None) -> int:
    """Fork a child that runs ``call`` (module docstring) and exits; returns its pid.

    The child writes its outcome as JSON to ``result_fd`` (if given) and exits with the call's
    exit status."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        os.setpgid(0, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        if cwd is not None:
            os.chdir(cwd)
        os.environ.update(env or {})
        tempfile.tempdir = None  # TMPDIR is read again
        root = logging.getLogger()
        for handler in list(root.handlers):  # the entry point configures logging
            root.removeHandler(handler)
        root.setLevel(logging.WARNING)
        result = _execute(call)
        code = result["code"]
        if result_fd is not None:
            with os.fdopen(result_fd, "wb") as f:
                f.write(json.dumps(result).encode("utf-8", "surrogateescape"))
    finally:
        os._exit(code)


def kill_group(pgid: int) -> None:
    """SIGKILL every process of the group ``pgid`` (the child and what it started)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_forked(call: Callable[[], object], timeout: float, cwd: Optional[Path] = None) -> Run:
    """``call()`` in a forked child working in ``cwd`` with a ``timeout`` in seconds (module docstring)."""
    with tempfile.TemporaryFile() as output:
        read_fd, write_fd = os.pipe()
        start = time.monotonic()
        pid = fork(call, output.fileno(), result_fd=write_fd, cwd=cwd)
        os.close(write_fd)
        data, timed_out = _read_until_eof(read_fd, start + timeout)
        os.close(read_fd)
        if timed_out:
            kill_group(pid)
        _, wait_status = os.waitpid(pid, 0)
        kill_group(pid)  # pool workers the call may have left behind
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


class Forked:
    """A call running in a forked child in directory ``cwd``, its output appended to ``log``."""

    def __init__(self, call: Callable[[], object], cwd: Path, env: Dict[str, str], log: Path):
        with open(log, "ab") as f:
            self.pid = fork(call, f.fileno(), cwd=cwd, env=env)
        self.start = time.monotonic()
        self.end: Optional[float] = None
        self.code: Optional[int] = None  # exit status once it ended (negative: killed by that signal)

    def _ended(self, status: int) -> int:
        self.end = time.monotonic()
        self.code = os.waitstatus_to_exitcode(status)
        kill_group(self.pid)  # what it started
        return self.code

    def poll(self) -> Optional[int]:
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._ended(status)
        return self.code

    def wait(self, timeout: float) -> Optional[int]:
        """The exit status, or None if ``timeout`` seconds passed first."""
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        return self.code

    def kill(self) -> int:
        """SIGKILL it (if still running); its exit status."""
        if self.code is None:
            kill_group(self.pid)
            self._ended(os.waitpid(self.pid, 0)[1])
        return self.code

    @property
    def seconds(self) -> float:
        """Seconds it ran (so far)."""
        return (self.end or time.monotonic()) - self.start


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


def last_line(text: Optional[str]) -> str:
    """The last non-blank line of ``text`` ("" if none)."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
