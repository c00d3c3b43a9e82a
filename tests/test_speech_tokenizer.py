"""Speech tokenizer: interface, mel_kmeans, precomputed, file handling and the three CLIs.

Everything runs on tiny synthetic audio (sines + noise) with tiny models, in-process.
"""
import io
import math
import os
import re

import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet2_ttt.bin import speech_detokenize, speech_tokenize, speech_tokenizer_train
from espnet2_ttt.speech import (
    MelKMeansTokenizer,
    PrecomputedTokenizer,
    build_speech_tokenizer,
    load_speech_tokenizer,
    speech_tokenizer_choices,
)
from espnet2_ttt.speech.io import AudioError, load_audio, read_codes, read_wav_scp, resample
from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.speech.mel_kmeans import dct_basis, kmeans

from user_errors import dead_pid, error_line

SR = 16000
SMALL = dict(codebook_size=8, n_mels=20, n_cepstra=6, n_fft=512, win_length=400, griffin_lim_iters=2, decoder_conf=dict(dim=16, layers=1))
DETOK = dict(steps=5, batch_size=2, window=4)


def synth(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """float32 [round(seconds * sr)]: two gliding sines plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f0, f1 = rng.uniform(150, 400), rng.uniform(800, 2000)
    wav = 0.3 * np.sin(2 * np.pi * (f0 + 80 * t) * t) + 0.2 * np.sin(2 * np.pi * f1 * t * (1 + 0.2 * np.sin(3 * t)))
    return (wav + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def utterances(n: int = 3, seconds: float = 1.0):
    return [(f"u{i}", synth(seconds, seed=i), SR) for i in range(n)]


@pytest.fixture(scope="module")
def trained() -> MelKMeansTokenizer:
    tok = MelKMeansTokenizer(**SMALL)
    tok.train_tokenizer(utterances(), seed=0, iters=5)
    tok.train_detokenizer(utterances(), seed=0, **DETOK)
    return tok


# ---------------------------------------------------------------------------------- mel_kmeans
@pytest.mark.parametrize("n_samples", [1, 1279, 1280, 1281, 16000, 16640])
def test_code_count_is_ceil_of_duration_times_frame_rate(trained, n_samples):
    codes = trained.encode(synth(n_samples / SR), SR)
    assert codes.dtype == np.int64 and codes.shape == (math.ceil(n_samples * 12.5 / SR),)
    assert codes.min() >= 0 and codes.max() < 8
    wav, sr = trained.decode(codes)
    assert sr == SR and wav.dtype == np.float32 and wav.shape == (len(codes) * 1280,)


def test_frame_rate_25hz_stacks_four_frames():
    tok = MelKMeansTokenizer(frame_rate=25.0, **SMALL)
    assert tok.stack == 4 and tok.samples_per_code == 640
    tok.train_tokenizer(utterances(), seed=0, iters=2)
    assert tok.centroids.shape == (8, 4 * 6) and tok.code_mel.shape == (8, 4 * 20)
    assert len(tok.encode(synth(1.0), SR)) == 25


def test_frame_rate_must_divide_into_mel_frames():
    with pytest.raises(ValueError, match="whole number of mel frames"):
        MelKMeansTokenizer(frame_rate=12.5, hop_length=300)


def test_other_sample_rate_is_resampled(trained):
    wav8k = synth(1.0, sr=8000)
    codes = trained.encode(wav8k, 8000)
    assert len(codes) == 13  # ceil(1.0 s * 12.5)
    np.testing.assert_array_equal(codes, trained.encode(resample(wav8k, 8000, SR), SR))


def test_untrained_and_non_mono_input_raise(trained):
    with pytest.raises(RuntimeError, match="no codebook"):
        MelKMeansTokenizer(**SMALL).encode(synth(0.5), SR)
    with pytest.raises(ValueError, match="mono"):
        trained.encode(np.stack([synth(0.5), synth(0.5)], 1), SR)
    with pytest.raises(ValueError, match="no samples"):
        trained.encode(np.zeros(0, np.float32), SR)
    with pytest.raises(ValueError, match=r"out of range \[0, 8\)"):
        trained.decode(np.array([0, 8]))


def test_training_is_deterministic_given_the_seed(trained):
    again = MelKMeansTokenizer(**SMALL)
    again.train_tokenizer(utterances(), seed=0, iters=5)
    assert torch.equal(again.centroids, trained.centroids)
    again.train_detokenizer(utterances(), seed=0, **DETOK)
    for name, value in trained.decoder.state_dict().items():
        assert torch.equal(value, again.decoder.state_dict()[name]), name
    other = MelKMeansTokenizer(**SMALL)
    other.train_tokenizer(utterances(), seed=1, iters=5)
    assert not torch.equal(other.centroids, trained.centroids)


def test_kmeans_recovers_separated_clusters():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = (centres[:, None] + 0.1 * torch.randn(3, 50, 2, generator=gen)).reshape(-1, 2)
    found = kmeans(x, 3, iters=10, seed=0, init="kmeans++")
    order = sorted(range(3), key=lambda i: (round(float(found[i, 0])), round(float(found[i, 1]))))
    assert torch.allclose(found[order], centres[[0, 2, 1]], atol=0.1)
    random_init = kmeans(x, 3, iters=10, seed=3, init="random")  # may stop in a local optimum
    assert random_init.shape == (3, 2) and torch.equal(random_init, kmeans(x, 3, iters=10, seed=3, init="random"))
    with pytest.raises(ValueError, match="at least codebook_size=200"):
        kmeans(x, 200)


def test_dct_basis_matches_scipy():
    import scipy.fft

    x = np.random.default_rng(0).standard_normal((5, 20))
    basis = dct_basis(20, 6).double().numpy()
    np.testing.assert_allclose(x @ basis, scipy.fft.dct(x, type=2, norm="ortho")[:, :6], atol=1e-6)
    full = dct_basis(20, 20).double().numpy()
    np.testing.assert_allclose((x @ full) @ full.T, x, atol=1e-6)  # orthonormal: the inverse is the transpose


def test_code_mel_is_the_mean_log_mel_of_each_codes_training_vectors(trained):
    """Reference loop: encode every training utterance, average its normalised log-mel per code."""
    sums, counts = {}, {}
    for _, wav, sr in utterances():
        log_mel = trained.log_mel(wav, sr)
        normed = ((log_mel - trained.mel_mean) / trained.mel_std).reshape(-1, 8 * 20)
        dct = dct_basis(20, 6)
        cep = ((log_mel @ dct - trained.feature_mean) / trained.feature_std).reshape(-1, 8 * 6)
        for vector, target in zip(cep, normed):
            code = int(((trained.centroids - vector) ** 2).sum(1).argmin())
            sums[code] = sums.get(code, 0) + target.double()
            counts[code] = counts.get(code, 0) + 1
    for code in range(8):
        if code in counts:
            torch.testing.assert_close(trained.code_mel[code].double(), sums[code] / counts[code], atol=1e-5, rtol=1e-5)
        else:  # unused code: the smoothed envelope of its centroid
            envelope = (trained.centroids[code].reshape(8, 6) * trained.feature_std + trained.feature_mean) @ dct_basis(20, 6).T
            torch.testing.assert_close(trained.code_mel[code], ((envelope - trained.mel_mean) / trained.mel_std).reshape(-1))


def test_log_mel_cluster_features_and_bad_options():
    tok = MelKMeansTokenizer(**{**SMALL, "cluster_features": "log_mel"})
    tok.train_tokenizer(utterances(), seed=0, iters=3)
    assert tok.centroids.shape == (8, 8 * 20) and tok.code_mel.shape == (8, 8 * 20)
    assert len(tok.encode(synth(1.0), SR)) == 13
    with pytest.raises(ValueError, match="cluster_features must be one of"):
        MelKMeansTokenizer(cluster_features="mfcc")
    with pytest.raises(ValueError, match=r"n_cepstra must be in \[1, n_mels=80\]"):
        MelKMeansTokenizer(n_cepstra=81)


def test_untrained_decoder_equals_code_mel_lookup(trained):
    codes = trained.encode(synth(1.0, seed=5), SR)
    net = trained.decoder
    trained.decoder = None
    lookup = trained.codes_to_log_mel(codes)
    trained.decoder = net
    assert lookup.shape == (len(codes) * 8, 20)
    expected = trained.code_mel[torch.from_numpy(codes)].reshape(-1, 20) * trained.mel_std + trained.mel_mean
    assert torch.allclose(lookup, expected)
    learned = trained.codes_to_log_mel(codes)
    assert learned.shape == lookup.shape and not torch.allclose(learned, lookup)


def test_save_load_gives_identical_codes_and_audio(trained, tmp_path):
    trained.save(tmp_path / "tok")
    loaded = load_speech_tokenizer(tmp_path / "tok")
    assert isinstance(loaded, MelKMeansTokenizer) and loaded.config() == trained.config()
    wav = synth(1.3, seed=7)
    codes = trained.encode(wav, SR)
    np.testing.assert_array_equal(loaded.encode(wav, SR), codes)
    np.testing.assert_array_equal(loaded.decode(codes)[0], trained.decode(codes)[0])
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == ["codebook.pt", "decoder.pt", "tokenizer.yaml"]


def test_load_refuses_incomplete_or_other_directory(trained, tmp_path):
    with pytest.raises(InputError, match="tokenizer.yaml: not found"):
        load_speech_tokenizer(tmp_path)
    PrecomputedTokenizer().save(tmp_path / "pre")
    with pytest.raises(ValueError, match="holds a 'precomputed' speech tokenizer"):
        MelKMeansTokenizer.load(tmp_path / "pre")
    trained.save(tmp_path / "tok")
    state = torch.load(tmp_path / "tok" / "codebook.pt")
    torch.save({k: state[k] for k in ("mel_mean", "mel_std", "centroids")}, tmp_path / "tok" / "codebook.pt")
    with pytest.raises(ValueError, match=r"codebook.pt: no \['feature_mean', 'feature_std', 'code_mel'\]"):
        load_speech_tokenizer(tmp_path / "tok")
    state["code_mel"] = state["code_mel"][:, :-1]
    torch.save(state, tmp_path / "tok" / "codebook.pt")
    with pytest.raises(ValueError, match=r"code_mel has shape \(8, 159\), tokenizer.yaml implies \(8, 160\)"):
        load_speech_tokenizer(tmp_path / "tok")


# ---------------------------------------------------------------------------------- registry
def test_registry_builds_by_name():
    assert set(speech_tokenizer_choices.choices()) >= {"mel_kmeans", "precomputed"}
    tok = build_speech_tokenizer("mel_kmeans", dict(frame_rate=25.0, codebook_size=16))
    assert isinstance(tok, MelKMeansTokenizer) and tok.frame_rate == 25.0 and tok.codebook_size == 16
    with pytest.raises(ValueError, match="must be one of"):
        build_speech_tokenizer("no_such_tokenizer")
    with pytest.raises(TypeError, match="bad speech_tokenizer_conf for 'precomputed'"):
        build_speech_tokenizer("precomputed", dict(n_mels=80))


# ---------------------------------------------------------------------------------- precomputed
def fake_decoder(codes, gain=1.0):
    """External decoder stand-in: 100 samples per code at 8 kHz."""
    return np.repeat(codes.astype(np.float32) * gain / 16384, 100), 8000


def test_precomputed_needs_external_codes_and_decoder():
    tok = PrecomputedTokenizer()
    assert (tok.frame_rate, tok.codebook_size) == (12.5, 16384)
    with pytest.raises(NotImplementedError, match="cannot encode"):
        tok.encode(synth(0.5), SR)
    with pytest.raises(RuntimeError, match="no external decoder"):
        tok.decode(np.array([1, 2]))
    with pytest.raises(ImportError, match="no_such_module"):
        PrecomputedTokenizer(decoder="no_such_module:decode").decode(np.array([1]))


def test_precomputed_calls_configured_decoder(tmp_path):
    tok = PrecomputedTokenizer(decoder=f"{__name__}:fake_decoder", decoder_conf=dict(gain=2.0))
    tok.save(tmp_path)
    loaded = load_speech_tokenizer(tmp_path)
    wav, sr = loaded.decode(np.array([8192, 4096]))
    assert sr == 8000 and wav.shape == (200,)
    np.testing.assert_allclose(wav[[0, 199]], [1.0, 0.5])
    with pytest.raises(ValueError, match="out of range"):
        loaded.decode(np.array([16384]))


# ---------------------------------------------------------------------------------- audio files
def test_bad_audio_files_raise_naming_the_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "text.wav"
    text.write_text("not audio")
    zero = tmp_path / "zero.wav"
    soundfile.write(str(zero), np.zeros(0, np.float32), SR)
    for path, why in [(empty, "empty file"), (text, "unreadable"), (zero, "zero-length audio"), (tmp_path / "missing.wav", "missing file")]:
        with pytest.raises(AudioError, match=f"^{path}: {why}") as err:
            load_audio(path)
        assert err.value.reason == why


def test_stereo_is_downmixed(tmp_path):
    left, right = synth(0.5, seed=1), synth(0.5, seed=2)
    soundfile.write(str(tmp_path / "st.wav"), np.stack([left, right], 1), SR, subtype="FLOAT")
    wav, sr = load_audio(tmp_path / "st.wav")
    assert sr == SR and wav.shape == left.shape
    np.testing.assert_allclose(wav, (left + right) / 2, atol=1e-6)


def test_wav_scp_rejects_pipes_and_selects_keys(tmp_path):
    (tmp_path / "wav.scp").write_text("a x.wav\nb y.wav\nc z.wav\n")
    (tmp_path / "keys").write_text("c\na\n")
    assert read_wav_scp(tmp_path / "wav.scp", tmp_path / "keys") == [("c", "z.wav"), ("a", "x.wav")]
    (tmp_path / "pipe.scp").write_text("a sox x.wav -t wav - |\n")
    with pytest.raises(ValueError, match="utterance 'a'.*not a plain file path"):
        read_wav_scp(tmp_path / "pipe.scp")


# ---------------------------------------------------------------------------------- CLIs
def test_clis_train_tokenize_detokenize(tmp_path):
    (tmp_path / "a").mkdir()
    soundfile.write(str(tmp_path / "a/u0.wav"), synth(1.0, seed=0), SR)
    soundfile.write(str(tmp_path / "a/u1.wav"), synth(0.7, sr=8000, seed=1), 8000)  # resampled
    soundfile.write(str(tmp_path / "a/u2.wav"), np.stack([synth(0.5, seed=2)] * 2, 1), SR)  # down-mixed
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"u{i} {tmp_path}/a/u{i}.wav\n" for i in (2, 0, 1)))
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump(dict(
        speech_tokenizer="mel_kmeans", speech_tokenizer_conf=SMALL,
        train_tokenizer_conf=dict(iters=3), train_detokenizer_conf=DETOK,
    )))
    tok_dir = tmp_path / "tok"
    speech_tokenizer_train.main(["--wav_scp", str(scp), "--output_dir", str(tok_dir), "--config", str(conf),
                                 "--train_detokenizer", "true", "--max_utterances", "3", "--seed", "0"])
    tok = load_speech_tokenizer(tok_dir)
    assert tok.decoder is not None

    codes_file = tmp_path / "codes"
    speech_tokenize.main(["--tokenizer_dir", str(tok_dir), "--wav_scp", str(scp), "--output", str(codes_file)])
    codes = read_codes(codes_file)
    assert [u for u, _ in codes] == ["u2", "u0", "u1"]
    assert [len(c) for _, c in codes] == [7, 13, 9]  # ceil(0.5 / 1.0 / 0.7 s * 12.5)
    np.testing.assert_array_equal(codes[1][1], tok.encode(*load_audio(tmp_path / "a/u0.wav")))

    (tmp_path / "keys").write_text("u1\n")
    subset = tmp_path / "codes.1"
    speech_tokenize.main(["--tokenizer_dir", str(tok_dir), "--wav_scp", str(scp), "--output", str(subset), "--key_file", str(tmp_path / "keys")])
    assert subset.read_text() == codes_file.read_text().splitlines(keepends=True)[2]

    out = tmp_path / "detok"
    speech_detokenize.main(["--tokenizer_dir", str(tok_dir), "--codes", str(codes_file), "--output_dir", str(out)])
    scp_lines = (out / "wav.scp").read_text().split("\n")[:-1]
    assert [line.split()[0] for line in scp_lines] == ["u2", "u0", "u1"]
    for line, (_, c) in zip(scp_lines, codes):
        info = soundfile.info(line.split()[1])
        assert (info.samplerate, info.frames, info.channels) == (SR, len(c) * 1280, 1)

    bad = tmp_path / "bad.scp"
    (tmp_path / "a/broken.wav").write_text("garbage")
    bad.write_text(f"u0 {tmp_path}/a/u0.wav\nbroken {tmp_path}/a/broken.wav\n")
    with pytest.raises(ValueError, match=f"utterance 'broken'.*{tmp_path}/a/broken.wav"):
        speech_tokenize.main(["--tokenizer_dir", str(tok_dir), "--wav_scp", str(bad), "--output", str(tmp_path / "bad_codes")])
    assert not any(p.name.startswith(("bad_codes", ".bad_codes")) for p in tmp_path.iterdir())


# ---------------------------------------------------------------------------------- bad inputs
@pytest.fixture(scope="module")
def tok_dir(trained, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tok")
    trained.save(directory)
    return directory


def write_scp(tmp_path, audio) -> str:
    """wav.scp of utterance "good" (1 s) then "bad" (the file ``audio`` writes)."""
    soundfile.write(str(tmp_path / "good.wav"), synth(1.0), SR)
    audio(tmp_path / "bad.wav")
    (tmp_path / "wav.scp").write_text(f"good {tmp_path}/good.wav\nbad {tmp_path}/bad.wav\n")
    return str(tmp_path / "wav.scp")


def truncated_wav(path):
    soundfile.write(str(path), synth(1.0), SR, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:20000])  # header + 19956 of the 32000 data bytes


def nan_wav(path):
    wav = synth(1.0)
    wav[[5, 50, 500]] = [np.nan, np.inf, -np.inf]
    soundfile.write(str(path), wav, SR, subtype="FLOAT")


@pytest.mark.parametrize("audio, problem", [
    (truncated_wav, "truncated (its header declares 32000 bytes of samples, the file holds 19956)"),
    (nan_wav, "non-finite samples (3 NaN or infinite samples)"),
    (lambda path: soundfile.write(str(path), synth(1.0)[:1], SR), "too short (1 samples at 16000 Hz, under 0.08 s)"),
])
def test_speech_tokenize_refuses_bad_audio(tok_dir, tmp_path, capsys, audio, problem):
    scp = write_scp(tmp_path, audio)
    out = tmp_path / "out" / "codes"
    line = error_line(capsys, speech_tokenize.main, "speech_tokenize",
                      ["--tokenizer_dir", tok_dir, "--wav_scp", scp, "--output", out])
    assert line == f"speech_tokenize: error: {tmp_path}/bad.wav: utterance 'bad': {problem}"
    assert list((tmp_path / "out").iterdir()) == []  # no output, no temporary


def test_truncated_data_shorter_than_declared_frames_is_refused(tmp_path):
    """A FLAC cut short: its header still declares every frame, reading yields fewer or fails."""
    soundfile.write(str(tmp_path / "a.flac"), synth(1.0), SR)
    data = (tmp_path / "a.flac").read_bytes()
    (tmp_path / "a.flac").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError) as err:
        load_audio(tmp_path / "a.flac")
    assert err.value.reason in ("truncated", "unreadable")


def test_wav_scp_and_key_file_must_be_utf8_without_duplicates(tok_dir, tmp_path, capsys):
    scp = write_scp(tmp_path, lambda path: soundfile.write(str(path), synth(1.0), SR))
    argv = ["--tokenizer_dir", tok_dir, "--wav_scp", scp, "--output", tmp_path / "codes"]
    (tmp_path / "wav.scp").write_bytes(b"good x.wav\nb\xffad y.wav\n")
    assert error_line(capsys, speech_tokenize.main, "speech_tokenize", argv) == \
        f"speech_tokenize: error: {scp}:2: not valid UTF-8 (byte 0xff at column 2)"
    (tmp_path / "wav.scp").write_text(f"good {tmp_path}/good.wav\nbad {tmp_path}/bad.wav\n")
    (tmp_path / "keys").write_text("bad\ngood\nbad\n")
    assert error_line(capsys, speech_tokenize.main, "speech_tokenize", argv + ["--key_file", tmp_path / "keys"]) == \
        f"speech_tokenize: error: {tmp_path}/keys:3: duplicate key 'bad' (first on line 1)"
    (tmp_path / "keys").write_text("")
    assert error_line(capsys, speech_tokenize.main, "speech_tokenize", argv + ["--key_file", tmp_path / "keys"]) == \
        f"speech_tokenize: error: {tmp_path}/keys: empty: it has no entries"
    assert not (tmp_path / "codes").exists()


def test_truncated_or_foreign_tokenizer_state_names_the_file(trained, tmp_path, capsys):
    trained.save(tmp_path / "tok")
    codebook = tmp_path / "tok" / "codebook.pt"
    whole = codebook.read_bytes()
    codebook.write_bytes(whole[: len(whole) // 2])
    scp = write_scp(tmp_path, lambda path: soundfile.write(str(path), synth(1.0), SR))
    argv = ["--tokenizer_dir", tmp_path / "tok", "--wav_scp", scp, "--output", tmp_path / "codes"]
    line = error_line(capsys, speech_tokenize.main, "speech_tokenize", argv)
    assert line.startswith(f"speech_tokenize: error: {codebook}: cannot be read as PyTorch weights (truncated or "
                           "corrupt?): ")  # then torch's words, which vary with the cut

    class Payload:  # a pickle that would run code: refused by the weights-only loader
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"centroids": Payload()}, codebook)
    assert error_line(capsys, speech_tokenize.main, "speech_tokenize", argv).startswith(
        f"speech_tokenize: error: {codebook}: refused: it holds pickled Python objects, not only tensors")
    flipped = bytearray(whole)
    flipped[whole.index(trained.mel_mean.numpy().tobytes()) + 5] ^= 0xFF  # a tensor's bytes: torch.load takes them
    codebook.write_bytes(bytes(flipped))
    line = error_line(capsys, speech_tokenize.main, "speech_tokenize", argv)  # the archive's folder: the name torch.save had
    assert re.fullmatch(rf"speech_tokenize: error: {re.escape(str(codebook))}: [^/]+/data/0: CRC check failed \(the file is corrupt\)", line)
    state = torch.load(io.BytesIO(whole), weights_only=True)
    state["centroids"][0, 0] = float("nan")
    torch.save(state, codebook)
    assert error_line(capsys, speech_tokenize.main, "speech_tokenize", argv) == \
        f"speech_tokenize: error: {codebook}: centroids holds NaN or infinite values"
    (tmp_path / "tok" / "tokenizer.yaml").write_text("speech_tokenizer: [unclosed\n")
    assert error_line(capsys, speech_tokenize.main, "speech_tokenize", argv).startswith(
        f"speech_tokenize: error: {tmp_path}/tok/tokenizer.yaml: while parsing a flow sequence")
    assert not (tmp_path / "codes").exists()


def test_decoder_state_that_does_not_fit_names_the_entry(trained, tmp_path):
    trained.save(tmp_path)
    state = torch.load(tmp_path / "decoder.pt", weights_only=True)
    del state["out.bias"]
    torch.save(state, tmp_path / "decoder.pt")
    with pytest.raises(InputError) as err:
        load_speech_tokenizer(tmp_path)
    assert str(err.value) == f"{tmp_path}/decoder.pt: out.bias: missing (the model has it; 1 missing in all)"


@pytest.mark.parametrize("content, problem", [
    ("u0 1 2 3\nu1 4 8 5\n", "2: utterance 'u1': code 8 is out of range [0, 8)"),
    ("u0 1 2 3\nu1 4 x 5\n", "2: utterance 'u1': codes must be integers, got 'x'"),
    ("u0 1 2 3\nu1 4 -1\n", "2: utterance 'u1': code -1 is out of range [0, 8)"),
    ("u0 1 2 3\nu1\n", "2: key 'u1' has no value"),
    ("u0 1 2 3\nu1 4 5", "2: the last line has no newline: the file is cut short"),
    ("u0 1 2 3\nu0 4 5\n", "2: duplicate key 'u0' (first on line 1)"),
])
def test_speech_detokenize_refuses_bad_codes(tok_dir, tmp_path, capsys, content, problem):
    (tmp_path / "codes").write_text(content)
    out = tmp_path / "out"
    line = error_line(capsys, speech_detokenize.main, "speech_detokenize",
                      ["--tokenizer_dir", tok_dir, "--codes", tmp_path / "codes", "--output_dir", out])
    assert line == f"speech_detokenize: error: {tmp_path}/codes:{problem}"
    assert not out.exists()


def test_reruns_remove_what_killed_runs_left(tok_dir, tmp_path):
    scp = write_scp(tmp_path, lambda path: soundfile.write(str(path), synth(0.5), SR))
    pid = dead_pid()
    (tmp_path / f".codes.tmp{pid}").write_text("good 1 2\nbad 3")  # a run killed while writing
    (tmp_path / f".codes.tmp{os.getpid()}.1").write_text("other job")  # another output: kept
    speech_tokenize.main(["--tokenizer_dir", str(tok_dir), "--wav_scp", scp, "--output", str(tmp_path / "codes")])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [f".codes.tmp{os.getpid()}.1"]
    assert [u for u, _ in read_codes(tmp_path / "codes")] == ["good", "bad"]

    wavs = tmp_path / "detok" / "wavs"
    wavs.mkdir(parents=True)
    (wavs / f".good.tmp{pid}.wav").write_bytes(b"RIFF")
    speech_detokenize.main(["--tokenizer_dir", str(tok_dir), "--codes", str(tmp_path / "codes"),
                            "--output_dir", str(tmp_path / "detok")])
    assert sorted(p.name for p in wavs.iterdir()) == ["bad.wav", "good.wav"]


@pytest.mark.parametrize("key, value", [("codebook_size", 0), ("n_mels", -4), ("frame_rate", "many"), ("hop_length", True)])
def test_tokenizer_yaml_options_of_a_wrong_value_name_the_option(trained, tmp_path, key, value):
    trained.save(tmp_path)
    info = yaml.safe_load((tmp_path / "tokenizer.yaml").read_text())
    info["speech_tokenizer_conf"][key] = value
    (tmp_path / "tokenizer.yaml").write_text(yaml.safe_dump(info))
    kind = "float" if key == "frame_rate" else "int"
    with pytest.raises(InputError) as err:
        load_speech_tokenizer(tmp_path)
    assert str(err.value) == f"{tmp_path}/tokenizer.yaml: {key} must be a positive {kind}, got {value!r}"
