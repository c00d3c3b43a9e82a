import random

import pytest
import torch

from espnet2_ttt.sequence import check_sequence, supervised_mask
from espnet2_ttt.sequence_builder import chat

from helpers import chat_sequence, tiny_vocab


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


CHAT = ("<|im_start|> <|system|> <|im_end|> <|im_start|> <|user|> <|begin_of_audio|> <|audio_1|> <|end_of_audio|> "
        "<|im_end|> <|im_start|> <|assistant|> ▁w1 <|begin_of_audio|> <|audio_2|> <|end_of_audio_new|> ▁w2 "
        "<|begin_of_quad|> <|audio_3|> <|end_of_audio_span_last|> <|im_end|>")


def test_well_formed_examples_pass_the_grammar():
    rng = random.Random(0)
    for _ in range(50):
        check_sequence(chat_sequence(rng, rng.randint(1, 4)))
    check_sequence(CHAT.split())
    check_sequence((CHAT + " <|im_start|> <|user|> ▁w3 <|im_end|> <|im_start|> <|assistant|> ▁w4 <|im_end|>").split())
    check_sequence(chat(["▁w1"], [("user", ["▁w2"]), ("assistant", ["▁w3"])], newline=["▁\n"]))  # official template
    check_sequence("▁w1 <|begin_of_audio|> <|audio_3|> <|end_of_audio_new|> ▁w2".split())  # PT data


@pytest.mark.parametrize(
    "tokens, message",
    [
        ("", "empty sequence"),
        (CHAT.replace(" <|end_of_audio_span_last|>", ""),
         "token #18 '<|im_end|>': the audio span opened at token #16 '<|begin_of_quad|>' is not closed (a code or "
         "<|end_of_audio_span_last|> expected)"),
        (CHAT.replace(" <|end_of_audio_span_last|> <|im_end|>", ""),
         "the audio span opened at token #16 '<|begin_of_quad|>' is never closed (missing <|end_of_audio_span_last|>)"),
        (CHAT.replace("<|end_of_audio|>", "<|end_of_audio_new|>"),  # user audio closed like an assistant span
         "token #7 '<|end_of_audio_new|>': the audio span opened at token #5 '<|begin_of_audio|>' is not closed "
         "(a code or <|end_of_audio|> expected)"),
        (CHAT.replace("<|audio_3|> ", ""), "token #17 '<|end_of_audio_span_last|>': the audio span opened at token #16 "
                                          "holds no code"),
        ("▁w1 <|audio_1|>", "token #1 '<|audio_1|>' outside an audio span (on the generated side)"),
        (CHAT + " <|audio_1|>", "token #20 '<|audio_1|>' outside an audio span (between turns)"),
        (CHAT.replace("<|begin_of_audio|> <|audio_1|>", "<|begin_of_quad|> <|audio_1|>"),
         "token #5 '<|begin_of_quad|>' outside an audio span (on the prompt side)"),
        (CHAT.replace(" <|im_end|>", "", 1), "token #2 '<|im_start|>': the turn before is not closed by <|im_end|>"),
        (CHAT[: -len(" <|im_end|>")], "the last turn is not closed by <|im_end|>"),
        (CHAT + " <|im_end|>", "token #20 '<|im_end|>' outside a turn"),
        (CHAT.replace("<|im_start|> <|assistant|>", "<|im_start|> ▁w0"), "token #10 '▁w0': a role token must follow "
                                                                         "<|im_start|>"),
        (CHAT.replace("▁w2", "<|user|>"), "token #15 '<|user|>': a role token only follows <|im_start|>"),
        (CHAT.replace("<|assistant|>", "<|user|>"), "token #14 '<|end_of_audio_new|>': the audio span opened at token "
                                                    "#12 '<|begin_of_audio|>' is not closed (a code or <|end_of_audio|> "
                                                    "expected)"),
        ("<|im_start|> <|user|> ▁w1 <|im_end|>", "no assistant turn: nothing to train on"),
        ("<|im_start|> <|user|> ▁w1 <|im_end|> <|im_start|> <|assistant|> <|im_end|>",
         "token #6 '<|im_end|>': empty assistant turn (nothing to answer)"),
        ("▁w1 <|im_end|>", "token #1 '<|im_end|>': PT data (not starting with <|im_start|>) has no chat template token"),
        (CHAT.replace("▁w1", "<|mask_token|>"), "token #11 '<|mask_token|>' never appears in training data"),
        ("▁w1 <|truncated|>", "token #1 '<|truncated|>' never appears in training data"),
        ("▁w1 <pad>", "token #1 '<pad>' never appears in training data"),
    ],
)
def test_ill_formed_examples_are_refused_naming_the_token(tokens, message):
    with pytest.raises(ValueError) as error:
        check_sequence(tokens.split())
    assert str(error.value) == message
