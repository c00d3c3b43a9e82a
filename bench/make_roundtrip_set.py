"""English data for the speech-tokenizer round-trip benchmark (``bench/speech_roundtrip.py``).

    python bench/make_roundtrip_set.py --output_dir /tmp/roundtrip --nj 2
    python -m espnet2_ttt.bin.speech_tokenizer_train --wav_scp /tmp/roundtrip/train/wav.scp \\
        --output_dir /tmp/roundtrip/tokenizer --config conf/speech_tokenizer.yaml
    python bench/speech_roundtrip.py --data_dir /tmp/roundtrip/test --tokenizer_dir /tmp/roundtrip/tokenizer

One natural-sounding voice (festival ``voice_cmu_us_slt_arctic_hts``, neutral speed and pitch,
16 kHz mono): ``test`` = every 4th of the hand-written sentences in
``bench/data/roundtrip_sentences.txt`` (49) and all of ``bench/data/roundtrip_test_sentences.txt``
(400 more, ~3700 words, so one codebook's WER is measured to about a point), ``train`` = the
other 145 of the first file plus
``--template_sentences`` seeded subject-verb-object-place sentences (1950) plus
``--lexicon_sentences`` seeded strings of 6-12 random words of festival's CMU lexicon (6000:
meaningless, but they cover English sounds far beyond the templates' 144 words), about
ten hours of audio in all (~12 min to synthesise); the test sentences are never in the tokenizer's training audio.
Deterministic for a given ``--seed``.  Synthesis uses the recipe's ``local/corpus_tts.py``.
"""
from __future__ import annotations

import argparse
import logging
import random
import re
import shutil
import sys
from multiprocessing import Pool
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "egs" / "ttt_bilingual" / "local"))
import corpus_tts  # noqa: E402

from espnet2_ttt.utils.table import write_text_atomic  # noqa: E402

SUBJECTS = ("The old man", "My little sister", "A young doctor", "The tall farmer", "Our new teacher",
            "The quiet student", "His best friend", "The happy child", "A tired driver", "The kind nurse",
            "Her uncle", "The busy cook", "My neighbor", "The brave pilot", "A small boy", "The young woman",
            "My old friend", "The shop keeper", "The police officer", "A famous singer")
VERBS = ("found", "carried", "painted", "cleaned", "bought", "sold", "opened", "watched", "lost", "repaired",
         "wanted", "dropped", "moved", "washed", "borrowed", "picked up", "looked at", "threw away", "fixed", "hid")
OBJECTS = ("a green bottle", "the wooden box", "an old radio", "the broken lamp", "a heavy basket",
           "the yellow kite", "a silver ring", "the dirty plates", "a warm blanket", "the paper bag",
           "three fresh apples", "the big yellow door", "a letter from home", "the black umbrella",
           "some warm bread", "a heavy wooden chair", "two cups of tea", "a bright blue scarf",
           "four old newspapers", "a box of matches")
PLACES = ("in the morning", "near the station", "after lunch", "behind the house", "at the market",
          "before the storm", "on the way home", "in the small village", "during the summer",
          "next to the river", "at the end of the day", "under the bridge", "early this morning",
          "at the corner shop", "right after the rain", "on a cold night", "near the fishing boats",
          "at half past four", "across the busy road", "on the quiet beach")


def template_sentences(n: int, seed: int, exclude: set) -> List[str]:
    """``n`` distinct seeded sentences "<subject> <verb> <object> <place>." not in ``exclude``."""
    rng = random.Random(f"{seed}:roundtrip")
    out, seen = [], set(exclude)
    while len(out) < n:
        s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}."
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


FESTIVAL_LEXICON = Path("/usr/share/festival/dicts/cmu/cmudict-0.4.out")  # Debian festlex-cmu (with festival)


def lexicon_sentences(n: int, seed: int, lexicon: Path = FESTIVAL_LEXICON) -> List[str]:
    """``n`` seeded strings of 6-12 words drawn uniformly from the lexicon's 2-12 letter words."""
    if not lexicon.is_file():
        raise FileNotFoundError(f"{lexicon} not found: install festival's CMU lexicon (apt festlex-cmu)")
    entries = (re.match(r'\("([a-z]{2,12})" ', line) for line in lexicon.read_text(encoding="latin-1").splitlines())
    words = sorted({m.group(1) for m in entries if m})
    rng = random.Random(f"{seed}:lexicon")
    return [" ".join(rng.choice(words) for _ in range(rng.randint(6, 12))).capitalize() + "." for _ in range(n)]


def splits(
    sentences: Sequence[str], test_sentences: Sequence[str], n_template: int, n_lexicon: int, seed: int
) -> List[Tuple[str, List[Tuple[str, str]]]]:
    """[("test", [(utt, text)...]), ("train", [...])]: every 4th of ``sentences`` and all of
    ``test_sentences`` are test; the templates avoid every hand-written sentence."""
    test = [(f"slt_test_{i:04d}", s) for i, s in enumerate(sentences) if i % 4 == 0]
    test += [(f"slt_heldout_{i:04d}", s) for i, s in enumerate(test_sentences)]
    train = [(f"slt_train_{i:04d}", s) for i, s in enumerate(sentences) if i % 4 != 0]
    train += [(f"slt_tmpl_{i:04d}", s) for i, s in enumerate(template_sentences(n_template, seed, set(sentences) | set(test_sentences)))]
    train += [(f"slt_lex_{i:04d}", s) for i, s in enumerate(lexicon_sentences(n_lexicon, seed))]
    return [("test", test), ("train", train)]


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--sentences", default=str(REPO / "bench" / "data" / "roundtrip_sentences.txt"))
    parser.add_argument("--test_sentences", default=str(REPO / "bench" / "data" / "roundtrip_test_sentences.txt"))
    parser.add_argument("--template_sentences", type=int, default=1950)
    parser.add_argument("--lexicon_sentences", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nj", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (make_roundtrip_set) %(levelname)s: %(message)s")
    missing = corpus_tts.missing_tools()
    if missing:
        sys.exit(f"missing TTS tools {missing}: run tools/setup_env.sh (apt festival, festvox-us-slt-hts, sox)")
    sentences, test_sentences = (
        [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        for path in (args.sentences, args.test_sentences)
    )
    voice = next(v for v in corpus_tts.VOICES if v.name == "slt")
    speaker = corpus_tts.Speaker("en_slt_v0", voice, voice.engine_voice, 1.0, 0)
    out = Path(args.output_dir).resolve()
    sets = splits(sentences, test_sentences, args.template_sentences, args.lexicon_sentences, args.seed)
    items = []
    for name, utts in sets:
        (out / name / "wavs").mkdir(parents=True, exist_ok=True)
        for utt, text in utts:
            wav = out / name / "wavs" / f"{utt}.wav"
            if not wav.is_file():  # re-running completes an interrupted set
                items.append(corpus_tts.SynthItem(utt, text, speaker, str(wav)))
    logging.info("synthesising %d utterances into %s", len(items), out)
    with Pool(args.nj) as pool:
        done = 0
        for n in pool.imap_unordered(corpus_tts.synthesize, corpus_tts.make_batches(items, out / "work")):
            done += n
            logging.info("synthesised %d/%d", done, len(items))
    shutil.rmtree(out / "work", ignore_errors=True)
    for name, utts in sets:
        write_text_atomic(out / name / "wav.scp", "".join(f"{u} {out / name / 'wavs' / u}.wav\n" for u, _ in sorted(utts)))
        write_text_atomic(out / name / "text", "".join(f"{u} {t}\n" for u, t in sorted(utts)))
    logging.info("wrote %s", ", ".join(f"{name}: {len(utts)}" for name, utts in sets))


if __name__ == "__main__":
    main(sys.argv[1:])
