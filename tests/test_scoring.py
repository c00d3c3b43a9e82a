"""Scoring: tokenisation, alignment, sclite-compatible reports, answer accuracy, RESULTS.md."""
import logging
import random
from pathlib import Path

import pytest

from espnet2_ttt.bin import score, show_results
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.utils.scoring import ErrorCounts, align, matching_answer, tokenize
from espnet2_ttt.utils.sclite import (
    builtin_report,
    find_sclite,
    parse_sum_avg,
    read_trn,
    run_sclite,
)


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def counts(ref: str, hyp: str) -> ErrorCounts:
    return ErrorCounts.of_sentence(align(ref.split(), hyp.split()))


def test_tokenize_units():
    text = "我喜欢apple pie，OK"
    assert tokenize(text, "word") == ["我喜欢apple", "pie，OK"]
    assert tokenize(text, "char") == list("我喜欢applepie，OK")
    assert tokenize(text, "mixed") == ["我", "喜", "欢", "apple", "pie", "，", "OK"]


def test_alignment_counts():
    assert align("a b c d".split(), "a x c".split()) == [
        ("C", "a", "a"), ("S", "b", "x"), ("C", "c", "c"), ("D", "d", None)]
    assert counts("a b c d", "a x c") == ErrorCounts(1, 4, 2, 1, 1, 0, 1)
    # sclite's costs prefer a deletion plus an insertion to two substitutions
    assert [op for op, _, _ in align(["a", "b"], ["b", "c"])] == ["D", "C", "I"]
    # ASCII letters are compared case-insensitively, other letters are not
    assert counts("Hello École", "hello école") == ErrorCounts(1, 2, 1, 1, 0, 0, 1)
    assert counts("", "uh") == ErrorCounts(1, 0, 0, 0, 0, 1, 1)
    assert counts("a b", "a b") + counts("c", "") == ErrorCounts(2, 3, 2, 0, 1, 0, 1)


def test_builtin_report_sum_avg_and_alignment(tmp_path):
    ref = write(tmp_path / "ref.trn", "a b c d (s1-s1-u1)\n我 们 好 (s1-s1-u2)\nx y (s2-s2-u3)\n")
    hyp = write(tmp_path / "hyp.trn", "a x c (s1-s1-u1)\n我 好 好 啊 (s1-s1-u2)\nx y (s2-s2-u3)\n")
    report = builtin_report(ref, hyp)
    assert parse_sum_avg(report) == {"Snt": "3", "Wrd": "9", "Corr": "66.7", "Sub": "22.2",
                                     "Del": "11.1", "Ins": "11.1", "Err": "44.4",
                                     "S.Err": "66.7"}
    lines = report.splitlines()
    assert "       | Sum/Avg|    3      9 | 66.7   22.2   11.1   11.1   44.4   66.7 |" in lines
    assert "        | s1   |    2      7 |    4      2      1      1      4      2 |" in lines
    start = lines.index("id: (s1-s1-u1)")
    assert lines[start + 1:start + 5] == ["Scores: (#C #S #D #I) 2 1 1 0", "REF:  a B c D ",
                                          "HYP:  a X c * ", "Eval:   S   D "]


def test_score_error_rate_builtin_with_missing_hypothesis(tmp_path, caplog):
    ref = write(tmp_path / "text", "s-1 A b c d\ns-2 今天 天气\ns-3 gone\n")
    hyp = write(tmp_path / "hyp", "s-1 a x c\ns-2 今天天 气\ns-9 extra\n")
    utt2spk = write(tmp_path / "utt2spk", "s-1 s\ns-2 s\ns-3 s\n")
    out = tmp_path / "score_wer"
    with caplog.at_level(logging.INFO):
        summary = score.score_error_rate(ref, hyp, utt2spk, "wer", str(out), scorer="builtin")
    assert summary == {"Snt": "3", "Wrd": "7", "Corr": "28.6", "Sub": "42.9", "Del": "28.6",
                       "Ins": "0.0", "Err": "71.4", "S.Err": "100.0"}
    assert "1 of 3 reference utterances have no hypothesis and count as all deletions, " \
           "e.g. 's-3'" in caplog.text
    assert "1 hypotheses have no reference and are ignored, e.g. 's-9'" in caplog.text
    assert (out / "ref.trn").read_text() == "A b c d (s-s-1)\n今天 天气 (s-s-2)\ngone (s-s-3)\n"
    assert (out / "hyp.trn").read_text() == "a x c (s-s-1)\n今天天 气 (s-s-2)\n (s-s-3)\n"
    cer = score.score_error_rate(ref, hyp, utt2spk, "cer", str(tmp_path / "cer"),
                                 scorer="builtin")
    # characters: Abcd/axc -> 2 C, 1 S, 1 D; 今天天气 all correct; gone -> 4 D
    assert (cer["Wrd"], cer["Corr"], cer["Sub"], cer["Del"]) == ("12", "50.0", "8.3", "41.7")


def test_score_cli_needs_utt2spk_and_reports_bad_input(tmp_path, capsys):
    ref = write(tmp_path / "text", "u1 a\nu1 b\n")
    with pytest.raises(InputError, match="^--metric wer needs --utt2spk$"):
        score.main(["--metric", "wer", "--ref", ref, "--hyp", ref, "--output_dir",
                    str(tmp_path / "o")])
    with pytest.raises(SystemExit) as exit_info:
        run(score.main, "score", ["--metric", "wer", "--ref", ref, "--hyp", ref, "--utt2spk", ref,
                                  "--output_dir", str(tmp_path / "o")])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == f"score: error: {ref}:2: duplicate key 'u1' (first on line 1)\n"
    assert not (tmp_path / "o").exists()


def test_answer_matching():
    assert matching_answer("I think it's New York, right?", ["paris", "new york"]) == "new york"
    assert matching_answer("a newyorker", ["new york", "york"]) is None  # whole words only
    assert matching_answer("答案是北 京。", ["上海", "北京"]) == "北京"  # substring, blanks ignored
    assert matching_answer("我住在北京市", ["北京"]) == "北京"
    assert matching_answer("THE ANSWER: 42!", ["42"]) == "42"


def test_answer_accuracy_files(tmp_path):
    keys = write(tmp_path / "answers", "q1 paris|巴黎\nq2 blue\nq3 北京\nq4 seven\n")
    hyp = write(tmp_path / "hyp", "q1 它是巴黎\nq2 the sky is blueish\nq3 北京\n")
    out = tmp_path / "exp/decode/test/score_answer_accuracy"
    assert score.score_answer_accuracy(keys, hyp, str(out)) == (2, 4)
    assert (out / "details.txt").read_text() == "q1 1 巴黎\nq2 0 -\nq3 1 北京\nq4 0 -\n"
    assert (out / "result.txt").read_text().splitlines()[1:] == [
        "Snt: 4", "Correct: 2", "Accuracy: 50.0"]


def test_show_results_markdown(tmp_path, capsys):
    exp = tmp_path / "exp" / "ttt_demo"
    ref = write(tmp_path / "text", "s-1 a b c d\ns-2 e f\n")
    hyp = write(tmp_path / "hyp", "s-1 a x c\ns-2 e f\n")
    utt2spk = write(tmp_path / "utt2spk", "s-1 s\ns-2 s\n")
    for test_set in ("test_en", "dev_en"):
        score.score_error_rate(ref, hyp, utt2spk, "wer",
                               str(exp / "decode_a" / test_set / "score_wer"),
                               scorer="builtin")
    write(exp / "decode_a/test_en/score_answer_accuracy/result.txt",
          "# answer accuracy\nSnt: 4\nCorrect: 3\nAccuracy: 75.0\n")
    show_results.main([str(exp)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["<!-- Generated by espnet2_ttt/bin/show_results.py -->", "# RESULTS",
                         "## Environments"]
    assert any(line.startswith("- pytorch version: `pytorch 2.") for line in lines)
    start = lines.index("## ttt_demo")
    assert lines[start:] == [
        "## ttt_demo", "", "### WER", "",
        "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|",
        "|---|---|---|---|---|---|---|---|---|",
        "|decode_a/dev_en|2|6|66.7|16.7|16.7|0.0|33.3|50.0|",
        "|decode_a/test_en|2|6|66.7|16.7|16.7|0.0|33.3|50.0|",
        "", "### Answer accuracy", "",
        "|dataset|Snt|Correct|Accuracy|", "|---|---|---|---|", "|decode_a/test_en|4|3|75.0|",
    ]


@pytest.mark.skipif(find_sclite() is None, reason="sclite / sctk not installed")
def test_builtin_scorer_matches_sclite(tmp_path):
    rng = random.Random(0)
    vocabulary = ["a", "b", "c", "B", "我", "你", "好"]
    refs = ["Hello World", "我们 好", "", "a b c"] + [
        " ".join(rng.choices(vocabulary, k=rng.randint(0, 8))) for _ in range(150)]
    hyps = ["hello there world", "我 好", "uh", ""] + [
        " ".join(rng.choices(vocabulary, k=rng.randint(0, 8))) for _ in range(150)]
    speakers = [f"spk{i % 3}" for i in range(len(refs))]
    write(tmp_path / "ref.trn", "".join(f"{r} ({s}-{s}-u{i:03d})\n"
                                        for i, (r, s) in enumerate(zip(refs, speakers))))
    write(tmp_path / "hyp.trn", "".join(f"{h} ({s}-{s}-u{i:03d})\n"
                                        for i, (h, s) in enumerate(zip(hyps, speakers))))
    sclite_report = run_sclite(find_sclite(), str(tmp_path), "ref.trn", "hyp.trn")
    ours = builtin_report(str(tmp_path / "ref.trn"), str(tmp_path / "hyp.trn"))
    assert parse_sum_avg(ours) == parse_sum_avg(sclite_report)

    def speaker_rows(report):
        return [line.strip() for line in report.splitlines() if line.strip()[2:5] == "spk"]

    assert speaker_rows(ours) == speaker_rows(sclite_report)
    assert len(read_trn(str(tmp_path / "ref.trn"))) == 154
