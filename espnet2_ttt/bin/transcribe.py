#!/usr/bin/env python3
"""Transcribe a wav.scp with an ASR that is not the TtT model (recipe stage 11).

    python -m espnet2_ttt.bin.transcribe --backend espnet --wav_scp W --output F \\
        --asr_train_config exp/asr/config.yaml --asr_model_file exp/asr/valid.loss.ave.pth
    python -m espnet2_ttt.bin.transcribe --backend espnet --asr_model_tag packed.zip ...
    python -m espnet2_ttt.bin.transcribe --backend pocketsphinx --wav_scp W --output F

Writes ``utt_id transcript`` lines sorted by key (C order), atomically, so N jobs can
run on split scp files. ``espnet``: any ESPnet ASR model (config + model file, or a
model tag / packed archive unpacked by espnet_model_zoo); a CTC-only model is decoded
with ctc_weight 1, or with ``--ctc_greedy true`` by best-path CTC (argmax per frame,
repeats merged, blanks dropped: no prefix search; faster, but on the recipe's small ASR
47.5 % CER against 43.2 % at beam 1). ``pocketsphinx``: its bundled US English model
(English only).
With ``--nbest N`` (espnet) the k-th best hypotheses go to ``F.<k>best`` for k >= 2.
Audio is read with soundfile, must be mono, and is resampled to 16 kHz if needed.
"""

import argparse
import fcntl
import functools
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import soundfile

from espnet2_ttt.utils.table import TableError, c_order, read_table, write_lines

SAMPLE_RATE = 16000

log = logging.getLogger("transcribe")


class AudioError(Exception):
    """An utterance's audio cannot be used; the message names utterance and path."""


class UnreadableAudio(AudioError):
    """The audio file is missing, unreadable or empty (skippable with --skip_bad)."""


def read_audio(utt: str, path: str) -> np.ndarray:
    """Read ``path`` as mono float32 in [-1, 1] at 16 kHz."""
    try:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        raise UnreadableAudio(f"utterance '{utt}': cannot read {path}: {e}") from e
    if audio.shape[0] == 0:
        raise UnreadableAudio(f"utterance '{utt}': {path} is empty")
    if audio.shape[1] != 1:
        raise AudioError(f"utterance '{utt}': {path} has {audio.shape[1]} channels; "
                         "only mono audio is supported")
    audio = audio[:, 0]
    if rate != SAMPLE_RATE:
        import torch
        import torchaudio.functional

        audio = torchaudio.functional.resample(torch.from_numpy(audio), rate, SAMPLE_RATE).numpy()
    return audio


Recognizer = Callable[[np.ndarray], List[str]]  # audio -> hypotheses, best first


def unpack_model_tag(tag: str) -> Dict[str, str]:
    """Unpack an espnet_model_zoo tag or packed archive; safe for parallel jobs."""
    from espnet_model_zoo.downloader import ModelDownloader

    downloader = ModelDownloader()
    with open(Path(downloader.cachedir) / ".transcribe.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return downloader.download_and_unpack(tag)


def espnet_recognizer(
    asr_train_config: Optional[str], asr_model_file: Optional[str], asr_model_tag: Optional[str],
    device: str, beam_size: int, ctc_weight: float, nbest: int, ctc_greedy: bool = False,
) -> Recognizer:
    """Beam search of espnet2's Speech2Text (no LM), or best-path CTC; returns the n-best texts."""
    import yaml
    from espnet2.bin.asr_inference import Speech2Text

    if asr_model_tag:
        files = unpack_model_tag(asr_model_tag)
        asr_train_config, asr_model_file = files["asr_train_config"], files["asr_model_file"]
    with open(asr_train_config, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    model_conf = config.get("model_conf") or {}
    ctc_only = config.get("decoder") in (None, "none") or model_conf.get("ctc_weight") == 1.0
    if ctc_only:
        ctc_weight = 1.0  # CTC-only model: an attention weight would score nothing
    if ctc_greedy and not ctc_only:
        raise ValueError(f"--ctc_greedy needs a CTC-only ASR; {asr_train_config} has an attention decoder")
    log.info(f"ESPnet ASR {asr_model_file} "
             + ("(best-path CTC)" if ctc_greedy else f"(beam {beam_size}, ctc_weight {ctc_weight})"))
    speech2text = Speech2Text(
        asr_train_config=asr_train_config, asr_model_file=asr_model_file, device=device,
        beam_size=beam_size, ctc_weight=ctc_weight, lm_weight=0.0, nbest=nbest,
    )
    if ctc_greedy:
        return functools.partial(best_path_ctc, speech2text)
    return lambda audio: [result[0] for result in speech2text(audio)]


def best_path_ctc(speech2text, audio: np.ndarray) -> List[str]:
    """Best-path CTC of a CTC-only ESPnet model: frame argmax, repeats merged, blanks (id 0) dropped."""
    import torch

    model = speech2text.asr_model
    device = next(model.parameters()).device
    speech = torch.from_numpy(audio)[None].to(device)
    with torch.no_grad():
        enc, enc_lens = model.encode(speech, speech.new_full((1,), speech.shape[1], dtype=torch.long))
        best = model.ctc.argmax(enc)[0, : int(enc_lens[0])]
    ids = torch.unique_consecutive(best)
    ids = ids[(ids != model.blank_id) & (ids != model.sos) & (ids != model.eos)]
    return [speech2text.tokenizer.tokens2text(speech2text.converter.ids2tokens(ids.tolist()))]


def pocketsphinx_recognizer() -> Recognizer:
    """pocketsphinx's default US English model on 16 kHz int16 audio."""
    from pocketsphinx import Decoder

    decoder = Decoder(loglevel="FATAL")

    def recognize(audio: np.ndarray) -> List[str]:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return [hyp.hypstr.lower() if hyp is not None else ""]

    return recognize


def select_wavs(wav_scp: str, key_file: Optional[str]) -> Dict[str, str]:
    """The entries of ``wav_scp``, restricted to the keys of ``key_file`` if given."""
    wavs = read_table(wav_scp)
    if key_file is None:
        return wavs
    keys = read_table(key_file)
    missing = [key for key in keys if key not in wavs]
    if missing:
        raise TableError(f"{key_file}: key '{missing[0]}' is not in {wav_scp}")
    return {key: wavs[key] for key in keys}


def nbest_paths(output: str, nbest: int) -> List[str]:
    """Output file of each rank: ``output`` for the best, ``output.<k>best`` after it."""
    return [output] + [f"{output}.{k}best" for k in range(2, nbest + 1)]


def transcribe(
    wavs: Dict[str, str], recognize: Recognizer, outputs: Sequence[str], skip_bad: bool,
) -> int:
    """Recognise every utterance and write one sorted table per n-best rank.

    Returns the number of skipped (unreadable or empty) utterances; nothing is written
    when an error is raised.
    """
    ranks: List[List[str]] = [[] for _ in outputs]
    skipped = 0
    for utt in sorted(wavs, key=c_order):
        try:
            hyps = recognize(read_audio(utt, wavs[utt]))
        except UnreadableAudio as e:
            if not skip_bad:
                raise
            log.warning(f"{e}; writing an empty transcript")
            hyps, skipped = [], skipped + 1
        for rank, lines in enumerate(ranks):
            text = hyps[rank].strip() if rank < len(hyps) else ""
            lines.append(f"{utt} {text}" if text else utt)
    for path, lines in zip(outputs, ranks):
        write_lines(path, lines)
    return skipped


def get_parser() -> argparse.ArgumentParser:
    from espnet2.utils.types import str2bool

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML of option defaults, e.g. conf/asr_decode.yaml")
    parser.add_argument("--backend", choices=("espnet", "pocketsphinx"), required=True)
    parser.add_argument("--wav_scp", required=True, help="utt_id wav_path lines")
    parser.add_argument("--output", required=True, help="output text file (utt_id transcript)")
    parser.add_argument("--key_file", help="transcribe only these keys (first column)")
    parser.add_argument("--asr_train_config", help="espnet: the ASR's config.yaml")
    parser.add_argument("--asr_model_file", help="espnet: the ASR's model .pth")
    parser.add_argument("--asr_model_tag",
                        help="espnet: espnet_model_zoo tag or packed model archive")
    parser.add_argument("--beam_size", type=int, default=4)
    parser.add_argument("--ctc_weight", type=float, default=0.3,
                        help="espnet: CTC weight of joint decoding (1 for CTC-only models)")
    parser.add_argument("--nbest", type=int, default=1, help="espnet: hypotheses to write")
    parser.add_argument("--ctc_greedy", type=str2bool, default=False,
                        help="espnet, CTC-only models: best-path CTC instead of beam search")
    parser.add_argument("--ngpu", type=int, default=0, help="espnet: 0 = CPU, 1 = one GPU")
    parser.add_argument("--skip_bad", type=str2bool, default=False,
                        help="write an empty transcript for unreadable or empty audio")
    return parser


def parse_args(parser: argparse.ArgumentParser, cmd: Optional[Sequence[str]]) -> argparse.Namespace:
    """Parse ``cmd``; the YAML of --config (option names as keys) supplies defaults."""
    options = vars(parser.parse_known_args(cmd)[0])
    config = options["config"]
    if config:
        import yaml

        try:
            with open(config, encoding="utf-8") as f:
                defaults = yaml.safe_load(f) or {}
        except OSError as e:
            parser.error(f"cannot read {config}: {e.strerror}")
        unknown = sorted(set(defaults) - set(options))
        if unknown:
            parser.error(f"{config}: unknown options {unknown}")
        parser.set_defaults(**defaults)
    return parser.parse_args(cmd)


def build_recognizer(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Recognizer:
    """The recognizer of ``args.backend``; parser errors for inconsistent options."""
    if args.nbest < 1:
        parser.error("--nbest must be at least 1")
    if args.backend == "pocketsphinx":
        if args.nbest != 1:
            parser.error("--nbest > 1 needs --backend espnet")
        return pocketsphinx_recognizer()
    if not args.asr_model_tag:
        if not (args.asr_train_config and args.asr_model_file):
            parser.error("--backend espnet needs --asr_train_config and --asr_model_file, "
                         "or --asr_model_tag")
        for path in (args.asr_train_config, args.asr_model_file):
            if not Path(path).is_file():
                parser.error(f"ASR model file {path} does not exist")
    if args.ctc_greedy and args.nbest != 1:
        parser.error("--ctc_greedy gives one hypothesis: use --nbest 1")
    device = "cuda" if args.ngpu > 0 else "cpu"
    try:
        return espnet_recognizer(args.asr_train_config, args.asr_model_file, args.asr_model_tag,
                                 device, args.beam_size, args.ctc_weight, args.nbest, args.ctc_greedy)
    except ValueError as e:
        parser.error(str(e))


def main(cmd: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.WARNING,  # quiet ESPnet's per-utterance beam search
                        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    log.setLevel(logging.INFO)
    parser = get_parser()
    args = parse_args(parser, cmd)
    try:
        wavs = select_wavs(args.wav_scp, args.key_file)
        recognize = build_recognizer(args, parser)
        start = time.time()
        skipped = transcribe(wavs, recognize, nbest_paths(args.output, args.nbest), args.skip_bad)
    except (TableError, AudioError) as e:
        log.error(str(e))
        return 1
    if skipped:
        log.warning(f"{skipped} of {len(wavs)} utterances had unreadable or empty audio")
    log.info(f"Transcribed {len(wavs)} utterances into {args.output} "
             f"in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
