"""Reduced end-to-end recipe: all 13 stages of egs/ttt_bilingual on the tiny corpus and a tiny
model, then a second recipe reusing stages 10-12 on that model.  Asserts the real artefacts."""
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from espnet2_ttt.vocabulary import TtTVocabulary

from helpers import run_bounded

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs" / "ttt_bilingual"
TINY = [
    "--corpus_size", "tiny", "--nbpe", "500", "--nj", "1", "--inference_nj", "1",
    "--ttt_config", "conf/tuning/train_ttt_tiny.yaml",
    "--speech_tokenizer_config", "conf/tuning/speech_tokenizer_tiny.yaml",
    "--inference_config", "conf/tuning/decode_ttt_tiny.yaml",
    "--asr_config", "conf/tuning/asr_train_tiny.yaml",
    "--eval_max_per_task", "3",
]


def _run(script: Path, args, log: Path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(log, "w") as f:
        res = run_bounded(["bash", str(script), *args], timeout=1800, cwd=script.parent, stdout=f,
                          stderr=subprocess.STDOUT, env=env)
    assert res.returncode == 0, log.read_text()[-4000:]
    return log.read_text()


def _table(path: Path):
    return dict(line.split(maxsplit=1) if " " in line else (line, "") for line in path.read_text().splitlines())


# the first test also pays for the module's whole tiny recipe run (bounded by _run's own 1800 s)
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    work = tmp_path_factory.mktemp("recipe")
    dirs = {"datadir": work / "data", "dumpdir": work / "dump", "expdir": work / "exp"}
    args = TINY + [x for k, v in dirs.items() for x in (f"--{k}", str(v))]
    log = _run(RECIPE / "run.sh", args, work / "run.log")
    return work, dirs, log


def test_all_stages_ran_and_logged_their_time(recipe):
    work, dirs, log = recipe
    times = (dirs["expdir"] / "stage_times.txt").read_text().split()
    assert [int(s) for s in times[::2]] == list(range(1, 14))
    assert "Successfully finished" in log


def test_data_dirs_codes_and_token_list_are_consistent(recipe):
    work, dirs, _ = recipe
    for split in ("train", "dev", "test"):
        utts = _table(dirs["dumpdir"] / "raw" / split / "text")
        assert utts and all(v.strip() for v in utts.values())
        codes = _table(dirs["dumpdir"] / "codes" / split / "codes")
        assert set(codes) == set(utts)
        assert all(0 <= int(c) < 64 for v in codes.values() for c in v.split())
    vocab = TtTVocabulary.from_file(dirs["datadir"] / "token_list" / "tokens.txt")
    assert vocab.codebook_size == 64
    exp = dirs["expdir"] / "ttt_train_ttt_tiny"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["token_list"] == vocab.token_list
    assert (exp / "valid.acc.ave.pth").exists() and (exp / "checkpoint.pth").exists()


def test_decoding_transcription_and_results(recipe):
    work, dirs, _ = recipe
    decode = next((dirs["expdir"] / "ttt_train_ttt_tiny").glob("decode_*"))
    asr_out = _table(decode / "test_asr" / "text")
    assert len(asr_out) == 3
    wavs = _table(decode / "test_tts" / "wav.scp")
    assert len(wavs) == 3 and all(Path(p).stat().st_size > 44 for p in wavs.values())
    assert set(_table(decode / "test_tts" / "asr_espnet")) == set(wavs)
    assert (decode / "test_original" / "asr_espnet").exists()
    results = (dirs["expdir"] / "ttt_train_ttt_tiny" / "RESULTS.md").read_text()
    assert "# RESULTS" in results and "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|" in results
    assert "test_asr" in results and "test_tts_speech_espnet" in results and "Answer accuracy" in results


def test_packed_model_unpacks_and_decodes_offline(recipe):
    work, dirs, _ = recipe
    exp = dirs["expdir"] / "ttt_train_ttt_tiny"
    packed = exp / "ttt_packed.zip"
    with zipfile.ZipFile(packed) as z:
        assert "meta.yaml" in z.namelist()
    assert (exp / "hf_upload" / "README.md").exists() and (exp / "hf_upload" / "meta.yaml").exists()
    from espnet_model_zoo.downloader import ModelDownloader

    from espnet2_ttt.bin.ttt_inference import TtTInference

    unpacked = ModelDownloader(cachedir=str(work / "zoo")).download_and_unpack(str(packed))
    assert {"ttt_train_config", "ttt_model_file", "bpemodel", "speech_tokenizer_dir"} <= set(unpacked)
    ttt = TtTInference.from_pretrained(str(packed), cache_dir=str(work / "zoo"), max_new_tokens=20,
                                       block_length=16, diffusion_steps=8, max_span_length=32)
    out = ttt("tts", "hello there")
    assert out.tokens and all(0 <= c < 64 for c in out.audio_codes)


def test_second_recipe_reuses_stages_10_to_12(recipe, tmp_path):
    work, dirs, _ = recipe
    exp = dirs["expdir"] / "ttt_train_ttt_tiny"
    asr = dirs["expdir"] / "asr_independent"
    reuse = ROOT / "egs" / "ttt_reuse_example"
    args = [
        "--ttt_exp", str(exp), "--speech_tokenizer_dir", str(dirs["expdir"] / "speech_tokenizer"),
        "--dumpdir", str(dirs["dumpdir"]), "--expdir", str(tmp_path / "exp"),
        "--decode_dir", str(tmp_path / "exp" / "decode_reused"), "--eval_tasks", "asr tts",
        "--inference_config", str(RECIPE / "conf" / "tuning" / "decode_ttt_tiny.yaml"),
        "--asr_train_config", str(asr / "config.yaml"), "--asr_model_file", str(asr / "valid.loss.ave.pth"),
        "--use_pocketsphinx", "false", "--inference_nj", "1",
    ]
    _run(reuse / "run.sh", args, tmp_path / "reuse.log")
    assert len(_table(tmp_path / "exp" / "decode_reused" / "test_asr" / "text")) == 3
    assert "test_tts_speech_espnet" in (tmp_path / "exp" / "RESULTS.md").read_text()


def test_pretrained_backbone_option_switches_tokenizer_and_backbone(recipe, tmp_path):
    """Stages 5-7 again with --pretrained_backbone (a tiny random Qwen2): the token list comes from
    its tokenizer, the sequences use its pieces, and ttt_train gets the pretrained config with the
    hf_causal_lm backbone (stage 8 uses the same options; training itself: test_hf_backbone.py)."""
    from tiny_qwen import save_tiny_qwen

    work, dirs, _ = recipe
    qwen = save_tiny_qwen(tmp_path / "tiny_qwen")
    dump = tmp_path / "dump"
    dump.mkdir()
    for sub in ("raw", "codes"):  # stages 1-4 outputs of the main run, read only
        (dump / sub).symlink_to(dirs["dumpdir"] / sub)
    exp, data = tmp_path / "exp", tmp_path / "data"
    args = TINY + [
        "--stage", "5", "--stop_stage", "7", "--pretrained_backbone", str(qwen),
        "--pretrained_ttt_config", "conf/tuning/train_ttt_pretrained_tiny.yaml",
        "--speech_tokenizer_dir", str(dirs["expdir"] / "speech_tokenizer"),
        "--datadir", str(data), "--dumpdir", str(dump), "--expdir", str(exp),
    ]
    _run(RECIPE / "ttt.sh", args, tmp_path / "pretrained.log")
    from espnet2_ttt.pretrained_vocab import HFTextTokenizer

    vocab = TtTVocabulary.from_file(data / "token_list_tiny_qwen" / "tokens.txt")
    pieces = HFTextTokenizer(str(qwen)).pieces()
    assert set(pieces) <= set(vocab.token_list) and vocab.codebook_size == 64
    seqs = _table(dump / "seq_tiny_qwen" / "train" / "seq")
    assert seqs and all(t in vocab.token2id for v in seqs.values() for t in v.split())
    config = yaml.safe_load((exp / "ttt_stats_tiny_qwen" / "config.yaml").read_text())
    assert config["config"] == "conf/tuning/train_ttt_pretrained_tiny.yaml"
    assert config["backbone"] == "hf_causal_lm" and config["backbone_conf"]["pretrained"] == str(qwen)
    assert config["bpemodel"] == str(qwen) and config["token_list"] == vocab.token_list
    shapes = _table(exp / "ttt_stats_tiny_qwen" / "train" / "seq_shape")
    assert {k: int(v) for k, v in shapes.items()} == {k: len(v.split()) for k, v in seqs.items()}
