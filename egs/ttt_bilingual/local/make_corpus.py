#!/usr/bin/env python3
"""Generate the embedded bilingual (English + Mandarin) TtT corpus: ASR, TTS and spoken QA.

    python local/make_corpus.py --output_dir data/corpus --seed 0 [--size default|tiny] [--nj 2]

Text comes from templates in ``corpus_content.py`` (written for this project), audio from
offline TTS (``corpus_tts.py``: festival, espeak-ng, sox; install with
``local/install_tts.sh``). Determinism: everything is drawn from ``--seed``, and festival
2.5.0, espeak-ng 1.51 and sox 14.4.2 (run with -D, no dither) were checked to give
bitwise identical wavs across runs, so the same seed gives identical files (wav.scp and
corpus.json also contain the output path); other tool versions may change the audio.

Output (``<out>/<split>/`` for split in train, dev, test; Kaldi style, every file sorted
with ``LC_ALL=C sort``, one ``key value`` line per utterance):
  wav.scp     utt_id ABSOLUTE_PATH (``<out>/<split>/wav/<utt_id>.wav``, 16 kHz mono 16-bit);
              moving the corpus means regenerating it (or rewriting wav.scp)
  text        utt_id transcript: en = lowercase words without punctuation, numbers as words
              ("three plus four is seven"); zh = characters only, numbers as characters
              ("三加四等于七")
  utt2spk     utt_id spk_id; utt ids are ``<spk_id>-<5 digits>`` so both sort orders agree;
              spk_id = ``<lang>_<voice>_v<variant>`` (en_slt_v0, en_kal_v2, zh_esp_v3, ...)
  spk2utt     spk_id utt_id ...
  utt2lang    utt_id en|zh
  dialogues.jsonl  one JSON object per line, sorted by "id", UTF-8 (see below)
``<out>/corpus.json`` is the stamp: {"config": ..., "speakers": ..., "counts": ...}.

dialogues.jsonl schema (all keys always present):
  id             "asr-<utt>", "tts-<utt>" or "qa-<question utt>"
  task           "asr" | "tts" | "qa"
  lang           "en" | "zh"
  category       "sentence" (plain sentence) or the QA category: "arithmetic", "counting"
                 (ranges, next/previous number, how often a word was said), "comparison",
                 "fact" (colours, weekdays, months, capitals, opposites, how many legs/days...)
                 -- for asr/tts entries, the category of the item the utterance belongs to
  question_utt   asr: the utterance; tts: null; qa: the spoken question
  question_text  transcript of the input: asr/tts: the utterance's text; qa: the question's
  answer_text    transcript of the expected output: asr/tts: the utterance's text;
                 qa: a short sentence ending with the answer ("three plus four is seven")
  answer_utt     asr: null; tts: the utterance; qa: the spoken answer
  answer_key     non-empty list of accepted short answers in transcript form;
                 asr/tts: [text]; qa: e.g. ["seven", "7"], ["七", "7"], ["four legs", "4 legs"],
                 ["paris"]; score with ``corpus_content.answer_is_correct`` (the output,
                 or an ASR transcript of the spoken output, must END with a key)
Every utterance has an asr entry (QA questions and answers included). QA questions are
spoken by any voice but English espeak-ng; answers always by the language's neutral
"assistant" speaker (en_slt_v0, zh_esp_v0). tts entries: in train and dev only for the
assistant's utterances, so the model learns to speak in one voice per language, the voice of
its spoken answers (15 voices with seeded speed and pitch would make the target audio of a
text ambiguous); in test for every utterance (the text is the input; the reference audio is
not scored). Held out (same templates): a test/dev
arithmetic/counting/comparison problem is not asked in train in any wording; a test/dev
fact is asked in train only in another wording; sentences are distinct across splits.
"""

import argparse
import hashlib
import json
import logging
import multiprocessing
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_content import LANGS, QA_CATEGORIES, answer_is_correct, normalize_text, qa_pool, sample_sentences  # noqa: E402
from corpus_tts import SAMPLE_RATE, SynthItem, make_batches, make_speakers, missing_tools, synthesize  # noqa: E402

SPLITS = ("train", "dev", "test")
HOLDOUT_ORDER = ("test", "dev", "train")  # pools are sliced in this order
# Per split and language: (plain sentences, QA items); every QA item has 2 utterances.
SIZES = {
    "default": {"train": (750, 400), "dev": (40, 30), "test": (40, 30)},
    "tiny": {"train": (15, 8), "dev": (1, 2), "test": (1, 2)},
}
QA_WEIGHTS = {"arithmetic": 0.35, "counting": 0.25, "comparison": 0.15, "fact": 0.25}
DATA_FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2lang")
DIALOGUE_KEYS = ("id", "task", "lang", "category", "question_utt", "question_text",
                 "answer_text", "answer_utt", "answer_key")
STAMP = "corpus.json"

log = logging.getLogger("make_corpus")


class CorpusError(ValueError):
    """A generated data directory is invalid."""


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    split: str
    lang: str
    category: str
    written: str  # what the TTS engine reads
    text: str  # normalised transcript
    speaker: object  # corpus_tts.Speaker


def _quotas(total: int) -> dict:
    """Split ``total`` QA items over the categories by QA_WEIGHTS (last one takes the rest)."""
    quotas = {c: round(total * QA_WEIGHTS[c]) for c in QA_CATEGORIES[:-1]}
    quotas[QA_CATEGORIES[-1]] = total - sum(quotas.values())
    return quotas


def _take(pool: list, quota: int, distinct: bool) -> tuple:
    """(first ``quota`` items of ``pool``, optionally with distinct contents; the others)."""
    chosen, rest, contents = [], [], set()
    for item in pool:
        if len(chosen) < quota and not (distinct and item.content in contents):
            chosen.append(item)
            contents.add(item.content)
        else:
            rest.append(item)
    return chosen, rest


def _select_items(seed: int, size: str) -> dict:
    """{(split, lang): (sentences, qa_items)}; splits share no sentence and no QA question.

    Numeric QA problems are held out whole (all phrasings of "3+4" go to one split);
    a dev/test fact is held out by phrasing only: train asks it in its other wording.
    """
    sizes = SIZES[size]
    selected = {}
    for lang in LANGS:
        rng = random.Random(f"{seed}:{lang}:items")
        sentences = sample_sentences(lang, sum(sizes[s][0] for s in SPLITS), rng)
        pools = {}
        for category in QA_CATEGORIES:
            pools[category] = qa_pool(lang, category)
            rng.shuffle(pools[category])
        reserved = []  # other wordings of dev/test facts, taught in train
        for split in HOLDOUT_ORDER:
            n_sentences, n_qa = sizes[split]
            taken, sentences = sentences[:n_sentences], sentences[n_sentences:]
            items = []
            for category, quota in _quotas(n_qa).items():
                is_fact = category == "fact"
                pool = reserved + pools[category] if is_fact and split == "train" else pools[category]
                chosen, rest = _take(pool, quota, distinct=is_fact and split != "train")
                if len(chosen) < quota:
                    raise ValueError(f"{lang} {category}: pool too small for size {size!r}")
                held = {i.content for i in chosen}
                if is_fact and split != "train":
                    reserved += [i for i in rest if i.content in held]
                pools[category] = [i for i in rest if i.content not in held]
                items += chosen
            selected[split, lang] = (taken, items)
    return selected


def plan_corpus(seed: int, size: str) -> tuple:
    """Decide all texts, speakers and ids (no audio). Returns (speakers, utterances, dialogues)."""
    speakers = make_speakers(seed)
    assistant = {lang: next(s for s in speakers if s.voice.lang == lang) for lang in LANGS}
    rng = random.Random(f"{seed}:speakers-choice")

    def pick(lang: str, for_question: bool):
        candidates = [s for s in speakers if s.voice.lang == lang]
        weights = [(s.voice.question_weight if for_question else s.voice.weight) / s.voice.variants
                   for s in candidates]
        return rng.choices(candidates, weights)[0]

    selected = _select_items(seed, size)
    utterances, dialogues = [], []

    def add(split, lang, category, written, speaker):
        utt = Utterance(f"{speaker.spk_id}-{len(utterances):05d}", split, lang, category,
                        written, normalize_text(written, lang), speaker)
        utterances.append(utt)
        return utt

    for split in SPLITS:
        for lang in LANGS:
            sentences, items = selected[split, lang]
            for sentence in sentences:
                add(split, lang, "sentence", sentence, pick(lang, False))
            for item in items:
                q = add(split, lang, item.category, item.question, pick(lang, True))
                a = add(split, lang, item.category, item.answer, assistant[lang])
                dialogues.append(_dialogue(split, "qa", q, a, list(item.keys)))
    for utt in utterances:
        dialogues.append(_dialogue(utt.split, "asr", utt, None, [utt.text]))
        if utt.split == "test" or utt.speaker is assistant[utt.lang]:
            dialogues.append(_dialogue(utt.split, "tts", None, utt, [utt.text]))
    return speakers, utterances, dialogues


def _dialogue(split: str, task: str, question, answer, keys: list) -> tuple:
    """(split, record) for dialogues.jsonl; asr: (utt, None), tts: (None, utt), qa: (q, a)."""
    source = question or answer
    return split, {
        "id": f"{task}-{source.utt_id}",
        "task": task,
        "lang": source.lang,
        "category": source.category,
        "question_utt": question.utt_id if question else None,
        "question_text": source.text,
        "answer_text": (answer or source).text,
        "answer_utt": answer.utt_id if answer else None,
        "answer_key": keys,
    }


def _write_lines(path: Path, lines: list) -> None:
    path.write_text("".join(line + "\n" for line in sorted(lines)), encoding="utf-8")


def write_data_dirs(root: Path, final_root: Path, utterances: list, dialogues: list) -> None:
    """Write the Kaldi files and dialogues.jsonl of every split under ``root``; wav.scp
    points into ``final_root`` (where ``root`` will be renamed to)."""
    for split in SPLITS:
        utts = [u for u in utterances if u.split == split]
        split_dir = root / split
        (split_dir / "wav").mkdir(parents=True, exist_ok=True)
        _write_lines(split_dir / "wav.scp", [f"{u.utt_id} {final_root / split / 'wav' / u.utt_id}.wav" for u in utts])
        _write_lines(split_dir / "text", [f"{u.utt_id} {u.text}" for u in utts])
        _write_lines(split_dir / "utt2spk", [f"{u.utt_id} {u.speaker.spk_id}" for u in utts])
        _write_lines(split_dir / "utt2lang", [f"{u.utt_id} {u.lang}" for u in utts])
        spk2utt = {}
        for u in sorted(utts, key=lambda u: u.utt_id):
            spk2utt.setdefault(u.speaker.spk_id, []).append(u.utt_id)
        _write_lines(split_dir / "spk2utt", [f"{spk} {' '.join(ids)}" for spk, ids in spk2utt.items()])
        records = sorted((d for s, d in dialogues if s == split), key=lambda d: d["id"])
        (split_dir / "dialogues.jsonl").write_text(
            "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in records), encoding="utf-8")


def _read_kv(path: Path) -> dict:
    """Read a ``key value`` file, checking that keys are unique and C-sorted and values non-empty."""
    if not path.is_file():
        raise CorpusError(f"{path}: missing")
    table, previous = {}, None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        key, _, value = line.partition(" ")
        if not value.strip():
            raise CorpusError(f"{path}:{n}: empty value for {key!r}")
        # Python compares code points, i.e. UTF-8 byte order, which is what LC_ALL=C sort uses.
        if previous is not None and key <= previous:
            raise CorpusError(f"{path}:{n}: {key!r} is not sorted (LC_ALL=C) or duplicated")
        table[key], previous = value, key
    return table


def validate_data_dir(data_dir, wav_root_map: tuple = None) -> None:
    """Check one split directory; raise CorpusError naming the file/utterance.

    ``wav_root_map = (final_root, actual_root)`` reads wavs from ``actual_root`` while
    wav.scp still names ``final_root`` (used before the atomic rename).
    """
    data_dir = Path(data_dir)
    tables = {name: _read_kv(data_dir / name) for name in DATA_FILES}
    text, utt2spk = tables["text"], tables["utt2spk"]
    for name in ("wav.scp", "utt2spk", "utt2lang"):
        if tables[name].keys() != text.keys():
            diff = sorted(tables[name].keys() ^ text.keys())[:3]
            raise CorpusError(f"{data_dir}/{name}: utterance ids differ from text, e.g. {diff}")
    spk2utt = {spk: utts.split() for spk, utts in tables["spk2utt"].items()}
    expected = {}
    for utt, spk in utt2spk.items():  # in sorted utterance order
        if not utt.startswith(spk + "-"):
            raise CorpusError(f"{data_dir}/utt2spk: {utt} does not start with its speaker id {spk}-")
        expected.setdefault(spk, []).append(utt)
    if spk2utt != expected or list(expected) != sorted(expected):
        raise CorpusError(f"{data_dir}/spk2utt: does not match utt2spk (or speaker order disagrees)")
    for utt, lang in tables["utt2lang"].items():
        if lang not in LANGS:
            raise CorpusError(f"{data_dir}/utt2lang: {utt} has unknown language {lang!r}")
    for utt, path in tables["wav.scp"].items():
        if wav_root_map:
            path = path.replace(str(wav_root_map[0]), str(wav_root_map[1]), 1)
        try:
            info = soundfile.info(path)
        except Exception as exc:
            raise CorpusError(f"{data_dir}/wav.scp: {utt}: cannot read {path}: {exc}") from exc
        if (info.samplerate, info.channels, info.subtype, info.frames > 0) != (SAMPLE_RATE, 1, "PCM_16", True):
            raise CorpusError(f"{data_dir}/wav.scp: {utt}: {path} is not non-empty 16 kHz mono PCM_16: {info}")
    _validate_dialogues(data_dir / "dialogues.jsonl", text, tables["utt2lang"])


def _validate_dialogues(path: Path, text: dict, utt2lang: dict) -> None:
    if not path.is_file():
        raise CorpusError(f"{path}: missing")
    previous = None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        d = json.loads(line)
        where = f"{path}:{n} ({d.get('id')})"
        if tuple(d) != DIALOGUE_KEYS:
            raise CorpusError(f"{where}: keys {list(d)} != {list(DIALOGUE_KEYS)}")
        if previous is not None and d["id"] <= previous:
            raise CorpusError(f"{where}: ids not sorted or duplicated")
        previous = d["id"]
        for field, text_field in (("question_utt", "question_text"), ("answer_utt", "answer_text")):
            utt = d[field]
            if utt is not None and (text.get(utt) != d[text_field] or utt2lang[utt] != d["lang"]):
                raise CorpusError(f"{where}: {field} {utt} does not match {text_field}/lang")
        has_audio = (d["question_utt"] is not None, d["answer_utt"] is not None)
        expected = {"asr": (True, False), "tts": (False, True), "qa": (True, True)}.get(d["task"])
        if has_audio != expected or not d["answer_key"] or not d["question_text"]:
            raise CorpusError(f"{where}: malformed {d['task']!r} entry")
        if not answer_is_correct(d["answer_text"], d["answer_key"], d["lang"]):
            raise CorpusError(f"{where}: answer_text does not end with an answer_key")


def _source_hash() -> str:
    """Hash of the generator sources: a code change invalidates an existing corpus."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in ("make_corpus.py", "corpus_content.py", "corpus_tts.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def _counts(utterances: list, dialogues: list) -> dict:
    counts = {}
    for split in SPLITS:
        c = counts[split] = {"utterances": {}, "dialogues": {}, "speakers": 0}
        utts = [u for u in utterances if u.split == split]
        for u in utts:
            c["utterances"][u.lang] = c["utterances"].get(u.lang, 0) + 1
        for s, d in dialogues:
            if s == split:
                key = f"{d['task']}_{d['lang']}"
                c["dialogues"][key] = c["dialogues"].get(key, 0) + 1
        c["dialogues"] = dict(sorted(c["dialogues"].items()))
        c["speakers"] = len({u.speaker.spk_id for u in utts})
    return counts


def make_corpus(output_dir, seed: int = 0, size: str = "default", nj: int = 2) -> Path:
    """Generate the corpus into ``output_dir`` atomically; skip if it is already up to date."""
    start = time.time()
    final = Path(output_dir).resolve()
    config = {"seed": seed, "size": size, "output_dir": str(final), "source_hash": _source_hash()}
    stamp = final / STAMP
    if final.exists():
        if not stamp.is_file():
            raise FileExistsError(f"{final} exists but has no {STAMP}: not made by make_corpus.py; remove it")
        if json.loads(stamp.read_text(encoding="utf-8"))["config"] == config:
            log.info(f"{final} is up to date ({STAMP} matches {config}); skipping")
            return final
        log.info(f"{final} was made with another config; regenerating it")
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"missing TTS tools {missing}: run egs/ttt_bilingual/local/install_tts.sh")

    speakers, utterances, dialogues = plan_corpus(seed, size)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it owner-only; the corpus is shared data
    try:
        write_data_dirs(tmp, final, utterances, dialogues)
        items = [SynthItem(u.utt_id, u.written, u.speaker, str(tmp / u.split / "wav" / f"{u.utt_id}.wav"))
                 for u in utterances]
        batches = make_batches(items, tmp / "work")
        log.info(f"synthesising {len(items)} utterances in {len(batches)} batches with {nj} processes")
        done = 0
        with multiprocessing.Pool(nj) as pool:
            for n in pool.imap_unordered(synthesize, batches):
                done += n
                log.info(f"synthesised {done}/{len(items)} utterances ({time.time() - start:.0f} s)")
        shutil.rmtree(tmp / "work")
        for split in SPLITS:
            validate_data_dir(tmp / split, (final, tmp))
        counts = _counts(utterances, dialogues)
        speaker_info = {s.spk_id: {"engine_voice": s.engine_voice, "rate": s.rate, "pitch": s.pitch}
                        for s in speakers}
        (tmp / STAMP).write_text(json.dumps({"config": config, "speakers": speaker_info, "counts": counts},
                                            ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            final.rename(old / final.name)
            tmp.rename(final)
            shutil.rmtree(old)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for split in SPLITS:
        log.info(f"{split}: {json.dumps(counts[split])}")
    log.info(f"wrote {final} ({len(utterances)} utterances) in {time.time() - start:.1f} s")
    return final


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", required=True, help="corpus root (train/dev/test made inside)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", choices=sorted(SIZES), default="default",
                        help="default: 3100/200/200 utterances; tiny (CI): 62/10/10")
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis processes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (make_corpus) %(levelname)s: %(message)s")
    make_corpus(args.output_dir, args.seed, args.size, args.nj)


if __name__ == "__main__":
    main()
