"""Kaldi-style data directories: fix, validate, copy and combine.

A data directory holds table files sorted by key in C byte order: ``utt2spk`` and
``spk2utt`` (required), ``text``, ``wav.scp`` (keyed by recording when ``segments``
exists, else by utterance), ``segments`` (``utt rec start end``), ``feats.scp``,
``utt2dur``, ``utt2num_samples``, ``utt2lang``, ``spk2gender``, ``cmvn.scp``,
``reco2file_and_channel``.

Command line: ``python -m espnet2_ttt.utils.data_dir <tool>.sh [args]``; the files
``egs/ttt_bilingual/utils/<tool>.sh`` are thin wrappers around it.
"""

import argparse
import dataclasses
import os
import shlex
import sys
import unicodedata
from typing import Dict, List, Optional, Sequence, Set, Tuple

from espnet2_ttt.utils.cli import attach_option_values, dispatch
from espnet2_ttt.utils.scp import utt2spk_to_spk2utt
from espnet2_ttt.utils.table import (
    TableError,
    c_order,
    line_key,
    read_lines,
    sort_lines,
    split_key,
    write_lines,
)

# keyed by utterance id (wav.scp too, when there is no segments file)
UTT_FILES = ("utt2spk", "text", "segments", "feats.scp", "utt2dur", "utt2num_samples",
             "utt2lang")
SPK_FILES = ("spk2gender", "cmvn.scp")
RECORDING_FILES = ("reco2file_and_channel",)
KNOWN_FILES = UTT_FILES + SPK_FILES + RECORDING_FILES + ("wav.scp", "spk2utt")

Files = Dict[str, List[str]]  # file name -> lines


def load_data_dir(path: str, extra_files: Sequence[str] = ()) -> Files:
    """Read the known files (and ``extra_files``) that exist in ``path``."""
    if not os.path.isdir(path):
        raise TableError(f"no such directory: {path}")
    return {
        name: read_lines(os.path.join(path, name))
        for name in dict.fromkeys(KNOWN_FILES + tuple(extra_files))
        if os.path.isfile(os.path.join(path, name))
    }


def save_data_dir(path: str, files: Files) -> None:
    """Write ``files`` into ``path`` atomically; delete known files not in ``files``."""
    os.makedirs(path, exist_ok=True)
    for name, lines in files.items():
        write_lines(os.path.join(path, name), lines)
    for name in KNOWN_FILES:
        if name not in files and os.path.isfile(os.path.join(path, name)):
            os.remove(os.path.join(path, name))


def make_spk2utt(utt2spk_lines: Sequence[str]) -> List[str]:
    """spk2utt lines sorted by speaker, utterances in utt2spk order."""
    return sort_lines(utt2spk_to_spk2utt(utt2spk_lines))


def _utt_keyed(files: Files) -> List[str]:
    """Names of the files in ``files`` that are keyed by utterance id."""
    names = [name for name in UTT_FILES if name in files]
    if "segments" not in files and "wav.scp" in files:
        names.append("wav.scp")
    return names


def _recording_keyed(files: Files) -> List[str]:
    """Names of the files in ``files`` that are keyed by recording id."""
    names = [name for name in RECORDING_FILES if name in files]
    if "segments" in files and "wav.scp" in files:
        names.append("wav.scp")
    return names


def _segment_recording(line: str, where: str) -> str:
    """The recording id (second field) of a segments line."""
    fields = line.split()
    if len(fields) != 4:
        raise TableError(f"{where}: line should be '<utt> <recording> <start> <end>': '{line}'")
    return fields[1]


# --------------------------------------------------------------------------- fix


def fix_data_dir(
    path: str, utt_extra_files: Sequence[str] = (), spk_extra_files: Sequence[str] = ()
) -> List[str]:
    """Sort, de-duplicate and intersect the files of ``path`` in place.

    Keeps the utterances present in every utterance-keyed file, the speakers and
    recordings they use, regenerates spk2utt and backs the old files up in
    ``path/.backup``. Returns the messages to print; raises TableError (and changes
    nothing) when utt2spk is missing or no utterance would remain.
    """
    original = load_data_dir(path, tuple(utt_extra_files) + tuple(spk_extra_files))
    if "utt2spk" not in original:
        raise TableError(f"{path}/utt2spk does not exist")
    tables = {
        name: _unique_sorted(lines) for name, lines in original.items() if name != "spk2utt"
    }
    for line in tables["utt2spk"].values():
        if len(line.split()) != 2:
            raise TableError(f"{path}/utt2spk: line should be '<utt> <spk>': '{line}'")
    if "segments" in tables and "wav.scp" in tables:
        recordings = set(tables["wav.scp"])
        tables["segments"] = {
            utt: line for utt, line in tables["segments"].items()
            if _segment_recording(line, f"{path}/segments") in recordings
        }
    utt_names = _utt_keyed(tables) + [name for name in utt_extra_files if name in tables]
    utts = set.intersection(*(set(tables[name]) for name in utt_names))
    if not utts:
        raise TableError(f"no utterances remain in {path} (no id is in all of "
                         f"{', '.join(utt_names)})")
    for name in utt_names:
        tables[name] = _keep(tables[name], utts)
    speakers = {split_key(line)[1] for line in tables["utt2spk"].values()}
    for name in SPK_FILES + tuple(spk_extra_files):
        if name in tables:
            tables[name] = _keep(tables[name], speakers)
    if "segments" in tables:
        recordings = {_segment_recording(line, f"{path}/segments")
                      for line in tables["segments"].values()}
    else:
        recordings = utts
    for name in _recording_keyed(tables):
        tables[name] = _keep(tables[name], recordings)

    fixed = {name: list(table.values()) for name, table in tables.items()}
    fixed["spk2utt"] = make_spk2utt(fixed["utt2spk"])
    save_data_dir(os.path.join(path, ".backup"), original)
    save_data_dir(path, fixed)
    messages = [
        f"{path}/{name}: removed {len(original[name]) - len(lines)} of "
        f"{len(original[name])} lines"
        for name, lines in fixed.items()
        if name in original and len(lines) < len(original[name])
    ]
    total = len(_unique_sorted(original["utt2spk"]))
    messages.append(f"kept {len(fixed['utt2spk'])} utterances out of {total}")
    return messages


def _unique_sorted(lines: Sequence[str]) -> Dict[str, str]:
    """``{key: line}`` sorted by key, without blank lines; the first duplicate wins."""
    table: Dict[str, str] = {}
    for line in lines:
        key = line_key(line)
        if key and key not in table:
            table[key] = line
    return dict(sorted(table.items(), key=lambda item: c_order(item[0])))


def _keep(table: Dict[str, str], keys: Set[str]) -> Dict[str, str]:
    return {key: line for key, line in table.items() if key in keys}


# ---------------------------------------------------------------------- validate


def _flag(help_text: str):
    return dataclasses.field(default=False, metadata={"help": help_text})


@dataclasses.dataclass(frozen=True)
class ValidationOptions:
    """Which optional checks validate_data_dir skips (Kaldi option names)."""

    no_feats: bool = _flag("feats.scp is not required")
    no_text: bool = _flag("text is not required")
    no_wav: bool = _flag("do not check wav.scp and segments")
    non_print: bool = _flag("allow non-printable characters in text")
    no_spk_sort: bool = _flag("utt2spk need not also be sorted by speaker")


def validate_data_dir(path: str, options: ValidationOptions = ValidationOptions()) -> None:
    """Raise TableError describing the first problem of data directory ``path``."""
    validate_files(load_data_dir(path), path, options)


def validate_files(files: Files, where: str, options: ValidationOptions) -> None:
    """Validate the in-memory data directory ``files``; ``where`` prefixes messages."""
    tables = _Tables(files, where)
    utt2spk = tables.get("utt2spk", fields=2, required="")
    utts = list(utt2spk)
    speakers = {fields[1] for fields in utt2spk.values()}
    _check_spk2utt(tables.get("spk2utt", fields=-2, required=""), utt2spk, tables.path("spk2utt"))
    if not options.no_spk_sort:
        _check_speaker_order(utt2spk, tables.path("utt2spk"))

    if "text" in files or not options.no_text:
        text = tables.get("text", fields=-1, required=" (or pass --no-text)")
        _check_same_ids(text, utts, tables.path("text"))
        if not options.non_print:
            _check_printable(files["text"], tables.path("text"))
    recordings = set(utts)
    if not options.no_wav:
        recordings = _check_audio(tables, utts)
    if "feats.scp" in files or not options.no_feats:
        feats = tables.get("feats.scp", fields=2, required=" (or pass --no-feats)")
        _check_same_ids(feats, utts, tables.path("feats.scp"))

    for name, value_type in (("utt2dur", float), ("utt2num_samples", int)):
        if name in files:
            table = tables.get(name, fields=2)
            _check_same_ids(table, utts, tables.path(name))
            _check_positive(table, value_type, tables.path(name))
    if "utt2lang" in files:
        _check_same_ids(tables.get("utt2lang", fields=2), utts, tables.path("utt2lang"))
    if "spk2gender" in files:
        spk2gender = tables.get("spk2gender", fields=2)
        _check_same_ids(spk2gender, sorted(speakers, key=c_order), tables.path("spk2gender"),
                        what="speaker")
        for spk, fields in spk2gender.items():
            if fields[1] not in ("m", "f"):
                raise TableError(f"{tables.path('spk2gender')}: gender of speaker '{spk}' "
                                 f"must be m or f, got '{fields[1]}'")
    if "reco2file_and_channel" in files:
        _check_same_ids(tables.get("reco2file_and_channel", fields=3),
                        sorted(recordings, key=c_order),
                        tables.path("reco2file_and_channel"), what="recording")


class _Tables:
    """Parses files of one data directory on demand, checking their basic format."""

    def __init__(self, files: Files, where: str):
        self.files = files
        self.where = where

    def path(self, name: str) -> str:
        return f"{self.where}/{name}"

    def get(self, name: str, fields: int, required: Optional[str] = None
            ) -> Dict[str, List[str]]:
        """``{key: fields}`` of file ``name``: sorted, unique keys, non-empty lines.

        ``fields`` > 0 is the exact number of fields per line, < 0 minus the minimum.
        ``required`` (the hint to append) makes a missing file an error.
        """
        path = self.path(name)
        if name not in self.files:
            if required is None:
                return {}
            raise TableError(f"{path} does not exist{required}")
        table: Dict[str, List[str]] = {}
        previous = None
        for number, line in enumerate(self.files[name], start=1):
            parts = line.split()
            if not line_key(line):
                raise TableError(f"{path}: line {number} is empty or starts with a blank")
            if (fields > 0 and len(parts) != fields) or len(parts) < -fields:
                expected = f"{fields}" if fields > 0 else f"at least {-fields}"
                raise TableError(f"{path}: line {number} should have {expected} fields: '{line}'")
            key = parts[0]
            if key == previous:
                raise TableError(f"{path}: duplicate id '{key}' on line {number}")
            if previous is not None and c_order(key) < c_order(previous):
                raise TableError(f"{path}: not sorted: '{key}' on line {number} comes after "
                                 f"'{previous}' (sort with LC_ALL=C sort -k1,1)")
            table[key] = parts
            previous = key
        return table


def _check_spk2utt(spk2utt: Dict[str, List[str]], utt2spk: Dict[str, List[str]],
                   path: str) -> None:
    """spk2utt must list exactly the utterances of utt2spk under the same speakers."""
    speaker_of: Dict[str, str] = {}
    for spk, fields in spk2utt.items():
        for utt in fields[1:]:
            if utt in speaker_of:
                raise TableError(f"{path}: utterance '{utt}' is listed twice")
            speaker_of[utt] = spk
    for utt, fields in utt2spk.items():
        if utt not in speaker_of:
            raise TableError(f"{path}: utterance '{utt}' of utt2spk is missing")
        if speaker_of[utt] != fields[1]:
            raise TableError(f"{path}: utterance '{utt}' is under speaker '{speaker_of[utt]}' "
                             f"but utt2spk says '{fields[1]}'")
    for utt, spk in speaker_of.items():
        if utt not in utt2spk:
            raise TableError(f"{path}: utterance '{utt}' (speaker '{spk}') is not in utt2spk")


def _check_speaker_order(utt2spk: Dict[str, List[str]], path: str) -> None:
    """Sorting utt2spk by speaker must not change its order."""
    previous = None
    for utt, (_, spk) in utt2spk.items():
        if previous is not None and c_order(spk) < c_order(previous):
            raise TableError(
                f"{path}: not sorted by speaker: utterance '{utt}' of speaker '{spk}' comes "
                f"after speaker '{previous}'; utterance ids should start with the speaker "
                f"id (or pass --no-spk-sort)"
            )
        previous = spk


def _check_same_ids(table: Dict[str, List[str]], expected: Sequence[str], path: str,
                    what: str = "utterance") -> None:
    """``table`` must have exactly the ids ``expected`` (utt2spk's, by default)."""
    source = {"utterance": "utt2spk", "speaker": "spk2utt", "recording": "wav.scp"}[what]
    missing = [key for key in expected if key not in table]
    if missing:
        raise TableError(f"{path}: {what} '{missing[0]}' of {source} is missing "
                         f"({len(missing)} missing in all)")
    expected_set = set(expected)
    extra = [key for key in table if key not in expected_set]
    if extra:
        raise TableError(f"{path}: {what} '{extra[0]}' is not in {source} "
                         f"({len(extra)} such ids in all)")


def _check_printable(lines: Sequence[str], path: str) -> None:
    """Transcripts must be valid UTF-8 without control or line-separator characters."""
    for number, line in enumerate(lines, start=1):
        utt, transcript = split_key(line)
        for char in transcript:
            if "\udc80" <= char <= "\udcff":
                raise TableError(f"{path}: utterance '{utt}' (line {number}) is not valid "
                                 f"UTF-8 (or pass --non-print)")
            if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
                raise TableError(f"{path}: utterance '{utt}' (line {number}) contains the "
                                 f"non-printable character U+{ord(char):04X} "
                                 f"(or pass --non-print)")


def _check_audio(tables: _Tables, utts: Sequence[str]) -> Set[str]:
    """Check wav.scp / segments against the utterances; return the recording ids."""
    segments = tables.get("segments", fields=4)
    if not segments:
        wav = tables.get("wav.scp", fields=-2)
        if wav:
            _check_same_ids(wav, utts, tables.path("wav.scp"))
        return set(utts)
    wav = tables.get("wav.scp", fields=-2, required=" (needed by segments)")
    path = tables.path("segments")
    _check_same_ids(segments, utts, path)
    for utt, (_, recording, start, end) in segments.items():
        if recording not in wav:
            raise TableError(f"{path}: recording '{recording}' of utterance '{utt}' is not in "
                             f"wav.scp")
        try:
            start_s, end_s = float(start), float(end)
        except ValueError:
            raise TableError(f"{path}: utterance '{utt}': start and end must be numbers, "
                             f"got '{start}' '{end}'") from None
        if start_s < 0 or (end_s <= start_s and end_s != -1):
            raise TableError(f"{path}: utterance '{utt}': bad segment times {start} {end} "
                             f"(need 0 <= start < end, or end = -1)")
    return set(wav)


def _check_positive(table: Dict[str, List[str]], value_type: type, path: str) -> None:
    for key, fields in table.items():
        try:
            value = value_type(fields[1])
        except ValueError:
            value = 0
        if not value > 0:
            raise TableError(f"{path}: value of '{key}' must be a positive "
                             f"{value_type.__name__}, got '{fields[1]}'")


# --------------------------------------------------------------- copy / combine


def copy_data_dir(
    src: str, dest: str, utt_prefix: str = "", spk_prefix: str = "", utt_suffix: str = "",
    spk_suffix: str = "", options: ValidationOptions = ValidationOptions(),
) -> None:
    """Copy data directory ``src`` to ``dest``, optionally renaming utterances/speakers.

    The renamed copy is validated (feats.scp and text only if ``src`` has them) before
    anything is written; on a problem TableError is raised and ``dest`` is untouched.
    """
    if _same_dir(src, dest):
        raise TableError(f"source and destination are the same directory: {src}")
    files = load_data_dir(src)
    if "utt2spk" not in files:
        raise TableError(f"{src}/utt2spk does not exist")

    def rename_utt(utt: str) -> str:
        return utt_prefix + utt + utt_suffix

    def rename_spk(spk: str) -> str:
        return spk_prefix + spk + spk_suffix

    utt_keyed = set(_utt_keyed(files))
    if "segments" not in files:  # then recording ids are utterance ids
        utt_keyed.update(_recording_keyed(files))
    copied = {}
    for name, lines in files.items():
        if name == "utt2spk":
            copied[name] = [f"{rename_utt(utt)} {rename_spk(spk)}"
                            for utt, spk in map(split_key, lines)]
        elif name in utt_keyed:
            copied[name] = _rename_keys(lines, rename_utt)
        elif name in SPK_FILES:
            copied[name] = _rename_keys(lines, rename_spk)
        elif name != "spk2utt":
            copied[name] = list(lines)
    copied = {name: sort_lines(lines) for name, lines in copied.items()}
    copied["spk2utt"] = make_spk2utt(copied["utt2spk"])
    options = dataclasses.replace(
        options,
        no_feats=options.no_feats or "feats.scp" not in files,
        no_text=options.no_text or "text" not in files,
    )
    validate_files(copied, dest, options)
    save_data_dir(dest, copied)


def _same_dir(a: str, b: str) -> bool:
    return os.path.isdir(a) and os.path.isdir(b) and os.path.samefile(a, b)


def _rename_keys(lines: Sequence[str], rename) -> List[str]:
    return [" ".join(filter(None, (rename(key), value))) for key, value in map(split_key, lines)]


def combine_data(
    dest: str, sources: Sequence[str], extra_files: Sequence[str] = (), skip_fix: bool = False
) -> List[str]:
    """Concatenate the data directories ``sources`` into ``dest``; return messages.

    A file is combined only if every source has it (else it is skipped with a
    message; an incomplete ``segments`` is an error). An id present in two sources
    must have identical lines. Then spk2utt is regenerated and, unless ``skip_fix``,
    fix_data_dir runs on ``dest`` (``extra_files`` are keyed by utterance).
    """
    if any(_same_dir(src, dest) for src in sources):
        raise TableError(f"destination {dest} is also a source")
    loaded = [(src, load_data_dir(src, extra_files)) for src in sources]
    for src, files in loaded:
        if "utt2spk" not in files:
            raise TableError(f"{src}/utt2spk does not exist")
    messages = []
    combined: Files = {}
    for name in dict.fromkeys(KNOWN_FILES + tuple(extra_files)):
        having = [(src, files[name]) for src, files in loaded if name in files]
        if name == "spk2utt" or not having:
            continue
        if len(having) < len(loaded):
            lacking = next(src for src, files in loaded if name not in files)
            if name == "segments":
                raise TableError(f"{lacking}/{name} does not exist but other sources have one")
            messages.append(f"not combining {name}: {lacking}/{name} does not exist")
            continue
        combined[name] = _merge(name, having)
    combined["spk2utt"] = make_spk2utt(combined["utt2spk"])
    save_data_dir(dest, combined)
    messages.append(f"combined {len(combined['utt2spk'])} utterances from {len(sources)} "
                    f"directories into {dest}")
    if not skip_fix:
        messages.extend(fix_data_dir(dest, utt_extra_files=extra_files))
    return messages


def _merge(name: str, sources: Sequence[Tuple[str, List[str]]]) -> List[str]:
    """Sorted union of the lines of file ``name`` of several directories."""
    merged: Dict[str, Tuple[str, str]] = {}  # key -> (line, source dir)
    for src, lines in sources:
        for line in lines:
            key = line_key(line)
            if key in merged and merged[key][0] != line:
                raise TableError(f"id '{key}' has different lines in {merged[key][1]}/{name} "
                                 f"and {src}/{name}")
            merged.setdefault(key, (line, src))
    return sort_lines(line for line, _ in merged.values())


# -------------------------------------------------------------------------- CLI


def _add_validation_flags(parser: argparse.ArgumentParser) -> None:
    for field in dataclasses.fields(ValidationOptions):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, action="store_true", dest=field.name,
                            help=field.metadata["help"])


def _validation_options(args: argparse.Namespace) -> ValidationOptions:
    return ValidationOptions(**{f.name: getattr(args, f.name)
                                for f in dataclasses.fields(ValidationOptions)})


def _bool(value: str) -> bool:
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got '{value}'")
    return value == "true"


def _print(tool: str, messages: Sequence[str]) -> None:
    for message in messages:
        print(f"{tool}: {message}")


def fix_data_dir_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="fix_data_dir.sh",
        description="Sort the files of a data dir, keep the utterances present in all of "
        "them, regenerate spk2utt (old files go to DIR/.backup).",
    )
    parser.add_argument("--utt-extra-files", "--utt_extra_files", default="",
                        help="space-separated extra utterance-keyed files")
    parser.add_argument("--spk-extra-files", "--spk_extra_files", default="",
                        help="space-separated extra speaker-keyed files")
    parser.add_argument("dir")
    args = parser.parse_args(argv)
    _print("fix_data_dir.sh", fix_data_dir(args.dir, args.utt_extra_files.split(),
                                           args.spk_extra_files.split()))


def validate_data_dir_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="validate_data_dir.sh",
        description="Check a data dir; print the first problem and exit 1 if there is one.",
    )
    _add_validation_flags(parser)
    parser.add_argument("dir")
    args = parser.parse_args(argv)
    validate_data_dir(args.dir, _validation_options(args))
    print(f"validate_data_dir.sh: Successfully validated data-directory {args.dir}")


def copy_data_dir_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="copy_data_dir.sh",
        description="Copy a data dir, optionally prefixing/suffixing utterance and speaker "
        "ids; the copy is validated.",
    )
    value_options = []
    for option in ("utt-prefix", "spk-prefix", "utt-suffix", "spk-suffix", "validate-opts"):
        spellings = (f"--{option}", f"--{option.replace('-', '_')}")
        parser.add_argument(*spellings, default="")
        value_options.extend(spellings)
    parser.add_argument("src")
    parser.add_argument("dest")
    args = parser.parse_args(attach_option_values(argv, value_options))
    validate_parser = argparse.ArgumentParser(prog="copy_data_dir.sh --validate-opts")
    _add_validation_flags(validate_parser)
    options = _validation_options(validate_parser.parse_args(shlex.split(args.validate_opts)))
    copy_data_dir(args.src, args.dest, args.utt_prefix, args.spk_prefix, args.utt_suffix,
                  args.spk_suffix, options)
    print(f"copy_data_dir.sh: copied data from {args.src} to {args.dest}")


def combine_data_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="combine_data.sh",
        description="Combine data dirs into DEST (sorted, spk2utt regenerated, then "
        "fix_data_dir unless --skip-fix true).",
    )
    parser.add_argument("--extra-files", "--extra_files", default="",
                        help="space-separated extra utterance-keyed files to combine")
    parser.add_argument("--skip-fix", "--skip_fix", type=_bool, default=False,
                        metavar="true|false")
    parser.add_argument("dest")
    parser.add_argument("sources", nargs="+", metavar="src")
    args = parser.parse_args(argv)
    _print("combine_data.sh", combine_data(args.dest, args.sources, args.extra_files.split(),
                                           args.skip_fix))


TOOLS = {
    "fix_data_dir.sh": fix_data_dir_main,
    "validate_data_dir.sh": validate_data_dir_main,
    "copy_data_dir.sh": copy_data_dir_main,
    "combine_data.sh": combine_data_main,
}

if __name__ == "__main__":
    sys.exit(dispatch(TOOLS, "espnet2_ttt.utils.data_dir"))
