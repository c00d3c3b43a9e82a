#!/usr/bin/env python3
"""Device check of the hf_causal_lm backbone (not a test): a tiny random Qwen2 on CUDA.

1. bf16 training steps of TtTModel (modality mask, BANOM/PPM/SST, hybrid loss) with gradient
   checkpointing, autocast to bfloat16 (ESPnet's ``--use_amp``) and then with bfloat16 weights
   (what DeepSpeed's bf16 mode runs); the loss must stay finite and fall.
2. Decoding on CUDA in float32: the exact KV cache (transformers' DynamicCache) writes the same
   tokens as the full recompute, CFG off and on.

    PYTHONPATH=.:tests python bench/hf_gpu_check.py [--device cuda --steps 30]

Prints one ``ok``/``FAIL`` line per check and exits 1 if any failed.
"""
import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import chat_sequence  # noqa: E402
from tiny_qwen import save_tiny_qwen  # noqa: E402

from espnet2_ttt.espnet_model import TtTModel  # noqa: E402
from espnet2_ttt.inference import DecodeConfig, Forcing, TtTDecoder, build_prompt  # noqa: E402
from espnet2_ttt.models.hf_backbone import HFCausalLM  # noqa: E402
from espnet2_ttt.pretrained_vocab import HFTextTokenizer  # noqa: E402
from espnet2_ttt.vocabulary import TtTVocabulary  # noqa: E402

K = 16


def batch(vocab, words, rng, size, device):
    """[B, L] ids (right-padded with <pad>) and [B] lengths of random spoken-chat examples."""
    rows = [vocab.tokens_to_ids(chat_sequence(rng, rng.randint(1, 3), K, words=words)) for _ in range(size)]
    seq = torch.zeros(size, max(map(len, rows)), dtype=torch.long)
    for i, r in enumerate(rows):
        seq[i, : len(r)] = torch.tensor(r)
    return seq.to(device), torch.tensor([len(r) for r in rows], device=device)


def train(model, vocab, words, steps, device, autocast):
    rng = random.Random(0)
    data = [batch(vocab, words, rng, 8, device) for _ in range(4)]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for step in range(steps):
        seq, lengths = data[step % len(data)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss, stats, _ = model(seq, lengths)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        losses.append(float(stats["loss_ar"]))  # AR loss: defined on every batch (diffusion is BANOM-gated)
    return losses


def report(name, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=64)
    args = parser.parse_args()
    device = torch.device(args.device)
    print("torch", torch.__version__, torch.cuda.get_device_name() if device.type == "cuda" else "cpu")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        qwen = str(save_tiny_qwen(Path(tmp) / "qwen", hidden=args.hidden))
        vocab = TtTVocabulary.build(HFTextTokenizer(qwen).pieces(), K)
        words = vocab.ids_to_tokens(vocab.text_ids[30:50])

        def new_model():
            torch.manual_seed(0)
            backbone = HFCausalLM(len(vocab), vocab.token_list, pretrained=qwen, gradient_checkpointing=True)
            return TtTModel(vocab, backbone).to(device)

        for name, autocast, dtype in [("bf16 autocast, fp32 weights", True, torch.float32),
                                      ("bf16 weights", False, torch.bfloat16)]:
            t0 = time.perf_counter()
            losses = train(new_model().to(dtype), vocab, words, args.steps, device, autocast)
            first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
            ok = all(torch.isfinite(torch.tensor(losses))) and last < first
            results.append(report(f"train {name}", ok, f"AR loss {first:.3f} -> {last:.3f} in {args.steps} steps, "
                                                      f"{time.perf_counter() - t0:.1f}s"))

        backbone = new_model().backbone.eval()
        pieces = vocab.ids_to_tokens(vocab.text_ids[20:23])
        prompt = build_prompt(vocab, "chat", user_text=pieces, user_codes=[3, 1, 4, 1, 5])
        forcing = Forcing(text_ids=[vocab.token2id[pieces[0]], vocab.soa_id], span_lengths=[11])
        for cfg_scale in (0.0, 0.5):
            conf = dict(max_new_tokens=60, block_length=8, steps_per_block=3, max_span_length=24, top_k=6,
                        diffusion_temperature=0.8, cfg_scale=cfg_scale)
            out = [TtTDecoder(backbone, vocab, DecodeConfig(**conf, use_cache=c)).decode(
                prompt, torch.Generator(device).manual_seed(0), forcing) for c in (True, False)]
            same = out[0].token_ids == out[1].token_ids
            results.append(report(f"decode cfg {cfg_scale}", same, f"{len(out[0].token_ids)} tokens, "
                                  f"cached {out[0].timings['total']:.2f}s vs full {out[1].timings['total']:.2f}s"))
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
