"""kill -9 at random points: training resumes to identical parameters, jobs leave nothing half-written.

Every run is the tool's ``main(argv)`` in a fork of the harness (:class:`faults.runner.Forked`:
what ``python -m espnet2_ttt.bin.<tool>`` runs, without the interpreter start), in a job
directory of its own with ``TMPDIR`` inside it so that staging directories are seen; SIGKILL
hits its whole process group, as a job scheduler kills a job.  Kill times come from
``random.Random(seed)``.

Training (``ttt_train``, a 2-layer model, 4 epochs of 80 sequences): an uninterrupted run is the
reference.  Each killed run is killed either at a random time while it trains (uniform between
its first file write and the reference's end, as seen in the reference run) or, once a random
epoch has logged its results, as soon as a file named ``*checkpoint*`` (checkpoint.pth or a
temporary of it) appears or changes: while the trainer saves that epoch (how many of these
kills left a ``.pth`` file incomplete, i.e. hit a write, is reported: ``during_save``).  Then it
is rerun with ``--resume true`` until it ends.  It counts as identical when its last ``<N>epoch.pth`` equals the
reference's tensor by tensor (``torch.equal``).

Jobs (ttt_inference with waveforms, speech_tokenize, format_wav converting audio, pack with a
large extra file): a reference run gives the outputs and the files a finished job directory
holds.  Each killed run is killed at a random time between its first file write and the
reference's end (as seen in the reference run), then:

* partial output: a final output (a file the finished reference job wrote) that exists but
  differs from the reference's (paths of the job directory normalised; for an archive: not a
  complete zip with the reference's members and bytes, ``meta.yaml``'s timestamp aside).
  Other files are temporaries, which a killed job cannot remove: the rerun must;
* the same command is rerun; it must exit 0 with the reference's outputs (rerun_ok), and leave
  no file the reference's job directory does not have (leftovers: temporaries, staging copies
  and half-written files of the killed run that the rerun neither removed nor reused).
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import random
import time
import zipfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import soundfile
import torch

from faults.cases import cli
from faults.fixtures import DECODE, SR, TINY_TRAIN, Fixtures, synth
from faults.runner import Forked

TRAIN_EPOCHS = 4
RUN_LIMIT = 600.0  # seconds any single run may take before it is killed as hung


@dataclasses.dataclass
class Proc:
    """A finished (or killed) run: exit status (negative: killed by that signal), seconds, last output lines."""

    code: int
    seconds: float
    tail: str


def _spawn(argv: Sequence[str], job: Path) -> Forked:
    """Start ``argv`` = [tool, *arguments] as the tool's ``main`` in a fork working in ``job``."""
    (job / "tmp").mkdir(parents=True, exist_ok=True)
    tool, *args = argv
    call, _ = cli(tool, importlib.import_module(f"espnet2_ttt.bin.{tool}").main, args)
    return Forked(call, job, {"TMPDIR": str(job / "tmp")}, job / "run.log")


def _finish(proc: Forked, job: Path) -> Proc:
    if proc.wait(max(1.0, RUN_LIMIT - proc.seconds)) is None:
        proc.kill()
    lines = (job / "run.log").read_bytes().decode("utf-8", "replace").splitlines()
    return Proc(proc.code, proc.seconds, "\n".join(lines[-3:]))


def run_to_end(argv: Sequence[str], job: Path) -> Proc:
    return _finish(_spawn(argv, job), job)


def _files(root: Path) -> Dict[str, float]:
    """{relative path: mtime} of every file and directory under ``root`` (run.log aside)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if rel != "run.log":
                try:
                    out[rel] = path.lstat().st_mtime_ns
                except FileNotFoundError:
                    pass
    return out


def run_watched(argv: Sequence[str], job: Path) -> tuple:
    """Run to the end, noting when the first file under ``job`` is written: (Proc, seconds to it)."""
    before = set(_files(job)) | {"tmp"}
    proc = _spawn(argv, job)
    first = None
    while proc.poll() is None and proc.seconds < RUN_LIMIT:
        if first is None and _files(job).keys() - before:
            first = proc.seconds
        time.sleep(0.005)
    return _finish(proc, job), first


def run_killed_at(argv: Sequence[str], job: Path, at: float) -> Proc:
    """Start ``argv`` and SIGKILL its process group ``at`` seconds later (if still running)."""
    proc = _spawn(argv, job)
    if proc.wait(at) is None:
        proc.kill()
    return _finish(proc, job)


# ------------------------------------------------------------------------------ training
def _train_data(fx: Fixtures, d: Path) -> tuple:
    """80 sequences (the fixture's, repeated under new ids) and their shape file."""
    d.mkdir(parents=True)
    lines = fx.seq.read_text(encoding="utf-8").splitlines()
    seqs = [f"r{r}-{line}" for r in range(8) for line in lines]
    (d / "seq").write_text("".join(s + "\n" for s in sorted(seqs)), encoding="utf-8")
    (d / "seq_shape").write_text("".join(f"{s.split()[0]} {len(s.split()) - 1}\n" for s in sorted(seqs)),
                                 encoding="utf-8")
    return d / "seq", d / "seq_shape"


def _train_argv(fx: Fixtures, seq: Path, shape: Path) -> List[str]:
    return ["ttt_train", *TINY_TRAIN,
            "--token_list", fx.token_list, "--output_dir", "exp",
            "--train_data_path_and_name_and_type", f"{seq},seq,text",
            "--valid_data_path_and_name_and_type", f"{seq},seq,text",
            "--train_shape_file", shape, "--valid_shape_file", shape,
            "--batch_size", "2", "--backbone_conf", "{'d_model': 64, 'n_layer': 2, 'n_head': 2, 'max_len': 256}",
            "--max_epoch", str(TRAIN_EPOCHS), "--keep_nbest_models", str(TRAIN_EPOCHS)]


def _checkpoint_state(exp: Path) -> Dict[str, tuple]:
    """{name: (size, mtime)} of the files named ``*checkpoint*`` (temporaries included) in ``exp``."""
    state = {}
    for path in exp.glob("*checkpoint*") if exp.is_dir() else ():
        try:
            stat = path.stat()
            state[path.name] = (stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:  # renamed meanwhile
            pass
    return state


def _kill_at_checkpoint(argv: Sequence[str], job: Path, epoch: int) -> tuple:
    """Run ``argv`` and SIGKILL it at the first change of a checkpoint file (checkpoint.pth, or a
    temporary of it) once epoch ``epoch`` has logged its results, i.e. when the trainer starts
    saving that epoch.  Returns (Proc, whether the kill hit a save: a ``.pth`` file of the
    experiment, the checkpoint, an epoch file or a temporary, is left incomplete)."""
    exp, log = job / "exp", job / "run.log"
    proc = _spawn(argv, job)
    seen = None
    while proc.poll() is None and proc.seconds < RUN_LIMIT:
        if seen is None:
            if f"{epoch}epoch results".encode() in log.read_bytes():
                seen = _checkpoint_state(exp)
            time.sleep(0.002)
        elif _checkpoint_state(exp) != seen:
            proc.kill()
            break
    result = _finish(proc, job)
    return result, not all(map(_complete, exp.glob("*.pth")))


def _complete(saved: Path) -> bool:
    """``saved`` (written by this section's own runs) loads."""
    try:
        torch.load(saved, map_location="cpu", weights_only=False)
        return True
    except Exception:  # noqa: BLE001 -- any failure to read it means a partial file
        return False


def _same_parameters(a: Path, b: Path) -> bool:
    x = torch.load(a, map_location="cpu", weights_only=True)
    y = torch.load(b, map_location="cpu", weights_only=True)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def kill_training(fx: Fixtures, work: Path, rng: random.Random, runs: int) -> List[str]:
    seq, shape = _train_data(fx, work / "data")
    argv = _train_argv(fx, seq, shape)
    ref_job = work / "train_ref"
    ref_job.mkdir(parents=True)
    ref, trained_from = run_watched(argv, ref_job)
    final = f"exp/{TRAIN_EPOCHS}epoch.pth"
    if ref.code != 0 or not (ref_job / final).exists():
        return [f"kill_train: error: the uninterrupted run failed (exit {ref.code}): {ref.tail}"]
    identical, in_save, notes = 0, 0, []
    for k in range(runs):
        job = work / f"train_kill{k}"
        job.mkdir()
        if k % 2 == 0:  # mid-epoch: a random time of the training
            at = rng.uniform(trained_from or 0.0, ref.seconds)
            killed = run_killed_at(argv, job, at)
            how = f"at {at:.2f}s"
        else:
            epoch = rng.randint(1, TRAIN_EPOCHS - 1)
            killed, hit_save = _kill_at_checkpoint(argv, job, epoch)
            in_save += hit_save
            how = f"saving epoch {epoch} ({'a .pth file left incomplete' if hit_save else 'no .pth file left incomplete'})"
        resumed = run_to_end(argv + ["--resume", "true"], job)
        same = resumed.code == 0 and (job / final).exists() and _same_parameters(ref_job / final, job / final)
        identical += same
        if not same:
            notes.append(f"kill_train[{k}] killed {how} (exit {killed.code}); resume exit {resumed.code}: "
                         f"{'parameters differ' if resumed.code == 0 else resumed.tail.splitlines()[-1:]}")
    return notes + [f"kill_train_runs={runs} kill_train_identical={identical} "
                    f"kill_train_during_save={in_save}"]


# ------------------------------------------------------------------------------ jobs
@dataclasses.dataclass
class Job:
    """A command, its final outputs (relative to the job dir) and how to compare one with the reference's."""

    name: str
    argv: List[str]
    outputs: Callable[[Path], List[str]]  # the final output files in a job dir
    same: Optional[Callable[[Path, Path, Path, Path], bool]] = None  # (file, job, its reference, reference job)


def _same_bytes(path: Path, job: Path, ref: Path, ref_job: Path) -> bool:
    """Equal after replacing each job directory's path by a placeholder."""
    if path.is_dir() or ref.is_dir():
        return path.is_dir() and ref.is_dir()
    return path.read_bytes().replace(bytes(job), b"<JOB>") == ref.read_bytes().replace(bytes(ref_job), b"<JOB>")


def _same_archive(path: Path, job: Path, ref: Path, ref_job: Path) -> bool:
    """A complete zip with the reference's members and bytes (meta.yaml holds a timestamp)."""
    try:
        with zipfile.ZipFile(path) as z, zipfile.ZipFile(ref) as r:
            if z.testzip() is not None or z.namelist() != r.namelist():
                return False
            return all(z.read(n) == r.read(n) for n in z.namelist() if n != "meta.yaml")
    except (zipfile.BadZipFile, OSError):
        return False


def _tree(rel: str) -> Callable[[Path], List[str]]:
    """Outputs: every file under ``rel`` of the job dir."""
    return lambda job: sorted(str(p.relative_to(job)) for p in (job / rel).rglob("*") if p.is_file()) \
        if (job / rel).is_dir() else []


def _job_inputs(fx: Fixtures, d: Path) -> Dict[str, Path]:
    """Inputs big enough for the jobs to work a while: 60 two-second utterances at 16 kHz (wav.scp),
    the same at 8 kHz float (a data dir format_wav converts), 30 code lines, a 32 MB extra file."""
    d.mkdir(parents=True)
    utts = [f"spk{1 + i % 3}-u{i:03d}" for i in range(60)]
    wav_scp, data = d / "wav.scp", d / "data"
    data.mkdir()
    lines16, lines8 = [], []
    for i, utt in enumerate(utts):
        wav = synth(2.0, seed=100 + i)
        soundfile.write(d / f"{utt}.wav", wav, SR, subtype="PCM_16")
        soundfile.write(d / f"{utt}.8k.wav", wav[::2], SR // 2, subtype="FLOAT")
        lines16.append(f"{utt} {d / utt}.wav")
        lines8.append(f"{utt} {d / utt}.8k.wav")
    wav_scp.write_text("".join(line + "\n" for line in sorted(lines16)), encoding="utf-8")
    (data / "wav.scp").write_text("".join(line + "\n" for line in sorted(lines8)), encoding="utf-8")
    (data / "text").write_text("".join(f"{u} words of {u}\n" for u in sorted(utts)), encoding="utf-8")
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(utts)), encoding="utf-8")
    speakers = sorted({u.split("-")[0] for u in utts})
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(u for u in sorted(utts) if u.startswith(s + '-'))}\n"
                                          for s in speakers), encoding="utf-8")
    codes = fx.codes.read_text(encoding="utf-8").splitlines()
    (d / "codes").write_text("".join(f"r{r}-{line}\n" for r in range(8) for line in codes), encoding="utf-8")
    rng = np.random.default_rng(0)
    (d / "extra.bin").write_bytes(rng.integers(0, 256, 32 * 2**20, dtype=np.uint8).tobytes())
    return dict(wav_scp=wav_scp, data=data, codes=d / "codes", extra=d / "extra.bin")


def jobs(fx: Fixtures, inputs: Dict[str, Path]) -> List[Job]:
    decode = [a if a != "12" else "60" for a in DECODE]  # longer answers: more work to interrupt
    return [
        Job("ttt_inference", ["ttt_inference", "--train_config", fx.train_config,
                              "--model_file", fx.model_file, "--output_dir", "out", "--mode", "asr",
                              "--data_path_and_name_and_type", f"{inputs['codes']},speech_codes,text_int",
                              "--write_wav", "true", *decode],
            _tree("out")),
        Job("speech_tokenize", ["speech_tokenize", "--tokenizer_dir", fx.tokenizer_dir,
                                "--wav_scp", inputs["wav_scp"], "--output", "codes"],
            lambda job: ["codes"] if (job / "codes").exists() else []),
        Job("format_wav", ["format_wav", "--data_dir", inputs["data"], "--output_dir", "out"],
            _tree("out")),
        Job("pack", ["pack", "--train_config", fx.train_config, "--model_file", fx.model_file,
                     "--option", inputs["extra"], "--outpath", "packed.zip"],
            lambda job: ["packed.zip"] if (job / "packed.zip").exists() else [], _same_archive),
    ]


def kill_jobs(fx: Fixtures, work: Path, rng: random.Random, kills_per_job: int) -> List[str]:
    inputs = _job_inputs(fx, work / "inputs")
    total = partial = leftovers = rerun_ok = 0
    notes = []
    for job_spec in jobs(fx, inputs):
        same = job_spec.same or _same_bytes
        ref_job = work / f"{job_spec.name}_ref"
        ref_job.mkdir()
        ref, first_write = run_watched(job_spec.argv, ref_job)
        ref_outputs = job_spec.outputs(ref_job)
        if ref.code != 0 or not ref_outputs:
            notes.append(f"kill_jobs: error: the uninterrupted {job_spec.name} failed (exit {ref.code}): {ref.tail}")
            continue
        ref_files = set(_files(ref_job))
        for k in range(kills_per_job):
            total += 1
            job = work / f"{job_spec.name}_kill{k}"
            job.mkdir()
            at = rng.uniform(first_write or ref.seconds / 2, ref.seconds)
            killed = run_killed_at(job_spec.argv, job, at)
            half = [o for o in ref_outputs if (job / o).exists() and not same(job / o, job, ref_job / o, ref_job)]
            partial += bool(half)
            rerun = run_to_end(job_spec.argv, job)
            outputs = job_spec.outputs(job)
            ok = rerun.code == 0 and outputs == ref_outputs and all(
                same(job / o, job, ref_job / o, ref_job) for o in outputs)
            rerun_ok += ok
            extra = sorted(set(_files(job)) - ref_files)
            leftovers += bool(extra)
            if half or not ok or extra:
                notes.append(f"kill_jobs[{job_spec.name} {k}] killed at {at:.2f}s (exit {killed.code}): "
                             f"partial outputs {half[:3]}, rerun exit {rerun.code} "
                             f"{'ok' if ok else 'with other outputs'}, left over {extra[:3]}")
    return notes + [f"kill_jobs={total} kill_partial_outputs={partial} kill_leftovers={leftovers} "
                    f"kill_rerun_ok={rerun_ok}"]


def run(fx: Fixtures, work: Path, seed: int, train_runs: int, kills_per_job: int) -> List[str]:
    """The kill section's report lines (module docstring)."""
    work.mkdir(parents=True)
    rng = random.Random(f"{seed}:kill")
    lines = kill_training(fx, work / "train", rng, train_runs) if train_runs else []
    if kills_per_job:
        lines += kill_jobs(fx, work / "jobs", rng, kills_per_job)
    return lines
