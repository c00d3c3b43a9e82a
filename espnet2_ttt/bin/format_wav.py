"""Format the audio of a Kaldi data dir as mono 16-bit WAV at one sample rate, dropping bad utterances.

    python -m espnet2_ttt.bin.format_wav --data_dir data/train --output_dir dump/raw/train \\
        --fs 16000 --min_duration 0.1 --max_duration 20 [--nj 2]

For each utterance of ``wav.scp`` (plain file paths; Kaldi ``cmd |`` pipes are an error):

* a file that already is a ``--fs`` Hz mono PCM_16 WAV is referenced in place: its absolute
  path goes into the output wav.scp and nothing is copied;
* any other file soundfile reads (flac, other rates, several channels, float WAV ...) is
  down-mixed to mono by averaging its channels, resampled with
  ``torchaudio.functional.resample``, clipped to [-1, 1] and written to
  ``<output_dir>/wav/<utt>.wav`` (16-bit PCM).

Dropped, with a logged count and the first ids per reason (never silently): missing,
unreadable or empty files, zero-length audio, truncated files (a WAV data chunk longer than
the file) and NaN / inf samples (``espnet2_ttt.speech.io``), source durations (frames /
source rate) outside [min_duration, max_duration], empty transcripts.  Input tables that are
not UTF-8 are an error naming file and line.

Output dir: ``wav.scp`` (absolute paths), ``utt2dur`` (seconds), ``utt2num_samples``,
``text``, ``utt2spk``, ``utt2lang`` (those the input has) filtered to the kept utterances,
``spk2utt`` regenerated, and ``dialogues.jsonl`` without the entries whose question_utt or
answer_utt was dropped. It is written into a temporary sibling dir ``.<name>.tmp<pid>`` and
renamed into place (a ``logs/`` dir already in ``output_dir``, such as run.pl's, is kept), so
a failed run leaves no partial output; the temporaries of a killed run are removed by the
next one. The stamp ``.format_wav.json`` holds the options and a hash of the input files: a
rerun with the same ones does nothing.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import soundfile

from espnet2_ttt.utils.data_dir import (
    Files,
    ValidationOptions,
    load_data_dir,
    make_spk2utt,
    save_data_dir,
    validate_files,
)
from espnet2_ttt.speech.io import AudioError, audio_info, load_audio, read_wav_scp, resample
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.utils.table import check_utf8, line_key, remove_stale_temps, split_key, temp_sibling

STAMP = ".format_wav.json"
DIALOGUES = "dialogues.jsonl"
FILTERED_FILES = ("text", "utt2spk", "utt2lang")  # copied, keeping the kept utterances
KEPT_SUBDIRS = ("logs",)  # survive the replacement of output_dir
SHOW_IDS = 5  # ids named per drop reason
log = logging.getLogger("format_wav")


class Job(NamedTuple):
    """Format one utterance: read ``source``, write ``tmp_dir/<utt>.wav`` if it needs converting."""

    utt: str
    source: str
    tmp_dir: str  # the wav/ dir being written
    final_dir: str  # where tmp_dir will be after the rename
    fs: int
    min_duration: float
    max_duration: float


class Result(NamedTuple):
    utt: str
    path: Optional[str]  # final audio path; None when dropped
    num_samples: int
    dropped: Optional[str]  # drop reason


def format_utterance(job: Job) -> Result:
    """Reference, convert or drop one utterance (see the module docstring)."""
    def drop(reason: str) -> Result:
        return Result(job.utt, None, 0, reason)

    try:
        info = audio_info(job.source)
        duration = info.frames / info.samplerate
        if duration < job.min_duration:
            return drop(f"shorter than {job.min_duration} s")
        if duration > job.max_duration:
            return drop(f"longer than {job.max_duration} s")
        if (info.format, info.subtype, info.channels, info.samplerate) == ("WAV", "PCM_16", 1, job.fs):
            return Result(job.utt, os.path.abspath(job.source), info.frames, None)
        wav, sr = load_audio(job.source)
    except AudioError as e:
        return drop(e.reason)
    wav = np.clip(resample(wav, sr, job.fs), -1.0, 1.0)
    soundfile.write(os.path.join(job.tmp_dir, f"{job.utt}.wav"), wav, job.fs, subtype="PCM_16")
    return Result(job.utt, os.path.join(job.final_dir, f"{job.utt}.wav"), len(wav), None)


def _filter_dialogues(lines: Sequence[str], kept: set, path: str) -> List[str]:
    """The dialogues.jsonl lines whose question_utt/answer_utt (when not null) were kept."""
    out = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            utts = [record["question_utt"], record["answer_utt"]]
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}:{number}: not a dialogue record with question_utt and "
                             f"answer_utt: {e}") from e
        if all(utt is None or utt in kept for utt in utts):
            out.append(line)
    return out


def _log_drops(results: Sequence[Result], data_dir: str) -> None:
    by_reason: Dict[str, List[str]] = {}
    for r in results:
        if r.dropped:
            by_reason.setdefault(r.dropped, []).append(r.utt)
    for reason, utts in by_reason.items():
        more = " ..." if len(utts) > SHOW_IDS else ""
        log.warning(f"{data_dir}: dropped {len(utts)} utterances ({reason}): "
                    f"{' '.join(utts[:SHOW_IDS])}{more}")


def _run(jobs: Sequence[Job], nj: int) -> List[Result]:
    """``format_utterance`` of every job, in order, with ``nj`` processes."""
    if nj == 1 or len(jobs) < 2:
        return [format_utterance(job) for job in jobs]
    with multiprocessing.Pool(min(nj, len(jobs))) as pool:
        return pool.map(format_utterance, jobs, chunksize=8)


def _output_files(files: Files, kept: Sequence[Result], fs: int) -> Files:
    """The output tables: input FILTERED_FILES restricted to ``kept``, plus the audio tables."""
    kept_ids = {r.utt for r in kept}
    out = {name: [line for line in files[name] if line_key(line) in kept_ids]
           for name in FILTERED_FILES if name in files}
    out["spk2utt"] = make_spk2utt(out["utt2spk"])
    out["wav.scp"] = [f"{r.utt} {r.path}" for r in kept]
    out["utt2num_samples"] = [f"{r.utt} {r.num_samples}" for r in kept]
    out["utt2dur"] = [f"{r.utt} {r.num_samples / fs:.4f}" for r in kept]
    return out


def _prepare_output(output_dir: Path, stamp: dict) -> bool:
    """False if ``output_dir`` is up to date; raise if it is not ours to replace."""
    if not output_dir.exists():
        return True
    stamp_file = output_dir / STAMP
    if stamp_file.is_file():
        return json.loads(stamp_file.read_text(encoding="utf-8")) != stamp
    foreign = sorted(p.name for p in output_dir.iterdir() if p.name not in KEPT_SUBDIRS)
    if foreign:
        raise InputError(f"{output_dir} exists and holds {foreign[:3]} but no {STAMP}: "
                         f"not written by format_wav; remove it or choose another --output_dir")
    return True


def _publish(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``, replacing it but keeping its KEPT_SUBDIRS."""
    if not final.exists():
        tmp.rename(final)
        return
    for name in KEPT_SUBDIRS:
        if (final / name).exists():
            (final / name).rename(tmp / name)
    old = temp_sibling(final, "old")
    final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old)


def format_wav(data_dir: str, output_dir: str, fs: int = 16000, min_duration: float = 0.1,
               max_duration: float = 20.0, nj: int = 1) -> None:
    """Write the formatted copy of ``data_dir`` into ``output_dir`` (see the module docstring)."""
    if fs <= 0 or not 0 <= min_duration < max_duration or nj < 1:
        raise InputError(f"need fs > 0, 0 <= min_duration < max_duration and nj >= 1; got fs={fs} "
                         f"min_duration={min_duration} max_duration={max_duration} nj={nj}")
    final = Path(output_dir).resolve()
    if final == Path(data_dir).resolve():
        raise InputError(f"--output_dir must differ from --data_dir ({data_dir})")
    files = load_data_dir(data_dir, (DIALOGUES,))
    for name, lines in files.items():
        check_utf8(lines, f"{data_dir}/{name}")
    if "wav.scp" not in files or "segments" in files:
        raise InputError(f"{data_dir}: needs a wav.scp and no segments file (segmented "
                         f"recordings are not supported)")
    validate_files(files, data_dir, ValidationOptions(no_feats=True, no_text=True))
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode("utf-8", "surrogateescape"))
    stamp = {"data_dir": str(Path(data_dir).resolve()), "fs": fs, "min_duration": min_duration,
             "max_duration": max_duration, "input_sha256": digest.hexdigest()}
    remove_stale_temps(final.parent, {final.name})
    if not _prepare_output(final, stamp):
        log.info(f"{output_dir} is up to date ({STAMP} matches); skipping")
        return
    entries = read_wav_scp(os.path.join(data_dir, "wav.scp"))
    bad_ids = [utt for utt, _ in entries if "/" in utt]
    if bad_ids:
        raise InputError(f"{data_dir}/wav.scp: utterance ids with '/' cannot name files: {bad_ids[:3]}")
    empty_text = {utt for utt, value in map(split_key, files.get("text", [])) if not value.strip()}

    tmp = temp_sibling(final)
    tmp.mkdir(parents=True)
    try:
        (tmp / "wav").mkdir()
        jobs = [Job(utt, src, str(tmp / "wav"), str(final / "wav"), fs, min_duration, max_duration)
                for utt, src in entries if utt not in empty_text]
        results = _run(jobs, nj) + [Result(utt, None, 0, "empty text") for utt in sorted(empty_text)]
        _log_drops(results, data_dir)
        kept = [r for r in results if not r.dropped]  # in wav.scp (sorted) order
        if not kept:
            raise InputError(f"{data_dir}: all {len(entries)} utterances were dropped")
        out = _output_files(files, kept, fs)
        validate_files(out, output_dir, ValidationOptions(no_feats=True, no_text=True))
        if DIALOGUES in files:
            out[DIALOGUES] = _filter_dialogues(files[DIALOGUES], {r.utt for r in kept},
                                               f"{data_dir}/{DIALOGUES}")
            log.info(f"{DIALOGUES}: kept {len(out[DIALOGUES])} of {len(files[DIALOGUES])} entries")
        save_data_dir(str(tmp), out)
        (tmp / STAMP).write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
        _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    converted = len(os.listdir(final / "wav"))
    log.info(f"{output_dir}: kept {len(kept)} of {len(entries)} utterances "
             f"({converted} converted, {len(kept) - converted} referenced in place)")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="input Kaldi data dir")
    parser.add_argument("--output_dir", required=True, help="formatted data dir to write")
    parser.add_argument("--fs", type=int, default=16000, help="output sample rate (Hz)")
    parser.add_argument("--min_duration", type=float, default=0.1, help="seconds")
    parser.add_argument("--max_duration", type=float, default=20.0, help="seconds")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (format_wav) %(levelname)s: %(message)s")
    format_wav(args.data_dir, args.output_dir, args.fs, args.min_duration, args.max_duration, args.nj)


if __name__ == "__main__":
    run(main, "format_wav")
