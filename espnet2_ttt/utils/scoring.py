"""Tokenisation, sclite-compatible alignment and answer accuracy for scoring.

Error rates (the unit is what ``Wrd`` counts):

* ``wer``: words = blank-separated tokens (English);
* ``cer``: characters, blanks removed (Mandarin);
* ``mer``: mixed error rate for bilingual / code-switched text: every CJK character
  is a token and the rest is split into words at blanks and at CJK characters, so
  "我喜欢apple pie" gives 我 喜 欢 apple pie. Use it when a test set mixes languages.

Alignment uses sclite's defaults so that the built-in scorer gives sclite's numbers:
costs substitution 4, insertion 3, deletion 3; tokens compared with ASCII letters
case-folded; among equally cheap alignments (traced back from the end) a match or
substitution is preferred over an insertion, and an insertion over a deletion
(checked against sctk 2.4.10 on thousands of random pairs).
"""

import dataclasses
import re
import string
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple

METRIC_UNITS = {"wer": "word", "cer": "char", "mer": "mixed"}
SUBSTITUTION_COST, INSERTION_COST, DELETION_COST = 4, 3, 3
_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_CJK = (
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3000-\u303f"  # CJK symbols and punctuation
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u4dbf"  # CJK unified ideographs extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff00-\uffef"  # half- and full-width forms
    "\U00020000-\U0003ffff"  # CJK extensions B and later
)
_MIXED_TOKEN = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")

# (operation, reference token, hypothesis token); operation is C, S, D or I and the
# missing side of a deletion / insertion is None.
AlignedPair = Tuple[str, Optional[str], Optional[str]]


def tokenize(text: str, unit: str) -> List[str]:
    """Split ``text`` into scoring tokens; ``unit`` is word, char or mixed."""
    if unit == "word":
        return text.split()
    if unit == "char":
        return [char for char in text if not char.isspace()]
    if unit == "mixed":
        return _MIXED_TOKEN.findall(text)
    raise ValueError(f"unknown token unit '{unit}' (word, char or mixed)")


def fold_case(token: str) -> str:
    """Lower-case ASCII letters only, as sclite compares words."""
    return token.translate(_ASCII_FOLD)


def align(ref: Sequence[str], hyp: Sequence[str]) -> List[AlignedPair]:
    """Minimum-cost alignment of two token sequences (see the module docstring)."""
    ref_keys = [fold_case(t) for t in ref]
    hyp_keys = [fold_case(t) for t in hyp]
    # cost[i][j]: cheapest alignment of ref[:i] with hyp[:j]
    cost = [[j * INSERTION_COST for j in range(len(hyp) + 1)]]
    for i in range(1, len(ref) + 1):
        row = [i * DELETION_COST]
        for j in range(1, len(hyp) + 1):
            diagonal = cost[i - 1][j - 1] + (
                0 if ref_keys[i - 1] == hyp_keys[j - 1] else SUBSTITUTION_COST)
            row.append(min(diagonal, cost[i - 1][j] + DELETION_COST,
                           row[j - 1] + INSERTION_COST))
        cost.append(row)

    pairs: List[AlignedPair] = []
    i, j = len(ref), len(hyp)
    while i > 0 or j > 0:
        same = i > 0 and j > 0 and ref_keys[i - 1] == hyp_keys[j - 1]
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (
                0 if same else SUBSTITUTION_COST):
            pairs.append(("C" if same else "S", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif j > 0 and cost[i][j] == cost[i][j - 1] + INSERTION_COST:
            pairs.append(("I", None, hyp[j - 1]))
            j -= 1
        else:
            pairs.append(("D", ref[i - 1], None))
            i -= 1
    return pairs[::-1]


@dataclasses.dataclass
class ErrorCounts:
    """sclite's counts: sentences, reference tokens and alignment operations."""

    sentences: int = 0
    words: int = 0
    correct: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    sentence_errors: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @classmethod
    def of_sentence(cls, pairs: Sequence[AlignedPair]) -> "ErrorCounts":
        ops = [op for op, _, _ in pairs]
        counts = cls(
            sentences=1, words=sum(op != "I" for op in ops), correct=ops.count("C"),
            substitutions=ops.count("S"), deletions=ops.count("D"),
            insertions=ops.count("I"),
        )
        counts.sentence_errors = int(counts.errors > 0)
        return counts

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(*(a + b for a, b in zip(dataclasses.astuple(self),
                                                   dataclasses.astuple(other))))


# ----------------------------------------------------------------- answer accuracy


def answer_tokens(text: str) -> List[str]:
    """Normalise for answer matching (NFKC, case-fold, punctuation and symbols to
    blanks) and split into mixed tokens (CJK characters, other words)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(char)[0] in "PS" else char for char in text)
    return tokenize(text, "mixed")


def matching_answer(hyp: str, answers: Sequence[str]) -> Optional[str]:
    """The first answer whose tokens occur contiguously in the hypothesis, else None.

    So an English answer must appear as whole words and a Mandarin one as a
    substring (blanks ignored).
    """
    hyp_tokens = answer_tokens(hyp)
    for answer in answers:
        tokens = answer_tokens(answer)
        width = len(tokens)
        if tokens and any(hyp_tokens[i:i + width] == tokens
                          for i in range(len(hyp_tokens) - width + 1)):
            return answer
    return None


def parse_answers(value: str) -> List[str]:
    """The answers of an answer-key line value ``key1|key2|...``."""
    return [answer.strip() for answer in value.split("|") if answer.strip()]


def answer_accuracy(answer_keys: Dict[str, List[str]], hyps: Dict[str, str]
                    ) -> List[Tuple[str, Optional[str]]]:
    """``(utt, matched answer or None)`` for every utterance of ``answer_keys``;
    an utterance without hypothesis is wrong."""
    return [(utt, matching_answer(hyps[utt], answers) if utt in hyps else None)
            for utt, answers in answer_keys.items()]
