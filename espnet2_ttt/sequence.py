"""The on-disk TtT sequence format and what the model derives from it.

A training example is one line of a Kaldi-style text file: ``<utt_id> <tok> <tok> ...``, the
tokens being strings of the token list (SentencePiece pieces, specials, ``<|audio_k|>``).

Chat examples (IT data) use the template, with no newline tokens::

    <|im_start|> <|system|> [system text] <|im_end|>          (always present, may be empty)
    <|im_start|> <|user|> [user content] <|im_end|>
    <|im_start|> <|assistant|> [assistant content] <|im_end|>  (turns may repeat)

User audio is ``<|begin_of_audio|> codes <|end_of_audio|>``.  Assistant content interleaves
text chunks and spans: ``text <|begin_of_audio|> codes <|end_of_audio_new|> text ...
<|begin_of_quad|> codes <|end_of_audio_span_last|>``.  Examples that do not start with
``<|im_start|>`` are free interleaved text (PT data): every position is supervised.

Supervision (what the loss sees) is derived from the structure, not stored: the content of
every assistant turn and its ``<|im_end|>`` (not the ``<|im_start|> <|assistant|>`` header),
or everything in PT data.  Audio is maskable only where it is supervised, so prompt audio is
never masked, in single- and multi-turn data alike.

:func:`check_sequence` is the grammar every training example must follow (the preprocessor
applies it to every utterance); :func:`read_sequence_lengths` checks a file's lines and ids.
"""
from pathlib import Path
from typing import Dict, Sequence, Union

import torch

from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.utils.table import iter_utf8_lines
from espnet2_ttt.vocabulary import (
    BEGIN_OF_AUDIO,
    BEGIN_OF_LAST_SPAN,
    END_OF_LAST_SPAN,
    END_OF_SPAN,
    END_OF_USER_AUDIO,
    IM_END,
    IM_START,
    MASK,
    PAD,
    ROLE_ASSISTANT,
    ROLES,
    TRUNCATED,
    UNK,
    TtTVocabulary,
    audio_code,
)

# the closing marker of each opening marker, by side: prompt audio (system and user turns) or
# generated audio (assistant turns and PT data)
SPAN_CLOSE = {
    "prompt": {BEGIN_OF_AUDIO: END_OF_USER_AUDIO},
    "generated": {BEGIN_OF_AUDIO: END_OF_SPAN, BEGIN_OF_LAST_SPAN: END_OF_LAST_SPAN},
}
SPAN_MARKERS = frozenset({BEGIN_OF_AUDIO, BEGIN_OF_LAST_SPAN, END_OF_USER_AUDIO, END_OF_SPAN, END_OF_LAST_SPAN})
NOT_IN_DATA = frozenset({PAD, UNK, MASK, TRUNCATED})  # padding, unknown, the absorbing state, reserved
ROLE_TOKENS = frozenset(ROLES.values())
TEMPLATE_TOKENS = frozenset({IM_START, IM_END, *ROLE_TOKENS})


def check_sequence(tokens: Sequence[str]) -> None:
    """Raise ValueError, naming the token position, unless ``tokens`` is a training example.

    The grammar (module docstring): a chat example is a run of complete turns
    ``<|im_start|> <role> content <|im_end|>`` (text only between turns, e.g. the official
    template's newlines) with at least one assistant turn; an example that does not start with
    ``<|im_start|>`` is PT data, with no template token.  An assistant turn is never empty.  Audio is only ever inside a closed span
    of at least one code: ``<|begin_of_audio|> codes <|end_of_audio|>`` in system and user
    turns, ``<|begin_of_audio|> codes <|end_of_audio_new|>`` and ``<|begin_of_quad|> codes
    <|end_of_audio_span_last|>`` in assistant turns and PT data.  ``<pad>``, ``<unk>``,
    ``<|mask_token|>`` and ``<|truncated|>`` never appear.
    """
    if not tokens:
        raise ValueError("empty sequence")
    chat = tokens[0] == IM_START
    side = None if chat else "generated"  # side of the current turn; None between chat turns
    span_start, span_codes = -1, 0  # position of the open span's marker (-1: none), its codes
    assistant_turns = 0
    for pos, token in enumerate(tokens):
        where = f"token #{pos} '{token}'"
        if span_start >= 0:
            close = SPAN_CLOSE[side][tokens[span_start]]
            if audio_code(token) is not None:
                span_codes += 1
            elif token == close and span_codes:
                span_start = -1
            elif token == close:
                raise ValueError(f"{where}: the audio span opened at token #{span_start} holds no code")
            else:
                raise ValueError(f"{where}: the audio span opened at token #{span_start} "
                                 f"'{tokens[span_start]}' is not closed (a code or {close} expected)")
        elif token in NOT_IN_DATA:
            raise ValueError(f"{where} never appears in training data")
        elif pos and tokens[pos - 1] == IM_START:
            if token not in ROLE_TOKENS:
                raise ValueError(f"{where}: a role token must follow {IM_START}")
            side = "generated" if token == ROLE_ASSISTANT else "prompt"
            assistant_turns += token == ROLE_ASSISTANT
        elif token in TEMPLATE_TOKENS:
            if not chat:
                raise ValueError(f"{where}: PT data (not starting with {IM_START}) has no chat template token")
            if token in ROLE_TOKENS:
                raise ValueError(f"{where}: a role token only follows {IM_START}")
            if token == IM_START and side is not None:
                raise ValueError(f"{where}: the turn before is not closed by {IM_END}")
            if token == IM_END and side is None:
                raise ValueError(f"{where} outside a turn")
            if token == IM_END and tokens[pos - 1] == ROLE_ASSISTANT:
                raise ValueError(f"{where}: empty assistant turn (nothing to answer)")
            side = None
        elif side is not None and token in SPAN_CLOSE[side]:
            span_start, span_codes = pos, 0
        elif audio_code(token) is not None or token in SPAN_MARKERS:
            turn = "between turns" if side is None else f"on the {side} side"
            raise ValueError(f"{where} outside an audio span ({turn})")
    if span_start >= 0:
        raise ValueError(f"the audio span opened at token #{span_start} '{tokens[span_start]}' is never "
                         f"closed (missing {SPAN_CLOSE[side][tokens[span_start]]})")
    if chat and side is not None:
        raise ValueError(f"the last turn is not closed by {IM_END}")
    if chat and not assistant_turns:
        raise ValueError("no assistant turn: nothing to train on")


def supervised_mask(ids: torch.Tensor, valid: torch.Tensor, vocab: TtTVocabulary) -> torch.Tensor:
    """[B, L] ids, [B, L] bool valid -> [B, L] bool: positions the loss may supervise."""
    is_start = ids == vocab.im_start_id
    turn = torch.cumsum(is_start.long(), dim=1)  # 0 before the first <|im_start|>
    is_role = torch.nn.functional.pad(is_start[:, :-1], (1, 0), value=False)
    # role token of every turn; turn 0 (no template) counts as assistant (PT data)
    turn_role = torch.full((ids.shape[0], ids.shape[1] + 1), -1, dtype=ids.dtype, device=ids.device)
    turn_role[:, 0] = vocab.role_ids["assistant"]
    turn_role.scatter_(1, torch.where(is_role, turn, 0), torch.where(is_role, ids, turn_role[:, :1]))
    role = torch.gather(turn_role, 1, turn)
    return (role == vocab.role_ids["assistant"]) & ~is_start & ~is_role & valid


def read_sequence_lengths(path: Union[str, Path]) -> Dict[str, int]:
    """``{utt_id: number of tokens}`` of sequence file ``path``, read a line at a time.

    Raises InputError ``<path>:<line>: <what>`` for what ESPnet's readers would misread or
    fail on without naming it: an empty file, a blank line, a line without tokens, an
    utterance id given twice, invalid UTF-8 or a byte-order mark, and a last line without newline (a file cut short).
    """
    lengths: Dict[str, int] = {}
    number, line = 0, ""
    for number, line in iter_utf8_lines(path):
        fields = line.split(maxsplit=1)
        if len(fields) < 2:
            problem = f"utterance '{fields[0]}' has no tokens" if fields else "blank line"
            raise InputError(f"{path}:{number}: {problem}")
        key = fields[0]
        if key in lengths:
            with open(path, encoding="utf-8") as again:
                first = next(n for n, text in enumerate(again, 1) if text.split(maxsplit=1)[:1] == [key])
            raise InputError(f"{path}:{number}: duplicate utterance id '{key}' (first on line {first})")
        lengths[key] = len(fields[1].split())
    if not lengths:
        raise InputError(f"{path}: no utterances (the sequence file is empty)")
    if not line.endswith("\n"):
        raise InputError(f"{path}:{number}: the last line has no newline: the file is cut short")
    return lengths
