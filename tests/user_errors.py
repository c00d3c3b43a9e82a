"""Run an entry point as its command line does (``espnet2_ttt.utils.cli.run``) and return its error line."""
import subprocess
from typing import Callable, Sequence

import pytest

from espnet2_ttt.utils.cli import run


def error_line(capsys, main: Callable, program: str, argv: Sequence[str]) -> str:
    """The one line a user error of ``main(argv)`` prints (without its newline); asserts exit status 1."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run(main, program, [str(a) for a in argv])
    assert exit_info.value.code == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.endswith("\n"), (out, err)
    return err[:-1]


def dead_pid() -> int:
    """The pid of a process that has exited (what a killed job left in its temporary names)."""
    with subprocess.Popen(["true"]) as proc:
        proc.wait()
    return proc.pid
