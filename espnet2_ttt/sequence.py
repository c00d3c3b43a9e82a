"""The on-disk TtT sequence format and what the model derives from it.

A training example is one line of a Kaldi-style text file: ``<utt_id> <tok> <tok> ...``, the
tokens being strings of the token list (SentencePiece pieces, specials, ``<|audio_k|>``).

Chat examples (IT data) use the template, with no newline tokens::

    <|im_start|> <|system|> [system text] <|im_end|>          (always present, may be empty)
    <|im_start|> <|user|> [user content] <|im_end|>
    <|im_start|> <|assistant|> [assistant content] <|im_end|>  (turns may repeat)

User audio is ``<|begin_of_audio|> codes <|end_of_audio|>``.  Assistant content interleaves
text chunks and spans: ``text <|begin_of_audio|> codes <|end_of_audio_new|> text ...
<|begin_of_quad|> codes <|end_of_audio_span_last|>``.  Examples that do not start with
``<|im_start|>`` are free interleaved text (PT data): every position is supervised.

Supervision (what the loss sees) is derived from the structure, not stored: the content of
every assistant turn and its ``<|im_end|>`` (not the ``<|im_start|> <|assistant|>`` header),
or everything in PT data.  Audio is maskable only where it is supervised, so prompt audio is
never masked, in single- and multi-turn data alike.
"""
import torch

from espnet2_ttt.vocabulary import TtTVocabulary


def supervised_mask(ids: torch.Tensor, valid: torch.Tensor, vocab: TtTVocabulary) -> torch.Tensor:
    """[B, L] ids, [B, L] bool valid -> [B, L] bool: positions the loss may supervise."""
    is_start = ids == vocab.im_start_id
    turn = torch.cumsum(is_start.long(), dim=1)  # 0 before the first <|im_start|>
    is_role = torch.nn.functional.pad(is_start[:, :-1], (1, 0), value=False)
    # role token of every turn; turn 0 (no template) counts as assistant (PT data)
    turn_role = torch.full((ids.shape[0], ids.shape[1] + 1), -1, dtype=ids.dtype, device=ids.device)
    turn_role[:, 0] = vocab.role_ids["assistant"]
    turn_role.scatter_(1, torch.where(is_role, turn, 0), torch.where(is_role, ids, turn_role[:, :1]))
    role = torch.gather(turn_role, 1, turn)
    return (role == vocab.role_ids["assistant"]) & ~is_start & ~is_role & valid
