"""ttt_train killed with SIGKILL at given points and resumed, each run a fork of this process.

    python kill_worker.py POINT [POINT ...] -- TTT_TRAIN_ARGS

A point is ``step:<epoch>:<n>`` (after the n-th training step of that epoch) or
``save:<epoch>:<file>`` (half-way through writing ``<file>`` of the output directory, in place or
through its temporary, at the end of that epoch).  For each point in turn a fork runs
``ttt_train TTT_TRAIN_ARGS --resume true`` and kills itself with SIGKILL there; a last fork runs
to the end.  Forks share this process's imports, so each run starts in a fraction of a second.
Exit status 0 when every run died at its point and the last one finished.
"""
import io
import os
import signal
import sys
import traceback
from pathlib import Path

import torch

os.environ.setdefault("NLTK_DATA", os.path.join(os.path.dirname(__file__), "..", "tools", "nltk_data"))

from espnet2.train.reporter import SubReporter  # noqa: E402

from espnet2_ttt.bin.ttt_train import main  # noqa: E402
from espnet2_ttt.utils.table import temp_sibling  # noqa: E402


def arm(point: str) -> None:
    """Make this process SIGKILL itself at ``point``."""
    kind, epoch, what = point.split(":", 2)
    state = {"epoch": 0}
    next_step = SubReporter.next

    def step(reporter):
        next_step(reporter)
        if reporter.key == "train":
            state["epoch"] = reporter.epoch
            if kind == "step" and (reporter.epoch, reporter.count) == (int(epoch), int(what)):
                os.kill(os.getpid(), signal.SIGKILL)

    torch_save = torch.save

    def save(obj, f, *args, **kwargs):
        name = Path(f).name if isinstance(f, (str, os.PathLike)) else None
        if kind == "save" and state["epoch"] == int(epoch) and name in (what, temp_sibling(Path(what)).name):
            buffer = io.BytesIO()
            torch_save(obj, buffer, *args, **kwargs)
            with open(f, "wb") as out:
                out.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        torch_save(obj, f, *args, **kwargs)

    SubReporter.next = step
    torch.save = save


def run_fork(point, argv) -> int:
    """Exit code of ttt_train ``argv`` in a fork armed at ``point`` (None: not armed); -9: killed."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            if point is not None:
                arm(point)
            main(argv)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stderr.flush()
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


if __name__ == "__main__":
    split = sys.argv.index("--")
    points, argv = sys.argv[1:split], sys.argv[split + 1:] + ["--resume", "true"]
    for point in points:
        code = run_fork(point, argv)
        print(f"kill point {point}: exit code {code}", file=sys.stderr)
        if code != -signal.SIGKILL:
            sys.exit(f"the run armed at {point} was not killed there (exit code {code})")
    code = run_fork(None, argv)
    sys.exit(0 if code == 0 else f"the last run failed (exit code {code})")
