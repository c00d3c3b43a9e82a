import pytest
import torch

from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.vocabulary import MASK, PAD, TtTVocabulary, audio_token

from helpers import WORDS, tiny_vocab


def test_layout_sides_and_round_trip(tmp_path):
    v = tiny_vocab(codebook_size=8)
    assert v.token_list[0] == PAD and v.pad_id == 0
    assert v.codebook_size == 8
    ids = torch.arange(len(v))
    side = v.is_audio_side(ids)
    audio = {t for t, s in zip(v.token_list, side.tolist()) if s}
    assert audio == {audio_token(k) for k in range(8)} | {MASK, "<|end_of_audio_new|>", "<|end_of_audio_span_last|>"}
    # begin-of-span markers are text side: the AR head predicts them
    assert not v.is_audio_side(torch.tensor([v.soa_id, v.soa_last_id, v.user_eoa_id])).any()
    assert torch.equal(v.id_to_code(v.code_to_id(torch.arange(8))), torch.arange(8))
    assert v.id_to_code(torch.tensor([v.mask_id])).item() == -1
    v.save(tmp_path / "tokens.txt")
    w = TtTVocabulary.from_file(tmp_path / "tokens.txt")
    assert w.token_list == v.token_list
    assert all(t in w.token_list for t in WORDS)


def test_invalid_token_lists_are_rejected():
    v = tiny_vocab()
    with pytest.raises(ValueError, match="no audio tokens"):
        TtTVocabulary([t for t in v.token_list if not t.startswith("<|audio_")])
    with pytest.raises(ValueError, match="duplicate"):
        TtTVocabulary(v.token_list + ["▁w1"])
    with pytest.raises(ValueError, match="lacks the TtT special tokens"):
        TtTVocabulary([t for t in v.token_list if t != MASK])
    with pytest.raises(ValueError, match="white space"):
        TtTVocabulary.build(["a b"], 4)


def test_strict_token_conversion_names_the_utterance():
    v = tiny_vocab(codebook_size=16)
    assert v.tokens_to_ids(["▁w3", audio_token(15)], "utt1") == [v.token2id["▁w3"], v.first_code_id + 15]
    with pytest.raises(ValueError, match=r"utt7.*out of range for codebook size 16"):
        v.tokens_to_ids([audio_token(16)], "utt7")
    with pytest.raises(ValueError, match=r"utt8.*not in the token list"):
        v.tokens_to_ids(["hello"], "utt8")
    with pytest.raises(ValueError, match="out of range"):
        v.code_to_id(torch.tensor([16]))


def _token_file(change):
    """The bytes of tiny_vocab()'s token list file after ``change`` (lines -> lines)."""
    return "".join(t + "\n" for t in change(list(tiny_vocab().token_list))).encode("utf-8")


@pytest.mark.parametrize("data, message", [
    (b"", "{path}: token_list must start with <pad> (id 0)"),
    (b"\xef\xbb\xbf" + _token_file(lambda t: t), "{path}:1: starts with a byte-order mark (save it as UTF-8 without BOM)"),
    (_token_file(lambda t: t[:2] + ["x"] + t[2:]).replace(b"\nx\n", b"\n\xff\n"),
     "{path}:3: not valid UTF-8 (byte 0xff at column 1)"),
    (_token_file(lambda t: t[:3] + [""] + t[3:]), "{path}:4: a blank line, or blanks around the token ''"),
    (_token_file(lambda t: t + [t[5]]), "{path}:{n}: token '{t5}' again (first on line 6)"),
    (_token_file(lambda t: [x for x in t if x != MASK]),
     "{path}: token_list lacks the TtT special tokens ['<|mask_token|>']"),
    (_token_file(lambda t: [x for x in t if x != audio_token(2)]),
     "{path}:{a3}: <|audio_3|> where <|audio_2|> is expected (the codes <|audio_0|> .. <|audio_K-1|> are "
     "consecutive lines in order)"),
])
def test_token_list_files_are_refused_naming_file_and_line(tmp_path, data, message):
    tokens = tiny_vocab().token_list
    path = tmp_path / "tokens.txt"
    path.write_bytes(data)
    with pytest.raises(InputError) as e:
        TtTVocabulary.from_file(path)
    assert str(e.value) == message.format(path=path, n=len(tokens) + 1, t5=tokens[5], a3=tokens.index(audio_token(3)))
