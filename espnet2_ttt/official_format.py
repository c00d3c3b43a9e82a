"""Convert data in the official TtT JSON format into our training sequences (``sequence.py``).

Input files are a JSON list or JSON lines; each record is one of

* ``{"messages": [{"role": "system"|"user"|"assistant", "content": str, "text_content": ...}]}``
  (``text_content`` is ignored, as in the official training code);
* ``{"conversations": [{"from": "system"|"human"|"gpt", "value": str}]}``;
* ``{"prompt": str, "response": str}`` (one user turn, one assistant turn);
* ``{"text": str}``: PT data, converted without template.  A text that contains
  ``<|im_start|>`` must be a complete rendered chat (``<|im_start|>role\\n...<|im_end|>``
  blocks) and is converted as the chat it renders (our format has no chat tokens in PT data).

Content is split into official special tokens ``<|name|>`` and text segments; each text segment
is tokenized by our SentencePiece model (concatenation safe, so spacing is kept), the content
being stripped of leading/trailing white space first.  Official special tokens map as follows
(``SPECIAL_TOKEN_MAP``; ``None`` = dropped)::

    <|begin_of_audio|>          -> <|begin_of_audio|>
    <|end_of_audio|>            -> <|end_of_audio|>
    <|begin_of_quad|>           -> <|begin_of_quad|>
    <|end_of_audio_new|>        -> <|end_of_audio_new|>
    <|end_of_audio_span_last|>  -> <|end_of_audio_span_last|>
    <|audio_k|>                 -> <|audio_k|>           (k < codebook size)
    <|endoftext|>               -> dropped               (Qwen pad / end of document)
    <|im_start|>, <|im_end|>    -> our template, from the roles: <|im_start|> <|system|> ... <|im_end|>

Roles map to ``<|system|>`` / ``<|user|>`` / ``<|assistant|>``; an empty system block is emitted
when the first message is not a system message.

The reverse direction, for checkpoints: :func:`official_token` names the token of an official TtT
(or plain Qwen) vocabulary whose embedding row one of our tokens takes (used by
:mod:`espnet2_ttt.pretrained_vocab`): the inverse of ``SPECIAL_TOKEN_MAP``, ``<pad>`` ->
``<|endoftext|>`` (Qwen's pad), a role token -> the role word the official template writes after
``<|im_start|>``, anything else (template tokens, ``<|mask_token|>``, codes, text pieces) -> itself.  Spans must be well formed (``check_spans``).
Every problem raises :class:`RecordError` naming the file and record index (text that is not UTF-8
included).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

from espnet2_ttt.sequence_builder import Tokenizer, chat
from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.utils.table import json_lines
from espnet2_ttt.vocabulary import (
    BEGIN_OF_AUDIO,
    BEGIN_OF_LAST_SPAN,
    END_OF_LAST_SPAN,
    END_OF_SPAN,
    END_OF_USER_AUDIO,
    PAD,
    ROLES,
    audio_code,
    audio_token,
)

OFFICIAL_PAD = "<|endoftext|>"
SPECIAL_TOKEN_MAP = {
    "<|begin_of_audio|>": BEGIN_OF_AUDIO,
    "<|end_of_audio|>": END_OF_USER_AUDIO,
    "<|begin_of_quad|>": BEGIN_OF_LAST_SPAN,
    "<|end_of_audio_new|>": END_OF_SPAN,
    "<|end_of_audio_span_last|>": END_OF_LAST_SPAN,
    OFFICIAL_PAD: None,
}
TEMPLATE_TOKENS = ("<|im_start|>", "<|im_end|>")
CONVERSATION_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}
MESSAGE_ROLES = ("system", "user", "assistant")

_SPECIAL_RE = re.compile(r"(<\|[A-Za-z0-9_]+\|>)")
_RENDERED_TURN_RE = re.compile(r"\s*<\|im_start\|>(\w+)\n(.*?)<\|im_end\|>\s*", re.S)
# closing marker of each opening marker, per side ("user" = prompt audio, "assistant" = generated)
_SPAN_CLOSE = {
    "user": {BEGIN_OF_AUDIO: END_OF_USER_AUDIO},
    "assistant": {BEGIN_OF_AUDIO: END_OF_SPAN, BEGIN_OF_LAST_SPAN: END_OF_LAST_SPAN},
}
_SPAN_MARKERS = {BEGIN_OF_AUDIO, BEGIN_OF_LAST_SPAN, END_OF_USER_AUDIO, END_OF_SPAN, END_OF_LAST_SPAN}

Turns = List[Tuple[str, str]]  # (role in MESSAGE_ROLES, content string)
_OFFICIAL_NAME = {
    PAD: OFFICIAL_PAD,
    **{ours: role for role, ours in ROLES.items()},
    **{ours: official for official, ours in SPECIAL_TOKEN_MAP.items() if ours is not None},
}


def official_token(token: str) -> str:
    """The official TtT / Qwen token whose pretrained row our ``token`` takes (rules above)."""
    return _OFFICIAL_NAME.get(token, token)


class RecordError(InputError):
    """A record that cannot be converted; the message names the file and record index."""


def read_records(path: Union[str, Path]) -> List[Any]:
    """Records of a JSON list file or a JSON lines file (decided by the first character).

    Bytes that are not UTF-8 are kept (as surrogate escapes): the record holding them is
    refused by :func:`content_tokens`, naming it.  Text that is not JSON is an InputError.
    """
    text = Path(path).read_bytes().decode("utf-8", "surrogateescape")
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON: {e}") from None
        if not isinstance(records, list):
            raise InputError(f"{path}: expected a JSON list of records")
        return records
    return [record for _, record in json_lines(text.splitlines(), path)]


def record_turns(record: Any) -> Tuple[Optional[Turns], Optional[str]]:
    """``(turns, None)`` for a chat record, ``(None, text)`` for a PT record; raises ValueError."""
    if not isinstance(record, dict):
        raise ValueError(f"a record must be a JSON object, got {type(record).__name__}")
    if "messages" in record:
        return _turn_list(record["messages"], "role", "content", {r: r for r in MESSAGE_ROLES}), None
    if "conversations" in record:
        return _turn_list(record["conversations"], "from", "value", CONVERSATION_ROLES), None
    if "prompt" in record or "response" in record:
        prompt, response = record.get("prompt"), record.get("response")
        if not (isinstance(prompt, str) and isinstance(response, str)):
            raise ValueError("'prompt' and 'response' must both be strings")
        return [("user", prompt), ("assistant", response)], None
    if "text" in record:
        text = record["text"]
        if not isinstance(text, str):
            raise ValueError("'text' must be a string")
        if TEMPLATE_TOKENS[0] in text:
            return _rendered_chat_turns(text), None
        return None, text
    raise ValueError("record has none of the keys messages / conversations / prompt+response / text")


def _turn_list(items: Any, role_key: str, content_key: str, roles: dict) -> Turns:
    if not isinstance(items, list) or not items:
        raise ValueError("the turn list must be a non-empty JSON list")
    turns = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(content_key), str):
            raise ValueError(f"turn {i}: expected an object with a string {content_key!r}")
        if item.get(role_key) not in roles:
            raise ValueError(f"turn {i}: unknown {role_key} {item.get(role_key)!r} (expected one of {sorted(roles)})")
        turns.append((roles[item[role_key]], item[content_key]))
    return turns


def _rendered_chat_turns(text: str) -> Turns:
    turns, pos = [], 0
    while pos < len(text):
        match = _RENDERED_TURN_RE.match(text, pos)
        if match is None:
            raise ValueError(
                f"text containing <|im_start|> must be complete '<|im_start|>role\\n...<|im_end|>' blocks; "
                f"cannot parse from character {pos}"
            )
        if match.group(1) not in MESSAGE_ROLES:
            raise ValueError(f"unknown role {match.group(1)!r} in a rendered chat turn")
        turns.append((match.group(1), match.group(2)))
        pos = match.end()
    return turns


def content_tokens(content: str, tokenizer: Tokenizer, codebook_size: int) -> List[str]:
    """Official content string -> our tokens (specials mapped, text segments tokenized)."""
    try:
        content.encode("utf-8")
    except UnicodeEncodeError as e:
        char = content[e.start]
        what = f"byte 0x{ord(char) - 0xDC00:02x}" if "\udc80" <= char <= "\udcff" else f"lone surrogate U+{ord(char):04X}"
        raise ValueError(f"not valid UTF-8 ({what} at character {e.start + 1} of the content)") from None
    tokens: List[str] = []
    for i, part in enumerate(_SPECIAL_RE.split(content.strip())):
        if i % 2 == 0:  # text between special tokens
            if part:
                tokens += tokenizer.encode(part)
            continue
        code = audio_code(part)
        if code is not None:
            if code >= codebook_size:
                raise ValueError(f"audio code {code} >= codebook size {codebook_size}")
            tokens.append(audio_token(code))
        elif part in SPECIAL_TOKEN_MAP:
            if SPECIAL_TOKEN_MAP[part] is not None:
                tokens.append(SPECIAL_TOKEN_MAP[part])
        elif part in TEMPLATE_TOKENS:
            raise ValueError(f"template token {part} inside message content")
        else:
            raise ValueError(f"unknown special token {part}")
    return tokens


def check_spans(tokens: Sequence[str], side: str) -> None:
    """Raise unless audio appears only in closed spans of the right kind for ``side``.

    ``side`` = "user": ``<|begin_of_audio|> codes <|end_of_audio|>``; "assistant" (also PT
    data): ``<|begin_of_audio|> codes <|end_of_audio_new|>`` and ``<|begin_of_quad|> codes
    <|end_of_audio_span_last|>``.  Every span holds at least one code.
    """
    closing = _SPAN_CLOSE[side]
    expected_close, span_codes = None, 0
    for pos, token in enumerate(tokens):
        is_code = audio_code(token) is not None
        if expected_close is None:
            if token in closing:
                expected_close, span_codes = closing[token], 0
            elif is_code or token in _SPAN_MARKERS:
                raise ValueError(f"{side} content: token #{pos} {token} outside an audio span")
        elif is_code:
            span_codes += 1
        elif token == expected_close and span_codes:
            expected_close = None
        else:
            raise ValueError(f"{side} content: token #{pos} {token} where a code or {expected_close} is expected")
    if expected_close is not None:
        raise ValueError(f"{side} content ends inside an audio span (missing {expected_close})")


def convert_record(record: Any, tokenizer: Tokenizer, codebook_size: int) -> List[str]:
    """One official record -> one sequence of our tokens; raises ValueError on bad records."""
    turns, pt_text = record_turns(record)
    if turns is None:
        tokens = content_tokens(pt_text, tokenizer, codebook_size)
        if not tokens:
            raise ValueError("empty text")
        check_spans(tokens, "assistant")
        return tokens
    system: List[str] = []
    if turns[0][0] == "system":
        system = content_tokens(turns[0][1], tokenizer, codebook_size)
        check_spans(system, "user")
        turns = turns[1:]
    if any(role == "system" for role, _ in turns):
        raise ValueError("a system message is only allowed as the first message")
    if not any(role == "assistant" for role, _ in turns):
        raise ValueError("no assistant message: nothing to train on")
    converted = []
    for role, content in turns:
        tokens = content_tokens(content, tokenizer, codebook_size)
        if not tokens:
            raise ValueError(f"empty {role} message")
        check_spans(tokens, role)
        converted.append((role, tokens))
    return chat(system, converted)


def convert_file(
    path: Union[str, Path], tokenizer: Tokenizer, codebook_size: int, skip_bad: bool = False
) -> Tuple[List[Tuple[int, List[str]]], List[str]]:
    """``([(record index, tokens)], ["record <index>: <why>" of each skipped record])``.

    A bad record raises :class:`RecordError` unless ``skip_bad``; a file without records is an
    InputError.
    """
    records = read_records(path)
    if not records:
        raise InputError(f"{path}: no records")
    converted, skipped = [], []
    for index, record in enumerate(records):
        try:
            converted.append((index, convert_record(record, tokenizer, codebook_size)))
        except ValueError as e:
            if not skip_bad:
                raise RecordError(f"{path}: record {index}: {e}") from None
            skipped.append(f"record {index}: {e}")
    return converted, skipped
