"""Stage-11 transcription: pocketsphinx on festival speech, espnet on a tiny CTC model."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet2_ttt.bin import transcribe
from espnet2_ttt.utils.scoring import ErrorCounts, align

TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]


def write_wav(path: Path, seconds: float, rate: int = 16000, channels: int = 1) -> str:
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.3, 0.3, size=(int(seconds * rate), channels)).astype(np.float32)
    soundfile.write(path, audio, rate, subtype="PCM_16")
    return str(path)


def write_scp(path: Path, entries: dict) -> str:
    path.write_text("".join(f"{k} {v}\n" for k, v in entries.items()), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tiny_asr(tmp_path_factory):
    """config.yaml + model.pth of an untrained 1-block char-CTC ASR (as asr_train writes)."""
    from espnet2.tasks.asr import ASRTask

    out = tmp_path_factory.mktemp("asr")
    token_list = out / "tokens.txt"
    token_list.write_text("\n".join(TOKENS) + "\n", encoding="utf-8")
    args = ASRTask.get_parser().parse_args([
        "--token_list", str(token_list), "--token_type", "char", "--frontend", "default",
        "--encoder", "transformer", "--output_dir", str(out),
    ])
    args.frontend_conf = dict(hop_length=320)
    args.encoder_conf = dict(output_size=16, attention_heads=2, linear_units=32, num_blocks=1,
                             input_layer="conv1d2")
    args.model_conf = dict(ctc_weight=1.0)
    torch.manual_seed(0)
    model = ASRTask.build_model(args)
    (out / "config.yaml").write_text(yaml.safe_dump(vars(args)), encoding="utf-8")
    torch.save(model.state_dict(), out / "model.pth")
    return ["--asr_train_config", str(out / "config.yaml"),
            "--asr_model_file", str(out / "model.pth")]


@pytest.fixture()
def wav_scp(tmp_path):
    """Three utterances listed out of C order (8 kHz one is resampled)."""
    return write_scp(tmp_path / "wav.scp", {
        "utt_b": write_wav(tmp_path / "b.wav", 1.0),
        "utt_B": write_wav(tmp_path / "B.wav", 0.5, rate=8000),
        "utt_a": write_wav(tmp_path / "a.wav", 0.8),
    })


def run_espnet(tiny_asr, wav_scp, output, *extra):
    return transcribe.main(["--backend", "espnet", "--wav_scp", wav_scp, "--output", str(output),
                            *tiny_asr, *extra])


def read_output(path: Path):
    return [line.split(" ", 1) for line in path.read_text(encoding="utf-8").splitlines()]


def test_espnet_output_sorted_kaldi_table(tiny_asr, wav_scp, tmp_path):
    output = tmp_path / "text"
    config = tmp_path / "decode.yaml"
    config.write_text("beam_size: 2\nnbest: 2\n", encoding="utf-8")
    assert run_espnet(tiny_asr, wav_scp, output, "--config", str(config)) == 0
    rows = read_output(output)
    assert [row[0] for row in rows] == ["utt_B", "utt_a", "utt_b"]  # C order
    # an untrained model emits token strings; <space> would have become " "
    assert all(set(row[1].replace("<unk>", "")) <= set("abc ") for row in rows if len(row) == 2)
    assert [row[0] for row in read_output(tmp_path / "text.2best")] == ["utt_B", "utt_a", "utt_b"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_espnet_key_file_subset(tiny_asr, wav_scp, tmp_path):
    keys = write_scp(tmp_path / "keys", {"utt_b": "x", "utt_a": "y"})
    output = tmp_path / "text"
    assert run_espnet(tiny_asr, wav_scp, output, "--key_file", keys) == 0
    assert [row[0] for row in read_output(output)] == ["utt_a", "utt_b"]
    missing = write_scp(tmp_path / "missing", {"utt_z": "x"})
    assert run_espnet(tiny_asr, wav_scp, tmp_path / "other", "--key_file", missing) == 1
    assert not (tmp_path / "other").exists()


def test_bad_audio_errors_and_skip(tiny_asr, tmp_path, caplog):
    (tmp_path / "empty.wav").write_bytes(b"")
    scp = write_scp(tmp_path / "wav.scp", {
        "good": write_wav(tmp_path / "good.wav", 0.8), "bad": str(tmp_path / "empty.wav")})
    output = tmp_path / "text"
    output.write_text("old\n", encoding="utf-8")
    assert run_espnet(tiny_asr, scp, output) == 1
    assert "utterance 'bad'" in caplog.text and "empty.wav" in caplog.text
    assert output.read_text(encoding="utf-8") == "old\n"  # no partial output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    caplog.clear()
    assert run_espnet(tiny_asr, scp, output, "--skip_bad", "true") == 0
    assert [row[0] for row in read_output(output)] == ["bad", "good"]
    assert read_output(output)[0] == ["bad"]  # empty transcript
    assert "1 of 2 utterances had unreadable or empty audio" in caplog.text


def test_stereo_is_rejected_even_with_skip_bad(tiny_asr, tmp_path, caplog):
    scp = write_scp(tmp_path / "wav.scp", {"st": write_wav(tmp_path / "st.wav", 0.5, channels=2)})
    assert run_espnet(tiny_asr, scp, tmp_path / "text", "--skip_bad", "true") == 1
    assert "utterance 'st'" in caplog.text and "2 channels" in caplog.text
    assert not (tmp_path / "text").exists()


def test_espnet_needs_a_model(wav_scp, tmp_path, capsys):
    base = ["--backend", "espnet", "--wav_scp", wav_scp, "--output", str(tmp_path / "text")]
    with pytest.raises(SystemExit):
        transcribe.main(base)
    assert "needs --asr_train_config" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        transcribe.main(base + ["--asr_train_config", str(tmp_path / "none.yaml"),
                                "--asr_model_file", str(tmp_path / "none.pth")])
    assert "none.yaml does not exist" in capsys.readouterr().err
    config = tmp_path / "decode.yaml"
    config.write_text("beam: 2\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        transcribe.main(base + ["--config", str(config)])
    assert "decode.yaml: unknown options ['beam']" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("text2wave") is None or shutil.which("sox") is None,
                    reason="festival (text2wave) and sox are needed")
def test_pocketsphinx_transcribes_festival_speech(tmp_path):
    ref = "the quick brown fox jumps over the lazy dog"
    raw, wav = tmp_path / "raw.wav", tmp_path / "fox.wav"
    subprocess.run(["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", str(raw)],
                   input=ref, text=True, check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", str(wav)], check=True)
    scp = write_scp(tmp_path / "wav.scp", {"fox": str(wav)})
    output = tmp_path / "text"
    assert transcribe.main(["--backend", "pocketsphinx", "--wav_scp", scp,
                            "--output", str(output)]) == 0
    (utt, hyp), = read_output(output)
    errors = ErrorCounts.of_sentence(align(ref.split(), hyp.split()))
    assert utt == "fox" and errors.errors / errors.words <= 0.25, hyp


def test_best_path_ctc_merges_repeats_and_drops_blanks(tiny_asr, monkeypatch):
    from espnet2.bin.asr_inference import Speech2Text

    speech2text = Speech2Text(asr_train_config=tiny_asr[1], asr_model_file=tiny_asr[3], ctc_weight=1.0)
    model = speech2text.asr_model
    frames = {}

    def fixed_argmax(enc):  # one id per encoder frame; <sos/eos> (6) is never a character
        path = torch.tensor([0, 3, 3, 0, 3, 2, 4, 4, 0, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6])
        frames["n"] = enc.shape[1]
        return path[: enc.shape[1]][None]

    monkeypatch.setattr(model.ctc, "argmax", fixed_argmax)
    audio = np.zeros(16000, dtype=np.float32)  # 1 s -> 25 encoder frames with conv1d2 at hop 320
    assert transcribe.best_path_ctc(speech2text, audio) == ["aa bc"]
    assert frames["n"] >= 11


def test_ctc_greedy_cli(tiny_asr, wav_scp, tmp_path, caplog):
    output = tmp_path / "text"
    assert run_espnet(tiny_asr, wav_scp, output, "--ctc_greedy", "true") == 0
    assert [row[0] for row in read_output(output)] == ["utt_B", "utt_a", "utt_b"]
    assert "best-path CTC" in caplog.text
    with pytest.raises(SystemExit):
        run_espnet(tiny_asr, wav_scp, output, "--ctc_greedy", "true", "--nbest", "2")
