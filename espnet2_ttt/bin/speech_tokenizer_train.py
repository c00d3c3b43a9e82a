"""Train a speech tokenizer (and/or its detokenizer) on the audio of a wav.scp.

    python -m espnet2_ttt.bin.speech_tokenizer_train --wav_scp data/train/wav.scp \
        --output_dir exp/speech_tokenizer --config conf/speech_tokenizer.yaml \
        [--train_tokenizer true] [--train_detokenizer true] [--max_utterances N] [--max_frames F] --seed 0

Config yaml: ``speech_tokenizer`` (registered name), ``speech_tokenizer_conf`` (constructor
arguments), ``train_tokenizer_conf`` / ``train_detokenizer_conf`` (keyword arguments of the
two training methods).  With ``--train_tokenizer false`` the tokenizer already saved in
``--output_dir`` is loaded (e.g. to train only its detokenizer); the result is saved back there.
"""
from __future__ import annotations

import argparse
import logging
from typing import Optional, Sequence

import yaml
from espnet2.utils.types import str2bool

from espnet2_ttt.speech import AbsSpeechTokenizer, build_speech_tokenizer, load_speech_tokenizer
from espnet2_ttt.speech.io import iter_training_audio, read_wav_scp
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.utils.table import read_utf8_text, reading


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wav_scp", required=True, help="Kaldi wav.scp of the training audio")
    parser.add_argument("--output_dir", required=True, help="tokenizer directory to write")
    parser.add_argument("--config", help="yaml config (see module doc); omitted: mel_kmeans defaults")
    parser.add_argument("--train_tokenizer", type=str2bool, default=True, help="fit the encoder (codebook)")
    parser.add_argument("--train_detokenizer", type=str2bool, default=False, help="fit the codes-to-speech decoder")
    parser.add_argument("--max_utterances", type=int, default=None, help="use at most this many (random) utterances")
    parser.add_argument("--max_frames", type=int, default=None, help="use at most about this many code frames of audio")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = {}
    if args.config:
        with reading(args.config, (ValueError, yaml.YAMLError)):
            config = yaml.safe_load(read_utf8_text(args.config)) or {}
        if not isinstance(config, dict):
            raise InputError(f"{args.config}: must be a mapping, got {config!r}")
    if args.train_tokenizer:
        with reading(args.config or "--config", (ValueError, TypeError)):
            tokenizer = build_speech_tokenizer(config.get("speech_tokenizer", "mel_kmeans"), config.get("speech_tokenizer_conf"))
    else:
        tokenizer = load_speech_tokenizer(args.output_dir)
    entries = read_wav_scp(args.wav_scp)
    max_seconds = None if args.max_frames is None else args.max_frames / tokenizer.frame_rate

    def utterances():
        return iter_training_audio(entries, args.seed, args.max_utterances, max_seconds, min_seconds=1 / tokenizer.frame_rate)

    if args.train_tokenizer:
        with reading(args.wav_scp):  # too little audio for the codebook
            tokenizer.train_tokenizer(utterances(), seed=args.seed, **(config.get("train_tokenizer_conf") or {}))
        save(tokenizer, args.output_dir)  # usable (centroid-lookup decoding) even if the next stage fails
    if args.train_detokenizer:
        with reading(args.wav_scp):
            tokenizer.train_detokenizer(utterances(), seed=args.seed, **(config.get("train_detokenizer_conf") or {}))
        save(tokenizer, args.output_dir)


def save(tokenizer: AbsSpeechTokenizer, output_dir: str) -> None:
    tokenizer.save(output_dir)
    logging.info(
        "saved %s speech tokenizer (%d codes, %g Hz) to %s", tokenizer.name, tokenizer.codebook_size, tokenizer.frame_rate, output_dir
    )


if __name__ == "__main__":
    run(main, "speech_tokenizer_train")
