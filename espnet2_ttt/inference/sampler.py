"""Sampling primitives of TtT decoding: AR text sampling and one block-diffusion step.

Every random choice draws from a ``torch.Generator`` passed in by the caller, and the shapes
of the draws depend only on the block / vocabulary sizes, never on how the logits were
computed, so the cached and the reference decoding paths consume identical random streams.
"""
from __future__ import annotations

from typing import List

import torch


def commit_schedule(block_length: int, steps: int) -> List[int]:
    """Tokens committed at each of ``steps`` steps of one block (official / LLaDA split).

    ``block_length // steps`` per step, the first ``block_length % steps`` steps get one more;
    the counts sum to ``block_length``.  Requires ``1 <= steps <= block_length`` (a step that
    commits nothing would be a wasted forward).
    """
    if not 1 <= steps <= block_length:
        raise ValueError(f"steps per block must be in [1, {block_length}], got {steps}")
    base, extra = divmod(block_length, steps)
    return [base + (i < extra) for i in range(steps)]


def steps_per_block(total_steps: int, max_span_length: int, block_length: int) -> int:
    """Official rule: the step budget covers a span of ``max_span_length`` tokens.

    ``steps per block = total_steps / (max_span_length / block_length)``; both divisions
    must be exact, as in the official code.
    """
    num_blocks, rest = divmod(max_span_length, block_length)
    if rest or num_blocks == 0:
        raise ValueError(f"max_span_length={max_span_length} is not a multiple of block_length={block_length}")
    steps, rest = divmod(total_steps, num_blocks)
    if rest or steps == 0:
        raise ValueError(f"diffusion_steps={total_steps} is not a multiple of the {num_blocks} blocks of a span")
    return steps


def gumbel_argmax(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """[..., V] logits -> [...] ids: a sample of softmax(logits / T) by the Gumbel-max trick.

    Computed in float64 (as the official code).  ``T == 0`` is plain argmax and draws nothing.
    """
    if temperature == 0:
        return logits.argmax(-1)
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float64, device=logits.device)
    gumbel = -torch.log(-torch.log(u.clamp_min(torch.finfo(torch.float64).tiny)))
    return (logits.double() / temperature + gumbel).argmax(-1)


def sample_text(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float, generator: torch.Generator
) -> int:
    """[V] logits (-inf = forbidden) -> one token id, official AR rule (doc 7.4).

    Greedy unless ``temperature > 0`` or top-k / top-p is set; then softmax at
    ``temperature`` (1.0 when it is 0), keep the ``top_k`` best (0 = all) and renormalise,
    keep the tokens whose preceding cumulative mass is ``< top_p`` (at least one; 1.0 = all),
    renormalise and draw one sample.
    """
    if temperature <= 0 and top_k <= 0 and top_p >= 1.0:
        return int(logits.argmax())
    probs = torch.softmax(logits.double() / (temperature if temperature > 0 else 1.0), dim=-1)
    probs, order = probs.sort(descending=True)
    if top_k > 0:
        probs[top_k:] = 0
        probs = probs / probs.sum()
    if top_p < 1.0:
        preceding = probs.cumsum(0) - probs
        probs[1:][preceding[1:] >= top_p] = 0
    choice = torch.multinomial(probs / probs.sum(), 1, generator=generator)
    return int(order[choice])


def diffusion_step(
    block: torch.Tensor,
    logits: torch.Tensor,
    vocab_ids: torch.Tensor,
    num_commit: int,
    mask_id: int,
    temperature: float,
    remasking: str,
    generator: torch.Generator,
) -> torch.Tensor:
    """One denoising step of a block: predict every position, commit the ``num_commit`` best.

    Args:
        block: [Bk] ids of the current block, ``mask_id`` where still masked.
        logits: [Bk, V'] guided logits restricted to the span vocabulary (-inf = forbidden).
        vocab_ids: [V'] token id of every column of ``logits``.
        num_commit: how many masked positions to commit (<= number still masked).
        remasking: "low_confidence" (confidence = softmax(logits)[prediction], no
            temperature) or "random" (uniform confidence).
    Returns:
        [Bk] new block; committed positions never change again.
    """
    pred = gumbel_argmax(logits, temperature, generator)  # [Bk] column indices
    if remasking == "low_confidence":
        conf = torch.softmax(logits.double(), dim=-1).gather(-1, pred[:, None]).squeeze(-1)
    elif remasking == "random":
        conf = torch.rand(block.shape, generator=generator, dtype=torch.float64, device=block.device)
    else:
        raise ValueError(f"unknown remasking {remasking!r}: use 'low_confidence' or 'random'")
    conf = conf.masked_fill(block != mask_id, -torch.inf)
    chosen = conf.topk(num_commit).indices
    block = block.clone()
    block[chosen] = vocab_ids[pred[chosen]]
    return block
