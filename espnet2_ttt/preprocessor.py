"""Turns one raw training line into token ids, strictly: a bad line is an error naming it."""
from typing import Dict, List, Sequence, Union

import numpy as np
from espnet2.train.preprocessor import AbsPreprocessor

from espnet2_ttt.sequence import check_sequence
from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.vocabulary import TtTVocabulary


class TtTPreprocessor(AbsPreprocessor):
    """``{"seq": "tok tok ..."}`` -> ``{"seq": int64 [L]}``; the one check of a sequence's tokens.

    A token missing from the token list (e.g. an audio code beyond the codebook), a sequence
    longer than ``max_seq_len`` and one that breaks the sequence grammar
    (:func:`espnet2_ttt.sequence.check_sequence`: unclosed spans, ``<pad>``/``<unk>``, ...) raise
    InputError ``<file>: utterance '<utt_id>': <what>``, ``<file>`` being the one of ``sources`` (the sequence
    files read) that holds the utterance.
    """

    def __init__(self, train: bool, vocab: TtTVocabulary, max_seq_len: int, sources: Sequence[str] = (),
                 seq_name: str = "seq"):
        super().__init__(train)
        self.vocab, self.max_seq_len, self.sources, self.seq_name = vocab, max_seq_len, list(sources), seq_name

    def __call__(self, uid: str, data: Dict[str, Union[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        if self.seq_name not in data:
            return data
        raw = data[self.seq_name]
        if not isinstance(raw, str):
            raise TypeError(f"utterance {uid!r}: '{self.seq_name}' must be loaded with data type 'text'")
        tokens = raw.split()
        where = f"utterance '{uid}'"
        try:
            ids = self.vocab.tokens_to_ids(tokens, where)
        except ValueError as e:  # "<where>: token #i '...' is invalid: ..."
            raise InputError(f"{self._source_of(uid, tokens)}: {e}") from None
        try:
            if len(tokens) > self.max_seq_len:
                raise ValueError(f"{len(tokens)} tokens exceed max_seq_len={self.max_seq_len} "
                                 "(filter long sequences when building the data, e.g. build_sequences --max_len)")
            check_sequence(tokens)
        except ValueError as e:
            raise InputError(f"{self._source_of(uid, tokens)}: {where}: {e}") from None
        return {**data, self.seq_name: np.asarray(ids, dtype=np.int64)}

    def _source_of(self, uid: str, tokens: List[str]) -> str:
        """The file of ``sources`` with the line ``uid tokens`` (error messages only)."""
        for path in self.sources:
            with open(path, encoding="utf-8", errors="replace") as f:
                if any(line.split() == [uid, *tokens] for line in f):
                    return path
        return " or ".join(self.sources) or self.seq_name
