"""``mel_kmeans``: a CPU-trainable speech tokenizer built from log-mel frames and k-means.

Encoder: 16 kHz audio -> log-mel frames (``hop_length`` samples apart) -> per-frame
clustering features -> per-dimension normalisation -> ``stack`` consecutive frames
concatenated into one vector per code (``stack = sample_rate / (frame_rate * hop_length)``,
8 at 12.5 Hz) -> nearest k-means centroid.  The clustering features are, by default, the
first ``n_cepstra`` cepstral coefficients of each log-mel frame (orthonormal DCT-II): the
spectral envelope that carries the phonetic content, without the pitch harmonics that
otherwise take most of the codebook (``cluster_features: log_mel`` clusters the log-mel
frames themselves).  The waveform is zero-padded at the end to a whole number of codes, so
an ``N``-sample input (at ``sample_rate``) gives exactly ``ceil(N / (sample_rate /
frame_rate))`` codes, i.e. ``ceil(duration * frame_rate)``.

Decoder: codes -> normalised log-mel frames, by a trained ``CodeToMel`` network when the
tokenizer has one, else by table lookup (``code_mel``: per code, the mean normalised
log-mel of the training vectors assigned to it) -> mel magnitudes -> linear spectrogram
(least squares, ``InverseMelScale``) -> Griffin-Lim.  ``decode`` returns
``T * sample_rate / frame_rate`` samples at ``sample_rate``.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch
import torchaudio
from torch import nn

from espnet2_ttt.models.weights import load_weights, read_weights
from espnet2_ttt.speech.abs_tokenizer import AbsSpeechTokenizer, Utterance, require_positive
from espnet2_ttt.speech.io import resample
from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.utils.table import atomic_path

STATE_FILE = "codebook.pt"
DECODER_FILE = "decoder.pt"
LOG_FLOOR = 1e-5
CLUSTER_FEATURES = ("cepstrum", "log_mel")
STATE_TENSORS = ("mel_mean", "mel_std", "feature_mean", "feature_std", "centroids", "code_mel")


def dct_basis(n: int, k: int) -> torch.Tensor:
    """Orthonormal DCT-II basis [n, k]: ``x @ basis`` = the first k coefficients of
    ``scipy.fft.dct(x, type=2, norm="ortho")``; ``coeffs @ basis.T`` inverts it on those k."""
    i = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(k, dtype=torch.float64)[None]
    basis = torch.cos(math.pi / n * (i + 0.5) * j) * math.sqrt(2.0 / n)
    basis[:, 0] /= math.sqrt(2.0)
    return basis.float()


# ---------------------------------------------------------------------------------- k-means
def nearest_centroid(x: torch.Tensor, centroids: torch.Tensor, chunk: int = 4096) -> Tuple[torch.Tensor, torch.Tensor]:
    """x [N, D], centroids [K, D] -> (index int64 [N], squared distance [N])."""
    c2 = (centroids * centroids).sum(1)
    index, dist = [], []
    for part in x.split(chunk):
        d = (part * part).sum(1, keepdim=True) - 2.0 * part @ centroids.T + c2
        value, arg = d.min(1)
        index.append(arg)
        dist.append(value.clamp(min=0.0))
    return torch.cat(index), torch.cat(dist)


def _kmeans_pp_init(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each next centre drawn with probability proportional to D(x)^2."""
    x2 = (x * x).sum(1)

    def dist2(i: int) -> torch.Tensor:  # squared distance of every point to point i, [N]
        return (x2 - 2.0 * (x @ x[i]) + x2[i]).clamp(min=0.0)

    first = int(torch.randint(x.shape[0], (1,), generator=generator))
    picks = [first]
    d2 = dist2(first)
    for i in range(1, k):
        if float(d2.sum()) <= 0.0:
            raise ValueError(f"k-means: the data has only {i} distinct frames, fewer than codebook_size {k}")
        picks.append(int(torch.multinomial(d2, 1, generator=generator)))
        d2 = torch.minimum(d2, dist2(picks[-1]))
    return x[picks].clone()


def kmeans(x: torch.Tensor, k: int, iters: int = 20, seed: int = 0, init: str = "kmeans++") -> torch.Tensor:
    """Lloyd's k-means on x [N, D] -> centroids [k, D]; same seed and data -> same centroids.

    ``init``: "kmeans++" or "random" (k distinct data points).  An empty cluster is moved to
    the point that is currently worst served.
    """
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least codebook_size={k} frames, got {n}: give more audio or a smaller codebook")
    generator = torch.Generator().manual_seed(seed)
    if init == "kmeans++":
        centroids = _kmeans_pp_init(x, k, generator)
    elif init == "random":
        centroids = x[torch.randperm(n, generator=generator)[:k]].clone()
    else:
        raise ValueError(f"unknown k-means init {init!r} (choose 'kmeans++' or 'random')")
    for it in range(iters):
        assign, dist = nearest_centroid(x, centroids)
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        updated = sums / counts.clamp(min=1).unsqueeze(1).to(x.dtype)
        empty = torch.nonzero(counts == 0).squeeze(1)
        if empty.numel():
            updated[empty] = x[dist.topk(empty.numel()).indices]
        logging.info("k-means iter %d: mean squared distance %.4f, empty clusters %d", it, float(dist.mean()), empty.numel())
        if torch.equal(updated, centroids):
            break
        centroids = updated
    return centroids


# ---------------------------------------------------------------------------------- decoder net
class _ConvBlock(nn.Module):
    """Pre-norm residual block over time: [B, T, C] -> [B, T, C]."""

    def __init__(self, dim: int, kernel: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)
        self.act = nn.GELU()
        self.proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.conv(self.norm(h).transpose(1, 2)).transpose(1, 2)
        return h + self.dropout(self.proj(self.act(y)))


class CodeToMel(nn.Module):
    """codes int64 [B, T] -> normalised log-mel [B, T * stack, n_mels].

    Table lookup (``code_mel`` [K, stack * n_mels]) plus a learned residual (the output
    layers start at zero, so an untrained network equals the lookup); a final convolution
    over mel frames smooths the joins between codes.
    """

    def __init__(self, code_mel: torch.Tensor, stack: int, n_mels: int, dim: int = 256, layers: int = 4, kernel: int = 5, dropout: float = 0.1):
        super().__init__()
        self.stack, self.n_mels = stack, n_mels
        self.register_buffer("code_mel", code_mel.clone(), persistent=False)  # [K, stack * n_mels]
        self.embed = nn.Embedding(code_mel.shape[0], dim)
        self.blocks = nn.ModuleList(_ConvBlock(dim, kernel, dropout) for _ in range(layers))
        self.out = nn.Linear(dim, stack * n_mels)
        self.post = nn.Conv1d(n_mels, n_mels, kernel, padding=kernel // 2)
        for layer in (self.out, self.post):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        b, t = codes.shape
        h = self.embed(codes)
        for block in self.blocks:
            h = block(h)
        y = (self.code_mel[codes] + self.out(h)).reshape(b, t * self.stack, self.n_mels)
        return y + self.post(y.transpose(1, 2)).transpose(1, 2)


# ---------------------------------------------------------------------------------- tokenizer
class MelKMeansTokenizer(AbsSpeechTokenizer):
    """Stacked log-mel + k-means codes; learned (or centroid-lookup) mel + Griffin-Lim decoding."""

    name = "mel_kmeans"

    def __init__(
        self,
        sample_rate: int = 16000,
        frame_rate: float = 12.5,
        codebook_size: int = 1024,
        n_mels: int = 80,
        n_fft: int = 1024,
        win_length: int = 640,
        hop_length: int = 160,
        griffin_lim_iters: int = 32,
        cluster_features: str = "cepstrum",
        n_cepstra: int = 16,
        decoder_conf: Optional[Dict[str, Any]] = None,
    ):
        require_positive(int, sample_rate=sample_rate, codebook_size=codebook_size, n_mels=n_mels, n_fft=n_fft,
                         win_length=win_length, hop_length=hop_length, griffin_lim_iters=griffin_lim_iters,
                         n_cepstra=n_cepstra)
        require_positive(float, frame_rate=frame_rate)
        stack = sample_rate / (frame_rate * hop_length)
        if stack < 1 or abs(stack - round(stack)) > 1e-9:
            raise ValueError(
                f"sample_rate / (frame_rate * hop_length) = {sample_rate}/({frame_rate}*{hop_length}) "
                "must be a whole number of mel frames per code"
            )
        if cluster_features not in CLUSTER_FEATURES:
            raise ValueError(f"cluster_features must be one of {CLUSTER_FEATURES}, got {cluster_features!r}")
        if cluster_features == "cepstrum" and not 1 <= n_cepstra <= n_mels:
            raise ValueError(f"n_cepstra must be in [1, n_mels={n_mels}], got {n_cepstra}")
        super().__init__(dict(
            sample_rate=sample_rate, frame_rate=frame_rate, codebook_size=codebook_size, n_mels=n_mels,
            n_fft=n_fft, win_length=win_length, hop_length=hop_length, griffin_lim_iters=griffin_lim_iters,
            cluster_features=cluster_features, n_cepstra=n_cepstra, decoder_conf=dict(decoder_conf or {}),
        ))
        self.stack = int(round(stack))
        self.samples_per_code = self.stack * hop_length
        self._mel = torchaudio.transforms.MelSpectrogram(
            sample_rate, n_fft=n_fft, win_length=win_length, hop_length=hop_length, n_mels=n_mels,
            power=1.0, norm="slaney", mel_scale="slaney",
        )
        self._inverse_mel = torchaudio.transforms.InverseMelScale(
            n_fft // 2 + 1, n_mels, sample_rate, norm="slaney", mel_scale="slaney"
        )
        # [n_mels, n_cepstra] orthonormal DCT-II basis: cepstra = log_mel @ basis
        self._dct = dct_basis(n_mels, n_cepstra) if cluster_features == "cepstrum" else None
        self.mel_mean: Optional[torch.Tensor] = None  # [n_mels]
        self.mel_std: Optional[torch.Tensor] = None  # [n_mels]
        self.feature_mean: Optional[torch.Tensor] = None  # [feature_dim]
        self.feature_std: Optional[torch.Tensor] = None  # [feature_dim]
        self.centroids: Optional[torch.Tensor] = None  # [K, stack * feature_dim], normalised features
        self.code_mel: Optional[torch.Tensor] = None  # [K, stack * n_mels], normalised log-mel per code
        self.decoder: Optional[CodeToMel] = None

    @property
    def feature_dim(self) -> int:
        """Clustering features per mel frame: n_cepstra, or n_mels for log_mel."""
        return self._dct.shape[1] if self._dct is not None else self._conf["n_mels"]

    # ------------------------------------------------------------------ features
    def log_mel(self, wav: np.ndarray, sr: int) -> torch.Tensor:
        """wav float32 [N] at ``sr`` -> log-mel [T * stack, n_mels], T = ceil(N' / samples_per_code)."""
        wav = resample(self.check_wav(wav), sr, self.sample_rate)
        n_codes = math.ceil(len(wav) / self.samples_per_code)
        padded = torch.zeros(n_codes * self.samples_per_code)
        padded[: len(wav)] = torch.from_numpy(wav)
        mel = self._mel(padded)[:, : n_codes * self.stack]  # centred frames: drop the one past the end
        return mel.clamp(min=LOG_FLOOR).log().T

    def _frame_features(self, log_mel: torch.Tensor) -> torch.Tensor:
        """log-mel [F, n_mels] -> clustering features [F, feature_dim] (not normalised)."""
        return log_mel @ self._dct if self._dct is not None else log_mel

    def _code_vectors(self, log_mel: torch.Tensor) -> torch.Tensor:
        """log-mel [T * stack, n_mels] -> normalised clustering vectors [T, stack * feature_dim]."""
        features = (self._frame_features(log_mel) - self.feature_mean) / self.feature_std
        return features.reshape(-1, self.stack * self.feature_dim)

    def _stacked_mel(self, log_mel: torch.Tensor) -> torch.Tensor:
        """log-mel [T * stack, n_mels] -> normalised log-mel per code [T, stack * n_mels]."""
        return ((log_mel - self.mel_mean) / self.mel_std).reshape(-1, self.stack * log_mel.shape[1])

    def _centroid_mel(self, centroids: torch.Tensor) -> torch.Tensor:
        """centroids [N, stack * feature_dim] -> normalised log-mel [N, stack * n_mels]: the
        centroid itself for log_mel features, the smoothed envelope (inverse of the truncated
        DCT) for cepstra.  Used for codes that no training vector chose."""
        features = centroids.reshape(-1, self.feature_dim) * self.feature_std + self.feature_mean
        log_mel = features @ self._dct.T if self._dct is not None else features
        return self._stacked_mel(log_mel)

    def _require_codebook(self) -> None:
        if self.centroids is None:
            raise RuntimeError("mel_kmeans tokenizer has no codebook: train it (train_tokenizer) or load a trained one")

    # ------------------------------------------------------------------ encode / decode
    def encode(self, wav: np.ndarray, sr: int) -> np.ndarray:
        self._require_codebook()
        codes, _ = nearest_centroid(self._code_vectors(self.log_mel(wav, sr)), self.centroids)
        return codes.numpy().astype(np.int64)

    def codes_to_log_mel(self, codes: np.ndarray) -> torch.Tensor:
        """codes [T] -> log-mel [T * stack, n_mels] (decoder network if trained, else ``code_mel`` lookup)."""
        self._require_codebook()
        codes = torch.from_numpy(self.check_codes(codes))
        with torch.no_grad():
            if self.decoder is not None:
                self.decoder.eval()
                normed = self.decoder(codes[None])[0]
            else:
                normed = self.code_mel[codes].reshape(-1, len(self.mel_mean))
        return normed * self.mel_std + self.mel_mean

    def decode(self, codes: np.ndarray) -> Tuple[np.ndarray, int]:
        log_mel = self.codes_to_log_mel(codes)
        n_fft, hop, win = self._conf["n_fft"], self._conf["hop_length"], self._conf["win_length"]
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # Griffin-Lim's random initial phase: same codes -> same audio
            spec = self._inverse_mel(log_mel.exp().T)  # [n_fft // 2 + 1, T * stack]
            spec = torch.cat([spec, spec[:, -1:]], 1)  # restore the centred frame past the end
            wav = torchaudio.functional.griffinlim(
                spec, torch.hann_window(win), n_fft, hop, win, power=1.0,
                n_iter=self._conf["griffin_lim_iters"], momentum=0.99,
                length=log_mel.shape[0] * hop, rand_init=True,
            )
        return wav.numpy().astype(np.float32), self.sample_rate

    # ------------------------------------------------------------------ training
    def _log_mels(self, utterances: Iterable[Utterance]) -> List[torch.Tensor]:
        """log-mel [T_i * stack, n_mels] per utterance; errors name the utterance."""
        out = []
        for utt, wav, sr in utterances:
            try:
                out.append(self.log_mel(wav, sr))
            except ValueError as e:
                raise ValueError(f"utterance {utt!r}: {e}") from e
        if not out:
            raise ValueError("no training utterances")
        return out

    def train_tokenizer(self, utterances: Iterable[Utterance], seed: int = 0, iters: int = 20, init: str = "kmeans++") -> None:
        """Fit the normalisations, the k-means codebook and the ``code_mel`` lookup table
        (mean normalised log-mel of the training vectors of each code); drops any trained decoder."""
        frames = torch.cat(self._log_mels(utterances))  # each utterance is whole codes, so stacking spans them
        self.mel_mean = frames.mean(0)
        self.mel_std = frames.std(0).clamp(min=1e-3)
        features = self._frame_features(frames)
        self.feature_mean = features.mean(0)
        self.feature_std = features.std(0).clamp(min=1e-3)
        vectors = self._code_vectors(frames)
        logging.info("k-means: %d vectors of dim %d, codebook_size %d", vectors.shape[0], vectors.shape[1], self.codebook_size)
        self.centroids = kmeans(vectors, self.codebook_size, iters=iters, seed=seed, init=init)
        assign, _ = nearest_centroid(vectors, self.centroids)
        counts = torch.bincount(assign, minlength=self.codebook_size)
        targets = self._stacked_mel(frames)
        table = torch.zeros(self.codebook_size, targets.shape[1]).index_add_(0, assign, targets)
        self.code_mel = table / counts.clamp(min=1).unsqueeze(1)
        unused = torch.nonzero(counts == 0).squeeze(1)
        if unused.numel():
            logging.info("%d codes have no training vector: their mel is the centroid's", unused.numel())
            self.code_mel[unused] = self._centroid_mel(self.centroids[unused])
        self.decoder = None

    def train_detokenizer(
        self,
        utterances: Iterable[Utterance],
        seed: int = 0,
        steps: int = 2000,
        batch_size: int = 16,
        window: int = 32,
        lr: float = 1e-3,
        log_interval: int = 100,
    ) -> None:
        """Train ``CodeToMel`` with L1 on normalised log-mel: random windows of ``window`` codes
        cut from the concatenated training utterances, Adam with cosine decay."""
        self._require_codebook()
        frames = torch.cat(self._log_mels(utterances))  # each utterance is whole codes, so stacking spans them
        codes_all, _ = nearest_centroid(self._code_vectors(frames), self.centroids)  # [S]
        target_all = self._stacked_mel(frames)  # [S, stack * n_mels]
        window = min(window, codes_all.shape[0])
        n_mels = len(self.mel_mean)
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # parameter init and dropout
            model = CodeToMel(self.code_mel, self.stack, n_mels, **self._conf["decoder_conf"])
            optimizer = torch.optim.Adam(model.parameters(), lr=lr)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
            offsets = torch.arange(window)
            model.train()
            for step in range(steps):
                starts = torch.randint(codes_all.shape[0] - window + 1, (batch_size, 1), generator=generator)
                index = starts + offsets  # [B, window]
                target = target_all[index].reshape(batch_size, window * self.stack, n_mels)
                loss = (model(codes_all[index]) - target).abs().mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                if step % log_interval == 0 or step == steps - 1:
                    logging.info("detokenizer step %d/%d: L1 %.4f", step, steps, loss.item())
        self.decoder = model.eval()

    # ------------------------------------------------------------------ persistence
    def _save_state(self, directory: Path) -> None:
        self._require_codebook()
        with atomic_path(directory / STATE_FILE) as tmp:
            torch.save({name: getattr(self, name) for name in STATE_TENSORS}, tmp)
        decoder_path = directory / DECODER_FILE
        if self.decoder is not None:
            with atomic_path(decoder_path) as tmp:
                torch.save(self.decoder.state_dict(), tmp)
        elif decoder_path.exists():
            decoder_path.unlink()  # a stale decoder of an older codebook must not be picked up

    def _load_state(self, directory: Path) -> None:
        path = directory / STATE_FILE
        state = read_weights(path)
        missing = [name for name in STATE_TENSORS if name not in state]
        if missing:
            raise InputError(f"{path}: no {missing} (written by an older mel_kmeans: retrain the tokenizer)")
        n_mels = self._conf["n_mels"]
        expected = {
            "mel_mean": (n_mels,), "mel_std": (n_mels,), "feature_mean": (self.feature_dim,), "feature_std": (self.feature_dim,),
            "centroids": (self.codebook_size, self.stack * self.feature_dim), "code_mel": (self.codebook_size, self.stack * n_mels),
        }
        for name, shape in expected.items():
            tensor = state[name]
            if tuple(tensor.shape) != shape:
                raise InputError(f"{path}: {name} has shape {tuple(tensor.shape)}, tokenizer.yaml implies {shape}")
            if not tensor.is_floating_point():
                raise InputError(f"{path}: {name} has dtype {tensor.dtype}, not a floating-point one")
            if not torch.isfinite(tensor).all():
                raise InputError(f"{path}: {name} holds NaN or infinite values")
            setattr(self, name, tensor.float())
        if (directory / DECODER_FILE).exists():
            self.decoder = CodeToMel(self.code_mel, self.stack, n_mels, **self._conf["decoder_conf"])
            load_weights(self.decoder, directory / DECODER_FILE)
            self.decoder.eval()

