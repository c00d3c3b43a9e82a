"""The fault families: for every entry point, the malformed inputs it is given and how they are judged.

A family is one (entry point, mutation) pair, e.g. ``("speech_tokenize", "wav.cut_data")``;
``make(ctx)`` copies the valid fixtures it needs into the case's work directory, corrupts one
of them with the case's seeded ``random.Random`` (which line, which byte, which tensor) and
returns the :class:`Case`: the call, the matching command line, what a clear message must
name, and the check that a run exiting 0 left no trace of the bad input in its output.

Mutation names are ``<input>.<corruption>``; the input kinds are

``wav``      an audio file listed in wav.scp (cut header or data, a header field no WAV has,
             NaN/inf samples, 1 sample, 0 samples, empty, not audio, missing, a directory);
``<table>``  a Kaldi-style text table: wav.scp, text, codes, key file, utt2spk, seq, shape
             (invalid UTF-8 byte, UTF-16, BOM, duplicate id, id without value, empty, missing,
             and the table's own value errors: out-of-range codes, unclosed spans, ...);
``jsonl``    dialogue / official records (a record cut short, wrong types, unknown roles, ...);
``token_list``, ``bpemodel``, ``tokenizer`` (tokenizer.yaml, codebook.pt, decoder.pt),
``model`` (a .pth state dict: cut, CRC broken, NaN/inf weights, wrong shape/dtype, missing,
extra or non-tensor entries, tied rows that differ), ``config`` (the training config.yaml),
``zip`` (a packed model).
"""
from __future__ import annotations

import dataclasses
import json
import random
import re
import shlex
import shutil
import sys
import zipfile
from functools import partial
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import soundfile
import torch
import yaml

import espnet2_ttt.tasks.ttt  # noqa: F401 -- imported lazily by TtTInference: once here, not in every forked case
from espnet2_ttt.bin import (build_sequences, convert_official, format_wav, make_token_list, pack,
                             speech_detokenize, speech_tokenize, ttt_inference, ttt_train)
from faults import mutations as mut
from faults.fixtures import CODEBOOK_SIZE, DECODE, FILES, TINY_TRAIN, TRANSCRIPTS, Fixtures, train_args

UTTS = list(TRANSCRIPTS)
Named = Tuple[str, Optional[str]]  # (text naming the file, regex of the line / key, or None)


@dataclasses.dataclass
class Case:
    """One malformed input and how to judge what the entry point did with it."""

    entry: str
    mutation: str
    call: Callable[[], object]  # runs in the forked child
    command: str  # the matching command line (or Python statement)
    named: List[Named]  # a clear message names one of these (file and, when given, line or key)
    clean: Callable[[], bool]  # after exit 0: True when the output holds nothing of the bad input
    slow: bool = False  # a training run: twice the time limit


@dataclasses.dataclass
class Ctx:
    """What a family's ``make`` works with: the case's generator, the valid fixtures, a fresh directory."""

    rng: random.Random
    fx: Fixtures
    work: Path

    def copy(self, name: str) -> Path:
        """A copy of fixture ``name`` (file or directory) at the same relative place under ``work``."""
        src, dst = getattr(self.fx, name), self.work / FILES[name]
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dst)
        return dst

    def utt(self) -> str:
        return self.rng.choice(UTTS)


@dataclasses.dataclass(frozen=True)
class Family:
    entry: str
    mutation: str
    make: Callable[[Ctx], Case]


FAMILIES: List[Family] = []


def family(entry: str, mutation: str):
    def register(make: Callable[[Ctx], Case]):
        FAMILIES.append(Family(entry, mutation, make))
        return make
    return register


# ------------------------------------------------------------------------------ judging helpers
def loc(line: Optional[int] = None, key: Optional[str] = None, record: Optional[int] = None) -> str:
    """Regex of a message naming ``line`` (``file:N``, ``line N``, ``LN``), ``key`` or JSON ``record``."""
    alternatives = []
    if line is not None:
        alternatives += [rf":{line}(?!\d)", rf"\bline {line}(?!\d)", rf"\bL{line}(?!\d)"]
    if record is not None:
        alternatives.append(rf"\brecord #?{record}(?!\d)")
    if key is not None:
        alternatives.append(rf"(?<!\w){re.escape(key)}(?!\w)")
    return "|".join(alternatives)


def table_keys(path: Path) -> Optional[List[str]]:
    """First fields of the lines of an output table (None when it does not exist)."""
    if not path.is_file():
        return None
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    return [line.split(maxsplit=1)[0] for line in text.splitlines() if line.strip()]


def absent(keys: Callable[[], Optional[List[str]]], bad: Callable[[str], bool], at_most: int = 0):
    """Clean check: at most ``at_most`` output keys are bad (0; 1 for a duplicated id)."""
    def clean() -> bool:
        found = keys()
        return found is None or sum(map(bad, found)) <= at_most
    return clean


def exists_check(*paths: Path) -> Callable[[], bool]:
    """Clean check of a whole-input fault: none of ``paths`` (the outputs) was written."""
    return lambda: not any(p.exists() for p in paths)


def never_clean() -> bool:
    """Clean check of a loader: returning a model built from a malformed file is never clean."""
    return False


def is_utt(utts: Iterable[str]) -> Callable[[str], bool]:
    """Key predicate: the key is one of ``utts``."""
    return set(utts).__contains__


def cli(module: str, main: Callable, argv: Sequence[str]) -> Tuple[Callable[[], object], str]:
    """(call of ``main(argv)`` with ``sys.argv`` as ``python -m`` sets it, the command line)."""
    argv = [str(a) for a in argv]

    def call():
        sys.argv = [f"espnet2_ttt/bin/{module}.py", *argv]
        return main(argv)
    return call, f"python -m espnet2_ttt.bin.{module} {shlex.join(argv)}"


def case(entry: str, mutation: str, call_command, named, clean, slow: bool = False) -> Case:
    call, command = call_command
    return Case(entry, mutation, call, command, list(named), clean, slow)


# ------------------------------------------------------------------------------ entry points
def run_format_wav(ctx: Ctx, data: Path):
    out = ctx.work / "formatted"
    keys = lambda: table_keys(out / "wav.scp")  # noqa: E731
    return cli("format_wav", format_wav.main, ["--data_dir", data, "--output_dir", out]), keys, out


def run_speech_tokenize(ctx: Ctx, tokenizer_dir: Path, wav_scp: Path, key_file: Optional[Path] = None):
    out = ctx.work / "codes_out"
    argv = ["--tokenizer_dir", tokenizer_dir, "--wav_scp", wav_scp, "--output", out]
    argv += ["--key_file", key_file] if key_file else []
    return cli("speech_tokenize", speech_tokenize.main, argv), lambda: table_keys(out)


def run_speech_detokenize(ctx: Ctx, tokenizer_dir: Path, codes: Path):
    out = ctx.work / "detok"

    def keys():
        listed = table_keys(out / "wav.scp")
        wavs = [p.stem for p in (out / "wavs").glob("*.wav")] if (out / "wavs").is_dir() else []
        return None if listed is None and not wavs else (listed or []) + wavs
    return cli("speech_detokenize", speech_detokenize.main,
               ["--tokenizer_dir", tokenizer_dir, "--codes", codes, "--output_dir", out]), keys


def run_build_sequences(ctx: Ctx, bpemodel: Path, token_list: Path, codes: Path, text: Path, dialogues: Path):
    out = ctx.work / "seq_out"
    argv = ["--bpemodel", bpemodel, "--token_list", token_list, "--codes", codes, "--text", text,
            "--dialogues", dialogues, "--tasks", "asr,tts,qa,text", "--output", out]
    return cli("build_sequences", build_sequences.main, argv), lambda: table_keys(out)


def run_make_token_list(ctx: Ctx, bpemodel: Path, train_text: Optional[Path] = None, codebook_size=CODEBOOK_SIZE):
    out = ctx.work / "tokens_out.txt"
    argv = ["--bpemodel", bpemodel, "--codebook_size", codebook_size, "--output", out]
    if train_text is not None:
        argv += ["--spm_train_text", train_text, "--nbpe", "40", "--spm_model_type", "char",
                 "--spm_character_coverage", "1.0", "--spm_byte_fallback", "false", "--spm_num_threads", "1"]
    return cli("make_token_list", make_token_list.main, argv), out


def run_convert_official(ctx: Ctx, bpemodel: Path, token_list: Path, official: Path):
    out = ctx.work / "official_out"
    argv = ["--bpemodel", bpemodel, "--token_list", token_list, "--input", official, "--output", out]
    return cli("convert_official", convert_official.main, argv), lambda: table_keys(out)


def run_collect_stats(ctx: Ctx, token_list: Path, seq: Path, max_seq_len: Optional[int] = None):
    out = ctx.work / "stats"
    argv = ["--token_list", token_list, "--output_dir", out, "--collect_stats", "true",
            "--train_data_path_and_name_and_type", f"{seq},seq,text",
            "--valid_data_path_and_name_and_type", f"{ctx.fx.seq},seq,text", *TINY_TRAIN]
    argv += ["--max_seq_len", max_seq_len] if max_seq_len else []
    return cli("ttt_train", ttt_train.main, argv), lambda: table_keys(out / "train" / "seq_shape")


def run_training(ctx: Ctx, token_list: Path, seq: Path, shape: Path, *extra):
    out = ctx.work / "exp"
    argv = train_args(token_list, seq, shape, out, 1) + list(extra)
    return cli("ttt_train", ttt_train.main, argv), exists_check(out / "1epoch.pth", out / "checkpoint.pth")


def run_inference(ctx: Ctx, inputs: Sequence[str], mode: str, model: Sequence = (), key_file: Optional[Path] = None):
    out = ctx.work / "decode"
    model = list(model) or ["--train_config", ctx.fx.train_config, "--model_file", ctx.fx.model_file]
    argv = [*model, "--output_dir", out, "--mode", mode, "--write_wav", "false", *DECODE]
    for spec in inputs:
        argv += ["--data_path_and_name_and_type", spec]
    argv += ["--key_file", key_file] if key_file else []
    return cli("ttt_inference", ttt_inference.main, argv), lambda: table_keys(out / "token")


def run_pack(ctx: Ctx, train_config: Path, model_file: Path, **extra: Path):
    out = ctx.work / "packed_out.zip"
    argv = ["--train_config", train_config, "--model_file", model_file, "--outpath", out]
    for name, path in extra.items():
        argv += [f"--{name}", path]
    return cli("pack", pack.main, argv), exists_check(out)


def load_model(train_config: Path, model_file: Path):
    command = ("python -c 'from espnet2_ttt.bin.ttt_inference import TtTInference; "
               f"TtTInference({str(train_config)!r}, {str(model_file)!r})'")
    return partial(ttt_inference.TtTInference, train_config, model_file), command


def load_pretrained(archive: Path, cache_dir: Path):
    """``from_pretrained(archive, cache_dir)`` and the tokenizers it ships (loaded when first
    used): every part of the archive is read."""
    def call():
        ttt = ttt_inference.TtTInference.from_pretrained(str(archive), str(cache_dir))
        return ttt.text_tokenizer, ttt.speech_tokenizer
    command = ("python -c 'from espnet2_ttt.bin.ttt_inference import TtTInference; "
               f"ttt = TtTInference.from_pretrained({str(archive)!r}, {str(cache_dir)!r}); "
               "ttt.text_tokenizer; ttt.speech_tokenizer'")
    return call, command


# ------------------------------------------------------------------------------ wav faults
def _wav_fault(ctx: Ctx, wav_scp: Path, kind: str) -> Tuple[str, Path, int]:
    """Point a random utterance of ``wav_scp`` at a corrupted copy of its audio.

    Returns (utterance, the corrupted path, its wav.scp line)."""
    utt = ctx.utt()
    src = ctx.fx.audio / f"{utt}.wav"
    bad = ctx.work / "audio" / f"{utt}.wav"
    bad.parent.mkdir(parents=True, exist_ok=True)
    wav, sr = soundfile.read(src, dtype="float32")
    if kind in ("cut_data", "cut_header", "bad_header"):
        shutil.copyfile(src, bad)
        {"cut_data": mut.cut_wav_data, "cut_header": mut.cut_wav_header,
         "bad_header": mut.corrupt_wav_header}[kind](bad, ctx.rng)
    elif kind in ("nan", "inf", "all_nan"):
        mut.non_finite_wav(bad, ctx.rng, wav, sr, kind)
    elif kind == "one_sample":
        bad.write_bytes(mut.wav_bytes(wav[:1], sr))
    elif kind == "no_samples":
        bad.write_bytes(mut.wav_bytes(wav[:0], sr))
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "not_audio":
        mut.random_bytes(bad, ctx.rng, ctx.rng.randint(1, 400))
    elif kind == "directory":
        bad.mkdir()
    elif kind != "missing":
        raise ValueError(kind)
    line, _ = mut.replace_value(wav_scp, ctx.rng, str(bad), keys=[utt])
    return utt, bad, line


WAV_FAULTS = ("cut_data", "cut_header", "bad_header", "nan", "inf", "all_nan", "one_sample", "no_samples",
              "empty", "not_audio", "missing", "directory")


def _wav_family(entry: str, kind: str):
    @family(entry, f"wav.{kind}")
    def make(ctx: Ctx) -> Case:
        data = ctx.copy("data")
        wav_scp = data / "wav.scp"
        utt, bad, line = _wav_fault(ctx, wav_scp, kind)
        named = [(str(bad), None), (str(wav_scp), loc(line, utt))]
        if entry == "format_wav":
            call, keys, _ = run_format_wav(ctx, data)
        else:
            call, keys = run_speech_tokenize(ctx, ctx.fx.tokenizer_dir, wav_scp)
        return case(entry, f"wav.{kind}", call, named, absent(keys, is_utt([utt])))


for _entry in ("format_wav", "speech_tokenize"):
    for _kind in WAV_FAULTS:
        _wav_family(_entry, _kind)


# ------------------------------------------------------------------------------ generic table faults
def table_fault(ctx: Ctx, path: Path, kind: str) -> Tuple[List[Named], List[str], int]:
    """Corrupt the table ``path`` in place by ``kind``.

    Returns (what a message must name, the keys whose lines are bad, how many outputs of
    each may remain: 1 for a duplicated id)."""
    keys = [line.split(maxsplit=1)[0] for line in mut.read_lines(path)] if path.is_file() else []
    if kind == "non_utf8":
        line = mut.insert_invalid_byte(path, ctx.rng)
        return [(str(path), loc(line, keys[line - 1]))], [keys[line - 1]], 0
    if kind in ("utf16", "bom"):
        (mut.to_utf16 if kind == "utf16" else mut.add_bom)(path)
        bad = keys if kind == "utf16" else keys[:1]
        return [(str(path), None)], bad, 0
    if kind == "duplicate":
        line, key = mut.duplicate_key(path, ctx.rng)
        return [(str(path), loc(line, key))], [key], 1
    if kind == "key_only":
        line, key = mut.drop_value(path, ctx.rng)
        return [(str(path), loc(line, key))], [key], 0
    if kind == "empty":
        path.write_bytes(b"")
        return [(str(path), None)], keys, 0
    if kind == "missing":
        path.unlink()
        return [(str(path), None)], keys, 0
    raise ValueError(kind)


TABLE_FAULTS = ("non_utf8", "utf16", "bom", "duplicate", "key_only", "empty", "missing")


# ------------------------------------------------------------------------------ format_wav
def _format_wav_table(name: str, kind: str):
    @family("format_wav", f"{name}.{kind}")
    def make(ctx: Ctx) -> Case:
        data = ctx.copy("data")
        named, bad, at_most = table_fault(ctx, data / name, kind)
        call, keys, _ = run_format_wav(ctx, data)
        return case("format_wav", f"{name}.{kind}", call, named, absent(keys, is_utt(bad), at_most))


for _name in ("wav.scp", "text", "utt2spk"):
    for _kind in TABLE_FAULTS:
        if not (_name == "text" and _kind == "missing"):  # a data dir without text is valid
            _format_wav_table(_name, _kind)


@family("format_wav", "wav.scp.pipe")
def _(ctx: Ctx) -> Case:
    data = ctx.copy("data")
    utt = ctx.utt()
    line, _ = mut.replace_value(data / "wav.scp", ctx.rng, f"sox {ctx.fx.audio / utt}.wav -t wav - |", keys=[utt])
    call, keys, _ = run_format_wav(ctx, data)
    return case("format_wav", "wav.scp.pipe", call, [(str(data / "wav.scp"), loc(line, utt))], absent(keys, is_utt([utt])))


@family("format_wav", "text.empty_transcript")
def _(ctx: Ctx) -> Case:
    data = ctx.copy("data")
    line, utt = mut.edit_value(data / "text", ctx.rng, lambda fields, rng: [])
    call, keys, _ = run_format_wav(ctx, data)
    return case("format_wav", "text.empty_transcript", call, [(str(data / "text"), loc(line, utt))],
                absent(keys, is_utt([utt])))


def _format_wav_dialogues(kind: str):
    @family("format_wav", f"dialogues.{kind}")
    def make(ctx: Ctx) -> Case:
        data = ctx.copy("data")
        path = data / "dialogues.jsonl"
        bad_lines = jsonl_fault(ctx, path, kind)
        line = bad_lines[0]
        bad_text = path.read_bytes().split(b"\n")[line - 1]
        call, _, out = run_format_wav(ctx, data)

        def clean() -> bool:
            written = out / "dialogues.jsonl"
            return not written.is_file() or bad_text not in written.read_bytes().split(b"\n")
        return case("format_wav", f"dialogues.{kind}", call, [(str(path), loc(line, record=line - 1))], clean)


# ------------------------------------------------------------------------------ JSON-lines faults
def jsonl_fault(ctx: Ctx, path: Path, kind: str, field_faults: Optional[Dict[str, Callable]] = None) -> List[int]:
    """Corrupt the JSON-lines file ``path`` by ``kind``; returns the bad line numbers (1-based).

    Generic kinds: ``non_utf8``, ``cut`` (a record stops in the middle), ``not_object``;
    ``field_faults[kind](record, rng)`` edits one decoded record in place."""
    lines = mut.read_lines(path)
    if kind == "non_utf8":
        return [mut.insert_invalid_byte(path, ctx.rng)]
    if kind == "cut":
        return [mut.cut_line(path, ctx.rng)]
    i = ctx.rng.randrange(len(lines))
    if kind == "not_object":
        lines[i] = json.dumps(ctx.rng.choice([[1, 2], "text", 3, None]))
    else:
        record = json.loads(lines[i])
        field_faults[kind](record, ctx.rng)
        lines[i] = json.dumps(record, ensure_ascii=False)
    mut.write_lines(path, lines)
    return [i + 1]


for _kind in ("non_utf8", "cut", "not_object"):
    _format_wav_dialogues(_kind)


# ------------------------------------------------------------------------------ speech tokenizer dir
def tokenizer_fault(ctx: Ctx, kind: str) -> Tuple[Path, List[Named]]:
    """A copy of the speech tokenizer directory with one corrupted file; returns (dir, named)."""
    d = ctx.copy("tokenizer_dir")
    yaml_file, codebook, decoder = d / "tokenizer.yaml", d / "codebook.pt", d / "decoder.pt"
    if kind.startswith("yaml."):
        what = kind[5:]
        if what == "missing":
            yaml_file.unlink()
        elif what == "non_utf8":
            text = yaml_file.read_bytes()
            yaml_file.write_bytes(text.replace(b"mel_kmeans", b"mel_km\xffeans", 1))
        elif what == "not_yaml":
            yaml_file.write_text("speech_tokenizer: [mel_kmeans\nspeech_tokenizer_conf: {\n", encoding="utf-8")
        elif what == "unknown_name":
            yaml_file.write_text(yaml_file.read_text().replace("mel_kmeans", "mel_kmeanz"), encoding="utf-8")
        elif what == "bad_conf":
            info = yaml.safe_load(yaml_file.read_text())
            key = ctx.rng.choice(["codebook_size", "n_mels", "frame_rate"])
            info["speech_tokenizer_conf"][key] = ctx.rng.choice([0, -4, "many"])
            yaml_file.write_text(yaml.safe_dump(info), encoding="utf-8")
            return d, [(str(yaml_file), loc(key=key)), (str(codebook), None)]
        else:
            raise ValueError(kind)
        return d, [(str(yaml_file), None)]
    target = codebook if kind.startswith("codebook.") else decoder
    key = state_fault(ctx, target, kind.split(".", 1)[1])
    return d, [(str(target), loc(key=key) if key else None)]


TOKENIZER_FAULTS = ("yaml.missing", "yaml.non_utf8", "yaml.not_yaml", "yaml.unknown_name", "yaml.bad_conf",
                    "codebook.cut", "codebook.random", "codebook.empty", "codebook.crc", "codebook.nan",
                    "codebook.inf", "codebook.shape", "codebook.missing_key", "codebook.int_dtype",
                    "decoder.cut", "decoder.nan", "decoder.shape")


# ------------------------------------------------------------------------------ state dict faults
STATE_FAULTS = ("cut", "random", "empty", "crc", "magic", "nan", "inf", "shape", "missing_key", "extra_key",
                "int_dtype", "not_tensor")


def state_fault(ctx: Ctx, path: Path, kind: str, keys: Sequence[str] = ()) -> Optional[str]:
    """Corrupt the torch-saved dict of tensors ``path`` by ``kind``; returns the tensor key
    involved (None for a file-level fault).  ``keys``: the keys to pick from (default: all)."""
    if kind in mut.WHOLE_FILE_FAULTS:
        mut.whole_file_fault(path, ctx.rng, kind)
    elif kind == "crc":
        mut.flip_zip_member(path, ctx.rng, suffix="/data/0")
    elif kind == "magic":
        data = bytearray(path.read_bytes())
        data[ctx.rng.randrange(4)] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        floats = [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point() and v.numel() > 1]
        key = ctx.rng.choice([k for k in (keys or floats) if k in floats])
        tensor = state[key].clone()
        if kind in ("nan", "inf"):
            flat = tensor.view(-1)
            flat[ctx.rng.randrange(flat.numel())] = float("nan") if kind == "nan" else ctx.rng.choice([1, -1]) * float("inf")
            state[key] = tensor
        elif kind == "shape":
            state[key] = tensor[:-1] if tensor.dim() == 1 or ctx.rng.random() < 0.5 else tensor[:, :-1]
        elif kind == "missing_key":
            del state[key]
        elif kind == "extra_key":
            key = key.rsplit(".", 1)[0] + ".extra_weight"
            state[key] = tensor
        elif kind == "int_dtype":
            state[key] = tensor.round().to(torch.int64)
        elif kind == "not_tensor":
            state[key] = ctx.rng.choice([3, 0.5, "weights", [1.0, 2.0]])
        else:
            raise ValueError(kind)
        torch.save(state, path)
        return key
    return None


# ------------------------------------------------------------------------------ speech_tokenize
def _speech_tokenize_table(name: str, kind: str):
    @family("speech_tokenize", f"{name}.{kind}")
    def make(ctx: Ctx) -> Case:
        wav_scp = ctx.copy("wav_scp")
        key_file = None
        if name == "key_file":
            key_file = ctx.work / "keys"
            mut.write_lines(key_file, ctx.rng.sample(UTTS, ctx.rng.randint(1, len(UTTS))))
        target = key_file or wav_scp
        named, bad, at_most = table_fault(ctx, target, kind)
        call, keys = run_speech_tokenize(ctx, ctx.fx.tokenizer_dir, wav_scp, key_file)
        return case("speech_tokenize", f"{name}.{kind}", call, named, absent(keys, is_utt(bad), at_most))


for _kind in TABLE_FAULTS:
    _speech_tokenize_table("wav.scp", _kind)
for _kind in ("non_utf8", "utf16", "bom", "empty", "missing"):
    _speech_tokenize_table("key_file", _kind)


@family("speech_tokenize", "key_file.unknown_key")
def _(ctx: Ctx) -> Case:
    key_file = ctx.work / "keys"
    keys = ctx.rng.sample(UTTS, 2)
    line = ctx.rng.randint(1, 3)
    keys.insert(line - 1, "spk9-ghost")
    mut.write_lines(key_file, keys)
    call, out_keys = run_speech_tokenize(ctx, ctx.fx.tokenizer_dir, ctx.fx.wav_scp, key_file)
    return case("speech_tokenize", "key_file.unknown_key", call, [(str(key_file), loc(line, "spk9-ghost"))],
                absent(out_keys, is_utt(["spk9-ghost"])))


@family("speech_tokenize", "wav.scp.pipe")
def _(ctx: Ctx) -> Case:
    wav_scp = ctx.copy("wav_scp")
    utt = ctx.utt()
    line, _ = mut.replace_value(wav_scp, ctx.rng, f"sox {ctx.fx.audio / utt}.wav -t wav - |", keys=[utt])
    call, keys = run_speech_tokenize(ctx, ctx.fx.tokenizer_dir, wav_scp)
    return case("speech_tokenize", "wav.scp.pipe", call, [(str(wav_scp), loc(line, utt))], absent(keys, is_utt([utt])))


def _tokenizer_family(entry: str, kind: str):
    @family(entry, f"tokenizer.{kind}")
    def make(ctx: Ctx) -> Case:
        d, named = tokenizer_fault(ctx, kind)
        if entry == "speech_tokenize":
            call, keys = run_speech_tokenize(ctx, d, ctx.fx.wav_scp)
        else:
            call, keys = run_speech_detokenize(ctx, d, ctx.fx.codes)
        return case(entry, f"tokenizer.{kind}", call, named, absent(keys, lambda k: True))


for _kind in TOKENIZER_FAULTS:
    if not _kind.startswith("decoder."):  # decoding only
        _tokenizer_family("speech_tokenize", _kind)
    _tokenizer_family("speech_detokenize", _kind)


# ------------------------------------------------------------------------------ code tables
def codes_fault(ctx: Ctx, path: Path, kind: str, codebook_size: int = CODEBOOK_SIZE):
    """Value faults of a code file (``utt c1 c2 ...``); returns what :func:`table_fault` returns."""
    edits = {
        "out_of_range": lambda f, rng: _set_random(f, rng, str(rng.randrange(codebook_size, codebook_size * 100))),
        "negative": lambda f, rng: _set_random(f, rng, str(-rng.randint(1, 5))),
        "not_integer": lambda f, rng: _set_random(f, rng, rng.choice(["1.5", "x", "0x1", "1e3", "--"])),
        "huge": lambda f, rng: _set_random(f, rng, "9" * rng.randint(20, 40)),
    }
    if kind in edits:
        line, key = mut.edit_value(path, ctx.rng, edits[kind])
        return [(str(path), loc(line, key))], [key], 0
    return table_fault(ctx, path, kind)


def _set_random(fields: List[str], rng: random.Random, value: str) -> List[str]:
    fields[rng.randrange(len(fields))] = value
    return fields


CODE_FAULTS = ("out_of_range", "negative", "not_integer", "huge") + TABLE_FAULTS


for _kind in CODE_FAULTS:
    @family("speech_detokenize", f"codes.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        codes = ctx.copy("codes")
        named, bad, at_most = codes_fault(ctx, codes, kind)
        call, keys = run_speech_detokenize(ctx, ctx.fx.tokenizer_dir, codes)
        return case("speech_detokenize", f"codes.{kind}", call, named, absent(keys, is_utt(bad), at_most))


@family("speech_detokenize", "codes.id_with_slash")
def _(ctx: Ctx) -> Case:
    codes = ctx.copy("codes")
    lines = mut.read_lines(codes)
    i = ctx.rng.randrange(len(lines))
    lines[i] = ctx.rng.choice(["../escaped", "sub/dir", ".hidden"]) + " " + lines[i].split(maxsplit=1)[1]
    mut.write_lines(codes, lines)
    call, keys = run_speech_detokenize(ctx, ctx.fx.tokenizer_dir, codes)
    key = lines[i].split()[0]
    escaped = ctx.work / "escaped.wav"
    return case("speech_detokenize", "codes.id_with_slash", call, [(str(codes), loc(i + 1, key))],
                lambda: absent(keys, lambda k: k == key)() and not escaped.exists())


# ------------------------------------------------------------------------------ token lists and text models
TOKEN_LIST_FAULTS = ("non_utf8", "utf16", "bom", "empty", "missing", "duplicate_token", "missing_special",
                     "code_gap", "blank_line")


def token_list_fault(ctx: Ctx, kind: str) -> Tuple[Path, List[Named]]:
    path = ctx.copy("token_list")
    tokens = mut.read_lines(path)
    if kind in ("non_utf8", "utf16", "bom", "empty", "missing"):
        return path, table_fault(ctx, path, kind)[0]
    if kind == "duplicate_token":
        token = tokens[ctx.rng.randrange(1, len(tokens))]
        line = ctx.rng.randrange(2, len(tokens) + 1)
        tokens.insert(line - 1, token)
        named = [(str(path), loc(line, token))]
    elif kind == "missing_special":
        special = ctx.rng.choice([t for t in tokens if t.startswith("<|") and not t.startswith("<|audio_")])
        tokens.remove(special)
        named = [(str(path), loc(key=special))]
    elif kind == "code_gap":
        code = ctx.rng.randrange(1, CODEBOOK_SIZE - 1)
        tokens.remove(f"<|audio_{code}|>")
        named = [(str(path), loc(key=f"<|audio_{code}|>") + "|" + loc(key=f"audio_{code}"))]
    elif kind == "blank_line":
        line = ctx.rng.randrange(2, len(tokens))
        tokens.insert(line - 1, "")
        named = [(str(path), loc(line))]
    else:
        raise ValueError(kind)
    mut.write_lines(path, tokens)
    return path, named


BPEMODEL_FAULTS = ("cut", "random", "empty", "missing")


def bpemodel_fault(ctx: Ctx, kind: str) -> Tuple[Path, List[Named]]:
    path = ctx.copy("bpemodel")
    if kind in mut.WHOLE_FILE_FAULTS:
        mut.whole_file_fault(path, ctx.rng, kind)
    elif kind == "missing":
        path.unlink()
    else:
        raise ValueError(kind)
    return path, [(str(path), None)]


# ------------------------------------------------------------------------------ build_sequences
def _build_sequences_family(mutation: str, corrupt: Callable[[Ctx, Dict[str, Path]], Tuple[List[Named], Callable, int]]):
    """``corrupt(ctx, files)`` -> (named, predicate of the bad sequence ids, at_most)."""
    @family("build_sequences", mutation)
    def make(ctx: Ctx) -> Case:
        files = {name: ctx.copy(name) for name in ("bpemodel", "token_list", "codes", "text", "dialogues")}
        named, bad, at_most = corrupt(ctx, files)
        call, keys = run_build_sequences(ctx, *(files[n] for n in ("bpemodel", "token_list", "codes", "text", "dialogues")))
        return case("build_sequences", mutation, call, named, absent(keys, bad, at_most))


def _whole_input(named: List[Named]):
    return named, (lambda k: True), 0


def sequences_of(fx: Fixtures, utts: Iterable[str], via_text: bool = True, via_dialogues: bool = True):
    """Predicate of the build_sequences ids that use one of ``utts``: ``asr-<utt>`` / ``tts-<utt>``
    of the text file, and the dialogues whose question_utt or answer_utt is one of them."""
    utts = set(utts)
    ids = {f"{task}-{u}" for u in utts for task in ("asr", "tts")} if via_text else set()
    if via_dialogues:
        for line in mut.read_lines(fx.dialogues):
            record = json.loads(line)
            if {record["question_utt"], record["answer_utt"]} & utts:
                ids.add(record["id"])
    return ids.__contains__


def _text_fault(kind: str):
    def corrupt(ctx: Ctx, files: Dict[str, Path]):
        named, bad, at_most = table_fault(ctx, files["text"], kind)
        return named, sequences_of(ctx.fx, bad, via_dialogues=False), at_most
    return corrupt


def _codes_fault(kind: str):
    def corrupt(ctx: Ctx, files: Dict[str, Path]):
        named, bad, at_most = codes_fault(ctx, files["codes"], kind)
        return named, sequences_of(ctx.fx, bad), at_most
    return corrupt


for _kind in TABLE_FAULTS:
    _build_sequences_family(f"text.{_kind}", _text_fault(_kind))
for _kind in CODE_FAULTS:
    _build_sequences_family(f"codes.{_kind}", _codes_fault(_kind))
for _kind in TOKEN_LIST_FAULTS:
    _build_sequences_family(f"token_list.{_kind}", lambda ctx, f, kind=_kind: _whole_input(
        token_list_fault(ctx, kind)[1]))
for _kind in BPEMODEL_FAULTS:
    _build_sequences_family(f"bpemodel.{_kind}", lambda ctx, f, kind=_kind: _whole_input(bpemodel_fault(ctx, kind)[1]))


def _empty_transcript(ctx: Ctx, files: Dict[str, Path]):
    line, utt = mut.edit_value(files["text"], ctx.rng, lambda fields, rng: rng.choice([[], [" "], ["\t"]]))
    return [(str(files["text"]), loc(line, utt))], sequences_of(ctx.fx, [utt], via_dialogues=False), 0


def _codes_missing_utt(ctx: Ctx, files: Dict[str, Path]):
    lines = mut.read_lines(files["codes"])
    i = ctx.rng.randrange(len(lines))
    utt = lines.pop(i).split()[0]
    mut.write_lines(files["codes"], lines)
    line = UTTS.index(utt) + 1
    return [(str(files["codes"]), loc(key=utt)), (str(files["text"]), loc(line, utt))], sequences_of(ctx.fx, [utt]), 0


_build_sequences_family("text.empty_transcript", _empty_transcript)
_build_sequences_family("codes.missing_utt", _codes_missing_utt)

DIALOGUE_FIELD_FAULTS = {
    "missing_field": lambda r, rng: r.pop(rng.choice(["id", "answer_text"] + (["question_utt"] if r["question_utt"] else ["question_text"]))),
    "wrong_type": lambda r, rng: r.update({rng.choice(["answer_text", "id"]): rng.choice([5, ["a"], {"x": 1}])}),
    "unknown_task": lambda r, rng: r.update(task=rng.choice(["asr2", "", "QA", None])),
    "unknown_utt": lambda r, rng: r.update({"question_utt" if r["question_utt"] else "answer_utt": "spk9-ghost",
                                            **({} if r["question_utt"] else {"task": "tts", "question_text": "hi"})}),
    "empty_answer": lambda r, rng: r.update(answer_text=rng.choice(["", "  "])),
}


def _dialogue_fault(kind: str):
    def corrupt(ctx: Ctx, files: Dict[str, Path]):
        path = files["dialogues"]
        before = [json.loads(line)["id"] for line in mut.read_lines(path)]
        line = jsonl_fault(ctx, path, kind, DIALOGUE_FIELD_FAULTS)[0]
        rec_id = before[line - 1]
        named = [(str(path), loc(line, rec_id, record=line - 1))]
        if kind == "unknown_utt":  # equally: the codes file lacks the utterance
            named.append((str(files["codes"]), loc(key="spk9-ghost")))
        return named, (lambda k: k == rec_id), 0
    return corrupt


for _kind in ("non_utf8", "cut", "not_object", *DIALOGUE_FIELD_FAULTS):
    _build_sequences_family(f"dialogues.{_kind}", _dialogue_fault(_kind))


# ------------------------------------------------------------------------------ make_token_list
for _kind in BPEMODEL_FAULTS:
    @family("make_token_list", f"bpemodel.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        path, named = bpemodel_fault(ctx, kind)
        call, out = run_make_token_list(ctx, path)
        return case("make_token_list", f"bpemodel.{kind}", call, named, exists_check(out))

for _kind in ("non_utf8", "utf16", "bom", "empty", "missing"):
    @family("make_token_list", f"spm_train_text.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        text = ctx.copy("spm_train_text")
        named = table_fault(ctx, text, kind)[0]
        call, out = run_make_token_list(ctx, ctx.work / "spm" / "new.model", text)
        return case("make_token_list", f"spm_train_text.{kind}", call, named, exists_check(out))


@family("make_token_list", "codebook_size.not_positive")
def _(ctx: Ctx) -> Case:
    call, out = run_make_token_list(ctx, ctx.fx.bpemodel, codebook_size=ctx.rng.choice([0, -1, -16384]))
    return case("make_token_list", "codebook_size.not_positive", call, [("--codebook_size", None), ("codebook_size", None)],
                exists_check(out))


# ------------------------------------------------------------------------------ convert_official
def _official_family(mutation: str, corrupt: Callable[[Ctx, Dict[str, Path]], Tuple[List[Named], Callable, int]]):
    @family("convert_official", mutation)
    def make(ctx: Ctx) -> Case:
        files = {name: ctx.copy(name) for name in ("bpemodel", "token_list", "official")}
        named, bad, at_most = corrupt(ctx, files)
        call, keys = run_convert_official(ctx, files["bpemodel"], files["token_list"], files["official"])
        return case("convert_official", mutation, call, named, absent(keys, bad, at_most))


def _record_id(line: int) -> str:
    return f"official-{line - 1:07d}"


def _contents(record: dict) -> List[Tuple[dict, str]]:
    """(container, key) of every content string of an official record."""
    if "messages" in record:
        return [(m, "content") for m in record["messages"]]
    if "conversations" in record:
        return [(m, "value") for m in record["conversations"]]
    if "prompt" in record:
        return [(record, "prompt"), (record, "response")]
    return [(record, "text")]


def _edit_content(edit: Callable[[str, random.Random], str], last: bool = False):
    def apply(record: dict, rng: random.Random) -> None:
        contents = _contents(record)
        container, key = contents[-1] if last else rng.choice(contents)
        container[key] = edit(container[key], rng)
    return apply


OFFICIAL_FIELD_FAULTS = {
    "code_out_of_range": _edit_content(lambda c, rng: c + f"<|begin_of_quad|><|audio_{rng.randrange(CODEBOOK_SIZE, 20000)}|>"
                                                         "<|end_of_audio_span_last|>", last=True),
    "unclosed_span": _edit_content(lambda c, rng: c + "<|begin_of_quad|><|audio_1|><|audio_2|>", last=True),
    "stray_code": _edit_content(lambda c, rng: c + f" <|audio_{rng.randrange(CODEBOOK_SIZE)}|>", last=True),
    "empty_span": _edit_content(lambda c, rng: c + "<|begin_of_quad|><|end_of_audio_span_last|>", last=True),
    "unknown_special": _edit_content(lambda c, rng: c + rng.choice(["<|speech|>", "<|audio_x|>", "<|im_sep|>"])),
    "template_token": _edit_content(lambda c, rng: c + "<|im_start|>"),
    "not_string": _edit_content(lambda c, rng: rng.choice([5, None, ["hi"], {"t": 1}])),
    "empty_text": _edit_content(lambda c, rng: rng.choice(["", "   "]), last=True),
    "unknown_role": lambda r, rng: _unknown_role(r, rng),
    "no_known_keys": lambda r, rng: _replace_keys(r),
}


def _unknown_role(record: dict, rng: random.Random) -> None:
    """The last turn gets a role the format does not have (a prompt/response or PT record loses its prompt)."""
    for turns, role_key in (("messages", "role"), ("conversations", "from")):
        if turns in record:
            record[turns][-1][role_key] = rng.choice(["robot", "", "Assistant"])
            return
    record.pop("prompt" if "prompt" in record else "text")
    record["prompt_text"] = "hi"


def _replace_keys(record: dict) -> None:
    record.clear()
    record["data"] = "hi"


for _kind in ("non_utf8", "cut", "not_object", *OFFICIAL_FIELD_FAULTS):
    def _corrupt(ctx: Ctx, files: Dict[str, Path], kind=_kind):
        line = jsonl_fault(ctx, files["official"], kind, OFFICIAL_FIELD_FAULTS)[0]
        return [(str(files["official"]), loc(line, record=line - 1))], (lambda k: k == _record_id(line)), 0
    _official_family(f"official.{_kind}", _corrupt)
for _kind in ("utf16", "bom", "empty", "missing"):
    _official_family(f"official.{_kind}", lambda ctx, f, kind=_kind: _whole_input(table_fault(ctx, f["official"], kind)[0]))
for _kind in TOKEN_LIST_FAULTS:
    _official_family(f"token_list.{_kind}", lambda ctx, f, kind=_kind: _whole_input(token_list_fault(ctx, kind)[1]))
for _kind in BPEMODEL_FAULTS:
    _official_family(f"bpemodel.{_kind}", lambda ctx, f, kind=_kind: _whole_input(bpemodel_fault(ctx, kind)[1]))


# ------------------------------------------------------------------------------ ttt_train --collect_stats
SPAN_OPEN = ("<|begin_of_audio|>", "<|begin_of_quad|>")
SPAN_CLOSE = ("<|end_of_audio|>", "<|end_of_audio_new|>", "<|end_of_audio_span_last|>")


SEQ_EDITS = {
    "unclosed_span": lambda t, rng: _drop_random(t, rng, SPAN_CLOSE),
    "stray_span_end": lambda t, rng: _drop_random(t, rng, SPAN_OPEN),
    "empty_span": lambda t, rng: _empty_a_span(t, rng),
    "code_out_of_range": lambda t, rng: _set_random(t, rng, f"<|audio_{rng.randrange(CODEBOOK_SIZE, 5000)}|>"),
    "unknown_token": lambda t, rng: _set_random(t, rng, rng.choice(["<|speech|>", "word", "Ω", "<|audio_-1|>"])),
    "unk": lambda t, rng: _set_random(t, rng, "<unk>"),
    "pad": lambda t, rng: _set_random(t, rng, "<pad>"),
    "no_assistant_turn": lambda t, rng: [x for x in t if x != "<|assistant|>"],
}


def _drop_random(tokens: List[str], rng: random.Random, which: Sequence[str]) -> List[str]:
    positions = [i for i, t in enumerate(tokens) if t in which]
    del tokens[rng.choice(positions)]
    return tokens


def _empty_a_span(tokens: List[str], rng: random.Random) -> List[str]:
    opens = [i for i, t in enumerate(tokens) if t in SPAN_OPEN]
    start = rng.choice(opens)
    end = next(i for i in range(start + 1, len(tokens)) if tokens[i] in SPAN_CLOSE)
    return tokens[: start + 1] + tokens[end:]


def _seq_fault(kind: str):
    def corrupt(ctx: Ctx, seq: Path):
        if kind in SEQ_EDITS:
            lines = mut.read_lines(seq)
            eligible = [i for i, line in enumerate(lines) if kind not in ("unclosed_span", "stray_span_end", "empty_span")
                        or any(t in line.split() for t in SPAN_OPEN)]
            i = ctx.rng.choice(eligible)
            key, *tokens = lines[i].split()
            lines[i] = " ".join([key, *SEQ_EDITS[kind](tokens, ctx.rng)])
            mut.write_lines(seq, lines)
            return [(str(seq), loc(i + 1, key))], [key], 0
        if kind == "too_long":  # longer than every fixture sequence, the --max_seq_len given
            longest = max(len(line.split()) - 1 for line in mut.read_lines(ctx.fx.seq))
            line, key = mut.edit_value(seq, ctx.rng, lambda t, rng: t * (longest // len(t) + 1))
            return [(str(seq), loc(line, key))], [key], 0
        return table_fault(ctx, seq, kind)
    return corrupt


SEQ_FAULTS = (*SEQ_EDITS, "too_long", *TABLE_FAULTS)
for _kind in SEQ_FAULTS:
    @family("ttt_train", f"seq.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        seq = ctx.copy("seq")
        named, bad, at_most = _seq_fault(kind)(ctx, seq)
        max_len = max(len(line.split()) - 1 for line in mut.read_lines(ctx.fx.seq)) if kind == "too_long" else None
        call, keys = run_collect_stats(ctx, ctx.fx.token_list, seq, max_len)
        return case("ttt_train", f"seq.{kind}", call, named, absent(keys, is_utt(bad), at_most))

for _kind in TOKEN_LIST_FAULTS:
    @family("ttt_train", f"token_list.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        path, named = token_list_fault(ctx, kind)
        call, keys = run_collect_stats(ctx, path, ctx.fx.seq)
        return case("ttt_train", f"token_list.{kind}", call, named, absent(keys, lambda k: True))


# ------------------------------------------------------------------------------ ttt_train (training)
for _kind in ("ghost_utt", "not_integer", "duplicate", "empty", "missing", "non_utf8"):
    @family("ttt_train", f"shape.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        shape = ctx.copy("seq_shape")
        if kind == "ghost_utt":
            lines = mut.read_lines(shape)
            line = ctx.rng.randint(1, len(lines) + 1)
            lines.insert(line - 1, "zz-ghost 42")
            mut.write_lines(shape, lines)
            named = [(str(shape), loc(line, "zz-ghost"))]
        elif kind == "not_integer":
            line, key = mut.edit_value(shape, ctx.rng, lambda f, rng: [rng.choice(["x", "1.5", "-3", "12a"])])
            named = [(str(shape), loc(line, key))]
        else:
            named = table_fault(ctx, shape, kind)[0]
        call, clean = run_training(ctx, ctx.fx.token_list, ctx.fx.seq, shape, "--batch_type", "numel",
                                   "--batch_bins", "2000")  # batches from the lengths, as the recipe makes them
        return case("ttt_train", f"shape.{kind}", call, named, clean, slow=True)

for _kind in ("cut", "crc", "nan", "inf", "shape", "not_tensor"):
    @family("ttt_train", f"init_param.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        path = ctx.copy("model_file")
        key = state_fault(ctx, path, kind)
        call, clean = run_training(ctx, ctx.fx.token_list, ctx.fx.seq, ctx.fx.seq_shape, "--init_param", str(path))
        return case("ttt_train", f"init_param.{kind}", call, [(str(path), loc(key=key) if key else None)], clean,
                    slow=True)


# ------------------------------------------------------------------------------ ttt_inference
for _kind in CODE_FAULTS:
    @family("ttt_inference", f"codes.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        codes = ctx.copy("codes")
        named, bad, at_most = codes_fault(ctx, codes, kind)
        call, keys = run_inference(ctx, [f"{codes},speech_codes,text_int"], "asr")
        return case("ttt_inference", f"codes.{kind}", call, named, absent(keys, is_utt(bad), at_most))

for _kind in ("non_utf8", "utf16", "bom", "duplicate", "key_only", "empty", "missing", "empty_text"):
    @family("ttt_inference", f"text.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        text = ctx.copy("text")
        if kind == "empty_text":
            line, utt = mut.edit_value(text, ctx.rng, lambda f, rng: [])
            named, bad, at_most = [(str(text), loc(line, utt))], [utt], 0
        else:
            named, bad, at_most = table_fault(ctx, text, kind)
        call, keys = run_inference(ctx, [f"{text},text,text"], "tts")
        return case("ttt_inference", f"text.{kind}", call, named, absent(keys, is_utt(bad), at_most))

for _kind in ("non_utf8", "empty", "missing", "unknown_key", "duplicate"):
    @family("ttt_inference", f"key_file.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        key_file = ctx.work / "keys"
        mut.write_lines(key_file, ctx.rng.sample(UTTS, ctx.rng.randint(2, len(UTTS))))
        if kind == "unknown_key":
            lines = mut.read_lines(key_file)
            line = ctx.rng.randint(1, len(lines) + 1)
            lines.insert(line - 1, "spk9-ghost")
            mut.write_lines(key_file, lines)
            named, bad, at_most = [(str(key_file), loc(line, "spk9-ghost"))], ["spk9-ghost"], 0
        else:
            named, bad, at_most = table_fault(ctx, key_file, kind)
        call, keys = run_inference(ctx, [f"{ctx.fx.codes},speech_codes,text_int"], "asr", key_file=key_file)
        return case("ttt_inference", f"key_file.{kind}", call, named, absent(keys, is_utt(bad), at_most))


@family("ttt_inference", "input.unknown_name")
def _(ctx: Ctx) -> Case:
    spec = ctx.rng.choice([f"{ctx.fx.codes},speech,text_int", f"{ctx.fx.codes},speech_codes,sound",
                           f"{ctx.fx.text},txt,text"])
    call, keys = run_inference(ctx, [spec], "asr")
    return case("ttt_inference", "input.unknown_name", call, [(spec.split(",")[0], None)], absent(keys, lambda k: True))


# ------------------------------------------------------------------------------ model loading
CONFIG_FAULTS = ("not_yaml", "non_utf8", "not_mapping", "no_token_list", "bad_token_list", "bad_backbone_conf",
                 "unknown_backbone", "empty")


def config_fault(ctx: Ctx, kind: str) -> Tuple[Path, List[Named]]:
    path = ctx.copy("train_config")
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    key = None
    if kind == "not_yaml":
        text = path.read_text(encoding="utf-8")
        cut = ctx.rng.randrange(len(text) // 4, len(text))
        path.write_text(text[:cut] + "\nbackbone_conf: {d_model: [16\n", encoding="utf-8")
    elif kind == "non_utf8":
        raw = path.read_bytes()
        pos = raw.index(b"\nbackbone:")
        path.write_bytes(raw[:pos] + b"\n# \xff\xfe" + raw[pos:])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not_mapping":
        path.write_text(yaml.safe_dump(ctx.rng.choice([[1, 2], "config", 3])), encoding="utf-8")
    else:
        if kind == "no_token_list":
            key = "token_list"
            del config["token_list"]
        elif kind == "bad_token_list":
            key = "token_list"
            tokens = config["token_list"]
            tokens.remove(ctx.rng.choice([t for t in tokens if t.startswith("<|") and not t.startswith("<|audio")]))
        elif kind == "bad_backbone_conf":
            key = ctx.rng.choice(["d_model", "n_layer", "n_head"])
            config["backbone_conf"][key] = ctx.rng.choice([0, -2, "big", 3.5])
        elif kind == "unknown_backbone":
            key = "backbone"
            config["backbone"] = ctx.rng.choice(["transformr", "gpt5", ""])
        else:
            raise ValueError(kind)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path, [(str(path), loc(key=key) if key else None)]


MODEL_FAULTS = STATE_FAULTS + ("tied_rows_differ",)


def model_fault(ctx: Ctx, kind: str) -> Tuple[Path, List[Named]]:
    path = ctx.copy("model_file")
    if kind == "tied_rows_differ":
        state = torch.load(path, map_location="cpu", weights_only=True)
        head = state["backbone.lm_head.weight"].clone()
        head[ctx.rng.randrange(head.shape[0])] += 1.0
        state["backbone.lm_head.weight"] = head
        torch.save(state, path)
        return path, [(str(path), loc(key="backbone.lm_head.weight") + "|" + loc(key="backbone.embed.weight"))]
    key = state_fault(ctx, path, kind)
    return path, [(str(path), loc(key=key) if key else None)]


for _kind in MODEL_FAULTS:
    @family("load", f"model.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        path, named = model_fault(ctx, kind)
        return case("load", f"model.{kind}", load_model(ctx.fx.train_config, path), named, never_clean)

for _kind in CONFIG_FAULTS:
    @family("load", f"config.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        path, named = config_fault(ctx, kind)
        return case("load", f"config.{kind}", load_model(path, ctx.fx.model_file), named, never_clean)

for _kind in ("cut", "crc", "nan", "shape", "tied_rows_differ"):
    @family("ttt_inference", f"model.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        path, named = model_fault(ctx, kind)
        call, keys = run_inference(ctx, [f"{ctx.fx.codes},speech_codes,text_int"], "asr",
                                   model=["--train_config", ctx.fx.train_config, "--model_file", path])
        return case("ttt_inference", f"model.{kind}", call, named, absent(keys, lambda k: True))

for _kind in ("not_yaml", "non_utf8", "no_token_list", "bad_backbone_conf"):
    @family("ttt_inference", f"config.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        path, named = config_fault(ctx, kind)
        call, keys = run_inference(ctx, [f"{ctx.fx.codes},speech_codes,text_int"], "asr",
                                   model=["--train_config", path, "--model_file", ctx.fx.model_file])
        return case("ttt_inference", f"config.{kind}", call, named, absent(keys, lambda k: True))


# ------------------------------------------------------------------------------ packed models
ZIP_FAULTS = ("cut", "random", "empty", "crc", "no_meta", "meta_lacks_model", "meta_names_missing_member",
              "member_model_nan", "member_model_cut", "member_config_not_yaml")


def rewrite_zip(src: Path, dst: Path, edit: Callable[[str, bytes], Optional[bytes]]) -> None:
    """Copy zip ``src`` to ``dst`` with every member's bytes passed through ``edit(name, data)``
    (None drops the member)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info, data)


def zip_fault(ctx: Ctx, kind: str) -> Tuple[Path, List[Named]]:
    path = ctx.work / "model.zip"
    shutil.copyfile(ctx.fx.packed, path)
    member = None
    if kind in mut.WHOLE_FILE_FAULTS:
        mut.whole_file_fault(path, ctx.rng, kind)
    elif kind == "crc":
        member = mut.flip_zip_member(path, ctx.rng, suffix=ctx.rng.choice(["model.pth", "codebook.pt", "bpe.model"]))
    else:
        state_file = ctx.work / "member.pth"

        def edit(name: str, data: bytes) -> Optional[bytes]:
            if kind == "no_meta" and name == "meta.yaml":
                return None
            if kind == "meta_lacks_model" and name == "meta.yaml":
                meta = yaml.safe_load(data)
                del meta["files"]["ttt_model_file"]
                return yaml.safe_dump(meta).encode()
            if kind == "meta_names_missing_member" and name == "ttt/model.pth":
                return None
            if kind in ("member_model_nan", "member_model_cut") and name == "ttt/model.pth":
                state_file.write_bytes(data)
                state_fault(ctx, state_file, "nan" if kind == "member_model_nan" else "cut")
                return state_file.read_bytes()
            if kind == "member_config_not_yaml" and name == "ttt/config.yaml":
                return data[: len(data) // 2] + b"\nbackbone_conf: {d_model: [16\n"
            return data
        member = {"no_meta": "meta.yaml", "meta_lacks_model": "ttt_model_file"}.get(kind, "ttt/model.pth")
        if kind == "member_config_not_yaml":
            member = "ttt/config.yaml"
        original = ctx.work / "original.zip"
        path.rename(original)
        rewrite_zip(original, path, edit)
    named = [(str(path), None)] + ([(member, None)] if member else [])
    return path, named


for _kind in ZIP_FAULTS:
    @family("from_pretrained", f"zip.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        path, named = zip_fault(ctx, kind)
        return case("from_pretrained", f"zip.{kind}", load_pretrained(path, ctx.work / "cache"), named, never_clean)


# ------------------------------------------------------------------------------ pack
for _kind in ("cut", "random", "nan", "missing_key", "missing"):
    @family("pack", f"model.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        if kind == "missing":
            path = ctx.work / "no_such_model.pth"
            named = [(str(path), None)]
        else:
            path, named = model_fault(ctx, kind)
        call, clean = run_pack(ctx, ctx.fx.train_config, path)
        return case("pack", f"model.{kind}", call, named, clean)

for _kind in ("not_yaml", "non_utf8", "not_mapping", "empty", "no_token_list"):
    @family("pack", f"config.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        path, named = config_fault(ctx, kind)
        call, clean = run_pack(ctx, path, ctx.fx.model_file)
        return case("pack", f"config.{kind}", call, named, clean)

for _kind in ("yaml.missing", "yaml.not_yaml", "codebook.cut", "codebook.nan"):
    @family("pack", f"tokenizer.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        d, named = tokenizer_fault(ctx, kind)
        call, clean = run_pack(ctx, ctx.fx.train_config, ctx.fx.model_file, speech_tokenizer_dir=d)
        return case("pack", f"tokenizer.{kind}", call, named, clean)

for _kind in BPEMODEL_FAULTS:
    @family("pack", f"bpemodel.{_kind}")
    def _(ctx: Ctx, kind=_kind) -> Case:
        path, named = bpemodel_fault(ctx, kind)
        call, clean = run_pack(ctx, ctx.fx.train_config, ctx.fx.model_file, bpemodel=path)
        return case("pack", f"bpemodel.{kind}", call, named, clean)
