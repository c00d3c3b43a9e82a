#!/usr/bin/env python3
"""TtT inference: the :class:`TtTInference` Python API and ``python -m espnet2_ttt.bin.ttt_inference``.

CLI inputs (``--data_path_and_name_and_type PATH,NAME,TYPE``, Kaldi-style ``utt_id value``):
``speech_codes`` (``utt_id c1 c2 ...``, type ``text_int`` or ``text``) for audio prompts and/or
``text`` (type ``text``: raw text for the model's SentencePiece model, or space-separated
pieces with ``--text_is_pieces true``).  Outputs in ``--output_dir``, each written to a
temporary file renamed only when the whole job succeeded: ``prompt`` (the prompt's token
strings), ``text`` (decoded text), ``token`` (every generated token string), ``audio_codes``
(``utt_id c1 c2 ...``) and, with
a speech tokenizer and ``--write_wav true`` (the default), ``wav.scp`` + ``wav/<utt_id>.wav``
(each wav is itself written atomically; the wavs of a failed job's finished utterances stay,
unlisted).  A failing job removes its temporaries; a killed one leaves them, and the next job
writing the same outputs removes them.  Bad input (an empty or unknown key, a code out of
range, a model file that does not load, ...) is one line ``ttt_inference: error: <file>: ...``.

The model is ``--train_config`` + ``--model_file``, or ``--model_tag``: a packed archive or a
Hugging Face repo id, checked and unpacked into ``--model_cache_dir``
(:mod:`espnet2_ttt.utils.archive`).

Every utterance decodes with its own generator seeded from ``(--seed, utt_id)``, so the
output does not depend on how a key file is split into parallel jobs.  Prompts and forced answers
follow the training sequences' layout, ``sequence_layout`` of the training config
(:class:`~espnet2_ttt.sequence_builder.SequenceLayout`; a config without it: the defaults).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import zlib
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import soundfile
import torch
import yaml
from espnet2.utils import config_argparse
from espnet2.utils.types import int_or_none, str2bool, str2triple_str, str_or_none

from espnet2_ttt.inference import DecodeConfig, DecodeEvent, DecodeResult, Forcing, TtTDecoder, TurnEndEvent
from espnet2_ttt.inference.decoder import CFG_UNCOND_INPUTS
from espnet2_ttt.inference.prompts import MODES, build_prompt, mode_text
from espnet2_ttt.models.cpu_layout import CPU_WEIGHT_LAYOUTS, relayout_linear_weights_for_cpu, resolve_cpu_weight_layout
from espnet2_ttt.sequence_builder import SequenceLayout, spoken_text_layout
from espnet2_ttt.speech.abs_tokenizer import read_tokenizer_yaml
from espnet2_ttt.speech.io import read_codes
from espnet2_ttt.utils.archive import unpack_model
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.utils.table import atomic_path, read_entries, read_utf8_text, reading, remove_stale_temps

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}
INPUT_NAMES = {"speech_codes": ("text_int", "text"), "text": ("text",)}


TRAINING_LAYOUT = "default: the training config's sequence_layout"


@dataclasses.dataclass
class ForcingOptions:
    """Which known parts of the answer :class:`TtTInference` forces (decode options read here, not
    by the decoder), in the training layout: chunks of ``chunk_len`` text tokens and non-final
    spans of ``span_len`` codes (:func:`~espnet2_ttt.sequence_builder.interleave`).

    ``tts_force_text``: in tts mode the answer's text side is the input text in that layout
    (:func:`~espnet2_ttt.sequence_builder.spoken_text_layout`); only the audio is generated.
    ``asr_force_audio``: in asr mode the answer's spans are the input speech in that layout
    (:attr:`Forcing.spoken_codes`), which the ASR answer re-speaks in training; only the text is
    generated, and no span is diffused.  Not for a layout with ``text_only_asr`` (its ASR answers
    have no spans).
    ``layout_chunk_len`` / ``layout_span_len``: replace the training layout's ``chunk_len`` /
    ``span_len`` (for a training config that does not record them).
    """

    tts_force_text: bool = False
    asr_force_audio: bool = False
    layout_chunk_len: Optional[int] = dataclasses.field(default=None, metadata={"help": TRAINING_LAYOUT})
    layout_span_len: Optional[int] = dataclasses.field(default=None, metadata={"help": TRAINING_LAYOUT})


DECODE_OPTIONS = (DecodeConfig, ForcingOptions)  # the decode options of the CLI, decode.yaml and TtTInference
OPTION_TYPES = {"int": int, "float": float, "str": str, "bool": str2bool, "Optional[int]": int_or_none}  # by field type


@dataclasses.dataclass
class TtTOutput:
    """One decoded turn.  ``wav``/``sample_rate`` only with a speech tokenizer and audio."""

    prompt: List[str]  # the prompt's token strings
    text: str  # the text pieces of the answer, detokenized (space-joined without a tokenizer)
    tokens: List[str]  # every generated token string
    audio_codes: List[int]  # all span codes of the answer, in order
    result: DecodeResult
    wav: Optional[np.ndarray] = None
    sample_rate: Optional[int] = None


class TtTInference:
    """Decode TtT turns from a trained model (``config.yaml`` + ``.pth``).

    Prompts and forced answers follow :attr:`layout`, the training config's ``sequence_layout``
    (the defaults for a config without one; ``layout_*`` options replace its lengths).

    Args:
        train_config, model_file: the training directory's files.
        device: "cpu", "cuda", ...; dtype: one of DTYPES.
        cpu_weight_layout: "input_major" stores float32 CPU weights wider than tall input-major
            (:mod:`espnet2_ttt.models.cpu_layout`: same values, faster one-token steps on the
            AMD box of the benchmarks), "as_trained" keeps them (faster on the Intel AVX-512 box
            measured: README, Benchmarks); "auto" (default) picks input_major on AMD CPUs only.
        bpemodel: text tokenizer for raw text, a SentencePiece model or a Hugging Face tokenizer
            directory (default: the training config's).
        speech_tokenizer_dir: speech tokenizer whose ``decode`` makes waveforms (default: the
            training config's; None = no waveform).
        **decode_conf: :class:`DecodeConfig` and :class:`ForcingOptions` fields.
    """

    def __init__(
        self,
        train_config: Union[str, Path],
        model_file: Union[str, Path],
        device: str = "cpu",
        dtype: str = "float32",
        bpemodel: Optional[str] = None,
        speech_tokenizer_dir: Optional[str] = None,
        cpu_weight_layout: str = "auto",
        **decode_conf,
    ):
        from espnet2_ttt.tasks.ttt import TtTTask

        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
        cpu_weight_layout = resolve_cpu_weight_layout(cpu_weight_layout)
        model, train_args = TtTTask.build_model_from_file(train_config, model_file, device)
        model.to(dtype=DTYPES[dtype]).eval()
        self.device = torch.device(device)
        if cpu_weight_layout == "input_major":
            relayout_linear_weights_for_cpu(model.backbone)  # same values; CPU only (a no-op elsewhere)
        self.vocab = model.vocab
        forcing_names = {f.name for f in dataclasses.fields(ForcingOptions)}
        self.forcing_options = opts = ForcingOptions(**{k: v for k, v in decode_conf.items() if k in forcing_names})
        decode_conf = {k: v for k, v in decode_conf.items() if k not in forcing_names}
        with reading(train_config):
            layout = SequenceLayout.from_dict(getattr(train_args, "sequence_layout", None), "sequence_layout")
        overrides = {"chunk_len": opts.layout_chunk_len, "span_len": opts.layout_span_len}
        self.layout = dataclasses.replace(layout, **{k: v for k, v in overrides.items() if v is not None})
        with reading("decode options"):
            config = DecodeConfig(**decode_conf)
        self.decoder = TtTDecoder(model.backbone, model.vocab, config, audio_objective=model.audio_objective)
        self.bpemodel = bpemodel or getattr(train_args, "bpemodel", None)
        self.speech_tokenizer_dir = speech_tokenizer_dir or getattr(train_args, "speech_tokenizer_dir", None)
        self.chat_template = getattr(train_args, "chat_template", "ttt")
        self._text_tokenizer = self._speech_tokenizer = None

    @classmethod
    def from_pretrained(cls, model_tag: str, cache_dir: Optional[str] = None, **kwargs) -> "TtTInference":
        """A packed model (zip or tar path) or a Hugging Face repo id ``owner/name[@revision]``,
        checked and unpacked into ``cache_dir`` (default: ``<user cache>/models``, reused when
        already there) by :func:`espnet2_ttt.utils.archive.unpack_model`.

        The archive's meta.yaml keys: ``ttt_train_config``, ``ttt_model_file`` and optionally
        ``speech_tokenizer_dir``, ``bpemodel`` and ``ttt_inference_config`` (the decode options
        the model was evaluated with: defaults here, ``kwargs`` win).  A packed speech tokenizer
        that names an external decoder function (``precomputed``'s ``decoder``) is refused: using
        it would import and run code the archive chose; pass ``speech_tokenizer_dir`` instead.
        """
        files = unpack_model(model_tag, cache_dir)
        missing = [k for k in ("ttt_train_config", "ttt_model_file") if k not in files]
        if missing:
            raise InputError(f"{model_tag}: meta.yaml: packed model lacks {missing} (has {sorted(files)})")
        if kwargs.get("speech_tokenizer_dir") is None and files.get("speech_tokenizer_dir"):
            decoder = read_tokenizer_yaml(files["speech_tokenizer_dir"])[1].get("decoder")
            if decoder:
                raise InputError(f"{model_tag}: its speech tokenizer names the external decoder {decoder!r}, which "
                                 f"decoding would import and run: give speech_tokenizer_dir to use one deliberately")
        for key in ("speech_tokenizer_dir", "bpemodel"):
            if kwargs.get(key) is None:
                kwargs[key] = files.get(key)
        if "ttt_inference_config" in files:
            kwargs = {**read_decode_yaml(files["ttt_inference_config"]), **kwargs}
        return cls(files["ttt_train_config"], files["ttt_model_file"], **kwargs)

    # ------------------------------------------------------------------ tokenizers (lazy)
    @property
    def text_tokenizer(self):
        if self._text_tokenizer is None:
            if self.bpemodel is None:
                raise ValueError("raw text needs a SentencePiece model or Hugging Face tokenizer (bpemodel); "
                                 "or give token pieces")
            from espnet2_ttt.text_tokenizer import load_text_tokenizer

            self._text_tokenizer = load_text_tokenizer(self.bpemodel)
        return self._text_tokenizer

    @property
    def speech_tokenizer(self):
        if self._speech_tokenizer is None and self.speech_tokenizer_dir is not None:
            from espnet2_ttt.speech import load_speech_tokenizer

            self._speech_tokenizer = load_speech_tokenizer(self.speech_tokenizer_dir)
        return self._speech_tokenizer

    # ------------------------------------------------------------------ decoding
    def prompt(
        self,
        mode: str,
        text: Union[str, Sequence[str], None] = None,
        speech_codes: Optional[Sequence[int]] = None,
        where: str = "prompt",
    ) -> List[int]:
        """Prompt ids.  ``text``: a raw string, tokenized and wrapped in the mode's training
        prompt (:func:`mode_text`; also used without text when a bpemodel is known), or pieces,
        used as the whole user text (no system prompt).  The training config's ``chat_template``
        decides the template (official: the tokenizer's pieces of "\\n" after roles and turns)."""
        if isinstance(text, str) or (text is None and self.bpemodel is not None):
            system, user = mode_text(mode, self.text_tokenizer, text, self.layout)
        else:
            system, user = [], list(text or [])
        newline = self.text_tokenizer.encode("\n") if self.chat_template == "official" else []
        if self.chat_template == "official" and not newline:
            raise ValueError(f"chat_template official: the text tokenizer {self.bpemodel} encodes no newline piece")
        return build_prompt(self.vocab, mode, user, speech_codes, system, where, newline)

    def stream(
        self,
        mode: str = "chat",
        text: Union[str, Sequence[str], None] = None,
        speech_codes: Optional[Sequence[int]] = None,
        seed: int = 0,
        where: str = "prompt",
    ) -> Iterator[DecodeEvent]:
        """Decoding events of one turn (see :mod:`espnet2_ttt.inference.decoder`)."""
        return self._stream(self.prompt(mode, text, speech_codes, where), mode, text, speech_codes, seed, where)

    def _stream(self, prompt: List[int], mode, text, speech_codes, seed: int, where: str) -> Iterator[DecodeEvent]:
        generator = torch.Generator(device=self.device).manual_seed(seed)
        return self.decoder.stream(prompt, generator, self.forcing(mode, text, speech_codes, where), where)

    def forcing(
        self, mode: str, text: Union[str, Sequence[str], None], speech_codes: Optional[Sequence[int]] = None,
        where: str = "prompt",
    ) -> Optional[Forcing]:
        """Known parts of the answer in the training layout (:attr:`layout`): with
        ``tts_force_text`` in tts mode its text side is ``text`` (raw, or pieces) and its
        non-final spans have ``span_len`` codes; with ``asr_force_audio`` in asr mode (and ASR
        answers that re-speak their input) its spans are ``speech_codes``; else None."""
        opts, layout = self.forcing_options, self.layout
        if mode == "asr" and opts.asr_force_audio and not layout.text_only_asr:
            return Forcing(spoken_codes=[int(c) for c in speech_codes], spoken_span_len=layout.span_len)
        if mode != "tts" or not opts.tts_force_text:
            return None
        pieces = self.text_tokenizer.encode(text) if isinstance(text, str) else list(text or [])
        tokens, non_final_spans = spoken_text_layout(pieces, layout.chunk_len)
        return Forcing(self.vocab.tokens_to_ids(tokens, where), [layout.span_len] * non_final_spans)

    def __call__(
        self,
        mode: str = "chat",
        text: Union[str, Sequence[str], None] = None,
        speech_codes: Optional[Sequence[int]] = None,
        seed: int = 0,
        where: str = "prompt",
        synthesize: bool = True,
    ) -> TtTOutput:
        prompt = self.prompt(mode, text, speech_codes, where)
        for event in self._stream(prompt, mode, text, speech_codes, seed, where):
            if isinstance(event, TurnEndEvent):
                return self.output(prompt, event.result, synthesize)
        raise AssertionError("decoding ended without a TurnEndEvent")

    def output(self, prompt: Sequence[int], result: DecodeResult, synthesize: bool = True) -> TtTOutput:
        """Prompt tokens, text, tokens, codes (and, with ``synthesize`` and a speech tokenizer, the
        waveform) of a turn decoded after ``prompt``."""
        vocab = self.vocab
        tokens = vocab.ids_to_tokens(result.token_ids)
        specials = {vocab.soa_id, vocab.soa_last_id, vocab.im_end_id}
        pieces = [t for i, t in zip(result.token_ids, tokens) if not vocab.audio_side_table[i] and i not in specials]
        text = self.text_tokenizer.decode(pieces) if self.bpemodel else " ".join(pieces)
        out = TtTOutput(vocab.ids_to_tokens(prompt), text, tokens, result.audio_codes, result)
        if synthesize and result.audio_codes and self.speech_tokenizer is not None:
            out.wav, out.sample_rate = self.speech_tokenizer.decode(np.asarray(result.audio_codes, dtype=np.int64))
        return out


# ---------------------------------------------------------------------- CLI
def utterance_seed(seed: int, utt_id: str) -> int:
    """Seed of one utterance: independent of the order and split of the key file."""
    return zlib.crc32(f"{seed} {utt_id}".encode("utf-8"))


def read_inputs(
    data_path_and_name_and_type, key_file: Optional[str], codebook_size: Optional[int] = None,
) -> Dict[str, Dict[str, object]]:
    """{utt_id: {"speech_codes": np.ndarray, "text": str}} in key-file (or first-file) order.

    Inputs are checked whole before decoding (codes in [0, ``codebook_size``): :func:`read_codes`;
    text and key file: :func:`read_entries`).  No utterance to decode (an empty key file or input),
    or a key missing from an input, is an InputError naming the file and line.
    """
    tables = {}
    for path, name, kind in data_path_and_name_and_type:
        if name not in INPUT_NAMES or kind not in INPUT_NAMES[name]:
            raise InputError(f"{path}: input must be one of {INPUT_NAMES} (name: allowed types), got {name},{kind}")
        tables[path] = name, (dict(read_codes(path, codebook_size)) if name == "speech_codes"
                              else {e.key: e.value for e in read_entries(path, need_value=False)})
    first = next(iter(tables))
    if key_file is None:
        order = [(utt, f"{first}: utterance '{utt}'") for utt in tables[first][1]]
    else:
        order = [(e.key, f"{key_file}:{e.line}: utterance '{e.key}'") for e in read_entries(key_file, need_value=False)]
    inputs = {}
    for utt, where in order:
        missing = [path for path, (_, table) in tables.items() if utt not in table]
        if missing:
            raise InputError(f"{where}: not in the input {missing[0]}")
        inputs[utt] = {name: table[utt] for name, table in tables.values()}
    return inputs


def read_decode_yaml(path: Union[str, Path]) -> Dict[str, object]:
    """The decode options (:data:`DECODE_OPTIONS`) of a decode yaml (``pack``'s ``decode.yaml``),
    each value read by its command-line type; anything else is an InputError naming the file."""
    with reading(path, (ValueError, yaml.YAMLError)):
        options = yaml.safe_load(read_utf8_text(path)) or {}
    if not isinstance(options, dict):
        raise InputError(f"{path}: not a mapping of decode options")
    fields = {f.name: f for f in decode_option_fields()}
    unknown = sorted(str(k) for k in options if k not in fields)
    if unknown:
        raise InputError(f"{path}: {unknown[0]}: not a decode option ({len(unknown)} unknown in all)")
    values = {}
    for name, value in options.items():
        with reading(f"{path}: {name}"):
            values[name] = OPTION_TYPES[fields[name].type](str(value))
    return values


def inference(
    output_dir: str,
    data_path_and_name_and_type: Sequence,
    key_file: Optional[str],
    train_config: Optional[str],
    model_file: Optional[str],
    model_tag: Optional[str],
    model_cache_dir: Optional[str],
    mode: str,
    ngpu: int,
    seed: int,
    dtype: str,
    cpu_weight_layout: str,
    batch_size: int,
    text_is_pieces: bool,
    bpemodel: Optional[str],
    speech_tokenizer_dir: Optional[str],
    write_wav: bool,
    **decode_conf,
) -> None:
    """Decode every utterance of the inputs into ``output_dir`` (module docstring)."""
    if batch_size != 1:
        raise InputError("--batch_size: batch decoding is not implemented: use --batch_size 1")
    if ngpu > 1:
        raise InputError("--ngpu: one GPU per job: split the key file for more")
    decode_conf = {k: v for k, v in decode_conf.items() if v is not None}  # unset: the model's / DecodeConfig's
    common = dict(device="cuda" if ngpu == 1 else "cpu", dtype=dtype, cpu_weight_layout=cpu_weight_layout,
                  bpemodel=bpemodel, speech_tokenizer_dir=speech_tokenizer_dir, **decode_conf)
    if model_tag is not None:
        ttt = TtTInference.from_pretrained(model_tag, model_cache_dir, **common)
    elif train_config is None or model_file is None:
        raise InputError("--model_tag: give --train_config and --model_file, or --model_tag")
    else:
        ttt = TtTInference(train_config, model_file, **common)
    inputs = read_inputs(data_path_and_name_and_type, key_file, ttt.vocab.codebook_size)
    text_inputs = [path for path, name, _ in data_path_and_name_and_type if name == "text"]
    if text_inputs and not text_is_pieces and ttt.bpemodel is None:
        raise InputError(f"{text_inputs[0]}: raw text but no SentencePiece model is known: "
                         "give --bpemodel, or --text_is_pieces true for space-separated pieces")
    sources = ", ".join(path for path, _, _ in data_path_and_name_and_type)  # named by an utterance's error
    out = Path(output_dir)
    remove_stale_temps(out / "wav")  # once here, not per wav
    with contextlib.ExitStack() as stack:  # every file appears only if the whole job succeeds
        def open_atomic(name):
            f = stack.enter_context(atomic_path(out / name)).open("w", encoding="utf-8")
            stack.callback(f.close)  # runs before the rename (LIFO)
            return f

        files = {name: open_atomic(name) for name in ("prompt", "text", "token", "audio_codes")}
        wav_scp = open_atomic("wav.scp") if write_wav and ttt.speech_tokenizer is not None else None
        for utt, data in inputs.items():
            text = data.get("text")
            if text is not None and text_is_pieces:
                text = text.split()
            with reading(sources):  # a prompt the model cannot take: too long, unknown pieces, no text
                o = ttt(mode, text, data.get("speech_codes"), utterance_seed(seed, utt), f"utterance '{utt}'", write_wav)
            r = o.result
            logging.info(
                f"{utt}: {len(r.token_ids)} tokens, {len(r.spans)} spans, {len(o.audio_codes)} codes, "
                f"stop={r.stop_reason}, {r.timings['total']:.2f}s (first audio {r.time_to_first_audio})"
            )
            files["prompt"].write(f"{utt} {' '.join(o.prompt)}\n")
            files["text"].write(f"{utt} {o.text}\n")
            files["token"].write(f"{utt} {' '.join(o.tokens)}\n")
            files["audio_codes"].write(f"{utt} {' '.join(map(str, o.audio_codes))}\n")
            if wav_scp is not None and o.wav is not None:
                wav_path = out / "wav" / f"{utt}.wav"
                with atomic_path(wav_path, sweep=False) as tmp:
                    soundfile.write(tmp, o.wav, o.sample_rate)
                wav_scp.write(f"{utt} {wav_path}\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where the help states the default itself (the unset ``None``
    of an option whose effective default comes from elsewhere would mislead)."""

    def _get_help_string(self, action):
        help_text = action.help or ""
        return help_text if "default:" in help_text else super()._get_help_string(action)


def get_parser() -> config_argparse.ArgumentParser:
    parser = config_argparse.ArgumentParser(
        description="TtT decoding (AR text + block-diffusion audio)",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--log_level", type=lambda x: x.upper(), default="INFO",
                        choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET"))
    parser.add_argument("--output_dir", type=str, required=True)
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU, 1: one GPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    parser.add_argument("--cpu_weight_layout", default="auto", choices=CPU_WEIGHT_LAYOUTS,
                        help="float32 CPU weights stored input-major (same values; faster steps on some CPUs), "
                             "as trained, or auto (input-major on AMD CPUs only)")
    parser.add_argument("--batch_size", type=int, default=1, help="only 1")
    group = parser.add_argument_group("Input data related")
    group.add_argument("--data_path_and_name_and_type", type=str2triple_str, required=True, action="append",
                       help="PATH,speech_codes,text_int and/or PATH,text,text")
    group.add_argument("--key_file", type=str_or_none)
    group.add_argument("--mode", choices=MODES, default="chat",
                       help="text: text->text, asr: audio->text, tts: text->audio, chat: audio->text+audio")
    group.add_argument("--text_is_pieces", type=str2bool, default=False,
                       help="the text input holds space-separated token pieces, not raw text")
    group = parser.add_argument_group("The model configuration related")
    group.add_argument("--train_config", type=str_or_none)
    group.add_argument("--model_file", type=str_or_none)
    group.add_argument("--model_tag", type=str_or_none,
                       help="packed model (zip or tar) or Hugging Face repo id owner/name[@revision] (overrides "
                            "the two above)")
    group.add_argument("--model_cache_dir", type=str_or_none,
                       help="where --model_tag is unpacked (default: $XDG_CACHE_HOME/espnet2_ttt/models, "
                            "else ~/.cache/espnet2_ttt/models)")
    group.add_argument("--bpemodel", type=str_or_none, help="default: the training config's")
    group.add_argument("--speech_tokenizer_dir", type=str_or_none, help="default: the training config's")
    group.add_argument("--write_wav", type=str2bool, default=True,
                       help="synthesise the audio codes into wav/ + wav.scp (needs a speech tokenizer)")
    group = parser.add_argument_group(
        "Decoding related (DecodeConfig, ForcingOptions; unset: a packed model's decode.yaml, else the default)")
    choices = {"remasking": ("low_confidence", "random"), "cfg_uncond": CFG_UNCOND_INPUTS}
    for options in DECODE_OPTIONS:
        for f in dataclasses.fields(options):
            group.add_argument(f"--{f.name}", type=OPTION_TYPES[f.type], default=None, choices=choices.get(f.name),
                               help=f.metadata.get("help", f"{options.__name__} default: {f.default}"))
    return parser


def decode_option_fields() -> List[dataclasses.Field]:
    """The fields of :data:`DECODE_OPTIONS`: the decode options of the CLI and decode.yaml."""
    return [f for options in DECODE_OPTIONS for f in dataclasses.fields(options)]


def decode_options(config: Optional[str] = None, args: Sequence[str] = ()) -> Dict[str, object]:
    """The decode options (:data:`DECODE_OPTIONS`) that an inference ``--config`` yaml plus
    command-line ``args`` set, read exactly as this CLI reads them (unset options are absent)."""
    parsed = get_parser().parse_args(
        [*(["--config", config] if config else []), "--output_dir=unused", "--data_path_and_name_and_type=unused,text,text",
         *args])
    return {f.name: getattr(parsed, f.name) for f in decode_option_fields() if getattr(parsed, f.name) is not None}


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    kwargs = vars(args)
    logging.basicConfig(level=kwargs.pop("log_level"),
                        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    kwargs.pop("config", None)
    inference(**kwargs)


if __name__ == "__main__":
    run(main, "ttt_inference")
