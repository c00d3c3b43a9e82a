"""torchrun worker for the DDP test: trains through ttt_train, then saves this rank's weights."""
import os
import sys

import torch

os.environ.setdefault("NLTK_DATA", os.path.join(os.path.dirname(__file__), "..", "tools", "nltk_data"))

from espnet2_ttt.bin.ttt_train import main  # noqa: E402
from espnet2_ttt.tasks.ttt import TtTTask  # noqa: E402
from espnet2_ttt.trainer import TtTTrainer  # noqa: E402


class RankSavingTrainer(TtTTrainer):
    @classmethod
    def run(cls, model, *args, **kwargs):
        super().run(model, *args, **kwargs)
        out = kwargs["trainer_options"].output_dir if "trainer_options" in kwargs else args[5].output_dir
        torch.save(model.state_dict(), os.path.join(out, f"rank{os.environ['RANK']}_final.pth"))


if __name__ == "__main__":
    TtTTask.trainer = RankSavingTrainer
    main(sys.argv[1:])
