"""Convert official TtT JSON / JSONL data files into one TtT sequence file.

    python -m espnet2_ttt.bin.convert_official --bpemodel data/spm/bpe.model \\
        --token_list data/token_list/tokens.txt \\
        --input datasets/asr_tts.json --input datasets/pt.jsonl \\
        --output dump/ttt/official/text --shape_file dump/ttt/official/text_shape --max_len 2048

Sequence ids are ``<file name without .json/.jsonl>-<record index, 7 digits>``.  A record that
cannot be converted (unknown role or special token, audio code >= codebook size, malformed
spans or fields, text that is not UTF-8) is an error naming the file and record index, or with
``--skip_bad true`` a logged skip (count and first indices).  A file that is not valid JSON is
always an error.
Every token is validated against --token_list; sequences longer than --max_len or with
``<unk>`` are skipped with a logged count (the trainer would reject them).
Mapping rules: see ``espnet2_ttt/official_format.py``.
"""
import argparse
import logging
from pathlib import Path
from typing import Dict, List, Optional

from espnet2.utils.types import str2bool, str_or_none

from espnet2_ttt.official_format import convert_file
from espnet2_ttt.sequence_builder import drop_untrainable, write_sequence_file
from espnet2_ttt.text_tokenizer import load_text_tokenizer
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.utils.table import reading
from espnet2_ttt.vocabulary import TtTVocabulary


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bpemodel", required=True, help="SentencePiece model or Hugging Face tokenizer directory")
    parser.add_argument("--token_list", required=True, help="TtT token list (gives the codebook size)")
    parser.add_argument("--input", action="append", required=True, help="official data file (repeatable)")
    parser.add_argument("--output", required=True, help="sequence file to write")
    parser.add_argument("--shape_file", type=str_or_none, default=None, help="also write utt_id num_tokens")
    parser.add_argument("--max_len", type=int, default=None, help="skip longer sequences")
    parser.add_argument("--skip_bad", type=str2bool, default=False, help="skip bad records instead of failing")
    return parser


def sequence_prefix(path: Path) -> str:
    name = path.name
    for suffix in (".jsonl", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def main(cmd: Optional[List[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = get_parser().parse_args(cmd)
    vocab = TtTVocabulary.from_file(args.token_list)
    tokenizer = load_text_tokenizer(args.bpemodel)
    prefixes = [sequence_prefix(Path(p)) for p in args.input]
    if len(set(prefixes)) != len(prefixes):
        raise InputError(f"input files must have distinct names (they prefix the sequence ids): {args.input}")

    sequences: Dict[str, List[str]] = {}
    for path, prefix in zip(args.input, prefixes):
        converted, skipped = convert_file(path, tokenizer, vocab.codebook_size, skip_bad=args.skip_bad)
        if skipped:
            logging.warning(f"{path}: skipped {len(skipped)} bad records, e.g. {skipped[:3]}")
        for index, tokens in converted:
            sequences[f"{prefix}-{index:07d}"] = tokens
        logging.info(f"{path}: converted {len(converted)} records")
    with reading(args.token_list):  # a token of --bpemodel that --token_list lacks
        write_sequence_file(drop_untrainable(sequences, args.max_len), args.output, args.shape_file, vocab)


if __name__ == "__main__":
    run(main, "convert_official")
