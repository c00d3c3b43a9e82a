"""Bilingual (English + Mandarin) SentencePiece text tokenizer for TtT.

Pieces are the text-side tokens of the token list (``TtTVocabulary.build(tokenizer.pieces(), K)``;
read back by :meth:`TtTVocabulary.from_file`).
With a pretrained LLM backbone the LLM's own tokenizer takes this role instead
(:func:`load_text_tokenizer`, :mod:`espnet2_ttt.pretrained_vocab`).
Invariants of a tokenizer accepted here:

* no piece contains white space (SentencePiece writes a space as ``▁``), so a sequence of
  pieces can be stored as one space-separated line;
* no piece looks like a TtT special token (``<pad>`` or anything of the form ``<|...|>``): a text
  segment can never turn into a chat, span or audio token;
* ``encode`` returns SentencePiece's unknown piece as our ``<unk>`` (not the unknown surface
  string), so every piece it returns is in the token list.

Models trained by :meth:`TextTokenizer.train` are *concatenation safe*: no dummy ``▁`` is
prepended and white space is kept verbatim, so ``decode(encode(a) + encode(b))`` equals
``decode(encode(a + b))``.  Text that is cut into segments around special tokens (official TtT
data) therefore keeps its spacing.  Training is deterministic for a given input file and options
(no sentence shuffling, fixed seed); note that the result depends on ``num_threads``.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import List, Sequence, Union

import sentencepiece as spm

from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.utils.table import atomic_path, read_utf8_text, reading, write_text_atomic
from espnet2_ttt.vocabulary import PAD, UNK

_SPECIAL_LIKE_RE = re.compile(r"^<\|.*\|>$")


def _load_checked(model_proto: bytes, where: str) -> spm.SentencePieceProcessor:
    """Load a serialized model and enforce the piece invariants of the module docstring;
    anything else is an InputError naming ``where``."""
    try:
        sp = spm.SentencePieceProcessor(model_proto=model_proto)
    except RuntimeError:  # its message is the parser's source line
        raise InputError(f"{where}: not a SentencePiece model (it does not parse)") from None
    if sp.get_piece_size() == 0:  # e.g. an empty file: an empty model parses
        raise InputError(f"{where}: not a SentencePiece model (it has no pieces)")
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        if sp.is_unknown(i):
            continue
        if piece == PAD or _SPECIAL_LIKE_RE.match(piece):
            raise InputError(f"{where}: piece #{i} {piece!r} collides with the TtT special tokens")
        if not piece or any(c.isspace() for c in piece):
            raise InputError(f"{where}: piece #{i} {piece!r} is empty or contains white space")
    return sp


class TextTokenizer:
    """A loaded SentencePiece model: ``encode(str) -> pieces``, ``decode(pieces) -> str``."""

    def __init__(self, model_file: Union[str, Path]):
        self.model_file = str(model_file)
        self._sp = _load_checked(Path(model_file).read_bytes(), self.model_file)

    @classmethod
    def train(
        cls,
        text_file: Union[str, Path],
        model_prefix: Union[str, Path],
        vocab_size: int,
        model_type: str = "unigram",
        character_coverage: float = 0.9995,
        input_sentence_size: int = 0,
        byte_fallback: bool = True,
        num_threads: int = 4,
        seed: int = 0,
    ) -> "TextTokenizer":
        """Train on ``text_file`` (one sentence a line) and write ``<prefix>.model`` / ``.vocab``.

        ``input_sentence_size`` > 0 uses the *first* that many lines (never a random sample);
        0 uses all.  ``byte_fallback`` spells characters outside the model as UTF-8 byte pieces
        ``<0xNN>`` instead of ``<unk>`` (it needs ``vocab_size`` > 256 + the required characters;
        the ``char`` model type does not support it).  Both files are written atomically.
        A missing text file, one that is not UTF-8 (named ``file:line``) or too little text is
        an InputError.
        """
        text_file = Path(text_file)
        if not text_file.is_file():
            raise InputError(f"{text_file}: SentencePiece training text does not exist")
        read_utf8_text(text_file)  # SentencePiece would take invalid bytes silently
        model = io.BytesIO()
        spm.set_random_generator_seed(seed)
        try:
            spm.SentencePieceTrainer.train(
                input=str(text_file),
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                input_sentence_size=input_sentence_size,
                shuffle_input_sentence=False,
                byte_fallback=byte_fallback,
                num_threads=num_threads,
                add_dummy_prefix=False,
                remove_extra_whitespaces=False,
                unk_id=0,
                bos_id=-1,
                eos_id=-1,
                pad_id=-1,
                minloglevel=2,
            )
        except RuntimeError as e:  # sentencepiece reports bad options / too small data this way
            raise InputError(f"{text_file}: SentencePiece training failed: {e}") from None
        sp = _load_checked(model.getvalue(), f"model trained on {text_file}")
        vocab = "".join(f"{sp.id_to_piece(i)}\t{sp.get_score(i)}\n" for i in range(sp.get_piece_size()))
        with atomic_path(f"{model_prefix}.model") as tmp:
            tmp.write_bytes(model.getvalue())
        write_text_atomic(f"{model_prefix}.vocab", vocab)
        return cls(f"{model_prefix}.model")

    def encode(self, text: str) -> List[str]:
        """Text -> pieces; characters the model cannot represent become ``<unk>``."""
        sp = self._sp
        return [UNK if sp.is_unknown(i) else sp.id_to_piece(i) for i in sp.encode(text)]

    def decode(self, pieces: Sequence[str]) -> str:
        return self._sp.decode_pieces(list(pieces))

    def pieces(self) -> List[str]:
        """The piece vocabulary in model order, without SentencePiece's unknown/control pieces."""
        sp = self._sp
        return [
            sp.id_to_piece(i)
            for i in range(sp.get_piece_size())
            if not (sp.is_unknown(i) or sp.is_control(i))
        ]


def load_text_tokenizer(path: Union[str, Path]):
    """The text tokenizer named by a ``bpemodel`` option: a SentencePiece ``.model`` file gives a
    :class:`TextTokenizer`; anything else (a Hugging Face tokenizer directory or hub name, the
    pretrained backbone's own tokenizer) gives a :class:`espnet2_ttt.pretrained_vocab.HFTextTokenizer`.
    A file that is not a model, or a name that is neither, is an InputError naming it."""
    if Path(path).is_file():
        return TextTokenizer(path)
    if str(path).endswith(".model"):
        raise InputError(f"{path}: SentencePiece model not found")
    from espnet2_ttt.pretrained_vocab import HFTextTokenizer

    with reading(path, (OSError, ValueError), "not a SentencePiece model or Hugging Face tokenizer"):
        return HFTextTokenizer(str(path))
