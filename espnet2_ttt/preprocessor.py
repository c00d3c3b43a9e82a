"""Turns one raw training line into token ids, strictly: a bad line is an error naming it."""
from typing import Dict, Union

import numpy as np
from espnet2.train.preprocessor import AbsPreprocessor

from espnet2_ttt.vocabulary import PAD, UNK, TtTVocabulary


class TtTPreprocessor(AbsPreprocessor):
    """``{"seq": "tok tok ..."}`` -> ``{"seq": int64 [L]}``.

    Raises ValueError naming the utterance for an empty sequence, a sequence longer than
    ``max_seq_len``, a token missing from the token list (e.g. an audio code beyond the
    codebook) and literal ``<pad>``/``<unk>`` tokens, which never belong in training data.
    """

    def __init__(self, train: bool, vocab: TtTVocabulary, max_seq_len: int, seq_name: str = "seq"):
        super().__init__(train)
        self.vocab, self.max_seq_len, self.seq_name = vocab, max_seq_len, seq_name

    def __call__(self, uid: str, data: Dict[str, Union[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        if self.seq_name not in data:
            return data
        raw = data[self.seq_name]
        if not isinstance(raw, str):
            raise TypeError(f"utterance {uid!r}: '{self.seq_name}' must be loaded with data type 'text'")
        tokens = raw.split()
        if not tokens:
            raise ValueError(f"utterance {uid!r}: empty sequence")
        if len(tokens) > self.max_seq_len:
            raise ValueError(
                f"utterance {uid!r}: {len(tokens)} tokens exceed max_seq_len={self.max_seq_len} "
                "(filter long sequences when building the data, e.g. build_sequences --max_len)"
            )
        for bad in (PAD, UNK):
            if bad in tokens:
                raise ValueError(f"utterance {uid!r}: token #{tokens.index(bad)} is {bad}, not allowed in data")
        out = dict(data)
        out[self.seq_name] = np.asarray(self.vocab.tokens_to_ids(tokens, where=f"utterance {uid!r}"), dtype=np.int64)
        return out
