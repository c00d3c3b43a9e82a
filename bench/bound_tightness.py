#!/usr/bin/env python3
"""Bound tightness (paper Eq. 20, the review's request): how far the training bound lies
above the span NLL it bounds, on a trained model and real sequences.

    tools/venv/bin/python bench/bound_tightness.py --exp_dir egs/ttt_bilingual/exp/ttt_train_ttt \\
        --seq_file egs/ttt_bilingual/dump/seq/dev/seq [--task tts] [--num_spans 24] [--orders 256]

For each chosen span (an assistant audio span, its end marker included, after its clean
context; see :mod:`espnet2_ttt.span_likelihood`), with ``K`` random orders and ``D`` masking
draws: the ELBO twice (mean order NLL; mean of the training estimator), and the importance-
weighted bounds ``IW_k`` (``k`` orders per estimate) that fall towards the span NLL as ``k``
grows.  ``ELBO - IW_K`` is a lower bound on the gap (the true gap is larger by what ``IW_K``
still overestimates; the ``IW_k`` column shows how fast it is still falling).  Were the order
NLLs normal, the span NLL would be ``mean - var / 2``: the column ``var/2`` gives that
(log-normal) estimate of the whole gap, to read against the measured one.  From the second
span on (``--span_index 1``), "noisy ctx" is the training estimator with the earlier spans
masked at the same rate, as training draws it (the bound conditions on clean spans), drawn
with the same rates and span masks as the clean-context column (paired).  All values
are nats per span position, averaged over spans.  ``--ar_exp_dir``: also the exact span NLL
of the AR-only baseline (``audio_objective: ar``) on the same spans, the likelihood side of
baseline parity.  Ends with the lines ``elbo_per_token``,
``iw<K>_per_token`` and ``gap_per_token``.  Draws are seeded (``--seed``).
"""
import argparse
import functools
import math
import time
from pathlib import Path

import torch

from espnet2_ttt.mask import span_starts
from espnet2_ttt.sequence import supervised_mask
from espnet2_ttt.span_likelihood import causal_span_nll, importance_weighted_nll, masking_bound_samples, order_nlls, random_orders
from espnet2_ttt.tasks.ttt import TtTTask

print = functools.partial(print, flush=True)


def read_sequences(path: Path, vocab, task: str):
    """``<id> tok tok ...`` lines whose id starts with ``<task>-`` -> [(id, ids [L])]."""
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            key, *tokens = line.split()
            if not key.startswith(f"{task}-"):
                continue
            unknown = [t for t in tokens if t not in vocab.token2id]
            if unknown:
                raise ValueError(f"{path}:{lineno} ({key}): tokens not in the model's token list: {unknown[:5]}")
            out.append((key, torch.tensor([vocab.token2id[t] for t in tokens])))
    if not out:
        raise ValueError(f"{path}: no sequence id starts with '{task}-'")
    return out


def maskable_audio(ids: torch.Tensor, vocab) -> torch.Tensor:
    """[L] bool: the supervised audio positions (what training masks, PPM aside)."""
    return vocab.is_audio_side(ids) & supervised_mask(ids[None], torch.ones(1, len(ids), dtype=torch.bool), vocab)[0]


def assistant_spans(ids: torch.Tensor, vocab):
    """[(start, end)] of the supervised audio runs of one sequence (end exclusive)."""
    audio = maskable_audio(ids, vocab)
    spans = []
    for s in torch.nonzero(span_starts(audio[None])[0]).squeeze(1).tolist():
        e = s
        while e < len(ids) and audio[e]:
            e += 1
        spans.append((s, e))
    return spans


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, help="holds config.yaml and the model file")
    parser.add_argument("--train_config", type=Path, help="default: <exp_dir>/config.yaml")
    parser.add_argument("--model_file", type=Path, help="default: <exp_dir>/valid.acc.ave.pth")
    parser.add_argument("--seq_file", type=Path, required=True, help="stage-6 sequences (dump/seq/<set>/seq)")
    parser.add_argument("--task", default="tts", help="sequence id prefix: tts, asr, qa")
    parser.add_argument("--span_index", type=int, default=0,
                        help="which assistant span of a sequence (0 = first); from 1 on, the training estimator "
                             "is also drawn with the earlier spans masked at the same rate (column 'noisy ctx')")
    parser.add_argument("--num_spans", type=int, default=24)
    parser.add_argument("--orders", type=int, default=256, help="random orders per span (K; IW_k for k = 1, 4, 16, ... <= K)")
    parser.add_argument("--draws", type=int, default=256, help="draws of the training estimator per span")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ar_exp_dir", type=Path,
                        help="an AR-only baseline (audio_objective: ar, same token list): its exact span NLL per span")
    args = parser.parse_args(cmd)
    if args.orders < 4 or args.num_spans < 1:
        parser.error("--orders must be >= 4 and --num_spans >= 1")
    train_config = args.train_config or args.exp_dir / "config.yaml"
    model_file = args.model_file or args.exp_dir / "valid.acc.ave.pth"
    model, _ = TtTTask.build_model_from_file(train_config, model_file, "cpu")
    model.eval()
    backbone, vocab = model.backbone, model.vocab
    ar_model = None
    if args.ar_exp_dir:
        ar_model, _ = TtTTask.build_model_from_file(args.ar_exp_dir / "config.yaml", args.ar_exp_dir / "valid.acc.ave.pth", "cpu")
        if ar_model.audio_objective != "ar" or ar_model.vocab.token_list != vocab.token_list:
            raise SystemExit(f"{args.ar_exp_dir}: not an AR-only model (audio_objective: ar) with the same token list")
        ar_model.eval()
    g = torch.Generator().manual_seed(args.seed)

    sequences = read_sequences(args.seq_file, vocab, args.task)
    chosen = []
    for i in torch.randperm(len(sequences), generator=g).tolist():
        key, ids = sequences[i]
        spans = assistant_spans(ids, vocab)
        if len(spans) > args.span_index:
            chosen.append((key, ids, *spans[args.span_index]))
        if len(chosen) == args.num_spans:
            break
    if not chosen:
        raise SystemExit(f"{args.seq_file}: no '{args.task}' sequence has an assistant span number {args.span_index}")
    ks = [1]
    while ks[-1] * 4 <= args.orders:
        ks.append(ks[-1] * 4)
    print(f"{train_config} / {model_file.name}: {len(chosen)} spans (index {args.span_index}) of '{args.task}' "
          f"sequences from {args.seq_file}; {args.orders} orders, {args.draws} masking draws per span; "
          f"threads={torch.get_num_threads()}")
    print(f"{'id':40s} {'n':>3s} {'ctx':>4s} {'ELBO(orders)':>12s} {'ELBO(masking)':>13s} {'noisy ctx':>9s} "
          + " ".join(f"{'IW_' + str(k):>7s}" for k in ks) + f" {'var/2':>7s}" + (" AR-only" if ar_model else "")
          + "  (nats per position)")
    rows, paired, paired_se, ar_nlls = [], [], [], []
    t0 = time.perf_counter()
    for key, ids, s, e in chosen:
        context, span = ids[:s], ids[s:e]
        n = len(span)
        nlls = order_nlls(backbone, vocab, context, span, random_orders(args.orders, n, g), args.batch_size)
        state = g.get_state()
        draws = masking_bound_samples(backbone, vocab, context, span, args.draws, g, batch_size=args.batch_size)
        earlier = maskable_audio(ids, vocab)[:s]
        noisy = float("nan")
        if earlier.any():  # the same t and span masks (paired draws), the earlier spans masked too
            after = g.get_state()
            g.set_state(state)
            noisy = masking_bound_samples(backbone, vocab, context, span, args.draws, g, earlier, args.batch_size)
            g.set_state(after)
            paired.append(float((noisy - draws).mean()) / n)
            paired_se.append(float((noisy - draws).std()) / math.sqrt(args.draws) / n)
            noisy = float(noisy.mean()) / n
        iw = [float(importance_weighted_nll(nlls[: args.orders // k * k].view(-1, k)).mean()) / n for k in ks]
        rows.append((float(nlls.mean()) / n, float(draws.mean()) / n, iw,
                     float(nlls.std()) / math.sqrt(len(nlls)) / n, float(draws.std()) / math.sqrt(len(draws)) / n,
                     float(nlls.var()) / 2 / n, noisy))
        if ar_model:
            ar_nlls.append(causal_span_nll(ar_model.backbone, vocab, context, span) / n)
        print(f"{key:40s} {n:3d} {s:4d} {rows[-1][0]:12.4f} {rows[-1][1]:13.4f} {rows[-1][6]:9.4f} "
              + " ".join(f"{v:7.4f}" for v in iw)
              + f" {rows[-1][5]:7.4f}" + (f" {ar_nlls[-1]:7.4f}" if ar_model else ""))
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    elbo, elbo_masking = mean([r[0] for r in rows]), mean([r[1] for r in rows])
    iw = [mean([r[2][j] for r in rows]) for j in range(len(ks))]
    se_orders = math.sqrt(sum(r[3] ** 2 for r in rows)) / len(rows)
    se_masking = math.sqrt(sum(r[4] ** 2 for r in rows)) / len(rows)
    gap = elbo - iw[-1]
    gauss = mean([r[5] for r in rows])
    print(f"\nmean over {len(rows)} spans ({time.perf_counter() - t0:.0f} s): ELBO {elbo:.4f} (orders, +-{se_orders:.4f}) / "
          f"{elbo_masking:.4f} (training estimator, +-{se_masking:.4f}); "
          + ", ".join(f"IW_{k} {v:.4f}" for k, v in zip(ks, iw)))
    print(f"gap ELBO - IW_{ks[-1]} = {gap:.4f} nats per position ({100 * gap / elbo:.1f} % of the ELBO); "
          f"IW_{ks[-2]} - IW_{ks[-1]} = {iw[-2] - iw[-1]:.4f} (still falling by that much per 4x orders); "
          f"log-normal estimate of the whole gap var/2 = {gauss:.4f}")
    if paired:
        print(f"earlier spans masked at the same rate, as training draws them (paired draws): training estimator "
              f"{mean([r[6] for r in rows]):.4f}, {mean(paired):+.4f} +- "
              f"{math.sqrt(sum(x ** 2 for x in paired_se)) / len(paired):.4f} against the clean context")
    if ar_nlls:
        print(f"AR-only model ({args.ar_exp_dir}), exact span NLL of the same spans: {mean(ar_nlls):.4f} nats per position")
    print(f"elbo_per_token={elbo:.4f}")
    print(f"iw{ks[-1]}_per_token={iw[-1]:.4f}")
    print(f"gap_per_token={gap:.4f}")


if __name__ == "__main__":
    main()
