"""A tiny TtT model trained in-process by ttt_train (1 layer, d_model 16, 1 epoch), for loading,
packing and archive tests that need a real config.yaml + weights but no trained behaviour."""
import random
from pathlib import Path

from espnet2_ttt.bin.ttt_train import main as ttt_train

from helpers import chat_sequence, tiny_vocab, write_seq_file

WEIGHTS = "valid.loss.best.pth"


def train_tiny_model(directory: Path) -> Path:
    """``directory/exp`` holding ``config.yaml`` and :data:`WEIGHTS` (16 codes, tied embeddings)."""
    rng = random.Random(0)
    tiny_vocab().save(directory / "tokens.txt")
    seqs = {f"utt{i:02d}": chat_sequence(rng, n_spans=2) for i in range(4)}
    write_seq_file(directory / "seq", seqs)
    (directory / "seq_shape").write_text("".join(f"{k} {len(v)}\n" for k, v in sorted(seqs.items())))
    data = f"{directory / 'seq'},seq,text"
    ttt_train([
        "--token_list", str(directory / "tokens.txt"), "--output_dir", str(directory / "exp"),
        "--train_data_path_and_name_and_type", data, "--valid_data_path_and_name_and_type", data,
        "--train_shape_file", str(directory / "seq_shape"), "--valid_shape_file", str(directory / "seq_shape"),
        "--batch_type", "unsorted", "--batch_size", "4", "--max_epoch", "1", "--ngpu", "0",
        "--backbone_conf", "{'d_model': 16, 'n_layer': 1, 'n_head': 2, 'max_len': 128}",
        "--optim", "adam", "--keep_nbest_models", "1", "--seed", "0",
        "--use_tensorboard", "false", "--use_matplotlib", "false", "--num_workers", "0",
    ])
    return directory / "exp"
