"""Build TtT training sequences (token-string lists, see ``sequence.py``) from text and codes.

Assistant layout (:func:`interleave`), with ``N = chunk_len`` (13) text tokens per chunk and
``M = span_len`` (26) codes per non-final span::

    [t1..tN] <|begin_of_audio|> [M codes] <|end_of_audio_new|>
    [next N tokens] <|begin_of_audio|> [M codes] <|end_of_audio_new|>
    ...
    [rest of the text] <|begin_of_quad|> [all remaining codes] <|end_of_audio_span_last|>

Exact rules, with the text cut into chunks of N tokens (the last one has 1..N tokens, and
empty text counts as one empty chunk):

* every chunk but the last is followed by a non-final span of exactly M codes *if more than M
  codes remain*, otherwise by nothing (the codes ran out before the text: the following chunks
  run together without spans);
* the last chunk is followed by the final span, which carries all remaining codes (at least
  one: a non-final span never takes the last code), so a text shorter than one chunk, or an
  empty text, gives a single final span;
* no codes at all gives the text alone (a text-only answer); no text and no codes is an error.

Task layouts (``S``/``U``/``A`` = system/user/assistant content; the empty system block is
always present)::

    asr          S: asr prompt            U: <|begin_of_audio|> codes <|end_of_audio|>
                 A: interleave(transcript, same codes), or the transcript alone (text_only_asr)
    tts          S: empty                 U: tts prompt + text          A: interleave(text, codes)
    qa           S: qa prompt (empty)     U: question audio            A: interleave(answer, answer codes)
    text         S: empty                 U: question text             A: answer text
    interleaved  no template: interleave(text, codes)   (PT data)

The options of these layouts are one :class:`SequenceLayout`.  Decoding depends on it (its
prompts open every inference prompt, its chunk and span lengths shape the forced answers), so
``build_sequences --layout_file`` writes it and ``ttt_train --sequence_layout`` records it in the
training config, where inference reads it.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

import yaml

from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.utils.table import json_lines, read_utf8_lines, write_text_atomic
from espnet2_ttt.vocabulary import (
    BEGIN_OF_AUDIO,
    BEGIN_OF_LAST_SPAN,
    END_OF_LAST_SPAN,
    END_OF_SPAN,
    END_OF_USER_AUDIO,
    IM_END,
    IM_START,
    ROLES,
    UNK,
    audio_token,
)

CHUNK_LEN = 13  # text tokens per chunk (official layout)
SPAN_LEN = 26  # codes per non-final span (official layout)
TASKS = ("asr", "tts", "qa", "text", "interleaved")
ASR_PROMPT = "Transcribe the speech."
TTS_PROMPT = "Read the following text aloud:"
QA_PROMPT = ""


class Tokenizer(Protocol):
    def encode(self, text: str) -> List[str]: ...


def interleave(
    text: Sequence[str], codes: Sequence[int], chunk_len: int = CHUNK_LEN, span_len: int = SPAN_LEN
) -> List[str]:
    """Text tokens + codes -> assistant content in the official interleaved layout (rules above)."""
    if chunk_len < 1 or span_len < 1:
        raise ValueError(f"chunk_len and span_len must be >= 1, got {chunk_len}, {span_len}")
    if not codes:
        if not text:
            raise ValueError("nothing to interleave: empty text and no codes")
        return list(text)
    out: List[str] = []
    next_code = 0
    *chunks, last_chunk = text_chunks(text, chunk_len)
    for chunk in chunks:
        out += chunk
        if len(codes) - next_code > span_len:
            out.append(BEGIN_OF_AUDIO)
            out += [audio_token(c) for c in codes[next_code : next_code + span_len]]
            out.append(END_OF_SPAN)
            next_code += span_len
    out += last_chunk
    out.append(BEGIN_OF_LAST_SPAN)
    out += [audio_token(c) for c in codes[next_code:]]
    out.append(END_OF_LAST_SPAN)
    return out


def text_chunks(text: Sequence[str], chunk_len: int = CHUNK_LEN) -> List[Sequence[str]]:
    """``text`` cut into chunks of ``chunk_len`` tokens; the last holds 1..chunk_len (empty text: one empty chunk)."""
    last_chunk_start = max(len(text) - 1, 0) // chunk_len * chunk_len
    chunks = [text[start : start + chunk_len] for start in range(0, last_chunk_start, chunk_len)]
    return chunks + [text[last_chunk_start:]]


def spoken_text_layout(text: Sequence[str], chunk_len: int = CHUNK_LEN) -> Tuple[List[str], int]:
    """The text side of a spoken answer of ``text`` whose audio is still to be generated.

    Returns (tokens, non-final spans): the chunks of :func:`interleave`, each but the last
    followed by ``<|begin_of_audio|>`` (a non-final span of ``span_len`` codes), the last by
    ``<|begin_of_quad|>`` (the final span), then ``<|im_end|>``; i.e. ``interleave``'s layout
    when the speech has more than ``span_len`` codes per chunk, as it has at 12.5 Hz for
    13-token chunks.  Text-forced TTS decoding writes these tokens and diffuses the spans.
    """
    *chunks, last_chunk = text_chunks(text, chunk_len)
    out: List[str] = []
    for chunk in chunks:
        out += [*chunk, BEGIN_OF_AUDIO]
    return out + [*last_chunk, BEGIN_OF_LAST_SPAN, IM_END], len(chunks)


def user_audio(codes: Sequence[int]) -> List[str]:
    """Prompt-side audio: ``<|begin_of_audio|> codes <|end_of_audio|>``."""
    if not codes:
        raise ValueError("user audio without codes")
    return [BEGIN_OF_AUDIO, *(audio_token(c) for c in codes), END_OF_USER_AUDIO]


def chat(
    system: Sequence[str], turns: Sequence[Tuple[str, Sequence[str]]], newline: Sequence[str] = ()
) -> List[str]:
    """System block (possibly empty) + ``(role, content)`` turns, in our chat template.

    ``newline``: the pieces of "\\n", written after every role token and every ``<|im_end|>``
    (the official TtT / Qwen template ``<|im_start|>user\\n ... <|im_end|>\\n``); empty = ours.
    """
    out = [IM_START, ROLES["system"], *newline, *system, IM_END, *newline]
    for role, content in turns:
        if role not in ("user", "assistant"):
            raise ValueError(f"turn role must be 'user' or 'assistant', got {role!r}")
        out += [IM_START, ROLES[role], *newline, *content, IM_END, *newline]
    return out


@dataclasses.dataclass(frozen=True)
class SequenceLayout:
    """The options of the task layouts (module docstring).

    ``chunk_len`` text tokens per chunk and ``span_len`` codes per non-final span
    (:func:`interleave`); ``text_only_asr``: ASR answers are the transcript alone, without the
    re-spoken input; ``asr_prompt`` / ``qa_prompt``: system text of ASR / QA examples;
    ``tts_prompt``: the instruction before the text to speak (empty: the text alone).
    """

    chunk_len: int = CHUNK_LEN
    span_len: int = SPAN_LEN
    text_only_asr: bool = False
    asr_prompt: str = ASR_PROMPT
    tts_prompt: str = TTS_PROMPT
    qa_prompt: str = QA_PROMPT

    def __post_init__(self):
        if self.chunk_len < 1 or self.span_len < 1:
            raise ValueError(f"chunk_len and span_len must be >= 1, got {self.chunk_len}, {self.span_len}")

    def tts_request(self, text: str) -> str:
        """The user text of a TTS example: the instruction, then the text to speak."""
        return f"{self.tts_prompt} {text}" if self.tts_prompt else text

    def to_dict(self) -> Dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, object]], where: str) -> "SequenceLayout":
        """A layout from a mapping (missing keys: the defaults; None: the default layout);
        unknown keys and wrong types are errors naming ``where``."""
        if values is None:
            return cls()
        if not isinstance(values, Mapping):
            raise ValueError(f"{where}: a sequence layout must be a mapping, got {values!r}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"{where}: unknown sequence layout keys {unknown}, known: {list(fields)}")
        for key, value in values.items():
            kind = {"int": int, "bool": bool, "str": str}[fields[key].type]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"{where}: sequence layout key {key!r} must be {kind.__name__}, got {value!r}")
        try:
            return cls(**values)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None

    @classmethod
    def read(cls, path_or_yaml: str) -> "SequenceLayout":
        """A layout from a yaml file (``build_sequences --layout_file``) or an inline yaml mapping."""
        path = Path(path_or_yaml)
        if path.is_file():
            return cls.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
        values = yaml.safe_load(path_or_yaml)
        if not isinstance(values, Mapping):
            raise ValueError(f"sequence layout {path_or_yaml!r} is neither a file nor a yaml mapping")
        return cls.from_dict(values, "sequence layout")

    def save(self, path: Union[str, Path]) -> None:
        """Write the layout as yaml, atomically."""
        write_text_atomic(path, yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False))


def sequence_layout_arg(value: str) -> Dict[str, object]:
    """argparse type of ``--sequence_layout`` (a file or an inline mapping) -> the whole layout as a dict."""
    try:
        return SequenceLayout.read(value).to_dict()
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class SequenceBuilder:
    """Task layouts of the module docstring with the options ``layout``; text is tokenized by
    ``tokenizer.encode``."""

    def __init__(self, tokenizer: Tokenizer, layout: SequenceLayout = SequenceLayout()):
        self.tokenizer = tokenizer
        self.layout = layout

    def _answer(self, text: str, codes: Sequence[int]) -> List[str]:
        return interleave(self.tokenizer.encode(text), codes, self.layout.chunk_len, self.layout.span_len)

    def asr(self, codes: Sequence[int], transcript: str) -> List[str]:
        answer = self._answer(transcript, () if self.layout.text_only_asr else codes)
        return chat(self.tokenizer.encode(self.layout.asr_prompt), [("user", user_audio(codes)), ("assistant", answer)])

    def tts(self, text: str, codes: Sequence[int]) -> List[str]:
        if not codes:
            raise ValueError("tts needs the codes of the spoken text")
        request = self.tokenizer.encode(self.layout.tts_request(text))
        return chat([], [("user", request), ("assistant", self._answer(text, codes))])

    def qa(self, question_codes: Sequence[int], answer_text: str, answer_codes: Sequence[int] = ()) -> List[str]:
        answer = self._answer(answer_text, answer_codes)
        system = self.tokenizer.encode(self.layout.qa_prompt)
        return chat(system, [("user", user_audio(question_codes)), ("assistant", answer)])

    def text_chat(self, question: str, answer: str) -> List[str]:
        return chat([], [("user", self.tokenizer.encode(question)), ("assistant", self._answer(answer, ()))])

    def interleaved(self, text: str, codes: Sequence[int]) -> List[str]:
        return self._answer(text, codes)


# ---------------------------------------------------------------------- dialogue files
DIALOGUE_TASKS = ("asr", "tts", "qa", "text")


def read_dialogues(path: Union[str, Path]) -> Iterator[Tuple[str, dict]]:
    """``(where, record)`` for every record of a dialogue JSONL file (schema: local/make_corpus.py).

    ``where`` is ``file:line``; text that is not UTF-8, or a line that is not a JSON object or
    has an unknown task, is an InputError naming it.  Blank lines are skipped.
    """
    for where, record in json_lines(read_utf8_lines(path), path):
        if not isinstance(record, dict):
            raise InputError(f"{where}: expected a JSON object")
        if record.get("task") not in DIALOGUE_TASKS:
            raise InputError(f"{where}: task must be one of {DIALOGUE_TASKS}, got {record.get('task')!r}")
        yield where, record


def dialogue_field(record: dict, name: str, where: str) -> str:
    """The string field ``name`` of a dialogue record; anything else is an InputError naming ``where``."""
    value = record.get(name)
    if not isinstance(value, str):
        raise InputError(f"{where}: field {name!r} must be a string, got {value!r}")
    return value


# ---------------------------------------------------------------------- sequence files
def drop_untrainable(
    sequences: Mapping[str, Sequence[str]], max_len: Optional[int] = None
) -> Dict[str, Sequence[str]]:
    """The sequences the trainer accepts; the others are logged (count, first ids) and dropped.

    Dropped: sequences with ``<unk>`` (text the tokenizer cannot represent; the trainer rejects
    them) and sequences longer than ``max_len`` tokens (when given).
    """
    rules = [("containing <unk>", lambda tokens: UNK in tokens)]
    if max_len is not None:
        rules.append((f"longer than {max_len} tokens", lambda tokens: len(tokens) > max_len))
    kept = dict(sequences)
    for reason, is_bad in rules:
        dropped = sorted(k for k, tokens in kept.items() if is_bad(tokens))
        if dropped:
            logging.warning(f"skipped {len(dropped)} of {len(sequences)} sequences {reason}, e.g. {dropped[:5]}")
        for k in dropped:
            del kept[k]
    return kept


def write_sequence_file(
    sequences: Mapping[str, Sequence[str]],
    path: Union[str, Path],
    shape_path: Optional[Union[str, Path]] = None,
    vocab=None,
) -> None:
    """Write ``utt_id tok tok ...`` lines sorted by id (and ``utt_id num_tokens``), atomically.

    No sequence, or an id that is empty or holds white space, is an InputError.  With ``vocab``
    (a :class:`TtTVocabulary`) every token is checked first: an unknown token or an audio code
    beyond the codebook is a ValueError naming the sequence.
    """
    if not sequences:
        raise InputError(f"{path}: no sequences to write")
    for utt_id in sequences:
        if not utt_id or any(c.isspace() for c in utt_id):
            raise InputError(f"{path}: sequence id {utt_id!r} is empty or contains white space")
    if vocab is not None:
        for seq_id, tokens in sequences.items():
            vocab.tokens_to_ids(tokens, where=seq_id)
    ids = sorted(sequences)
    write_text_atomic(path, "".join(f"{k} {' '.join(sequences[k])}\n" for k in ids))
    if shape_path is not None:
        write_text_atomic(shape_path, "".join(f"{k} {len(sequences[k])}\n" for k in ids))
    logging.info(f"wrote {len(ids)} sequences to {path}")
