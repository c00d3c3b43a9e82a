"""Recipe stages 1 and 2: local/data.sh on fake LibriSpeech/AISHELL trees, and format_wav."""
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet2_ttt.bin.format_wav import main as format_wav_main
from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.utils.data_dir import ValidationOptions, validate_data_dir

from helpers import run_bounded
from user_errors import dead_pid, error_line

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "ttt_bilingual"
sys.path.insert(0, str(RECIPE / "local"))
from make_corpus import DIALOGUE_KEYS  # noqa: E402


def tone(seconds: float, sr: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def write_audio(path: Path, data: np.ndarray, sr: int, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), data, sr, **kwargs)
    return path


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def dialogues(path: Path) -> list:
    return [json.loads(line) for line in read(path).splitlines()]


# --------------------------------------------------------------------- fake corpora

LIBRI = {  # subset -> {utt: transcript}; speaker 103 sorts before 19 in C order
    "train-clean-100": {"19-198-0000": "NORTHANGER ABBEY", "19-198-0001": "THIS LITTLE WORK",
                        "103-1240-0000": "CHAPTER ONE MISSUS RACHEL'S SURPRISE"},
    "dev-clean": {"84-121123-0000": "GO DO YOU HEAR"},
    "test-clean": {"1089-134686-0000": "HE HOPED THERE WOULD BE STEW"},
}
AISHELL = {  # split -> [(speaker, utt, transcript or None)]
    "train": [("S0002", "BAC009S0002W0122", "而 对 楼市 成交"), ("S0002", "BAC009S0002W0123", None),
              ("S0003", "BAC009S0003W0121", "北京 的 房价")],
    "dev": [("S0724", "BAC009S0724W0121", "广州 市 房地产")],
    "test": [("S0764", "BAC009S0764W0121", "甚至 出现 交易")],
}


@pytest.fixture(scope="module")
def librispeech_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("librispeech")
    for subset, utts in LIBRI.items():
        for utt, text in utts.items():
            spk, chapter, _ = utt.split("-")
            chapter_dir = root / "LibriSpeech" / subset / spk / chapter
            write_audio(chapter_dir / f"{utt}.flac", tone(0.2, 16000), 16000)
            with open(chapter_dir / f"{spk}-{chapter}.trans.txt", "a", encoding="utf-8") as f:
                f.write(f"{utt} {text}\n")
    return root


@pytest.fixture(scope="module")
def aishell_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("aishell")
    transcript = []
    for split, utts in AISHELL.items():
        for spk, utt, text in utts:
            write_audio(root / "data_aishell" / "wav" / split / spk / f"{utt}.wav", tone(0.2, 16000), 16000)
            if text is not None:
                transcript.append(f"{utt} {text}\n")
    path = root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"
    path.parent.mkdir(parents=True)
    path.write_text("".join(transcript), encoding="utf-8")
    return root


def data_sh(output_dir: Path, corpus: str, **env) -> subprocess.CompletedProcess:
    env = {**os.environ, "LIBRISPEECH": "", "AISHELL": "", **{k: str(v) for k, v in env.items()}}
    return run_bounded(["bash", "local/data.sh", "--corpus", corpus, "--output_dir", str(output_dir)],
                       timeout=120, cwd=RECIPE, env=env, capture_output=True, text=True)


def check_sets(data: Path) -> None:
    for x in ("train", "dev", "test"):
        validate_data_dir(str(data / x), ValidationOptions(no_feats=True))
        records = dialogues(data / x / "dialogues.jsonl")
        assert all(tuple(r) == DIALOGUE_KEYS for r in records)
        assert [r["id"] for r in records] == sorted(r["id"] for r in records)
        assert len(records) == 2 * len(read(data / x / "text").splitlines())


# ------------------------------------------------------------------------ data.sh


def test_data_sh_librispeech(tmp_path, librispeech_root):
    result = data_sh(tmp_path / "data", "librispeech", LIBRISPEECH=librispeech_root)
    assert result.returncode == 0, result.stderr
    train = tmp_path / "data" / "train"
    assert read(train / "text") == ("103-1240-0000 chapter one missus rachel's surprise\n"
                                    "19-198-0000 northanger abbey\n19-198-0001 this little work\n")
    assert read(train / "utt2spk") == "103-1240-0000 103\n19-198-0000 19\n19-198-0001 19\n"
    assert read(train / "spk2utt") == "103 103-1240-0000\n19 19-198-0000 19-198-0001\n"
    assert read(train / "utt2lang") == "103-1240-0000 en\n19-198-0000 en\n19-198-0001 en\n"
    flac = librispeech_root / "LibriSpeech/train-clean-100/19/198/19-198-0001.flac"
    assert read(train / "wav.scp").splitlines()[2] == f"19-198-0001 {flac.resolve()}"
    assert read(tmp_path / "data/test/text") == "1089-134686-0000 he hoped there would be stew\n"
    records = dialogues(train / "dialogues.jsonl")
    assert [r["id"] for r in records][:2] == ["asr-103-1240-0000", "asr-19-198-0000"]
    assert records[-1] == {"id": "tts-19-198-0001", "task": "tts", "lang": "en", "category": "sentence",
                           "question_utt": None, "question_text": "this little work",
                           "answer_text": "this little work", "answer_utt": "19-198-0001",
                           "answer_key": ["this little work"]}
    check_sets(tmp_path / "data")
    assert not list((tmp_path / "data").glob(".*")), "temporary dirs left behind"

    mtime = (train / "text").stat().st_mtime_ns
    again = data_sh(tmp_path / "data", "librispeech", LIBRISPEECH=librispeech_root)
    assert again.returncode == 0 and "up to date" in again.stderr
    assert (train / "text").stat().st_mtime_ns == mtime


def test_data_sh_aishell(tmp_path, aishell_root):
    result = data_sh(tmp_path / "data", "aishell", AISHELL=aishell_root)
    assert result.returncode == 0, result.stderr
    assert "skipped 1 of 3 wavs without transcript, e.g. ['BAC009S0002W0123']" in result.stderr
    train = tmp_path / "data" / "train"
    assert read(train / "text") == "S0002-BAC009S0002W0122 而对楼市成交\nS0003-BAC009S0003W0121 北京的房价\n"
    assert read(train / "utt2spk") == "S0002-BAC009S0002W0122 S0002\nS0003-BAC009S0003W0121 S0003\n"
    assert read(train / "utt2lang") == "S0002-BAC009S0002W0122 zh\nS0003-BAC009S0003W0121 zh\n"
    assert read(tmp_path / "data/dev/text") == "S0724-BAC009S0724W0121 广州市房地产\n"
    check_sets(tmp_path / "data")


def test_data_sh_librispeech_aishell(tmp_path, librispeech_root, aishell_root):
    result = data_sh(tmp_path / "data", "librispeech_aishell", LIBRISPEECH=librispeech_root, AISHELL=aishell_root)
    assert result.returncode == 0, result.stderr
    test = tmp_path / "data" / "test"
    assert read(test / "utt2lang") == "1089-134686-0000 en\nS0764-BAC009S0764W0121 zh\n"
    assert read(test / "spk2utt") == "1089 1089-134686-0000\nS0764 S0764-BAC009S0764W0121\n"
    assert [r["id"] for r in dialogues(test / "dialogues.jsonl")] == [
        "asr-1089-134686-0000", "asr-S0764-BAC009S0764W0121",
        "tts-1089-134686-0000", "tts-S0764-BAC009S0764W0121"]
    assert len(read(tmp_path / "data/train/text").splitlines()) == 5
    check_sets(tmp_path / "data")


def test_data_sh_errors(tmp_path, librispeech_root):
    result = data_sh(tmp_path / "data", "librispeech")
    assert result.returncode == 1 and "LIBRISPEECH is empty" in result.stderr
    result = data_sh(tmp_path / "data", "librispeech", LIBRISPEECH=tmp_path / "nowhere")
    assert result.returncode == 1 and "is not a directory" in result.stderr
    result = data_sh(tmp_path / "data", "timit")
    assert result.returncode == 2 and "unknown --corpus timit" in result.stderr
    (librispeech_root / "LibriSpeech" / "dev-clean").rename(librispeech_root / "dev-moved")
    try:
        result = data_sh(tmp_path / "data", "librispeech", LIBRISPEECH=librispeech_root)
    finally:
        (librispeech_root / "dev-moved").rename(librispeech_root / "LibriSpeech" / "dev-clean")
    assert result.returncode != 0 and "LibriSpeech subset not found" in result.stderr
    assert not (tmp_path / "data" / "train").exists()  # nothing published
    assert not list((tmp_path / "data").glob(".*"))


# ---------------------------------------------------------------------- format_wav


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """Speaker-prefixed utterances a..h covering every conversion and drop case."""
    audio = tmp_path.resolve() / "audio"
    stereo = np.stack([tone(0.5, 8000, 0.6), tone(0.5, 8000, 0.2)], axis=1)
    paths = {
        "s1-a": write_audio(audio / "a.wav", stereo, 8000, subtype="PCM_16"),  # 8 kHz stereo
        "s1-b": write_audio(audio / "b.wav", tone(0.5, 16000), 16000, subtype="PCM_16"),  # in place
        "s1-c": write_audio(audio / "c.wav", tone(0.05, 16000), 16000, subtype="PCM_16"),  # too short
        "s1-d": write_audio(audio / "d.wav", tone(3.0, 16000), 16000, subtype="PCM_16"),  # too long
        "s2-e": audio / "e.wav",  # empty file
        "s2-f": audio / "f.wav",  # not audio
        "s2-g": write_audio(audio / "g.wav", np.zeros(0, np.float32), 16000, subtype="PCM_16"),
        "s2-h": write_audio(audio / "h.flac", tone(0.25, 16000), 16000),  # flac: converted
    }
    paths["s2-e"].write_bytes(b"")
    paths["s2-f"].write_text("this is not a wav file\n")
    d = audio.parent / "data" / "train"
    d.mkdir(parents=True)
    utts = sorted(paths)
    (d / "wav.scp").write_text("".join(f"{u} {paths[u]}\n" for u in utts))
    (d / "text").write_text("".join(f"{u} words of {u}\n" for u in utts))
    (d / "utt2spk").write_text("".join(f"{u} {u[:2]}\n" for u in utts))
    (d / "spk2utt").write_text("s1 s1-a s1-b s1-c s1-d\ns2 s2-e s2-f s2-g s2-h\n")
    (d / "utt2lang").write_text("".join(f"{u} en\n" for u in utts))
    records = [{"id": "asr-s1-a", "question_utt": "s1-a", "answer_utt": None},
               {"id": "qa-s1-a", "question_utt": "s1-a", "answer_utt": "s1-b"},
               {"id": "qa-s1-b", "question_utt": "s1-b", "answer_utt": "s1-c"},
               {"id": "tts-s2-g", "question_utt": None, "answer_utt": "s2-g"}]
    (d / "dialogues.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return d


def run_format(data_dir: Path, out: Path, *extra: str) -> None:
    format_wav_main(["--data_dir", str(data_dir), "--output_dir", str(out), "--fs", "16000",
                     "--min_duration", "0.1", "--max_duration", "2", *extra])


def test_format_wav(data_dir, caplog):
    out = data_dir.parent.parent / "dump" / "raw" / "train"
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "format_wav.log").write_text("run.pl log\n")
    with caplog.at_level(logging.INFO):
        run_format(data_dir, out, "--nj", "2")
    log = caplog.text
    assert "dropped 1 utterances (shorter than 0.1 s): s1-c" in log
    assert "dropped 1 utterances (longer than 2.0 s): s1-d" in log
    assert "dropped 1 utterances (empty file): s2-e" in log
    assert "dropped 1 utterances (unreadable): s2-f" in log
    assert "dropped 1 utterances (zero-length audio): s2-g" in log
    assert "kept 3 of 8 utterances (2 converted, 1 referenced in place)" in log

    assert read(out / "wav.scp") == (f"s1-a {out}/wav/s1-a.wav\ns1-b {data_dir.parent.parent}/audio/b.wav\n"
                                     f"s2-h {out}/wav/s2-h.wav\n")
    assert read(out / "utt2num_samples") == "s1-a 8000\ns1-b 8000\ns2-h 4000\n"
    assert read(out / "utt2dur") == "s1-a 0.5000\ns1-b 0.5000\ns2-h 0.2500\n"
    assert read(out / "text") == "s1-a words of s1-a\ns1-b words of s1-b\ns2-h words of s2-h\n"
    assert read(out / "utt2spk") == "s1-a s1\ns1-b s1\ns2-h s2\n"
    assert read(out / "spk2utt") == "s1 s1-a s1-b\ns2 s2-h\n"
    assert read(out / "utt2lang") == "s1-a en\ns1-b en\ns2-h en\n"
    assert [r["id"] for r in dialogues(out / "dialogues.jsonl")] == ["asr-s1-a", "qa-s1-a"]
    assert sorted(p.name for p in (out / "wav").iterdir()) == ["s1-a.wav", "s2-h.wav"]
    assert read(out / "logs" / "format_wav.log") == "run.pl log\n"
    validate_data_dir(str(out), ValidationOptions(no_feats=True))

    wav, sr = soundfile.read(str(out / "wav" / "s1-a.wav"), dtype="float32")
    info = soundfile.info(str(out / "wav" / "s1-a.wav"))
    assert (sr, info.channels, info.subtype, wav.shape) == (16000, 1, "PCM_16", (8000,))
    middle = wav[1000:7000]  # the channel average is a 440 Hz tone of amplitude 0.4
    assert abs(np.sqrt(np.mean(middle ** 2)) - 0.4 / np.sqrt(2)) < 0.01
    assert not list(out.parent.glob(".*")), "temporary dirs left behind"

    caplog.clear()
    mtime = (out / "wav.scp").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        run_format(data_dir, out)
    assert "up to date" in caplog.text
    assert (out / "wav.scp").stat().st_mtime_ns == mtime

    (data_dir / "text").write_text(read(data_dir / "text").replace("words of s2-h", ""))
    with caplog.at_level(logging.INFO):  # other input and options: redone, replacing the old dir
        run_format(data_dir, out, "--max_duration", "5")
    assert "dropped 1 utterances (empty text): s2-h" in caplog.text
    assert read(out / "utt2num_samples") == "s1-a 8000\ns1-b 8000\ns1-d 48000\n"
    assert (out / "logs" / "format_wav.log").is_file()


def format_error(capsys, data_dir: Path, out: Path, *extra: str) -> str:
    """The error line of format_wav on ``data_dir`` (``run_format``'s options)."""
    return error_line(capsys, format_wav_main, "format_wav", [
        "--data_dir", data_dir, "--output_dir", out, "--fs", "16000", "--min_duration", "0.1",
        "--max_duration", "2", *extra])


def test_format_wav_errors(data_dir, capsys):
    out = data_dir.parent.parent / "dump" / "raw" / "train"
    good = read(data_dir / "wav.scp")
    lines = good.splitlines()
    lines[1] = "s1-b sox b.wav -t wav - |"
    (data_dir / "wav.scp").write_text("\n".join(lines) + "\n")
    assert format_error(capsys, data_dir, out) == (
        f"format_wav: error: {data_dir}/wav.scp:2: utterance 's1-b': wav.scp value 'sox b.wav -t wav - |' is "
        "not a plain file path (Kaldi pipes / ark offsets are not supported; dump the audio to files first)")
    assert not out.parent.exists() or not list(out.parent.iterdir())

    (data_dir / "wav.scp").write_text(good)
    assert format_error(capsys, data_dir, out, "--min_duration", "5", "--max_duration", "9") == \
        f"format_wav: error: {data_dir}: all 8 utterances were dropped"
    assert not out.exists() and not list(out.parent.iterdir())

    out.mkdir()
    (out / "precious.txt").write_text("x")
    with pytest.raises(InputError, match="not written by format_wav"):
        run_format(data_dir, out)


@pytest.mark.parametrize("name", ["wav.scp", "text", "utt2spk", "dialogues.jsonl"])
def test_format_wav_refuses_tables_that_are_not_utf8(data_dir, capsys, name):
    out = data_dir.parent / "out"
    lines = (data_dir / name).read_bytes().split(b"\n")
    lines[2] = lines[2][:4] + b"\xe9" + lines[2][4:]  # a Latin-1 byte
    (data_dir / name).write_bytes(b"\n".join(lines))
    assert format_error(capsys, data_dir, out) == \
        f"format_wav: error: {data_dir}/{name}:3: not valid UTF-8 (byte 0xe9 at column 5)"
    assert not out.exists() and not list(out.parent.glob(".out*"))


def test_format_wav_drops_truncated_and_non_finite_audio(data_dir, caplog):
    audio = data_dir.parent.parent / "audio"
    cut = write_audio(audio / "cut.wav", tone(0.5, 16000), 16000, subtype="PCM_16")  # would be kept in place
    cut.write_bytes(cut.read_bytes()[:-1000])
    nan = tone(0.5, 16000)
    nan[100] = np.nan
    write_audio(audio / "nan.wav", nan, 16000, subtype="FLOAT")
    write_audio(audio / "inf.wav", np.full(8000, np.inf, np.float32), 16000, subtype="FLOAT")
    added = {"s3-x": "cut.wav", "s3-y": "nan.wav", "s3-z": "inf.wav"}
    for name, text in [("wav.scp", [f"{u} {audio / f}" for u, f in added.items()]),
                       ("text", [f"{u} words" for u in added]), ("utt2spk", [f"{u} s3" for u in added]),
                       ("utt2lang", [f"{u} en" for u in added]), ("spk2utt", [f"s3 {' '.join(added)}"])]:
        with open(data_dir / name, "a") as f:
            f.write("".join(line + "\n" for line in text))
    out = data_dir.parent / "out"
    with caplog.at_level(logging.INFO):
        run_format(data_dir, out)
    assert "dropped 1 utterances (truncated): s3-x" in caplog.text
    assert "dropped 2 utterances (non-finite samples): s3-y s3-z" in caplog.text
    assert [line.split()[0] for line in read(out / "wav.scp").splitlines()] == ["s1-a", "s1-b", "s2-h"]


def test_format_wav_removes_what_a_killed_run_left(data_dir):
    out = data_dir.parent / "out"
    pid = dead_pid()
    for left in (f".out.tmp{pid}", f".out.old{pid}"):  # killed while converting / while publishing
        (data_dir.parent / left / "wav").mkdir(parents=True)
    (data_dir.parent / f".other.tmp{pid}").mkdir()  # another output's: not this run's to remove
    run_format(data_dir, out)
    assert sorted(p.name for p in data_dir.parent.iterdir()) == [f".other.tmp{pid}", "out", "train"]
