"""Dispatch ``python -m espnet2_ttt.utils.<module> <tool> [args]`` to a tool's main."""

import signal
import sys
from typing import Callable, Dict, List, Optional, Sequence

from espnet2_ttt.utils.table import TableError


def dispatch(
    tools: Dict[str, Callable[[Sequence[str]], None]],
    module: str,
    argv: Optional[Sequence[str]] = None,
) -> int:
    """Run ``tools[argv[0]](argv[1:])``; print a TableError as ``<tool>: message``.

    Returns the exit status: 0 on success, 1 on a data error, 2 on an unknown tool.
    """
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # "tool | head" ends quietly
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in tools:
        print(f"usage: python -m {module} {{{','.join(tools)}}} [args]", file=sys.stderr)
        return 2
    try:
        tools[argv[0]](argv[1:])
    except TableError as e:
        print(f"{argv[0]}: {e}", file=sys.stderr)
        return 1
    return 0


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
