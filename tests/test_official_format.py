"""Tests of the official TtT JSON -> TtT sequence converter (library and convert_official CLI)."""
import logging
import re
from pathlib import Path

import pytest

from espnet2_ttt.bin import convert_official
from espnet2_ttt.official_format import RecordError, check_spans, content_tokens, convert_file, convert_record
from espnet2_ttt.text_tokenizer import TextTokenizer
from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.vocabulary import TtTVocabulary

from user_errors import error_line

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(DATA.glob("official_sample*.json*"))
K = 16384
SOA, EOA = "<|begin_of_audio|>", "<|end_of_audio_new|>"
QUAD, EOL = "<|begin_of_quad|>", "<|end_of_audio_span_last|>"
USER_EOA = "<|end_of_audio|>"
S, E = "<|im_start|>", "<|im_end|>"
SYS, USR, AST = "<|system|>", "<|user|>", "<|assistant|>"


def a(*codes):
    return [f"<|audio_{c}|>" for c in codes]


def chars(text):
    """What the character-level model gives for ``text``."""
    return list(text.replace(" ", "▁"))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A character-level SentencePiece model covering every character of the sample files."""
    folder = tmp_path_factory.mktemp("spm")
    corpus = "".join(re.sub(r"<\|\w+\|>", " ", p.read_text(encoding="utf-8")) for p in SAMPLES)
    (folder / "corpus.txt").write_text(corpus, encoding="utf-8")
    return TextTokenizer.train(
        folder / "corpus.txt", folder / "char", 1000, model_type="char", character_coverage=1.0, byte_fallback=False
    )


@pytest.fixture(scope="module")
def token_list(tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    TtTVocabulary.build(tokenizer.pieces(), K).save(path)
    return path


# ---------------------------------------------------------------------- token mapping
@pytest.mark.parametrize(
    "official, ours",
    [
        ("<|begin_of_audio|>", ["<|begin_of_audio|>"]),
        ("<|end_of_audio|>", ["<|end_of_audio|>"]),
        ("<|begin_of_quad|>", ["<|begin_of_quad|>"]),
        ("<|end_of_audio_new|>", ["<|end_of_audio_new|>"]),
        ("<|end_of_audio_span_last|>", ["<|end_of_audio_span_last|>"]),
        ("<|endoftext|>", []),
        ("<|audio_0|>", ["<|audio_0|>"]),
        ("<|audio_16383|>", ["<|audio_16383|>"]),
        ("<|audio_0042|>", ["<|audio_42|>"]),
    ],
)
def test_special_token_mapping(tokenizer, official, ours):
    assert content_tokens(official, tokenizer, K) == ours


def test_text_segments_keep_their_spacing(tokenizer):
    assert content_tokens("  hi <|begin_of_quad|><|audio_3|><|end_of_audio_span_last|> the\n", tokenizer, K) == [
        "h", "i", "▁", QUAD, *a(3), EOL, "▁", "t", "h", "e",
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        ("hi <|laugh|>", "unknown special token <|laugh|>"),
        ("<|audio|>", "unknown special token <|audio|>"),
        ("<|mask_token|>", "unknown special token <|mask_token|>"),
        ("x<|im_end|>", "template token <|im_end|> inside message content"),
        ("<|audio_16384|>", "audio code 16384 >= codebook size 16384"),
    ],
)
def test_content_errors(tokenizer, content, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        content_tokens(content, tokenizer, K)


@pytest.mark.parametrize(
    "tokens, side, message",
    [
        ([*a(1)], "assistant", "assistant content: token #0 <|audio_1|> outside an audio span"),
        ([SOA, *a(1)], "user", "ends inside an audio span (missing <|end_of_audio|>)"),
        ([SOA, *a(1), EOA], "user", "token #2 <|end_of_audio_new|> where a code or <|end_of_audio|> is expected"),
        ([QUAD, *a(1), EOL], "user", "user content: token #0 <|begin_of_quad|> outside an audio span"),
        ([SOA, *a(1), USER_EOA], "assistant", "token #2 <|end_of_audio|> where a code or <|end_of_audio_new|> is"),
        ([QUAD, EOL], "assistant", "token #1 <|end_of_audio_span_last|> where a code"),
        ([SOA, "h", *a(1), EOA], "assistant", "token #1 h where a code"),
    ],
)
def test_check_spans_errors(tokens, side, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_spans(tokens, side)


def test_check_spans_accepts_well_formed_content():
    check_spans(["h", SOA, *a(1, 2), EOA, "i", QUAD, *a(3), EOL], "assistant")
    check_spans(["h", SOA, *a(1, 2), USER_EOA, "i"], "user")


# ---------------------------------------------------------------------- records
def test_record_kinds(tokenizer):
    assert convert_record({"prompt": "hi", "response": "the"}, tokenizer, K) == [
        S, SYS, E, S, USR, "h", "i", E, S, AST, "t", "h", "e", E,
    ]
    conversation = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "the"}]}
    prompt_response = {"prompt": "hi", "response": "the"}
    assert convert_record(conversation, tokenizer, K) == convert_record(prompt_response, tokenizer, K)
    assert convert_record({"text": "hi<|begin_of_quad|><|audio_5|><|end_of_audio_span_last|>"}, tokenizer, K) == [
        "h", "i", QUAD, *a(5), EOL,
    ]


@pytest.mark.parametrize(
    "record, message",
    [
        ({"messages": [{"role": "narrator", "content": "x"}]}, "turn 0: unknown role 'narrator'"),
        ({"conversations": [{"from": "bot", "value": "x"}]}, "turn 0: unknown from 'bot'"),
        ({"messages": [{"role": "user"}]}, "turn 0: expected an object with a string 'content'"),
        ({"messages": []}, "non-empty JSON list"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant message"),
        (
            {"messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "x"},
                {"role": "assistant", "content": "y"},
            ]},
            "system message is only allowed as the first message",
        ),
        ({"prompt": "hi"}, "'prompt' and 'response' must both be strings"),
        ({"text": 3}, "'text' must be a string"),
        ({"text": "<|endoftext|>"}, "empty text"),
        ({"text": "<|im_start|>user\nhi"}, "complete '<|im_start|>role"),
        ({"text": "<|im_start|>robot\nhi<|im_end|>"}, "unknown role 'robot'"),
        ({"foo": 1}, "none of the keys"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_records(tokenizer, record, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        convert_record(record, tokenizer, K)


# ---------------------------------------------------------------------- sample files
def test_official_sample_json(tokenizer):
    converted, skipped = convert_file(DATA / "official_sample.json", tokenizer, K)
    assert skipped == []
    assert [i for i, _ in converted] == [0, 1, 2, 3, 4]
    seqs = [tokens for _, tokens in converted]
    # ASR-style: no system message -> empty system block; the answer re-speaks the input
    assert seqs[0] == [
        S, SYS, E,
        S, USR, SOA, *a(12, 7, 16383), USER_EOA, E,
        S, AST, *chars("the cat sat"), QUAD, *a(12, 7, 16383), EOL, E,
    ]
    # system prompt, instruction + audio, one non-final and one final span
    assert seqs[1] == [
        S, SYS, *chars("Answer in 13 text tokens then 26 audio tokens, repeated."), E,
        S, USR, *chars("Please generate a caption for the given audio."), SOA, *a(3, 4), USER_EOA, E,
        S, AST, *chars("A dog barks"), SOA, *a(*range(100, 126)), EOA, *chars(" twice."), QUAD, *a(126, 127), EOL, E,
    ]
    # SentencePiece's NFKC normalization turns the full-width "！" into "!"
    assert seqs[2] == [S, SYS, E, S, USR, "你", "好", E, S, AST, "你", "好", "!", E]
    assert seqs[3] == [
        S, SYS, *chars("Be brief."), E, S, USR, "h", "i", E, S, AST, *chars("hello"), QUAD, *a(9), EOL, E,
    ]
    assert seqs[4] == [S, SYS, E, S, USR, *chars("what is two plus two"), E, S, AST, *chars("four"), E]


def test_official_sample_pt_jsonl(tokenizer):
    converted, _ = convert_file(DATA / "official_sample_pt.jsonl", tokenizer, K)
    assert converted[0] == (
        0,
        [*chars("we went to "), SOA, *a(5, 6), EOA, *chars(" the park"), QUAD, *a(7), EOL, *chars(" today.")],
    )
    # a rendered chat in a text record becomes our template
    assert converted[1] == (1, [S, SYS, E, S, USR, "h", "i", E, S, AST, *chars("hello"), QUAD, *a(1), EOL, E])


def test_bad_sample_file_names_file_and_record(tokenizer):
    path = DATA / "official_sample_bad.jsonl"
    with pytest.raises(RecordError, match=re.escape(f"{path}: record 1: turn 0: unknown role 'narrator'")):
        convert_file(path, tokenizer, K)
    converted, skipped = convert_file(path, tokenizer, K, skip_bad=True)
    assert [i for i, _ in converted] == [0, 7]
    assert [s.split(":")[0] for s in skipped] == [f"record {i}" for i in range(1, 7)]
    assert "record 3: audio code 16384 >= codebook size 16384" in skipped


def test_not_json_is_a_file_error(tmp_path, tokenizer):
    (tmp_path / "broken.jsonl").write_text('{"text": "hi"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken.jsonl:2: not valid JSON"):
        convert_file(tmp_path / "broken.jsonl", tokenizer, K, skip_bad=True)
    (tmp_path / "dict.json").write_text('[{"text": "hi"}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"dict.json: not valid JSON"):
        convert_file(tmp_path / "dict.json", tokenizer, K)


# ---------------------------------------------------------------------- CLI
def run_cli(tokenizer, token_list, out, *inputs, extra=()):
    cmd = ["--bpemodel", tokenizer.model_file, "--token_list", str(token_list), "--output", str(out / "text")]
    for path in inputs:
        cmd += ["--input", str(path)]
    convert_official.main(cmd + list(extra))
    return [line.split(" ", 1) for line in (out / "text").read_text(encoding="utf-8").splitlines()]


def test_convert_official_cli(tokenizer, token_list, tmp_path, caplog):
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        lines = run_cli(
            tokenizer, token_list, out, DATA / "official_sample.json", DATA / "official_sample_pt.jsonl",
            DATA / "official_sample_bad.jsonl",
            extra=["--skip_bad", "true", "--max_len", "60", "--shape_file", str(out / "shape")],
        )
    assert [k for k, _ in lines] == [
        "official_sample-0000000", "official_sample-0000002", "official_sample-0000003", "official_sample-0000004",
        "official_sample_bad-0000000", "official_sample_bad-0000007",
        "official_sample_pt-0000000", "official_sample_pt-0000001",
    ]
    assert lines[-1][1].split() == [S, SYS, E, S, USR, "h", "i", E, S, AST, *chars("hello"), QUAD, *a(1), EOL, E]
    assert "skipped 6 bad records" in caplog.text
    assert "skipped 1 of 9 sequences longer than 60 tokens, e.g. ['official_sample-0000001']" in caplog.text
    shapes = dict(line.split() for line in (out / "shape").read_text().splitlines())
    assert shapes["official_sample_bad-0000007"] == "4"  # f i n e


def test_convert_official_cli_fails_without_partial_output(tokenizer, token_list, tmp_path):
    with pytest.raises(RecordError, match=r"official_sample_bad.jsonl: record 1"):
        run_cli(tokenizer, token_list, tmp_path, DATA / "official_sample_bad.jsonl")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="distinct names"):
        run_cli(tokenizer, token_list, tmp_path, DATA / "official_sample.json", DATA / "official_sample.json")


@pytest.mark.parametrize("name, data, record", [
    ("latin1.jsonl", b'{"text": "hi"}\n{"prompt": "caf\xe9?", "response": "oui"}\n', 1),
    ("latin1.json", b'[{"text": "hi"}, {"text": "ok"}, {"messages": [{"role": "user", "content": "\xff"}, '
                    b'{"role": "assistant", "content": "x"}]}]', 2),
])
def test_text_that_is_not_utf8_names_file_and_record(tokenizer, token_list, tmp_path, capsys, caplog, name, data, record):
    path = tmp_path / name
    path.write_bytes(data)
    argv = ["--bpemodel", tokenizer.model_file, "--token_list", token_list, "--output", tmp_path / "out" / "text",
            "--input", path]
    byte, column = (0xe9, 4) if record == 1 else (0xff, 1)
    assert error_line(capsys, convert_official.main, "convert_official", argv) == (
        f"convert_official: error: {path}: record {record}: not valid UTF-8 (byte 0x{byte:02x} at character "
        f"{column} of the content)")
    assert not (tmp_path / "out").exists()
    with caplog.at_level(logging.WARNING):
        convert_official.main([str(a) for a in argv] + ["--skip_bad", "true"])
    assert f"skipped 1 bad records, e.g. ['record {record}: not valid UTF-8" in caplog.text
    assert len((tmp_path / "out" / "text").read_text().splitlines()) == record


def test_empty_messages_and_files_are_refused(tokenizer, tmp_path):
    record = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]}
    with pytest.raises(ValueError, match="^empty assistant message$"):
        convert_record(record, tokenizer, K)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match=f"^{tmp_path}/empty.jsonl: no records$"):
        convert_file(tmp_path / "empty.jsonl", tokenizer, K, skip_bad=True)
