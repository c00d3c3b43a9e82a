"""Tests of the embedded bilingual corpus (egs/ttt_bilingual/local/make_corpus.py)."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from helpers import run_bounded

LOCAL = Path(__file__).resolve().parents[1] / "egs" / "ttt_bilingual" / "local"
sys.path.insert(0, str(LOCAL))
import make_corpus  # noqa: E402
from corpus_content import answer_is_correct, normalize_text, qa_pool  # noqa: E402
from corpus_tts import missing_tools  # noqa: E402

SPLITS = ("train", "dev", "test")
KALDI_FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2lang")

_EN = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_EN.update({w: 20 + 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())})


def parse_en(words: str) -> int:
    """'twenty four' -> 24, 'one hundred' -> 100 (independent of the generator)."""
    return 100 if words == "one hundred" else sum(_EN[w] for w in words.split())


def parse_zh(chars: str) -> int:
    """'二十四' -> 24, '十' -> 10, '一百' -> 100 (independent of the generator)."""
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")}
    if chars == "一百":
        return 100
    if "十" in chars:
        tens, _, units = chars.partition("十")
        return 10 * (digits[tens] if tens else 1) + (digits[units] if units else 0)
    return digits[chars]


def solve(question: str, lang: str):
    """Recompute an arithmetic question given in transcript form; None if it is not one."""
    if lang == "en":
        m = re.fullmatch(r"(?:what|how much) is (.+?) (plus|minus|times|divided by) (.+)", question)
        parse = parse_en
    else:
        m = re.fullmatch(r"(.+?)(加|减|乘|除以)(.+?)(?:等于几|是多少)", question)
        parse = parse_zh
    if not m:
        return None
    a, op, b = parse(m.group(1)), m.group(2), parse(m.group(3))
    ops = {"plus": a + b, "加": a + b, "minus": a - b, "减": a - b, "times": a * b, "乘": a * b}
    return ops[op] if op in ops else a // b


def run_cli(out: Path, seed: int = 0) -> str:
    cmd = [sys.executable, str(LOCAL / "make_corpus.py"), "--output_dir", str(out),
           "--seed", str(seed), "--size", "tiny", "--nj", "2"]
    result = run_bounded(cmd, timeout=120, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert result.returncode == 0, result.stdout
    return result.stdout


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Two tiny corpora made with the same seed in different directories."""
    missing = missing_tools()
    if missing:
        pytest.skip(f"TTS tools {missing} not installed: run egs/ttt_bilingual/local/install_tts.sh")
    root = tmp_path_factory.mktemp("corpus")
    run_cli(root / "a")
    run_cli(root / "b")
    return root / "a", root / "b"


def read_kv(path: Path) -> dict:
    return dict(line.split(" ", 1) for line in path.read_text(encoding="utf-8").splitlines())


def read_dialogues(split_dir: Path) -> list:
    return [json.loads(line) for line in (split_dir / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()]


def file_hashes(root: Path) -> dict:
    """sha256 of every file, with the corpus location removed from the path-bearing files."""
    hashes = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "corpus.json":
            stamp = json.loads(data)
            del stamp["config"]["output_dir"]
            data = json.dumps(stamp, sort_keys=True).encode()
        data = data.replace(str(root).encode(), b"ROOT")
        hashes[str(path.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return hashes


def test_same_seed_gives_identical_files(corpora):
    a, b = corpora
    hashes_a, hashes_b = file_hashes(a), file_hashes(b)
    assert sum(name.endswith(".wav") for name in hashes_a) == 82
    assert hashes_a == hashes_b


def test_data_dirs_are_valid(corpora):
    a, _ = corpora
    expected_sizes = {"train": 62, "dev": 10, "test": 10}
    for split in SPLITS:
        split_dir = a / split
        make_corpus.validate_data_dir(split_dir)
        for name in KALDI_FILES + ("dialogues.jsonl",):
            sort = subprocess.run(["sort", "-c", str(split_dir / name)], env={**os.environ, "LC_ALL": "C"},
                                  stderr=subprocess.PIPE, text=True)
            assert sort.returncode == 0, f"{split}/{name}: {sort.stderr}"
        tables = {name: read_kv(split_dir / name) for name in KALDI_FILES if name != "spk2utt"}
        ids = list(tables["text"])
        assert len(ids) == expected_sizes[split]
        assert all(list(t) == ids for t in tables.values())
        assert all(t.strip() for t in tables["text"].values())
        spk2utt = read_kv(split_dir / "spk2utt")
        assert sorted(u for utts in spk2utt.values() for u in utts.split()) == ids
        for utt, spk in tables["utt2spk"].items():
            assert utt.startswith(spk + "-") and utt in spk2utt[spk].split()
        for utt, path in tables["wav.scp"].items():
            assert Path(path).is_absolute() and Path(path).parent == split_dir / "wav"
            info = soundfile.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), utt
            assert info.frames > 0.3 * 16000, f"{utt}: only {info.frames} samples"


def test_validator_names_the_broken_file(corpora, tmp_path):
    a, _ = corpora
    broken = tmp_path / "test"
    shutil.copytree(a / "test", broken)
    lines = (broken / "text").read_text(encoding="utf-8").splitlines()
    (broken / "text").write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    with pytest.raises(make_corpus.CorpusError, match=r"text:2: .* not sorted"):
        make_corpus.validate_data_dir(broken)


def test_all_splits_have_both_languages_and_all_tasks(corpora):
    a, _ = corpora
    for split in SPLITS:
        assert set(read_kv(a / split / "utt2lang").values()) == {"en", "zh"}
        dialogues = read_dialogues(a / split)
        assert {(d["task"], d["lang"]) for d in dialogues} == {
            (task, lang) for task in ("asr", "tts", "qa") for lang in ("en", "zh")}
        text = read_kv(a / split / "text")
        for d in dialogues:
            if d["task"] == "qa":
                assert text[d["question_utt"]] == d["question_text"]
                assert text[d["answer_utt"]] == d["answer_text"]
                assert d["answer_utt"].startswith(("en_slt_v0-", "zh_esp_v0-"))
        tts = [d["answer_utt"] for d in dialogues if d["task"] == "tts"]
        if split == "test":  # every text is a TTS input
            assert sorted(tts) == sorted(text)
        else:  # the model learns to speak in the assistant's voice only
            assert tts and all(u.startswith(("en_slt_v0-", "zh_esp_v0-")) for u in tts)


def test_corpus_arithmetic_answer_keys_are_correct(corpora):
    a, _ = corpora
    checked = {"en": 0, "zh": 0}
    for split in SPLITS:
        for d in read_dialogues(a / split):
            if d["category"] != "arithmetic" or d["task"] != "qa":
                continue
            result = solve(d["question_text"], d["lang"])
            parse = parse_en if d["lang"] == "en" else parse_zh
            assert result is not None, d
            assert parse(d["answer_key"][0]) == result and d["answer_key"][1] == str(result), d
            assert d["answer_text"].endswith(d["answer_key"][0])
            checked[d["lang"]] += 1
    assert checked["en"] >= 3 and checked["zh"] >= 3


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_arithmetic_item_in_the_pool_is_correct(lang):
    items = qa_pool(lang, "arithmetic")
    assert len(items) == 2 * (21 * 21 + 21 * 22 // 2 + 11 * 11 + 10 * 11)
    for item in items:
        result = solve(normalize_text(item.question, lang), lang)
        assert result is not None, item
        assert item.keys[1] == str(result), item
        assert answer_is_correct(item.answer, item.keys, lang)


def test_answer_is_correct():
    assert answer_is_correct("Three plus four is seven.", ["seven", "7"], "en")
    assert answer_is_correct("three plus four is 7", ["seven", "7"], "en")
    assert not answer_is_correct("three plus four is three", ["seven", "7"], "en")
    assert not answer_is_correct("eighteen plus six is twenty four", ["four", "4"], "en")
    assert not answer_is_correct("seven plus seven is seventy", ["seven", "7"], "en")
    assert answer_is_correct("三加四等于七。", ["七", "7"], "zh")
    assert answer_is_correct("三加四等于 7", ["七", "7"], "zh")
    assert not answer_is_correct("十加七等于十七", ["七", "7"], "zh")
    assert not answer_is_correct("三加四等于3", ["七", "7"], "zh")
    assert answer_is_correct("a dog has 4 legs", ["four legs", "4 legs"], "en")


def test_default_plan_sizes_and_held_out_questions():
    _, utterances, dialogues = make_corpus.plan_corpus(seed=0, size="default")
    per_split = {s: sum(u.split == s for u in utterances) for s in SPLITS}
    assert per_split == {"train": 3100, "dev": 200, "test": 200}
    for split in SPLITS:
        assert sum(u.split == split and u.lang == "en" for u in utterances) == per_split[split] // 2
    qa = {s: [d for sp, d in dialogues if sp == s and d["task"] == "qa"] for s in SPLITS}
    questions = {s: {d["question_text"] for d in qa[s]} for s in SPLITS}
    assert len(questions["test"]) == 60 and len(questions["train"]) == 800
    assert not questions["test"] & questions["train"] and not questions["dev"] & questions["train"]
    # An arithmetic answer names its problem: held-out problems are not solved in train in any
    # wording, while every held-out fact is taught in train (asked in another wording).
    train_answers = {d["answer_text"] for d in qa["train"]}
    for split in ("dev", "test"):
        arithmetic = {d["answer_text"] for d in qa[split] if d["category"] == "arithmetic"}
        facts = {d["answer_text"] for d in qa[split] if d["category"] == "fact"}
        assert len(arithmetic) >= 10 and not arithmetic & train_answers
        assert len(facts) == 16 and facts <= train_answers  # 8 per language
    sentences = {s: {u.text for u in utterances if u.split == s and u.category == "sentence"} for s in SPLITS}
    assert not sentences["test"] & sentences["train"]
    categories = {d["category"] for _, d in dialogues if d["task"] == "qa"}
    assert categories == {"arithmetic", "counting", "comparison", "fact"}


def test_rerun_with_same_config_is_skipped(corpora):
    a, _ = corpora
    stamp = a / "corpus.json"
    before = stamp.stat().st_mtime_ns
    assert "up to date" in run_cli(a)
    assert stamp.stat().st_mtime_ns == before
