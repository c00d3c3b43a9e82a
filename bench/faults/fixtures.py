"""The valid inputs every fault case starts from, built once in seconds.

One directory holds a consistent tiny setup of every input kind the entry points read:

* ``audio/<utt>.wav``: 16 kHz mono PCM_16 synthetic speech-like signals (sines + noise);
* ``data/``: a Kaldi data dir (``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``, ``dialogues.jsonl``);
* ``spm/bpe.model``: a character SentencePiece model of the transcripts; ``tokens.txt``: its
  TtT token list with ``CODEBOOK_SIZE`` codes;
* ``speech_tokenizer/``: a mel_kmeans tokenizer with a learned detokenizer, ``codes``: its codes
  of every utterance;
* ``seq`` / ``seq_shape``: build_sequences' asr/tts sequences; ``official.jsonl``: records in
  the official TtT format;
* ``exp/``: a 1-layer model trained one epoch by ttt_train (``config.yaml``, ``model.pth``);
  ``packed.zip``: it packed by ``espnet2_ttt.bin.pack``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Dict

import numpy as np
import soundfile

from espnet2_ttt.bin import build_sequences, pack, ttt_train
from espnet2_ttt.sequence_builder import ASR_PROMPT, TTS_PROMPT
from espnet2_ttt.speech import MelKMeansTokenizer
from espnet2_ttt.speech.io import format_codes
from espnet2_ttt.text_tokenizer import TextTokenizer
from espnet2_ttt.vocabulary import TtTVocabulary

SR = 16000
CODEBOOK_SIZE = 16
TRANSCRIPTS = {  # speaker-prefixed ids, sorted (Kaldi order)
    "spk1-utt1": "the cat sat",
    "spk1-utt2": "a dog ran far",
    "spk2-utt3": "hi there cat",
    "spk2-utt4": "sat on a mat",
}
SPEECH_TOKENIZER = dict(codebook_size=CODEBOOK_SIZE, n_mels=20, n_cepstra=6, n_fft=512, win_length=400,
                        griffin_lim_iters=2, decoder_conf=dict(dim=16, layers=1))
TINY_TRAIN = [  # ttt_train options of every tiny training run (model, optimiser, no plots)
    "--ngpu", "0", "--num_workers", "0", "--batch_type", "unsorted", "--batch_size", "4",
    "--backbone_conf", "{'d_model': 16, 'n_layer': 1, 'n_head': 2, 'max_len': 256}",
    "--optim", "adam", "--optim_conf", "lr=0.01", "--seed", "0",
    "--use_tensorboard", "false", "--use_matplotlib", "false", "--log_interval", "1000",
]
DECODE = ["--max_new_tokens", "12", "--block_length", "4", "--steps_per_block", "1", "--max_span_length", "8"]


@dataclasses.dataclass(frozen=True)
class Fixtures:
    """Paths of the valid inputs (module docstring); all absolute."""

    root: Path

    def __getattr__(self, name: str) -> Path:
        return self.root / FILES[name]


FILES: Dict[str, str] = {
    "audio": "audio",
    "data": "data",
    "wav_scp": "data/wav.scp",
    "text": "data/text",
    "dialogues": "data/dialogues.jsonl",
    "bpemodel": "spm/bpe.model",
    "spm_train_text": "spm/train.txt",
    "token_list": "tokens.txt",
    "tokenizer_dir": "speech_tokenizer",
    "codes": "codes",
    "seq": "seq",
    "seq_shape": "seq_shape",
    "official": "official.jsonl",
    "exp": "exp",
    "train_config": "exp/config.yaml",
    "model_file": "exp/model.pth",
    "packed": "packed.zip",
}


def synth(seconds: float, seed: int) -> np.ndarray:
    """float32 [seconds * SR]: two gliding sines plus noise, peak below 0.6."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * SR))) / SR
    f0, f1 = rng.uniform(150, 400), rng.uniform(800, 2000)
    wav = 0.3 * np.sin(2 * np.pi * (f0 + 80 * t) * t) + 0.2 * np.sin(2 * np.pi * f1 * t)
    return (wav + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def train_args(token_list: Path, seq: Path, shape: Path, output_dir: Path, max_epoch: int) -> list:
    """ttt_train arguments of a tiny training run on ``seq`` (as train and valid data)."""
    return [
        "--token_list", str(token_list), "--output_dir", str(output_dir),
        "--train_data_path_and_name_and_type", f"{seq},seq,text",
        "--valid_data_path_and_name_and_type", f"{seq},seq,text",
        "--train_shape_file", str(shape), "--valid_shape_file", str(shape),
        "--max_epoch", str(max_epoch), "--keep_nbest_models", "1", *TINY_TRAIN,
    ]


def build(root: Path) -> Fixtures:
    """Write the fixtures into ``root`` (which must not exist yet) and return their paths."""
    fx = Fixtures(root.resolve())
    for sub in ("audio", "data", "spm"):
        (fx.root / sub).mkdir(parents=True)
    wavs = {}
    for i, utt in enumerate(TRANSCRIPTS):
        wavs[utt] = synth(0.6 + 0.2 * i, seed=i)
        soundfile.write(fx.audio / f"{utt}.wav", wavs[utt], SR, subtype="PCM_16")
    utts = list(TRANSCRIPTS)
    fx.wav_scp.write_text("".join(f"{u} {fx.audio / u}.wav\n" for u in utts), encoding="utf-8")
    fx.text.write_text("".join(f"{u} {t}\n" for u, t in TRANSCRIPTS.items()), encoding="utf-8")
    (fx.data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts), encoding="utf-8")
    (fx.data / "spk2utt").write_text("spk1 spk1-utt1 spk1-utt2\nspk2 spk2-utt3 spk2-utt4\n", encoding="utf-8")
    dialogues = [
        {"id": "qa-spk1-utt1", "task": "qa", "lang": "en", "question_utt": "spk1-utt1", "question_text": None,
         "answer_text": "a dog ran far", "answer_utt": "spk1-utt2"},
        {"id": "text-0", "task": "text", "lang": "en", "question_utt": None, "question_text": "hi there",
         "answer_text": "the cat sat", "answer_utt": None},
    ]
    fx.dialogues.write_text("".join(json.dumps(r) + "\n" for r in dialogues), encoding="utf-8")

    corpus = [*TRANSCRIPTS.values(), "hi there", ASR_PROMPT, TTS_PROMPT]  # the prompts are in every sequence
    fx.spm_train_text.write_text("".join(line + "\n" for line in corpus), encoding="utf-8")
    text_tokenizer = TextTokenizer.train(fx.spm_train_text, fx.root / "spm" / "bpe", 40, model_type="char",
                                         character_coverage=1.0, byte_fallback=False, num_threads=1)
    TtTVocabulary.build(text_tokenizer.pieces(), CODEBOOK_SIZE).save(fx.token_list)

    utterances = [(u, wavs[u], SR) for u in utts]
    speech_tokenizer = MelKMeansTokenizer(**SPEECH_TOKENIZER)
    speech_tokenizer.train_tokenizer(utterances, seed=0, iters=5)
    speech_tokenizer.train_detokenizer(utterances, seed=0, steps=3, batch_size=2, window=4)
    speech_tokenizer.save(fx.tokenizer_dir)
    fx.codes.write_text("".join(format_codes(u, speech_tokenizer.encode(w, SR)) for u, w, _ in utterances),
                        encoding="utf-8")

    build_sequences.main([
        "--bpemodel", str(fx.bpemodel), "--token_list", str(fx.token_list), "--codes", str(fx.codes),
        "--text", str(fx.text), "--dialogues", str(fx.dialogues), "--tasks", "asr,tts,qa,text",
        "--output", str(fx.seq), "--shape_file", str(fx.seq_shape),
    ])
    official = [
        {"messages": [{"role": "user", "content": "<|begin_of_audio|><|audio_3|><|audio_5|><|end_of_audio|>"},
                      {"role": "assistant", "content": "the cat<|begin_of_quad|><|audio_1|><|audio_2|>"
                                                       "<|end_of_audio_span_last|>"}]},
        {"conversations": [{"from": "human", "value": "hi there"}, {"from": "gpt", "value": "a dog ran far"}]},
        {"prompt": "sat on", "response": "a mat"},
        {"text": "hi cat<|begin_of_audio|><|audio_0|><|end_of_audio_new|>"},
    ]
    fx.official.write_text("".join(json.dumps(r) + "\n" for r in official), encoding="utf-8")

    ttt_train.main(train_args(fx.token_list, fx.seq, fx.seq_shape, fx.exp, 1) + [
        "--bpemodel", str(fx.bpemodel), "--speech_tokenizer_dir", str(fx.tokenizer_dir)])
    shutil.copyfile(fx.exp / "1epoch.pth", fx.model_file)
    pack.main(["--train_config", str(fx.train_config), "--model_file", str(fx.model_file),
               "--outpath", str(fx.packed)])
    logging.info("fault-injection fixtures ready in %s", fx.root)
    return fx
