"""Text pieces and embedding rows from a pretrained (Hugging Face) LLM tokenizer.

With a pretrained backbone the token list keeps the fixed TtT layout of
:mod:`espnet2_ttt.vocabulary`; only its text pieces change: they are the tokenizer's own *model*
tokens (byte-level BPE for Qwen2), in the tokenizer's id order, without its added tokens::

    <pad> <unk> TtT specials | model tokens of the HF tokenizer | <|mask_token|> EOAs | <|audio_k|>

so ``make_token_list --bpemodel <hf dir>`` writes it and every text piece has a pretrained row.
:func:`pretrained_rows` is the explicit map our id -> pretrained embedding row (-1 = a new row):
each of our tokens takes the row of ``official_format.official_token(token)`` when the pretrained
vocabulary has that token (text pieces and ``<|im_start|>``/``<|im_end|>`` always; span markers,
``<|mask_token|>`` and codes in an official TtT checkpoint), else it gets a new row.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

from espnet2_ttt.official_format import official_token
from espnet2_ttt.vocabulary import PAD, SPECIAL_AUDIO_TOKENS, SPECIAL_TEXT_TOKENS, UNK, audio_code



class HFTextTokenizer:
    """A Hugging Face tokenizer (directory or hub name) used for text only.

    Same interface as :class:`espnet2_ttt.text_tokenizer.TextTokenizer`:
    ``encode(str) -> pieces`` runs the tokenizer's normalizer, pre-tokenizer and model but never
    matches its added tokens, so text such as ``"<|im_end|>"`` is spelled out in ordinary pieces;
    ``decode(pieces) -> str`` uses the tokenizer's decoder; ``pieces()`` lists the model tokens in
    id order.  ``vocab``: every token of the tokenizer (added ones included) -> its id, i.e. the
    pretrained embedding rows.

    Invariants checked at load: no model token contains white space (a sequence of pieces is
    stored as one space-separated line) and none is a TtT special or audio token.
    """

    def __init__(self, name_or_dir: str):
        from transformers import AutoTokenizer

        self.model_file = str(name_or_dir)
        hf = AutoTokenizer.from_pretrained(name_or_dir)
        self._tok = getattr(hf, "backend_tokenizer", None)
        if self._tok is None:
            raise ValueError(f"{name_or_dir}: needs a fast tokenizer (tokenizer.json), got {type(hf).__name__}")
        self.vocab: Dict[str, int] = dict(hf.get_vocab())
        model_vocab = self._tok.get_vocab(with_added_tokens=False)
        self._pieces = sorted(model_vocab, key=model_vocab.get)
        self._unk = getattr(self._tok.model, "unk_token", None)
        reserved = {PAD, *SPECIAL_TEXT_TOKENS, *SPECIAL_AUDIO_TOKENS}
        for piece in self._pieces:
            if not piece or any(c.isspace() for c in piece):
                raise ValueError(f"{name_or_dir}: model token {piece!r} is empty or contains white space")
            if piece in reserved or audio_code(piece) is not None or (piece == UNK and piece != self._unk):
                raise ValueError(f"{name_or_dir}: model token {piece!r} collides with the TtT special tokens")

    def encode(self, text: str) -> List[str]:
        """Text -> pieces; the model's unknown token (if it has one) becomes ``<unk>``."""
        tok = self._tok
        if tok.normalizer is not None:
            text = tok.normalizer.normalize_str(text)
        words = [w for w, _ in tok.pre_tokenizer.pre_tokenize_str(text)] if tok.pre_tokenizer is not None else [text]
        return [UNK if t.value == self._unk else t.value for w in words for t in tok.model.tokenize(w)]

    def decode(self, pieces: Sequence[str]) -> str:
        pieces = [p for p in pieces if p != UNK]
        if self._tok.decoder is None:
            return " ".join(pieces)
        return self._tok.decoder.decode(pieces)

    def pieces(self) -> List[str]:
        """The model tokens in id order (no added tokens, no unknown token)."""
        return [p for p in self._pieces if p != self._unk]


def pretrained_rows(token_list: Sequence[str], pretrained_vocab: Dict[str, int]) -> List[int]:
    """Per id of ``token_list``: the pretrained row it takes, or -1 for a new row (module docstring).

    Raises if a text piece is not a pretrained token (a token list made for another tokenizer).
    """
    rows = [pretrained_vocab.get(official_token(t), -1) for t in token_list]
    reserved = {PAD, UNK, *SPECIAL_TEXT_TOKENS, *SPECIAL_AUDIO_TOKENS}
    foreign = [t for t, r in zip(token_list, rows) if r < 0 and t not in reserved and audio_code(t) is None]
    if foreign:
        raise ValueError(f"{len(foreign)} text pieces of the token list are not tokens of the pretrained tokenizer, "
                         f"e.g. {foreign[:5]}: write the token list with make_token_list --bpemodel <the pretrained model>")
    return rows


def official_codebook_size(pretrained_vocab: Dict[str, int]) -> int:
    """K such that ``<|audio_0|> .. <|audio_{K-1}|>`` are all in the vocabulary (0: none)."""
    codes = {audio_code(t) for t in pretrained_vocab} - {None}
    k = 0
    while k in codes:
        k += 1
    return k
