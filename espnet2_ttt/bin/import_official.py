"""Import an official TtT checkpoint (a Qwen2 model with the official extended tokenizer) for our decoder.

    python -m espnet2_ttt.bin.import_official --model_dir /models/TtT-3B --output_dir exp/ttt_official
    # then, e.g.: TtTInference("exp/ttt_official/config.yaml", "exp/ttt_official/model.pth")
    #         or: egs/ttt_bilingual/ttt.sh --stage 10 --ttt_exp exp/ttt_official --inference_model model.pth ...

Writes to ``--output_dir`` (each file atomically):

* ``tokens.txt``: our token layout; text pieces = the official tokenizer's model tokens (Qwen's
  byte-level BPE), codes ``<|audio_0..K-1|>`` with K = the official codebook (all of its
  ``<|audio_k|>`` tokens unless ``--codebook_size``);
* ``config.yaml``: a training config naming the ``hf_causal_lm`` backbone (``pretrained`` =
  ``--model_dir``, its ``hf_config``) and the official tokenizer as ``bpemodel``;
* ``model.pth``: the TtT model's state dict, whose rows are the official rows mapped onto our ids
  (:func:`espnet2_ttt.pretrained_vocab.pretrained_rows`: same-named tokens, ``<pad>`` ->
  ``<|endoftext|>``, role tokens -> the role words).  Tokens the official vocabulary lacks
  (``<unk>``, ``<|truncated|>``, a role word that is not one token) get new rows.

The config sets ``chat_template: official``: prompts are written as the official model was
trained, ``<|im_start|>user\\n ... <|im_end|>\\n`` (role tokens map onto the role words, plus the
tokenizer's newline piece), not in our newline-free template.
"""
import argparse
import logging
from pathlib import Path
from typing import List, Optional

import torch
import yaml

from espnet2_ttt.pretrained_vocab import HFTextTokenizer, official_codebook_size, pretrained_rows
from espnet2_ttt.tasks.ttt import TtTTask
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.utils.table import atomic_path, reading, write_text_atomic
from espnet2_ttt.vocabulary import TtTVocabulary

DTYPES = ("float32", "bfloat16", "float16")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="official TtT checkpoint: directory (or hub name)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--codebook_size", type=int, default=None, help="default: every <|audio_k|> of the tokenizer")
    parser.add_argument("--dtype", default="float32", choices=DTYPES, help="dtype of the written model.pth")
    parser.add_argument("--max_seq_len", type=int, default=2048)
    return parser


def import_official(model_dir: str, output_dir: str, codebook_size: Optional[int] = None,
                    dtype: str = "float32", max_seq_len: int = 2048) -> Path:
    """Write tokens.txt, config.yaml and model.pth (module docstring); returns ``output_dir``."""
    out = Path(output_dir)
    with reading(model_dir, (OSError, ValueError), "not a Hugging Face checkpoint with a tokenizer"):
        tokenizer = HFTextTokenizer(model_dir)
    available = official_codebook_size(tokenizer.vocab)
    if available == 0:
        raise InputError(f"{model_dir}: the tokenizer has no <|audio_k|> tokens, so it is not an official TtT "
                         "checkpoint (to train from a plain LLM use the hf_causal_lm backbone / --pretrained_backbone)")
    k = available if codebook_size is None else codebook_size
    if not 1 <= k <= available:
        raise InputError(f"--codebook_size {codebook_size}: {model_dir} has <|audio_0..{available - 1}|>")
    vocab = TtTVocabulary.build(tokenizer.pieces(), k)
    vocab.save(out / "tokens.txt")
    args = argparse.Namespace(**TtTTask.get_default_config())
    args.token_list = str(out / "tokens.txt")
    args.backbone, args.backbone_conf = "hf_causal_lm", {"pretrained": str(model_dir)}
    args.bpemodel, args.max_seq_len = str(model_dir), max_seq_len
    args.chat_template = "official"  # prompts as the official model was trained: role word + newlines
    model = TtTTask.build_model(args)  # loads the official weights, resolves token_list and hf_config
    state = {name: t.to(getattr(torch, dtype)) if t.is_floating_point() else t for name, t in model.state_dict().items()}
    with atomic_path(out / "model.pth") as tmp:
        torch.save(state, tmp)
    write_text_atomic(out / "config.yaml", yaml.safe_dump(vars(args), allow_unicode=True, sort_keys=False))
    new = [t for t, r in zip(vocab.token_list, pretrained_rows(vocab.token_list, tokenizer.vocab)) if r < 0]
    logging.info(f"{model_dir} -> {out}: {len(vocab)} tokens ({k} codes); new rows for {new}")
    return out


def main(cmd: Optional[List[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = get_parser().parse_args(cmd)
    import_official(args.model_dir, args.output_dir, args.codebook_size, args.dtype, args.max_seq_len)


if __name__ == "__main__":
    run(main, "import_official")
