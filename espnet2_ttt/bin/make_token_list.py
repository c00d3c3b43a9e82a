"""Write the TtT token list (specials + text pieces + K audio codes).

    # token list from an existing model
    python -m espnet2_ttt.bin.make_token_list --bpemodel data/spm/bpe.model \\
        --codebook_size 16384 --output data/token_list/tokens.txt
    # train the model first (written to --bpemodel and its .vocab next to it)
    python -m espnet2_ttt.bin.make_token_list --bpemodel data/spm/bpe.model \\
        --spm_train_text data/spm/train.txt --nbpe 5000 \\
        --codebook_size 16384 --output data/token_list/tokens.txt
    # pretrained LLM backbone: its own tokenizer gives the text pieces (a directory or hub name)
    python -m espnet2_ttt.bin.make_token_list --bpemodel /models/Qwen2.5-1.5B \
        --codebook_size 16384 --output data/token_list/tokens.txt

A --bpemodel that is not a model, training text that is not UTF-8 (named ``file:line``) or too
small for --nbpe is an error naming the file; the outputs are written atomically.
"""
import argparse
import logging
from typing import List, Optional

from espnet2.utils.types import str2bool

from espnet2_ttt.text_tokenizer import TextTokenizer, load_text_tokenizer
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.vocabulary import TtTVocabulary


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--bpemodel", required=True,
        help="SentencePiece model (read, or written with --spm_train_text), or a Hugging Face tokenizer directory"
    )
    parser.add_argument("--codebook_size", type=int, required=True, help="number of speech codes K")
    parser.add_argument("--output", required=True, help="token list to write (one token a line)")
    train = parser.add_argument_group("SentencePiece training (only with --spm_train_text)")
    train.add_argument("--spm_train_text", default=None, help="train --bpemodel on this text file first")
    train.add_argument("--nbpe", type=int, default=5000, help="SentencePiece vocabulary size")
    train.add_argument("--spm_model_type", default="unigram", choices=["unigram", "bpe", "char", "word"])
    train.add_argument("--spm_character_coverage", type=float, default=0.9995)
    train.add_argument("--spm_input_sentence_size", type=int, default=0, help="use the first N lines (0: all)")
    train.add_argument("--spm_byte_fallback", type=str2bool, default=True, help="<0xNN> pieces instead of <unk>")
    train.add_argument("--spm_num_threads", type=int, default=4, help="the trained model depends on it")
    train.add_argument("--seed", type=int, default=0)
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = get_parser().parse_args(cmd)
    if args.spm_train_text is not None:
        if not args.bpemodel.endswith(".model"):
            raise InputError(f"--bpemodel must end with .model when training, got {args.bpemodel}")
        tokenizer = TextTokenizer.train(
            args.spm_train_text,
            args.bpemodel[: -len(".model")],
            vocab_size=args.nbpe,
            model_type=args.spm_model_type,
            character_coverage=args.spm_character_coverage,
            input_sentence_size=args.spm_input_sentence_size,
            byte_fallback=args.spm_byte_fallback,
            num_threads=args.spm_num_threads,
            seed=args.seed,
        )
        logging.info(f"trained {args.bpemodel} on {args.spm_train_text}")
    else:
        tokenizer = load_text_tokenizer(args.bpemodel)
    if args.codebook_size < 1:
        raise InputError(f"--codebook_size must be at least 1, got {args.codebook_size}")
    vocab = TtTVocabulary.build(tokenizer.pieces(), args.codebook_size)
    vocab.save(args.output)
    logging.info(f"wrote {args.output}: {len(vocab)} tokens ({args.codebook_size} audio codes)")


if __name__ == "__main__":
    run(main, "make_token_list")
