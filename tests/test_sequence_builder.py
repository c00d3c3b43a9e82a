"""Tests of the text tokenizer, the interleaved layouts and the make_token_list / build_sequences CLIs."""
import argparse
import io
import json
import logging

import pytest
import sentencepiece as spm
import yaml

from espnet2_ttt.bin import build_sequences, make_token_list
from espnet2_ttt.sequence_builder import (
    ASR_PROMPT,
    TTS_PROMPT,
    SequenceBuilder,
    SequenceLayout,
    chat,
    drop_untrainable,
    interleave,
    sequence_layout_arg,
    user_audio,
    write_sequence_file,
)
from espnet2_ttt.text_tokenizer import TextTokenizer
from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.vocabulary import TtTVocabulary

from user_errors import error_line

SOA, EOA = "<|begin_of_audio|>", "<|end_of_audio_new|>"
QUAD, EOL = "<|begin_of_quad|>", "<|end_of_audio_span_last|>"
USER_EOA = "<|end_of_audio|>"
S, E = "<|im_start|>", "<|im_end|>"
SYS, USR, AST = "<|system|>", "<|user|>", "<|assistant|>"
CORPUS = f"hello world\nthe cat sat on a mat\nsay hi\n你好世界\n{ASR_PROMPT}\n{TTS_PROMPT}\n"


def a(*codes):
    return [f"<|audio_{c}|>" for c in codes]


@pytest.fixture(scope="module")
def char_tokenizer(tmp_path_factory):
    """A real SentencePiece model with one piece per character of CORPUS (exact expectations)."""
    folder = tmp_path_factory.mktemp("spm")
    (folder / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    return TextTokenizer.train(
        folder / "corpus.txt", folder / "char", 100, model_type="char", character_coverage=1.0, byte_fallback=False
    )


# ---------------------------------------------------------------------- text tokenizer
def test_char_tokenizer_pieces_and_unknown(char_tokenizer):
    assert sorted(char_tokenizer.pieces()) == sorted(set(CORPUS.replace("\n", "").replace(" ", "▁")))
    assert char_tokenizer.encode("hi cat") == ["h", "i", "▁", "c", "a", "t"]
    assert char_tokenizer.encode("你好q") == ["你", "好", "<unk>"]  # not the surface string "q"


def test_unigram_training_deterministic_concatenation_safe_byte_fallback(tmp_path):
    text = tmp_path / "corpus.txt"
    words = ["the", "quick", "brown", "fox", "lazy", "dog", "今天", "天气", "很好"]
    text.write_text("".join(f"{x} {y}\n" for x in words for y in words), encoding="utf-8")
    first = TextTokenizer.train(text, tmp_path / "a", vocab_size=293)  # byte fallback: 256 + 36 pieces + <unk>
    TextTokenizer.train(text, tmp_path / "b", vocab_size=293)
    assert (tmp_path / "a.model").read_bytes() == (tmp_path / "b.model").read_bytes()
    assert (tmp_path / "a.vocab").read_text(encoding="utf-8").splitlines()[0].startswith("<unk>\t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.model", "a.vocab", "b.model", "b.vocab", "corpus.txt"]
    assert {"lazy", "今天"} <= set(first.pieces())
    pieces = first.encode("the lazy ") + first.encode(" fox今天")
    assert first.decode(pieces) == "the lazy  fox今天"
    assert all(p and not any(c.isspace() for c in p) for p in first.pieces())
    assert first.encode("fox龘") == ["fox", "<0xE9>", "<0xBE>", "<0x98>"]  # unseen character: UTF-8 bytes
    assert first.decode(first.encode("fox龘")) == "fox龘"


def test_tokenizer_rejects_piece_colliding_with_specials(tmp_path):
    (tmp_path / "corpus.txt").write_text("hello world\n" * 10, encoding="utf-8")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        input=str(tmp_path / "corpus.txt"), model_writer=model, vocab_size=12,
        user_defined_symbols=["<|im_end|>"], minloglevel=2,
    )
    (tmp_path / "bad.model").write_bytes(model.getvalue())
    with pytest.raises(ValueError, match=r"bad.model: piece #\d+ '<\|im_end\|>' collides"):
        TextTokenizer(tmp_path / "bad.model")


def test_training_errors_name_the_input(tmp_path):
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    with pytest.raises(InputError, match=r"corpus.txt: SentencePiece training failed: .*Vocabulary size"):
        TextTokenizer.train(tmp_path / "corpus.txt", tmp_path / "m", vocab_size=5)
    with pytest.raises(InputError, match="missing.txt: SentencePiece training text does not exist"):
        TextTokenizer.train(tmp_path / "missing.txt", tmp_path / "m", vocab_size=50)
    with pytest.raises(InputError, match="--bpemodel must end with .model"):
        make_token_list.main(["--bpemodel", str(tmp_path / "bpe"), "--spm_train_text", str(tmp_path / "corpus.txt"),
                              "--codebook_size", "4", "--output", str(tmp_path / "tokens.txt")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt"]


def test_make_token_list_refuses_a_garbage_model_and_text_that_is_not_utf8(tmp_path, capsys):
    garbage = tmp_path / "bpe.model"
    garbage.write_bytes(bytes(range(256)) * 4)
    argv = ["--bpemodel", garbage, "--codebook_size", "4", "--output", tmp_path / "tokens.txt"]
    assert error_line(capsys, make_token_list.main, "make_token_list", argv) == \
        f"make_token_list: error: {garbage}: not a SentencePiece model (it does not parse)"
    garbage.write_bytes(b"")  # an empty model parses
    assert error_line(capsys, make_token_list.main, "make_token_list", argv) == \
        f"make_token_list: error: {garbage}: not a SentencePiece model (it has no pieces)"
    assert error_line(capsys, make_token_list.main, "make_token_list", argv[:1] + [tmp_path / "no.model"] + argv[2:]) == \
        f"make_token_list: error: {tmp_path}/no.model: SentencePiece model not found"
    (tmp_path / "corpus.txt").write_bytes(CORPUS.encode("utf-8") + "caf\u00e9 au lait\n".encode("latin-1"))
    line = error_line(capsys, make_token_list.main, "make_token_list",
                      argv + ["--spm_train_text", tmp_path / "corpus.txt", "--nbpe", "50"])
    assert line == (f"make_token_list: error: {tmp_path}/corpus.txt:{CORPUS.count(chr(10)) + 1}: not valid UTF-8 "
                    "(byte 0xe9 at column 4)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bpe.model", "corpus.txt"]  # the garbage was not replaced


# ---------------------------------------------------------------------- interleaving rules
def test_interleave_official_layout_13_26():
    text = [f"t{i}" for i in range(30)]
    codes = list(range(60))
    assert interleave(text, codes) == (
        text[:13] + [SOA] + a(*range(26)) + [EOA]
        + text[13:26] + [SOA] + a(*range(26, 52)) + [EOA]
        + text[26:] + [QUAD] + a(*range(52, 60)) + [EOL]
    )


@pytest.mark.parametrize(
    "text, codes, expected",
    [
        # text runs out first: the final span carries all remaining codes
        ("abcde", range(10), ["a", "b", SOA, *a(0, 1, 2), EOA, "c", "d", SOA, *a(3, 4, 5), EOA, "e", QUAD, *a(6, 7, 8, 9),
                              EOL]),
        # text length a multiple of the chunk: the last full chunk takes the final span
        ("abcd", range(10), ["a", "b", SOA, *a(0, 1, 2), EOA, "c", "d", QUAD, *a(*range(3, 10)), EOL]),
        # codes run out first: later chunks run together, the final span gets the rest
        ("abcdefg", range(5), ["a", "b", SOA, *a(0, 1, 2), EOA, "c", "d", "e", "f", "g", QUAD, *a(3, 4), EOL]),
        # exactly one span's worth left: a non-final span never takes the last code
        ("abc", range(3), ["a", "b", "c", QUAD, *a(0, 1, 2), EOL]),
        # fewer codes than one span
        ("abcde", [7, 8], ["a", "b", "c", "d", "e", QUAD, *a(7, 8), EOL]),
        # text shorter than one chunk
        ("a", range(7), ["a", QUAD, *a(*range(7)), EOL]),
        # zero-length text
        ("", [1, 2], [QUAD, *a(1, 2), EOL]),
        # no codes: text only
        ("abc", [], ["a", "b", "c"]),
    ],
)
def test_interleave_edge_cases(text, codes, expected):
    assert interleave(list(text), list(codes), chunk_len=2, span_len=3) == expected


def test_interleave_errors():
    with pytest.raises(ValueError, match="empty text and no codes"):
        interleave([], [])
    with pytest.raises(ValueError, match="must be >= 1"):
        interleave(["a"], [1], chunk_len=0)
    with pytest.raises(ValueError, match="user audio without codes"):
        user_audio([])
    with pytest.raises(ValueError, match="role"):
        chat([], [("system", ["x"])])


# ---------------------------------------------------------------------- task layouts
@pytest.fixture
def builder(char_tokenizer):
    return SequenceBuilder(char_tokenizer, SequenceLayout(chunk_len=2, span_len=3, asr_prompt="hi", tts_prompt="say",
                                                          qa_prompt=""))


def test_asr_layout_respeaks_input(builder):
    assert builder.asr([5, 6, 7, 8], "ab c") == [
        S, SYS, "h", "i", E,
        S, USR, SOA, *a(5, 6, 7, 8), USER_EOA, E,
        S, AST, "a", "b", SOA, *a(5, 6, 7), EOA, "▁", "c", QUAD, *a(8), EOL, E,
    ]


def test_asr_text_only_and_empty_transcript(char_tokenizer, builder):
    text_only = SequenceBuilder(char_tokenizer, SequenceLayout(asr_prompt="hi", text_only_asr=True))
    assert text_only.asr([5, 6], "ab") == [S, SYS, "h", "i", E, S, USR, SOA, *a(5, 6), USER_EOA, E, S, AST, "a", "b", E]
    assert builder.asr([5], "")[-5:] == [AST, QUAD, *a(5), EOL, E]


def test_tts_layout(builder):
    assert builder.tts("hello", [1, 2, 3, 4, 5]) == [
        S, SYS, E,
        S, USR, "s", "a", "y", "▁", "h", "e", "l", "l", "o", E,
        S, AST, "h", "e", SOA, *a(1, 2, 3), EOA, "l", "l", "o", QUAD, *a(4, 5), EOL, E,
    ]
    with pytest.raises(ValueError, match="tts needs the codes"):
        builder.tts("hello", [])


def test_qa_layouts(builder):
    assert builder.qa([9, 8], "hi", [1, 2, 3, 4]) == [
        S, SYS, E,
        S, USR, SOA, *a(9, 8), USER_EOA, E,
        S, AST, "h", "i", QUAD, *a(1, 2, 3, 4), EOL, E,
    ]
    assert builder.qa([9], "cat")[-6:] == [S, AST, "c", "a", "t", E]


def test_text_chat_and_interleaved_pt(builder):
    assert builder.text_chat("hi", "cat") == [S, SYS, E, S, USR, "h", "i", E, S, AST, "c", "a", "t", E]
    assert builder.interleaved("hello", range(4)) == ["h", "e", SOA, *a(0, 1, 2), EOA, "l", "l", "o", QUAD, *a(3), EOL]


# ---------------------------------------------------------------------- sequence files
def test_write_sequence_file_sorted_with_shapes(tmp_path, caplog):
    seqs = {"b": ["x", "y"], "a": ["z"], "c": ["1", "2", "3"], "d": ["<unk>"]}
    with caplog.at_level(logging.WARNING):
        kept = drop_untrainable(seqs, max_len=2)
    assert "skipped 1 of 4 sequences longer than 2 tokens, e.g. ['c']" in caplog.text
    assert "skipped 1 of 4 sequences containing <unk>, e.g. ['d']" in caplog.text
    write_sequence_file(kept, tmp_path / "out" / "text", tmp_path / "out" / "shape")
    assert (tmp_path / "out" / "text").read_text() == "a z\nb x y\n"
    assert (tmp_path / "out" / "shape").read_text() == "a 1\nb 2\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["shape", "text"]
    with pytest.raises(ValueError, match="white space"):
        write_sequence_file({"a b": ["x"]}, tmp_path / "bad")


# ---------------------------------------------------------------------- CLIs
@pytest.fixture
def data_dir(tmp_path):
    """spm model + token list (K=16) via make_token_list, and a small data dir."""
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    make_token_list.main([
        "--bpemodel", str(tmp_path / "spm" / "bpe.model"), "--spm_train_text", str(tmp_path / "corpus.txt"),
        "--nbpe", "100", "--spm_model_type", "char", "--spm_character_coverage", "1.0", "--spm_byte_fallback", "false",
        "--codebook_size", "16", "--output", str(tmp_path / "tokens.txt"),
    ])
    (tmp_path / "text").write_text("u2 hi\nu1 cat\n", encoding="utf-8")
    (tmp_path / "codes").write_text("u1 1 2 3 4\nu2 5\nq1 9 9\nr1 7\n", encoding="utf-8")
    records = [
        {"id": "qa-q1", "task": "qa", "lang": "en", "category": "fact", "question_utt": "q1",
         "question_text": "say hi", "answer_text": "hi", "answer_utt": "r1", "answer_key": ["hi"]},
        {"id": "qa-q1b", "task": "qa", "lang": "en", "category": "fact", "question_utt": "q1",
         "question_text": "say hi", "answer_text": "hi", "answer_utt": None, "answer_key": ["hi"]},
        {"id": "tts-r1", "task": "tts", "lang": "zh", "category": "sentence", "question_utt": None,
         "question_text": "你好", "answer_text": "你好", "answer_utt": "r1", "answer_key": ["你好"]},
    ]
    (tmp_path / "dialogues.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return tmp_path


def run_build(d, *extra):
    common = ["--bpemodel", str(d / "spm" / "bpe.model"), "--token_list", str(d / "tokens.txt")]
    common += ["--codes", str(d / "codes")]
    build_sequences.main(common + ["--output", str(d / "out" / "text"), *extra])
    return dict(line.split(" ", 1) for line in (d / "out" / "text").read_text(encoding="utf-8").splitlines())


def test_make_token_list_layout(data_dir):
    vocab = TtTVocabulary.from_file(data_dir / "tokens.txt")
    assert vocab.codebook_size == 16
    assert vocab.token_list[-1] == "<|audio_15|>"
    assert {"h", "i", "▁", "你"} <= set(vocab.token_list)
    assert (data_dir / "spm" / "bpe.vocab").is_file()


def test_build_sequences_from_text_and_dialogues(data_dir):
    out = run_build(
        data_dir, "--text", str(data_dir / "text"), "--dialogues", str(data_dir / "dialogues.jsonl"),
        "--tasks", "asr,tts,qa", "--asr_prompt", "hi", "--tts_prompt", "say",
        "--shape_file", str(data_dir / "out" / "shape"),
    )
    assert list(out) == ["asr-u1", "asr-u2", "qa-q1", "qa-q1b", "tts-r1", "tts-u1", "tts-u2"]
    assert out["asr-u1"].split() == [
        S, SYS, "h", "i", E,
        S, USR, SOA, *a(1, 2, 3, 4), USER_EOA, E,
        S, AST, "c", "a", "t", QUAD, *a(1, 2, 3, 4), EOL, E,
    ]
    assert out["qa-q1"].split() == [
        S, SYS, E, S, USR, SOA, *a(9, 9), USER_EOA, E, S, AST, "h", "i", QUAD, *a(7), EOL, E,
    ]
    assert out["qa-q1b"].split()[-5:] == [S, AST, "h", "i", E]
    assert out["tts-r1"].split() == [
        S, SYS, E, S, USR, "s", "a", "y", "▁", "你", "好", E, S, AST, "你", "好", QUAD, *a(7), EOL, E,
    ]
    shapes = (data_dir / "out" / "shape").read_text().splitlines()
    assert shapes[0] == f"asr-u1 {len(out['asr-u1'].split())}"
    assert len(shapes) == 7


def test_build_sequences_writes_the_layout_it_used(data_dir):
    """--layout_file: every layout option, as given or defaulted, read back by ttt_train's
    --sequence_layout; the defaults are the module constants."""
    run_build(data_dir, "--text", str(data_dir / "text"), "--tasks", "asr", "--asr_prompt", "say hi",
              "--span_len", "3", "--layout_file", str(data_dir / "layout.yaml"))
    expected = {"chunk_len": 13, "span_len": 3, "text_only_asr": False, "asr_prompt": "say hi",
                "tts_prompt": TTS_PROMPT, "qa_prompt": ""}
    assert yaml.safe_load((data_dir / "layout.yaml").read_text()) == expected
    assert sequence_layout_arg(str(data_dir / "layout.yaml")) == expected
    assert sequence_layout_arg("{asr_prompt: hi}") == dict(SequenceLayout().to_dict(), asr_prompt="hi")
    assert SequenceLayout.from_dict(None, "old config") == SequenceLayout(asr_prompt=ASR_PROMPT, span_len=26)


@pytest.mark.parametrize("value, message", [
    ("{asr_promt: hi}", r"unknown sequence layout keys \['asr_promt'\]"),
    ("{span_len: '3'}", "sequence layout key 'span_len' must be int, got '3'"),
    ("{text_only_asr: 1}", "sequence layout key 'text_only_asr' must be bool, got 1"),
    ("{chunk_len: 0}", "chunk_len and span_len must be >= 1"),
    ("missing/layout.yaml", "'missing/layout.yaml' is neither a file nor a yaml mapping"),
])
def test_bad_sequence_layouts_are_named(value, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        sequence_layout_arg(value)


def test_build_sequences_max_len_skips(data_dir, caplog):
    with caplog.at_level(logging.WARNING):
        out = run_build(data_dir, "--text", str(data_dir / "text"), "--tasks", "interleaved", "--max_len", "5")
    assert out == {"interleaved-u2": f"h i {QUAD} <|audio_5|> {EOL}"}
    assert "skipped 1 of 2 sequences longer than 5 tokens, e.g. ['interleaved-u1']" in caplog.text


def test_build_sequences_missing_codes_error_or_skip(data_dir, caplog):
    (data_dir / "text").write_text("u1 cat\nu9 hi\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"codes: no codes for utterance u9 \(sequence asr-u9\)$"):
        run_build(data_dir, "--text", str(data_dir / "text"), "--tasks", "asr")
    with caplog.at_level(logging.WARNING):
        out = run_build(data_dir, "--text", str(data_dir / "text"), "--tasks", "asr", "--skip_missing", "true")
    assert list(out) == ["asr-u1"]
    assert "skipped 1 sequences whose utterances have no codes, e.g. ['asr-u9']" in caplog.text


def build_error(capsys, d, *extra) -> str:
    """build_sequences' error line (run_build's options); no output was written."""
    line = error_line(capsys, build_sequences.main, "build_sequences", [
        "--bpemodel", d / "spm" / "bpe.model", "--token_list", d / "tokens.txt", "--codes", d / "codes",
        "--output", d / "out" / "text", *extra])
    assert not (d / "out").exists()
    return line


def test_build_sequences_bad_inputs_name_the_culprit(data_dir, capsys):
    d = data_dir
    text = ["--text", d / "text", "--tasks", "asr"]
    (d / "codes").write_text("u1 1 2 16\nu2 5\n", encoding="utf-8")
    assert build_error(capsys, d, *text) == \
        f"build_sequences: error: {d}/codes:1: utterance u1: code 16 is out of range [0, 16) (sequence asr-u1)"
    (d / "codes").write_text("u1 1 x\nu2 5\n", encoding="utf-8")
    assert build_error(capsys, d, *text) == \
        f"build_sequences: error: {d}/codes:1: utterance u1: codes must be integers, got 'x' (sequence asr-u1)"
    (d / "codes").write_text("u1 1 2\nu2 5", encoding="utf-8")  # cut short: "5" may have been "57"
    assert build_error(capsys, d, *text) == \
        f"build_sequences: error: {d}/codes:2: the last line has no newline: the file is cut short"
    (d / "codes").write_bytes(b"u1 1 2\nu2 \xff5\n")
    assert build_error(capsys, d, *text) == \
        f"build_sequences: error: {d}/codes:2: not valid UTF-8 (byte 0xff at column 4)"
    (d / "codes").write_text("u1 1 2\nu2 5\n", encoding="utf-8")
    (d / "text").write_bytes("u2 hi\nu1 caf\u00e9\n".encode("latin-1"))
    assert build_error(capsys, d, *text) == \
        f"build_sequences: error: {d}/text:2: not valid UTF-8 (byte 0xe9 at column 7)"
    (d / "text").write_text("u2 hi\nu1 cat\nu2 sat\n", encoding="utf-8")
    assert build_error(capsys, d, *text) == \
        f"build_sequences: error: {d}/text:3: duplicate key 'u2' (first on line 1)"
    (d / "text").write_text("u2 hi\nu1 cat\n", encoding="utf-8")

    dialogues = ["--dialogues", d / "dialogues.jsonl", "--tasks", "qa"]
    (d / "dialogues.jsonl").write_text('{"id": "qa-x1", "task": "qa", "question_utt": "u2"}\n', encoding="utf-8")
    assert build_error(capsys, d, *dialogues) == (f"build_sequences: error: {d}/dialogues.jsonl:1 (qa-x1): field "
                                                  "'answer_text' must be a string, got None (sequence qa-x1)")
    (d / "dialogues.jsonl").write_bytes(b'{"id": "qa-x1", "task": "qa", "answer_text": "\xc3"}\n')
    assert build_error(capsys, d, *dialogues) == \
        f"build_sequences: error: {d}/dialogues.jsonl:1: not valid UTF-8 (byte 0xc3 at column 47)"
    (d / "dialogues.jsonl").write_text('{"id": "s1", "task": "summary"}\n')
    assert build_error(capsys, d, *dialogues).startswith(
        f"build_sequences: error: {d}/dialogues.jsonl:1: task must be one of")
    record = {"id": "asr-u2", "task": "asr", "question_utt": "u2", "answer_text": "hi"}
    (d / "dialogues.jsonl").write_text(json.dumps(record) + "\n")
    assert build_error(capsys, d, "--text", d / "text", "--dialogues", d / "dialogues.jsonl") == (
        f"build_sequences: error: {d}/dialogues.jsonl:1 (asr-u2): gives the sequence id asr-u2 again "
        f"(first from {d}/text:1: utterance u2)")
    (d / "tokens.txt").write_bytes((d / "tokens.txt").read_bytes().replace(b"<|audio_3|>", b"<|audio_\xff|>"))
    assert build_error(capsys, d, *text).startswith(f"build_sequences: error: {d}/tokens.txt:")


def test_build_sequences_skips_empty_transcripts_and_texts(data_dir, caplog):
    (data_dir / "text").write_text("u1 cat\nu2  \n", encoding="utf-8")
    records = [{"id": "asr-q1", "task": "asr", "question_utt": "q1", "answer_text": ""},
               {"id": "tts-r1", "task": "tts", "question_text": " ", "answer_utt": "r1"},
               {"id": "qa-q1", "task": "qa", "question_utt": "q1", "answer_text": "", "answer_utt": "r1"},
               {"id": "text-1", "task": "text", "question_text": "say hi", "answer_text": "hi"}]
    (data_dir / "dialogues.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with caplog.at_level(logging.WARNING):
        out = run_build(data_dir, "--text", str(data_dir / "text"), "--dialogues", str(data_dir / "dialogues.jsonl"),
                        "--tasks", "asr,tts,qa,text,interleaved")
    assert sorted(out) == ["asr-u1", "interleaved-u1", "text-1", "tts-u1"]
    assert ("skipped 6 sequences with an empty transcript or text, e.g. ['asr-u2', 'tts-u2', 'interleaved-u2', "
            "'asr-q1', 'tts-r1']") in caplog.text


def test_build_sequences_skips_text_the_tokenizer_cannot_represent(data_dir, caplog):
    (data_dir / "text").write_text("u1 cat\nu2 hi q\n", encoding="utf-8")  # "q" is not a piece: <unk>
    with caplog.at_level(logging.WARNING):
        out = run_build(data_dir, "--text", str(data_dir / "text"), "--tasks", "tts", "--tts_prompt", "")
    assert list(out) == ["tts-u1"]
    assert "skipped 1 of 2 sequences containing <unk>, e.g. ['tts-u2']" in caplog.text


@pytest.mark.parametrize("edit, problem", [
    (lambda t: t[:5] + [""] + t[5:], "6: a blank line, or blanks around the token ''"),
    (lambda t: t[:5] + [t[5] + " "] + t[6:], "6: a blank line, or blanks around the token '{t5}'"),
    (lambda t: t + [t[7]], "{n1}: token '{t7}' again (first on line 8)"),
    (lambda t: [x for x in t if x != "<|audio_3|>"], "{a3}: <|audio_4|> where <|audio_3|> is expected (the codes "
                                                       "<|audio_0|> .. <|audio_K-1|> are consecutive lines in order)"),
])
def test_token_list_faults_name_the_line(data_dir, capsys, edit, problem):
    tokens = (data_dir / "tokens.txt").read_text(encoding="utf-8").splitlines()
    (data_dir / "tokens.txt").write_text("".join(t + "\n" for t in edit(tokens)), encoding="utf-8")
    where = problem.format(t5=tokens[5], t7=tokens[7], n1=len(tokens) + 1, a3=tokens.index("<|audio_3|>") + 1)
    assert build_error(capsys, data_dir, "--text", data_dir / "text", "--tasks", "asr") == \
        f"build_sequences: error: {data_dir}/tokens.txt:{where}"
