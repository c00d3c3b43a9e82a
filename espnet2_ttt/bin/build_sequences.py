"""Build TtT training sequences from a data dir (``text`` + speech codes) and/or dialogue JSONL.

    python -m espnet2_ttt.bin.build_sequences --bpemodel data/spm/bpe.model \\
        --token_list data/token_list/tokens.txt --codes dump/codes/train/codes \\
        --text data/train/text --dialogues data/train/dialogues.jsonl \\
        --tasks asr,tts,qa --max_len 2048 \\
        --output dump/ttt/train/text --shape_file dump/ttt/train/text_shape --layout_file dump/ttt/layout.yaml

Inputs:
  --text       ``utt_id transcript`` lines; each utterance gives one sequence per task among
               asr / tts / interleaved (its codes are looked up in --codes).
  --codes      ``utt_id c1 c2 ...`` (integer speech codes).
  --dialogues  one JSON object a line: {"id", "task": "asr"|"tts"|"qa"|"text", "lang",
               "question_utt", "question_text", "answer_text", "answer_utt", "answer_key"};
               *_utt are utterance ids of --codes.  Fields used per task:
                 asr  question_utt (audio), answer_text (transcript; re-spoken with the input codes)
                 tts  question_text (text to speak), answer_utt (its audio)
                 qa   question_utt, answer_text, answer_utt (null: text-only answer)
                 text question_text, answer_text
               Other fields ("lang", "category", "answer_key") are not used here.
Output: ``<id> tok tok ...`` sorted by id, optionally ``<id> <num_tokens>`` (--shape_file) and
the layout options used (--layout_file: :class:`~espnet2_ttt.sequence_builder.SequenceLayout` as
yaml, for ``ttt_train --sequence_layout``: decoding follows it); all written atomically.  The id is ``<task>-<utt_id>`` for --text
utterances and the record's "id" for dialogues (which egs/*/local/make_corpus.py already
writes as ``<task>-<utt_id>``); an id produced twice is an error.

Errors name the file and line or the utterance: unreadable lines, duplicate ids, codes out of
range for --token_list, tokens missing from --token_list.  An utterance without codes is an
error, or with ``--skip_missing true`` a logged skip (count and first ids).  Sequences longer
than --max_len, or with ``<unk>`` (text the tokenizer cannot represent), are skipped with a
logged count: the trainer would reject them.
"""
import argparse
import dataclasses
import logging
from functools import partial
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from espnet2.utils.types import str2bool, str_or_none

from espnet2_ttt.sequence_builder import (
    ASR_PROMPT,
    CHUNK_LEN,
    QA_PROMPT,
    SPAN_LEN,
    TASKS,
    TTS_PROMPT,
    SequenceBuilder,
    SequenceLayout,
    drop_untrainable,
    read_dialogues,
    write_sequence_file,
)
from espnet2_ttt.text_tokenizer import load_text_tokenizer
from espnet2_ttt.vocabulary import TtTVocabulary

TEXT_FILE_TASKS = ("asr", "tts", "interleaved")


class MissingCodes(Exception):
    """An utterance referenced by the data has no codes."""


def read_kaldi_lines(path: Path) -> Iterator[Tuple[int, str, str]]:
    """``(line number, utt_id, rest of the line)`` for every non-empty line; duplicate ids raise."""
    seen = set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            utt_id, _, rest = line.strip().partition(" ")
            if utt_id in seen:
                raise ValueError(f"{path}:{lineno}: duplicate utterance id {utt_id}")
            seen.add(utt_id)
            yield lineno, utt_id, rest.strip()


class CodeTable:
    """Speech codes per utterance, parsed (and range-checked) when first asked for."""

    def __init__(self, path: Path, codebook_size: Optional[int]):
        self.path = path
        self.codebook_size = codebook_size
        self._lines = {utt: (lineno, rest) for lineno, utt, rest in read_kaldi_lines(path)}

    def __call__(self, utt_id: str) -> List[int]:
        if utt_id not in self._lines or not self._lines[utt_id][1]:
            raise MissingCodes(f"{self.path}: no codes for utterance {utt_id}")
        lineno, rest = self._lines[utt_id]
        try:
            codes = [int(c) for c in rest.split()]
        except ValueError:
            raise ValueError(f"{self.path}:{lineno}: utterance {utt_id}: codes must be integers") from None
        bad = [c for c in codes if c < 0 or (self.codebook_size is not None and c >= self.codebook_size)]
        if bad:
            raise ValueError(
                f"{self.path}:{lineno}: utterance {utt_id}: code {bad[0]} is out of range "
                f"[0, {self.codebook_size if self.codebook_size is not None else 'inf'})"
            )
        return codes


def _no_codes(utt_id: str) -> List[int]:
    raise MissingCodes(f"no --codes given, but utterance {utt_id} needs codes")


def text_file_jobs(
    path: Path, tasks: Sequence[str], builder: SequenceBuilder, codes: Callable[[str], List[int]]
) -> Iterator[Tuple[str, Callable[[], List[str]]]]:
    """``(sequence id, build function)`` for every utterance of a ``text`` file and task."""
    make = {
        "asr": lambda utt, text: builder.asr(codes(utt), text),
        "tts": lambda utt, text: builder.tts(text, codes(utt)),
        "interleaved": lambda utt, text: builder.interleaved(text, codes(utt)),
    }
    for _, utt, text in read_kaldi_lines(path):
        for task in tasks:
            if task in make:
                yield f"{task}-{utt}", partial(make[task], utt, text)


def dialogue_jobs(
    path: Path, tasks: Sequence[str], builder: SequenceBuilder, codes: Callable[[str], List[int]]
) -> Iterator[Tuple[str, Callable[[], List[str]]]]:
    """``(sequence id, build function)`` for every record of a dialogue JSONL file in ``tasks``."""
    for where, record in read_dialogues(path):
        rec_id = _field(record, "id", where)
        if record["task"] in tasks:
            yield rec_id, partial(_dialogue, record, f"{where} ({rec_id})", builder, codes)


def _dialogue(record: dict, where: str, builder: SequenceBuilder, codes: Callable[[str], List[int]]) -> List[str]:
    task = record["task"]
    if task == "asr":
        return builder.asr(codes(_field(record, "question_utt", where)), _field(record, "answer_text", where))
    if task == "tts":
        return builder.tts(_field(record, "question_text", where), codes(_field(record, "answer_utt", where)))
    if task == "qa":
        has_audio = record.get("answer_utt") is not None
        answer_codes = codes(_field(record, "answer_utt", where)) if has_audio else []
        question_codes = codes(_field(record, "question_utt", where))
        return builder.qa(question_codes, _field(record, "answer_text", where), answer_codes)
    return builder.text_chat(_field(record, "question_text", where), _field(record, "answer_text", where))


def _field(record: dict, name: str, where: str) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{where}: field {name!r} must be a string, got {value!r}")
    return value


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bpemodel", required=True, help="SentencePiece model or Hugging Face tokenizer directory")
    parser.add_argument("--token_list", type=str_or_none, default=None, help="validate every token against it")
    parser.add_argument("--text", type=str_or_none, default=None, help="utt_id transcript")
    parser.add_argument("--codes", type=str_or_none, default=None, help="utt_id c1 c2 ...")
    parser.add_argument("--dialogues", type=str_or_none, default=None, help="dialogue JSONL")
    parser.add_argument("--tasks", default="asr,tts,qa", help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument("--output", required=True, help="sequence file to write")
    parser.add_argument("--shape_file", type=str_or_none, default=None, help="also write utt_id num_tokens")
    parser.add_argument("--layout_file", type=str_or_none, default=None,
                        help="also write the layout options below (yaml), for ttt_train --sequence_layout")
    parser.add_argument("--max_len", type=int, default=None, help="skip longer sequences")
    parser.add_argument("--skip_missing", type=str2bool, default=False, help="skip utterances without codes")
    parser.add_argument("--chunk_len", type=int, default=CHUNK_LEN, help="text tokens per chunk")
    parser.add_argument("--span_len", type=int, default=SPAN_LEN, help="codes per non-final span")
    parser.add_argument("--text_only_asr", type=str2bool, default=False, help="ASR answer without re-spoken audio")
    parser.add_argument("--asr_prompt", default=ASR_PROMPT, help="system text of ASR examples")
    parser.add_argument("--tts_prompt", default=TTS_PROMPT, help="user instruction before the text to speak")
    parser.add_argument("--qa_prompt", default=QA_PROMPT, help="system text of QA examples (default: empty)")
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = get_parser().parse_args(cmd)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not tasks:
        raise ValueError(f"--tasks must be a non-empty subset of {TASKS}, got {args.tasks!r}")
    if args.text is None and args.dialogues is None:
        raise ValueError("give --text and/or --dialogues")

    vocab = TtTVocabulary.from_file(args.token_list) if args.token_list else None
    codes = CodeTable(Path(args.codes), vocab.codebook_size if vocab else None) if args.codes else _no_codes
    layout = SequenceLayout(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SequenceLayout)})
    builder = SequenceBuilder(load_text_tokenizer(args.bpemodel), layout)
    jobs: List[Tuple[str, Callable[[], List[str]]]] = []
    if args.text is not None:
        jobs += text_file_jobs(Path(args.text), tasks, builder, codes)
    if args.dialogues is not None:
        jobs += dialogue_jobs(Path(args.dialogues), tasks, builder, codes)

    sequences: Dict[str, List[str]] = {}
    missing: List[str] = []
    for seq_id, build in jobs:
        if seq_id in sequences:
            raise ValueError(f"two inputs give the sequence id {seq_id}")
        try:
            sequences[seq_id] = build()
        except MissingCodes as e:
            if not args.skip_missing:
                raise ValueError(f"{seq_id}: {e}") from None
            missing.append(seq_id)
        except ValueError as e:
            raise ValueError(f"{seq_id}: {e}") from None
    if missing:
        logging.warning(f"skipped {len(missing)} sequences whose utterances have no codes, e.g. {missing[:5]}")
    write_sequence_file(drop_untrainable(sequences, args.max_len), args.output, args.shape_file, vocab)
    if args.layout_file is not None:
        layout.save(args.layout_file)


if __name__ == "__main__":
    main()
