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

Errors name the file and line (and the sequence): text that is not UTF-8, duplicate ids,
codes that are not integers or out of range for --token_list, a codes file cut short, tokens
missing from --token_list.  An utterance without codes is an error, or with
``--skip_missing true`` a logged skip (count and first ids).  A sequence whose transcript or
needed dialogue text is empty, longer than --max_len, or with ``<unk>`` (text the tokenizer
cannot represent) is skipped with a logged count: the trainer would reject it (or, for an
empty answer, learn to say nothing).
"""
import argparse
import contextlib
import dataclasses
import logging
from functools import partial
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

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
    dialogue_field,
    drop_untrainable,
    read_dialogues,
    write_sequence_file,
)
from espnet2_ttt.speech.io import parse_codes
from espnet2_ttt.text_tokenizer import load_text_tokenizer
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.utils.table import read_entries, reading
from espnet2_ttt.vocabulary import TtTVocabulary

TEXT_FILE_TASKS = ("asr", "tts", "interleaved")
Job = Tuple[str, str, Callable[[], List[str]]]  # (sequence id, where its input is: file:line, build function)


class MissingCodes(Exception):
    """An utterance referenced by the data has no codes."""


class EmptyText(Exception):
    """A transcript or dialogue text that a sequence needs is empty: the sequence is skipped."""


class CodeTable:
    """Speech codes per utterance, parsed (and range-checked) when first asked for."""

    def __init__(self, path: Path, codebook_size: Optional[int]):
        self.path = path
        self.codebook_size = codebook_size
        self._entries = {e.key: e for e in read_entries(path, need_value=False, complete_lines=True)}

    def __call__(self, utt_id: str) -> List[int]:
        entry = self._entries.get(utt_id)
        if entry is None or not entry.value:
            raise MissingCodes(f"{self.path}: no codes for utterance {utt_id}")
        return parse_codes(entry.value, f"{self.path}:{entry.line}: utterance {utt_id}", self.codebook_size).tolist()


def _no_codes(utt_id: str) -> List[int]:
    raise MissingCodes(f"no --codes given, but utterance {utt_id} needs codes")


def _text(text: str) -> str:
    """``text``, unless it is empty (:class:`EmptyText`)."""
    if not text.strip():
        raise EmptyText()
    return text


def text_file_jobs(
    path: Path, tasks: Sequence[str], builder: SequenceBuilder, codes: Callable[[str], List[int]]
) -> Iterator[Job]:
    """A job for every utterance of a ``text`` file and task."""
    make = {
        "asr": lambda utt, text: builder.asr(codes(utt), _text(text)),
        "tts": lambda utt, text: builder.tts(_text(text), codes(utt)),
        "interleaved": lambda utt, text: builder.interleaved(_text(text), codes(utt)),
    }
    for utt, text, line in read_entries(path, need_value=False):
        for task in tasks:
            if task in make:
                yield f"{task}-{utt}", f"{path}:{line}: utterance {utt}", partial(make[task], utt, text)


def dialogue_jobs(
    path: Path, tasks: Sequence[str], builder: SequenceBuilder, codes: Callable[[str], List[int]]
) -> Iterator[Job]:
    """A job for every record of a dialogue JSONL file in ``tasks``."""
    for where, record in read_dialogues(path):
        rec_id = dialogue_field(record, "id", where)
        if not rec_id or any(c.isspace() for c in rec_id):
            raise InputError(f"{where}: the id {rec_id!r} is empty or contains white space")
        if record["task"] in tasks:
            where = f"{where} ({rec_id})"
            yield rec_id, where, partial(_dialogue, record, where, builder, codes)


def _dialogue(record: dict, where: str, builder: SequenceBuilder, codes: Callable[[str], List[int]]) -> List[str]:
    def field(name: str) -> str:
        return dialogue_field(record, name, where)

    task = record["task"]
    if task == "asr":
        return builder.asr(codes(field("question_utt")), _text(field("answer_text")))
    if task == "tts":
        return builder.tts(_text(field("question_text")), codes(field("answer_utt")))
    if task == "qa":
        has_audio = record.get("answer_utt") is not None
        answer_codes = codes(field("answer_utt")) if has_audio else []
        return builder.qa(codes(field("question_utt")), _text(field("answer_text")), answer_codes)
    return builder.text_chat(_text(field("question_text")), _text(field("answer_text")))


def build_all(jobs: Iterable[Job], skip_missing: bool) -> Dict[str, List[str]]:
    """``{sequence id: tokens}`` of every job.

    Skipped with a logged count (reason, first ids): empty texts, and with ``skip_missing``
    utterances without codes.  Any other problem is an InputError naming the input's file and
    line (or the codes file's) and the sequence.
    """
    sequences: Dict[str, List[str]] = {}
    source: Dict[str, str] = {}
    skipped: Dict[str, List[str]] = {}  # reason -> sequence ids
    for seq_id, where, build in jobs:
        if seq_id in source:
            raise InputError(f"{where}: gives the sequence id {seq_id} again (first from {source[seq_id]})")
        source[seq_id] = where
        try:
            sequences[seq_id] = build()
        except EmptyText:
            skipped.setdefault("with an empty transcript or text", []).append(seq_id)
        except MissingCodes as e:
            if not skip_missing:
                raise InputError(f"{e} (sequence {seq_id})") from None
            skipped.setdefault("whose utterances have no codes", []).append(seq_id)
        except InputError as e:
            raise InputError(f"{e} (sequence {seq_id})") from None
        except ValueError as e:
            raise InputError(f"{where}: {e}") from None
    for reason, ids in skipped.items():
        logging.warning(f"skipped {len(ids)} sequences {reason}, e.g. {ids[:5]}")
    return sequences


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
        raise InputError(f"--tasks must be a non-empty subset of {TASKS}, got {args.tasks!r}")
    if args.text is None and args.dialogues is None:
        raise InputError("give --text and/or --dialogues")

    vocab = TtTVocabulary.from_file(args.token_list) if args.token_list else None
    codes = CodeTable(Path(args.codes), vocab.codebook_size if vocab else None) if args.codes else _no_codes
    try:
        layout = SequenceLayout(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SequenceLayout)})
    except ValueError as e:  # --chunk_len / --span_len
        raise InputError(str(e)) from None
    builder = SequenceBuilder(load_text_tokenizer(args.bpemodel), layout)
    jobs: List[Job] = []
    if args.text is not None:
        jobs += text_file_jobs(Path(args.text), tasks, builder, codes)
    if args.dialogues is not None:
        jobs += dialogue_jobs(Path(args.dialogues), tasks, builder, codes)
    sequences = drop_untrainable(build_all(jobs, args.skip_missing), args.max_len)
    # a token of --bpemodel that --token_list lacks is an error naming --token_list
    with reading(args.token_list) if vocab else contextlib.nullcontext():
        write_sequence_file(sequences, args.output, args.shape_file, vocab)
    if args.layout_file is not None:
        layout.save(args.layout_file)


if __name__ == "__main__":
    run(main, "build_sequences")
