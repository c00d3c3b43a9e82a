#!/usr/bin/env python3
"""Turn a test split's dialogue file into decoding inputs and references, one dir per task.

    python -m espnet2_ttt.bin.prepare_eval --dialogues dump/raw/test/dialogues.jsonl \
        --codes dump/codes/test/codes --utt2lang dump/raw/test/utt2lang --output_dir dump/eval/test \
        [--tasks asr,tts,qa] [--max_per_task N]

Writes ``<output_dir>/<task>/``: ``keys``, ``mode`` (the decoder mode), the decoder inputs
(``codes``: the spoken prompt; ``text``: the text prompt), ``ref_text`` (what the output
should say), ``utt2lang``, ``utt2spk`` (key = speaker: each dialogue scored alone) and, for
QA, ``answer_key`` (``id key1|key2``).  Dialogue schema: see ``local/make_corpus.py``; a field
of the wrong type, an utterance without codes or codes that are not integers is an error
naming the file and line.

    asr  speech -> text      inputs: codes of question_utt    ref: answer_text (= transcript)
    tts  text -> speech      inputs: question_text           ref: question_text
    qa   speech -> text+speech  inputs: codes of question_utt  ref: answer_text, answer_key
"""
import argparse
import logging
import os
from typing import Dict, List, Tuple

from espnet2_ttt.sequence_builder import dialogue_field, read_dialogues
from espnet2_ttt.speech.io import parse_codes
from espnet2_ttt.utils.cli import InputError, run
from espnet2_ttt.utils.table import read_entries, read_table, sort_lines, write_lines

TASK_MODE = {"asr": "asr", "tts": "tts", "qa": "chat"}


def prepare_eval(dialogues: str, codes: str, utt2lang: str, output_dir: str, tasks: List[str], max_per_task: int = 0):
    code_table = {entry.key: entry for entry in read_entries(codes, complete_lines=True)}
    lang_table = read_table(utt2lang)
    entries: Dict[str, List[Tuple[str, dict]]] = {t: [] for t in tasks}
    for where, d in read_dialogues(dialogues):
        if d["task"] in entries:
            entries[d["task"]].append((f"{where} ({dialogue_field(d, 'id', where)})", d))
    for task in tasks:
        rows = sorted(entries[task], key=lambda row: row[1]["id"].encode())
        if max_per_task:
            rows = rows[:: max(1, len(rows) // max_per_task)][:max_per_task]  # spread over speakers/items
        if not rows:
            raise InputError(f"{dialogues}: no '{task}' dialogues to evaluate")
        out = os.path.join(output_dir, task)
        os.makedirs(out, exist_ok=True)
        files: Dict[str, List[str]] = {"keys": [], "ref_text": [], "utt2lang": [], "utt2spk": []}
        files.update({"codes": []} if task in ("asr", "qa") else {"text": []})
        if task == "qa":
            files["answer_key"] = []
        for where, d in rows:
            key = d["id"]
            files["keys"].append(key)
            files["utt2lang"].append(f"{key} {dialogue_field(d, 'lang', where)}")
            files["utt2spk"].append(f"{key} {key}")
            if task == "tts":
                files["text"].append(f"{key} {dialogue_field(d, 'question_text', where)}")
                files["ref_text"].append(f"{key} {d['question_text']}")
            else:
                utt = dialogue_field(d, "question_utt", where)
                if utt not in code_table:
                    raise InputError(f"{where}: utterance {utt} has no codes in {codes}")
                entry = code_table[utt]
                parse_codes(entry.value, f"{codes}:{entry.line}: utterance '{utt}'")
                files["codes"].append(f"{key} {entry.value}")
                files["ref_text"].append(f"{key} {dialogue_field(d, 'answer_text', where)}")
            if task == "qa":
                answers = d.get("answer_key")
                if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a for a in answers):
                    raise InputError(f"{where}: field 'answer_key' must be a non-empty list of strings, got {answers!r}")
                files["answer_key"].append(f"{key} {'|'.join(answers)}")
        for name, lines in files.items():
            write_lines(os.path.join(out, name), sort_lines(lines))
        write_lines(os.path.join(out, "mode"), [TASK_MODE[task]])
        logging.info(f"{task}: {len(rows)} dialogues -> {out}")
    missing = [u for u in code_table if u not in lang_table]
    if missing:
        logging.warning(f"{len(missing)} coded utterances have no language in {utt2lang}, e.g. {missing[:3]}")


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogues", required=True)
    parser.add_argument("--codes", required=True)
    parser.add_argument("--utt2lang", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--tasks", default="asr,tts,qa")
    parser.add_argument("--max_per_task", type=int, default=0, help="0: all")
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    prepare_eval(args.dialogues, args.codes, args.utt2lang, args.output_dir,
                 [t for t in args.tasks.replace(",", " ").split() if t], args.max_per_task)


if __name__ == "__main__":
    run(main, "prepare_eval")
