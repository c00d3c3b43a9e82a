#!/usr/bin/env python3
"""Benchmark (not a test): a TtT training step with the hybrid mask vs a plain causal step.

Both steps run the same backbone on the same [B, L] batch with forward, backward and an AdamW
update.  The TtT step is ``TtTModel.forward`` (modality mask, masking, AR + diffusion loss);
the causal step is the backbone with ``is_causal=True`` and a next-token cross-entropy.
Steps alternate so both see the same machine state; medians are reported.

    python bench/train_step.py [--batch 4 --length 512 --d_model 256 --n_layer 4 --steps 10]

The last line reads ``hybrid_over_causal=<ratio>``.
"""
import argparse
import random
import statistics
import time

import torch
import torch.nn.functional as F

from espnet2_ttt.espnet_model import TtTModel
from espnet2_ttt.models.transformer import TtTTransformer
from espnet2_ttt.vocabulary import (
    BEGIN_OF_AUDIO, BEGIN_OF_LAST_SPAN, END_OF_LAST_SPAN, END_OF_SPAN, END_OF_USER_AUDIO, IM_END,
    IM_START, ROLE_ASSISTANT, ROLE_SYSTEM, ROLE_USER, TtTVocabulary, audio_token,
)


def spoken_chat_batch(vocab, batch, length, rng):
    """Official chat layout: 125-code user audio, then 13 text + 26-code spans, cut to ``length``."""
    words = [t for t in vocab.token_list if t.startswith("▁")]
    rows = []
    for _ in range(batch):
        seq = [IM_START, ROLE_SYSTEM, IM_END, IM_START, ROLE_USER, BEGIN_OF_AUDIO]
        seq += [audio_token(rng.randrange(vocab.codebook_size)) for _ in range(125)]
        seq += [END_OF_USER_AUDIO, IM_END, IM_START, ROLE_ASSISTANT]
        while len(seq) < length - 60:
            seq += [rng.choice(words) for _ in range(13)] + [BEGIN_OF_AUDIO]
            seq += [audio_token(rng.randrange(vocab.codebook_size)) for _ in range(26)] + [END_OF_SPAN]
        tail = length - len(seq) - 16
        seq += [rng.choice(words) for _ in range(13)] + [BEGIN_OF_LAST_SPAN]
        seq += [audio_token(rng.randrange(vocab.codebook_size)) for _ in range(tail)] + [END_OF_LAST_SPAN]
        rows.append(vocab.tokens_to_ids(seq[:length - 1] + [IM_END]))
    return torch.tensor(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--d_model", type=int, default=256)
    parser.add_argument("--n_layer", type=int, default=4)
    parser.add_argument("--n_head", type=int, default=4)
    parser.add_argument("--codebook_size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="autocast the forward to bfloat16")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    torch.manual_seed(0)
    vocab = TtTVocabulary.build([f"▁w{i}" for i in range(500)], args.codebook_size)
    backbone = TtTTransformer(len(vocab), d_model=args.d_model, n_layer=args.n_layer, n_head=args.n_head,
                              max_len=max(2048, args.length))
    # every micro-batch takes the diffusion path (the more expensive one): BANOM off
    model = TtTModel(vocab, backbone, banom_prob=0.0).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = spoken_chat_batch(vocab, args.batch, args.length, random.Random(0)).to(device)
    lengths = torch.full((args.batch,), args.length, device=device)
    autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)  # noqa: E731

    def hybrid_step():
        with autocast():
            loss, _, _ = model(ids, lengths)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def causal_step():
        with autocast():
            logits = backbone(ids, None)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    times = {"hybrid": [], "causal": []}
    model.train()
    for i in range(args.warmup + args.steps):
        for name, step in (("hybrid", hybrid_step), ("causal", causal_step)):
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - t0)
    hybrid, causal = statistics.median(times["hybrid"]), statistics.median(times["causal"])
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu threads={torch.get_num_threads()}"
    print(f"device={where} bf16={args.bf16} batch={args.batch} length={args.length} "
          f"d_model={args.d_model} n_layer={args.n_layer} vocab={len(vocab)} steps={args.steps}")
    print(f"hybrid_step_s={hybrid:.4f} causal_step_s={causal:.4f}")
    print(f"hybrid_over_causal={hybrid / causal:.3f}")


if __name__ == "__main__":
    main()
