"""Inference prompts: the training layouts of :mod:`espnet2_ttt.sequence_builder`, open for the answer.

    <|im_start|> <|system|> [system] <|im_end|>
    <|im_start|> <|user|> [user text] [<|begin_of_audio|> codes <|end_of_audio|>] <|im_end|>
    <|im_start|> <|assistant|>

The decoding mode only decides the prompt: text (text -> text), asr (audio -> text),
tts (text -> audio), chat (audio -> interleaved text + audio; the builder's "qa" layout).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from espnet2_ttt.sequence_builder import SequenceLayout, Tokenizer, chat, user_audio
from espnet2_ttt.vocabulary import IM_START, ROLES, TtTVocabulary

MODES = ("text", "asr", "tts", "chat")
_NEEDS = {"text": "text", "asr": "audio", "tts": "text", "chat": "audio"}


def build_prompt(
    vocab: TtTVocabulary,
    mode: str,
    user_text: Sequence[str] = (),
    user_codes: Optional[Sequence[int]] = None,
    system_text: Sequence[str] = (),
    where: str = "prompt",
    newline: Sequence[str] = (),
) -> List[int]:
    """Prompt ids for one turn in ``mode`` from pieces and codes; errors name ``where``.

    ``asr``/``chat`` need ``user_codes``, ``text``/``tts`` need ``user_text``; text given
    with audio precedes it inside the user turn.  ``newline``: see
    :func:`~espnet2_ttt.sequence_builder.chat` (official template).
    """
    if mode not in MODES:
        raise ValueError(f"{where}: unknown mode {mode!r}, use one of {MODES}")
    codes = [int(c) for c in user_codes] if user_codes is not None else []
    if _NEEDS[mode] == "audio" and not codes:
        raise ValueError(f"{where}: mode {mode!r} needs user audio codes, got none")
    if _NEEDS[mode] == "text" and not user_text:
        raise ValueError(f"{where}: mode {mode!r} needs user text, got none")
    bad = [c for c in codes if not 0 <= c < vocab.codebook_size]
    if bad:
        raise ValueError(f"{where}: audio code {bad[0]} is out of range [0, {vocab.codebook_size})")
    content = [*user_text, *(user_audio(codes) if codes else [])]
    tokens = chat(system_text, [("user", content)], newline) + [IM_START, ROLES["assistant"], *newline]
    return vocab.tokens_to_ids(tokens, where)


def mode_text(mode: str, tokenizer: Tokenizer, text: Optional[str], layout: SequenceLayout) -> Tuple[List[str], List[str]]:
    """(system pieces, user pieces) of a raw-text input, with the training prompts of each mode
    (``layout``: the training sequences' options).

    asr: system ``asr_prompt`` (default "Transcribe the speech."); tts: user ``tts_prompt`` +
    text (default "Read the following text aloud: <text>"); chat: system ``qa_prompt`` (default
    empty); text: the user text alone.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}, use one of {MODES}")
    system = {"asr": layout.asr_prompt, "chat": layout.qa_prompt}.get(mode, "")
    if mode == "tts" and text:
        text = layout.tts_request(text)
    encode = tokenizer.encode
    return (encode(system) if system else []), (encode(text) if text else [])
