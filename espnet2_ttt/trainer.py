"""TtTTrainer: ESPnet's Trainer whose outputs survive ``kill -9`` at any point.

ESPnet's ``Trainer.run`` ends every epoch by writing ``checkpoint.pth`` (model, optimizers,
schedulers, scaler, reporter), then ``<n>epoch.pth``, the ``latest.pth`` and
``<phase>.<stat>.best.pth`` links, removing the epochs out of the n-best, and at the end of
training the n-best averages, each ``torch.save`` writing in place.  A kill during a save left
a truncated file (``--resume true`` then failed in PyTorch's zip reader), and a kill after the
checkpoint but before the rest, a checkpoint of an epoch whose outputs were never written.
Inside :meth:`TtTTrainer.run`:

- every ``torch.save`` to a file writes a temporary sibling and renames it into place
  (:func:`espnet2_ttt.utils.table.atomic_path`, which also removes the temporaries of killed
  runs): a file is its previous complete version or its new complete one;
- ``checkpoint.pth`` records a finished epoch: its temporary is renamed into place only when the
  epoch's other outputs are written, i.e. when the next epoch starts or training ends.  A kill
  before that leaves the previous checkpoint, and ``--resume true`` redoes the epoch from its
  start, which reproduces it exactly (ESPnet re-seeds every epoch, and so does
  :meth:`TtTModel.train` the corruption generator) and rewrites its outputs.

A ``checkpoint.pth`` that is nevertheless incomplete (cut by something else) is an InputError
naming it when ``--resume true`` would read it.
"""
import contextlib
import os
import zipfile
from pathlib import Path
from typing import Optional

import torch
from espnet2.train.trainer import Trainer

from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.utils.table import atomic_path

CHECKPOINT = "checkpoint.pth"


class AtomicSaves(contextlib.AbstractContextManager):
    """While active, ``torch.save`` to a path is atomic, and the one to ``checkpoint`` waits for
    :meth:`commit` (or the end of the block without an exception) to be renamed into place."""

    def __init__(self, checkpoint: Path):
        self.checkpoint = checkpoint
        self.pending: Optional[contextlib.ExitStack] = None  # the checkpoint's open atomic_path
        self.torch_save = torch.save

    def __enter__(self) -> "AtomicSaves":
        torch.save = self.save
        return self

    def __exit__(self, *exc_info) -> None:
        torch.save = self.torch_save
        if self.pending is not None:
            self.pending.__exit__(*exc_info)  # renamed into place, or removed after an error
            self.pending = None

    def save(self, obj, f, *args, **kwargs) -> None:
        if not isinstance(f, (str, os.PathLike)):
            return self.torch_save(obj, f, *args, **kwargs)
        is_checkpoint = Path(f) == self.checkpoint
        if is_checkpoint:
            self.commit()  # (a new checkpoint's temporary takes the same name)
        with contextlib.ExitStack() as stack:  # on an error: the temporary is removed
            tmp = stack.enter_context(atomic_path(f))
            self.torch_save(obj, tmp, *args, **kwargs)
            if is_checkpoint:
                self.pending = stack.pop_all()

    def commit(self) -> None:
        """Rename the pending checkpoint into place."""
        if self.pending is not None:
            self.pending.close()
            self.pending = None


class TtTTrainer(Trainer):
    """ESPnet's Trainer with atomic saves and ``checkpoint.pth`` written last (module docstring)."""

    _saves: Optional[AtomicSaves] = None  # active during run

    @classmethod
    def run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
            plot_attention_iter_factory, trainer_options, distributed_option) -> None:
        checkpoint = Path(trainer_options.output_dir) / CHECKPOINT
        if trainer_options.resume and checkpoint.exists() and not zipfile.is_zipfile(checkpoint):
            raise InputError(f"{checkpoint}: not a complete checkpoint (cut short?): remove it to "
                             "train from the start, or put back an intact copy")
        with AtomicSaves(checkpoint) as cls._saves:
            super().run(
                model=model,
                optimizers=optimizers,
                schedulers=schedulers,
                train_iter_factory=train_iter_factory,
                valid_iter_factory=valid_iter_factory,
                plot_attention_iter_factory=plot_attention_iter_factory,
                trainer_options=trainer_options,
                distributed_option=distributed_option,
            )

    @classmethod
    def train_one_epoch(cls, *args, **kwargs) -> bool:
        cls._saves.commit()  # the previous epoch's outputs are all written
        return super().train_one_epoch(*args, **kwargs)
