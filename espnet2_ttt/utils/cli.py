"""The command-line convention of every espnet2_ttt tool: one error type for bad input, one way to report it.

**User errors.** :class:`InputError` (a ``ValueError``; ``utils.table.TableError`` is one) is
bad input: a malformed file, line, record or key, or options that cannot work together.  Its
message says where, then what::

    <file>:<line>: <what is wrong>       data/train/text:12: not valid UTF-8 (byte 0xff at column 7)
    <file>: <key>: <what is wrong>       /data/a.wav: utterance 'a': truncated (its header declares ...)
                                         data/official.json: record 4: empty assistant message

Library functions and every entry point's ``main(argv)`` raise it, so in-process callers (tests,
the fault-injection harness) see the type and the message.  The command line turns it into one
line on stderr and exit status 1; every entry point ends with::

    if __name__ == "__main__":
        run(main, "format_wav")

which prints ``format_wav: error: <message>`` (:func:`error_line`).  An ``OSError`` that names
its file (a missing input, a directory given as a file, no permission) is a user error too:
``<program>: error: <file>: <strerror>``.  Any other exception is an internal error and
keeps its traceback.  ``ESPNET2_TTT_DEBUG=1`` in the environment shows the traceback of user
errors as well.  Usage errors stay argparse's (usage, ``<program>: error: ...``, status 2).

:func:`user_error_message` is the one test of "is this a user error, and what does the command
line print for it": :func:`run`, :func:`dispatch` and the harness use it.
"""

import os
import re
import signal
import sys
from typing import Callable, Dict, List, NoReturn, Optional, Sequence

DEBUG_ENV = "ESPNET2_TTT_DEBUG"
_WORKER_ERROR = re.compile(r"^(?:[\w.]+\.)?\w*Error: (.*?)\s*$", re.M)  # the last line of a worker's traceback


class InputError(ValueError):
    """Bad input; the message starts with the file and line (or key) it is about (module docstring)."""


def user_error_message(error: BaseException) -> Optional[str]:
    """The message a user error is reported with; None for an internal error.

    An InputError that PyTorch's DataLoader re-raises from a worker carries the worker's whole
    traceback; its message is the one the worker raised (the text after the traceback's last
    ``...Error: ``)."""
    if isinstance(error, InputError):
        message = str(error)
        if "\nOriginal Traceback" in message:
            message = _WORKER_ERROR.findall(message)[-1]
        return message
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return None


def error_line(program: str, message: str) -> str:
    """``<program>: error: <message>`` on one line (line breaks inside the message become spaces)."""
    return f"{program}: error: " + re.sub(r"\s*\n\s*", " ", message.strip())


def debugging() -> bool:
    """True when ``ESPNET2_TTT_DEBUG`` asks for tracebacks of user errors."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def run(main: Callable[[Sequence[str]], object], program: str,
        argv: Optional[Sequence[str]] = None) -> NoReturn:
    """Run ``main(argv)`` (default: ``sys.argv[1:]``) as the command ``program`` and exit.

    Exit status 0 on success; a user error prints :func:`error_line` and exits 1 (with
    ``ESPNET2_TTT_DEBUG=1`` it is re-raised); an internal error propagates (traceback).
    """
    try:
        main(list(sys.argv[1:] if argv is None else argv))
    except Exception as e:
        _report(program, e)
        sys.exit(1)
    sys.exit(0)


def dispatch(
    tools: Dict[str, Callable[[Sequence[str]], None]],
    module: str,
    argv: Optional[Sequence[str]] = None,
) -> int:
    """Run ``tools[argv[0]](argv[1:])`` as the command ``argv[0]``, user errors as in :func:`run`.

    Returns the exit status: 0 on success, 1 on a user error, 2 on an unknown tool.
    """
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # "tool | head" ends quietly
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in tools:
        print(f"usage: python -m {module} {{{','.join(tools)}}} [args]", file=sys.stderr)
        return 2
    try:
        tools[argv[0]](argv[1:])
    except Exception as e:
        _report(argv[0], e)
        return 1
    return 0


def _report(program: str, error: Exception) -> None:
    """Print the error line of a user error; re-raise an internal one (any one when debugging)."""
    message = user_error_message(error)
    if message is None or debugging():
        raise error
    print(error_line(program, message), file=sys.stderr)


def attach_option_values(argv: Sequence[str], options: Sequence[str]) -> List[str]:
    """Rewrite ``--opt VALUE`` as ``--opt=VALUE`` for the given ``options``.

    argparse refuses a separate value that starts with "-" (``--utt-suffix -sp0.9``,
    ``--validate-opts --no-spk-sort``); the attached form is accepted.
    """
    result: List[str] = []
    args = iter(argv)
    for arg in args:
        value = next(args, None) if arg in options else None
        result.append(arg if value is None else f"{arg}={value}")
    return result
