"""Small deterministic vocabularies, sequences and data dirs for the tests; a bounded subprocess runner."""
import os
import random
import signal
import subprocess
from pathlib import Path
from typing import Dict, List, Sequence

from espnet2_ttt.vocabulary import (
    BEGIN_OF_AUDIO,
    BEGIN_OF_LAST_SPAN,
    END_OF_LAST_SPAN,
    END_OF_SPAN,
    END_OF_USER_AUDIO,
    IM_END,
    IM_START,
    ROLE_ASSISTANT,
    ROLE_SYSTEM,
    ROLE_USER,
    TtTVocabulary,
    audio_token,
)

WORDS = [f"▁w{i}" for i in range(20)]


def run_bounded(cmd: Sequence[str], timeout: float, capture_output: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` that always ends: stdin is closed, the command runs in a process group of
    its own, and the whole group is killed when ``timeout`` passes or the test is interrupted
    (``subprocess.run`` kills only its direct child and then waits for pipes that a grandchild may
    hold open forever).  Raises ``subprocess.TimeoutExpired`` on timeout."""
    if capture_output:
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, process_group=0, **kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def tiny_vocab(codebook_size: int = 16) -> TtTVocabulary:
    return TtTVocabulary.build(WORDS, codebook_size)


def chat_sequence(
    rng: random.Random, n_spans: int, codebook_size: int = 16, chunk: int = 3, span: int = 4, words=WORDS
) -> List[str]:
    """A spoken-chat example: user audio, then n_spans-1 interleaved spans and a final span.

    The assistant's audio follows a learnable rule (code = word index mod K), so models can learn it.
    ``words``: the text pieces to draw from.
    """
    user = [BEGIN_OF_AUDIO] + [audio_token(rng.randrange(codebook_size)) for _ in range(rng.randint(2, 6))] + [END_OF_USER_AUDIO]
    out = [IM_START, ROLE_SYSTEM, IM_END, IM_START, ROLE_USER, *user, IM_END, IM_START, ROLE_ASSISTANT]
    for s in range(n_spans):
        drawn = [rng.randrange(len(words)) for _ in range(chunk)]
        out += [words[w] for w in drawn]
        last = s == n_spans - 1
        codes = [audio_token(w % codebook_size) for w in drawn for _ in range(span // chunk + 1)]
        codes = codes if last else codes[:span]
        out += [BEGIN_OF_LAST_SPAN if last else BEGIN_OF_AUDIO, *codes, END_OF_LAST_SPAN if last else END_OF_SPAN]
    return out + [IM_END]


def write_seq_file(path: Path, seqs: Dict[str, List[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k} {' '.join(v)}\n" for k, v in sorted(seqs.items())), encoding="utf-8")
    return path
