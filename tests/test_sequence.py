import torch

from espnet2_ttt.sequence import supervised_mask

from helpers import tiny_vocab


def _mask_of(v, tokens, pad=0):
    ids = torch.tensor([v.tokens_to_ids(tokens) + [0] * pad])
    valid = torch.arange(ids.shape[1])[None] < len(tokens)
    return supervised_mask(ids, valid, v)[0].tolist()


def test_only_assistant_content_and_its_end_are_supervised():
    v = tiny_vocab()
    toks = "<|im_start|> <|system|> ▁w1 <|im_end|> <|im_start|> <|user|> <|begin_of_audio|> <|audio_1|> <|end_of_audio|> <|im_end|>".split()
    toks += "<|im_start|> <|assistant|> ▁w2 <|begin_of_quad|> <|audio_2|> <|end_of_audio_span_last|> <|im_end|>".split()
    got = _mask_of(v, toks, pad=2)
    assert got == [False] * 12 + [True] * 5 + [False] * 2


def test_multi_turn_user_audio_is_never_supervised():
    v = tiny_vocab()
    turn_u = "<|im_start|> <|user|> <|begin_of_audio|> <|audio_1|> <|end_of_audio|> <|im_end|>".split()
    turn_a = "<|im_start|> <|assistant|> ▁w2 <|im_end|>".split()
    toks = "<|im_start|> <|system|> <|im_end|>".split() + turn_u + turn_a + turn_u + turn_a
    got = _mask_of(v, toks)
    expected = [False] * 3 + ([False] * 6 + [False, False, True, True]) * 2
    assert got == expected


def test_plain_interleaved_data_is_fully_supervised():
    v = tiny_vocab()
    toks = "▁w1 <|begin_of_audio|> <|audio_3|> <|end_of_audio_new|> ▁w2".split()
    assert _mask_of(v, toks, pad=1) == [True] * 5 + [False]
