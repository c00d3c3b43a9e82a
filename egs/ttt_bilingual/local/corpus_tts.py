"""Offline speech synthesis for the embedded corpus (festival, espeak-ng, sox).

Every output is a 16 kHz mono 16-bit PCM wav, peak-normalised to -3 dBFS by sox.
A speaker is a (voice, variant) pair, e.g. ``en_slt_v2``; variant 0 of every voice is
neutral, variants >= 1 get a seeded speed and pitch. espeak-ng: ``-s``/``-p`` and a voice
modifier (``+f2`` ...). festival: the voice's own duration control (HTS ``-r``,
``Duration_Stretch``) combined with sox ``speed`` (a cheap resampling that raises pitch,
tempo and formants together). Festival starts slowly, so one festival process synthesises
a whole batch of one speaker.
"""

import math
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SAMPLE_RATE = 16000
REQUIRED_TOOLS = ("festival", "espeak-ng", "sox")
ESPEAK_MODIFIERS = ("", "f2", "m3", "f4", "m1", "f1")  # espeak variant k uses modifier k


@dataclass(frozen=True)
class Voice:
    """A TTS voice; ``weight``/``question_weight``: relative share of sentences/questions."""

    name: str
    lang: str
    engine: str  # "festival" | "espeak"
    engine_voice: str  # festival voice function, or espeak-ng voice name
    variants: int
    weight: float
    question_weight: float


# English espeak-ng is hard to understand (60-80 % WER for an off-the-shelf recogniser):
# it only reads a few plain sentences, never questions or answers.
VOICES = (
    Voice("slt", "en", "festival", "voice_cmu_us_slt_arctic_hts", 4, 0.35, 0.5),
    Voice("kal", "en", "festival", "voice_kal_diphone", 3, 0.55, 0.5),
    Voice("esp", "en", "espeak", "en-us", 2, 0.10, 0.0),
    Voice("esp", "zh", "espeak", "cmn-latn-pinyin", 6, 1.0, 1.0),
)


@dataclass(frozen=True)
class Speaker:
    """A concrete speaker. festival: ``rate`` = tempo factor, ``pitch`` = shift in cents;
    espeak: ``rate`` = words per minute, ``pitch`` = espeak-ng -p (0..99)."""

    spk_id: str
    voice: Voice
    engine_voice: str
    rate: float
    pitch: int


def make_speakers(seed: int) -> list:
    """All speakers, variant parameters drawn from ``seed``; variant 0 is neutral."""
    rng = random.Random(f"{seed}:speakers")
    speakers = []
    for voice in VOICES:
        for k in range(voice.variants):
            if voice.engine == "festival":
                engine_voice = voice.engine_voice
                rate, pitch = (1.0, 0) if k == 0 else (round(rng.uniform(0.88, 1.12), 2), rng.randrange(-100, 101, 25))
            else:
                modifier = ESPEAK_MODIFIERS[k % len(ESPEAK_MODIFIERS)]
                engine_voice = voice.engine_voice + (f"+{modifier}" if modifier else "")
                rate, pitch = (155, 50) if k == 0 else (rng.randrange(135, 181, 5), rng.randrange(30, 71, 5))
            speakers.append(Speaker(f"{voice.lang}_{voice.name}_v{k}", voice, engine_voice, rate, pitch))
    return speakers


# Scheme that makes a festival voice speak ``tempo`` times faster than its default.
_FESTIVAL_TEMPO = {
    "voice_cmu_us_slt_arctic_hts":
        lambda tempo: f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {tempo:.4f}))))',
    "voice_kal_diphone": lambda tempo: f"(Parameter.set 'Duration_Stretch {1.1 / tempo:.4f})",  # voice default 1.1
}


def _festival_speed(speaker: Speaker) -> float:
    """sox ``speed`` factor that gives a festival speaker its pitch shift."""
    return 2.0 ** (speaker.pitch / 1200.0)


def missing_tools() -> list:
    """Names of required TTS executables that are not on PATH."""
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


@dataclass(frozen=True)
class SynthItem:
    utt_id: str
    text: str  # written form (with punctuation), what the engine reads
    speaker: Speaker
    out_path: str


def _run(cmd: list, what: str) -> None:
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    if result.returncode != 0:
        raise RuntimeError(f"{what}: {' '.join(cmd[:3])} ... failed (rc={result.returncode}): {result.stderr[-500:]}")


def _postprocess(item: SynthItem, raw: Path) -> None:
    """Resample to 16 kHz mono 16-bit, shift festival speakers' pitch, normalise the peak."""
    effects = []
    if item.speaker.voice.engine == "festival" and item.speaker.pitch != 0:
        effects = ["speed", f"{_festival_speed(item.speaker):.4f}"]
    # -D: no dither, so the output is a deterministic function of the input.
    cmd = ["sox", "-D", "-V1", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", item.out_path]
    _run(cmd + effects + ["rate", "-h", str(SAMPLE_RATE), "gain", "-n", "-3"], f"sox for {item.utt_id}")


def _festival_batch(items: list, work_dir: Path) -> None:
    speaker = items[0].speaker
    voice = speaker.engine_voice
    # sox speed will also speed up by _festival_speed; the voice makes up the rest of the tempo.
    tempo = speaker.rate / _festival_speed(speaker)
    lines = [f"({voice})"] + ([] if math.isclose(tempo, 1.0) else [_FESTIVAL_TEMPO[voice](tempo)])
    for item in items:
        if '"' in item.text or "\\" in item.text:
            raise ValueError(f"{item.utt_id}: text not allowed in a festival string: {item.text!r}")
        lines.append(f'(utt.save.wave (SynthText "{item.text}") "{work_dir / item.utt_id}.wav" \'riff)')
    script = work_dir / f"{items[0].utt_id}.scm"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _run(["festival", "--batch", str(script)], f"festival ({speaker.spk_id}) batch starting at {items[0].utt_id}")


def _espeak_one(item: SynthItem, work_dir: Path) -> None:
    sp = item.speaker
    cmd = ["espeak-ng", "-v", sp.engine_voice, "-s", str(sp.rate), "-p", str(sp.pitch),
           "-w", f"{work_dir / item.utt_id}.wav", item.text]
    _run(cmd, f"espeak-ng for {item.utt_id}")


def synthesize(batch: tuple) -> int:
    """Synthesise one batch ``(items, work_dir)``; all items share one speaker.

    Returns the number of files written. Raises naming the utterance on any failure.
    """
    items, work_dir = batch
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    if items[0].speaker.voice.engine == "festival":
        _festival_batch(items, work_dir)
    else:
        for item in items:
            _espeak_one(item, work_dir)
    for item in items:
        raw = work_dir / f"{item.utt_id}.wav"
        if not raw.is_file() or raw.stat().st_size <= 44:
            raise RuntimeError(
                f"{item.utt_id}: {item.speaker.engine_voice} produced no audio for {item.text!r} "
                "(is the voice installed? see local/install_tts.sh)")
        _postprocess(item, raw)
        raw.unlink()
    return len(items)


def make_batches(items: list, work_dir: Path) -> list:
    """Group items by speaker into batches (festival first: it is the slowest)."""
    by_speaker = {}
    for item in items:
        by_speaker.setdefault(item.speaker.spk_id, []).append(item)
    batches = []
    for spk_items in sorted(by_speaker.values(), key=lambda v: v[0].speaker.voice.engine != "festival"):
        size = 40 if spk_items[0].speaker.voice.engine == "festival" else 100
        for start in range(0, len(spk_items), size):
            chunk = spk_items[start:start + size]
            batches.append((chunk, str(work_dir / f"{chunk[0].utt_id}")))
    return batches
