#!/usr/bin/env python3
"""TtT decoding benchmark on a random model (speed only; a random model says nothing on quality).

    OMP_NUM_THREADS=2 tools/venv/bin/python bench/decode.py [--d_model 256 --n_layer 4 --codes 1024]
                                                            [--scaling 512x8 768x12 [--scaling_only]]

Layout (official spoken chat): a 10 s user audio prompt (125 codes), then 10 chunks of 13
text tokens, each followed by a 26-code span + EOA (the last one opened by
``<|begin_of_quad|>``), then ``<|im_end|>``.  A random model never follows it, so the AR
decisions and the span lengths are forced (:class:`Forcing`): every path does the same work.

Sections: cached vs reference (official full recompute: every position through every layer and
the output layer at every step; the compared decodes alternate round by round) with CFG off / on and the cheap
"span_only" unconditional input; a TTS-style single 640-code span; TtT diffusion vs AR-only
audio generation (one code per cached forward) over steps per block; time to first audio
and real-time factor; optionally (``--scaling``) the cache speedup of bigger models
(``--scaling_only``: that section alone).  On CPU the cached decodes run with the weight
layout :class:`TtTInference` picks by default (``auto``, :mod:`espnet2_ttt.models.cpu_layout`:
input-major on AMD CPUs, as trained elsewhere); the CFG-off references of sections [1] and [5]
on the weights as trained, as the official code runs, the other references on the same model
as the cached decodes (section [1] times both layouts).  Ends
with exactly three lines: cache_speedup, diffusion_over_ar_speedup, ttfa_s (chat layout,
CFG off, the ``--d_model``/``--n_layer`` model).
"""
from __future__ import annotations

import argparse
import copy
import functools
import statistics
import time
from typing import List, Sequence, Tuple

import torch

from espnet2_ttt.inference import DecodeConfig, DecodeResult, Forcing, TtTDecoder, build_prompt
from espnet2_ttt.models.cpu_layout import default_cpu_weight_layout, relayout_linear_weights_for_cpu
from espnet2_ttt.models.transformer import TtTTransformer
from espnet2_ttt.vocabulary import TtTVocabulary

print = functools.partial(print, flush=True)  # progress shows while the bench runs
CODE_RATE_HZ = 12.5
CHAT = dict(chunks=10, chunk_len=13, span_len=26, prompt_codes=125)
CHAT_DECODE = dict(block_length=26, steps_per_block=2, max_span_length=640)  # official chat settings
CHAT_CFG_OFF = dict(cfg_scale=0.0, **CHAT_DECODE)  # the compared decodes of sections [1], [3] and [5]


def chat_forcing(vocab: TtTVocabulary, rng: torch.Generator) -> Forcing:
    """10 x (13 text pieces + SOA) then <|im_end|>; every span exactly 26 codes."""
    text: List[int] = []
    pieces = vocab.text_ids[vocab.text_ids > vocab.soa_last_id]  # ordinary pieces follow the specials
    for i in range(CHAT["chunks"]):
        text += pieces[torch.randint(len(pieces), (CHAT["chunk_len"],), generator=rng)].tolist()
        text.append(vocab.soa_last_id if i == CHAT["chunks"] - 1 else vocab.soa_id)
    return Forcing(text + [vocab.im_end_id], [CHAT["span_len"]] * CHAT["chunks"])


def timed_decode(model, vocab, prompt, forcing, repeats=1, audio_objective="diffusion", **conf) -> Tuple[float, DecodeResult]:
    """Best wall time of ``repeats`` decodes (greedy, seed 0) and the last result;
    ``audio_objective="ar"``: spans one code per cached forward (the AR-only baseline's decoding).

    Also sets ``timed_decode.positions``: query positions the model ran in the last decode.
    On CUDA an untimed decode comes first: the first calls load kernels and pick algorithms.
    """
    device = next(model.parameters()).device

    def decode_once() -> Tuple[float, DecodeResult]:
        dec = TtTDecoder(model, vocab, DecodeConfig(**conf), audio_objective=audio_objective, time_phases=True)
        t0 = time.perf_counter()
        result = dec.decode(prompt, torch.Generator(device=device).manual_seed(0), forcing)
        return time.perf_counter() - t0, result

    if device.type == "cuda":
        decode_once()
    timed_decode.positions = 0

    def count(module, args):
        timed_decode.positions += args[0].numel()

    hook = model.register_forward_pre_hook(count)
    best, result = float("inf"), None
    for _ in range(repeats):
        seconds, result = decode_once()
        best = min(best, seconds)
    hook.remove()
    timed_decode.positions //= repeats
    return best, result


def interleaved_best(runs, vocab, prompt, forcing, repeats: int):
    """``runs``: {name: (model, decode options)} -> {name: (best seconds, its result, positions run)}.

    The decodes go round by round (every run once per round), so a slow spell of a shared
    machine hits each run alike; each run's best round is kept.  Also sets
    ``interleaved_best.rounds``: {name: [seconds of every round]}.
    """
    best = {name: (float("inf"), None, 0) for name in runs}
    interleaved_best.rounds = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (model, conf) in runs.items():
            t, r = timed_decode(model, vocab, prompt, forcing, **conf)
            interleaved_best.rounds[name].append(t)
            best[name] = min(best[name], (t, r, timed_decode.positions), key=lambda x: x[0])
    return best


def agreement(a: DecodeResult, b: DecodeResult) -> float:
    """Fraction of audio codes equal position by position (forced layouts have equal lengths).

    Codes are conditioned on earlier ones, so one early change can change many later codes.
    """
    x, y = torch.tensor(a.audio_codes), torch.tensor(b.audio_codes)
    return float((x == y).double().mean()) if len(x) == len(y) and len(x) else float("nan")


def build_model(vocab: TtTVocabulary, d_model: int, n_layer: int, n_head: int, device: str) -> TtTTransformer:
    """A random model (seed 0), its weights laid out as trained."""
    torch.manual_seed(0)
    return TtTTransformer(len(vocab), d_model=d_model, n_layer=n_layer, n_head=n_head, max_len=2048).to(device).eval()


def audio_seconds(result: DecodeResult) -> float:
    """From writing an SOA to the logits of the token after the span's EOA (all spans)."""
    return sum(result.timings.get(k, 0.0) for k in ("diffusion", "audio_ar", "span_close"))


def scaling(vocab, prompt, forcing, sizes: Sequence[str], repeats: int, device: str) -> None:
    """Chat-layout cache speedup, CFG off, for each ``DxL`` model size in ``sizes``."""
    for size in sizes:
        d_model, n_layer = (int(x) for x in size.split("x"))
        big = build_model(vocab, d_model, n_layer, max(4, d_model // 64), device)
        cached = big
        if device == "cpu" and default_cpu_weight_layout() == "input_major":  # as section [1]: reference as
            cached = copy.deepcopy(big)                                         # trained, cached as TtTInference
            relayout_linear_weights_for_cpu(cached)
        off = CHAT_CFG_OFF
        runs = {"reference": (big, dict(use_cache=False, **off)), "cached": (cached, dict(use_cache=True, **off))}
        best = interleaved_best(runs, vocab, prompt, forcing, repeats)
        (t_ref, r_ref, _), (t_c, r_c, _) = best["reference"], best["cached"]
        params = sum(p.numel() for p in big.parameters()) / 1e6
        print(f"  d{d_model}x{n_layer} ({params:.0f}M params): reference {t_ref:.2f}s  cached {t_c:.3f}s  "
              f"speedup {t_ref / t_c:.2f}x  code agreement {agreement(r_c, r_ref):.3f}")
        print("    cached phases: " + ", ".join(f"{k} {v:.3f}s/{r_c.forwards.get(k, '')}" for k, v in r_c.timings.items()))
        del big, cached


def main(cmd: Sequence[str] = None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d_model", type=int, default=256)
    parser.add_argument("--n_layer", type=int, default=4)
    parser.add_argument("--n_head", type=int, default=4)
    parser.add_argument("--text_pieces", type=int, default=500)
    parser.add_argument("--codes", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed decodes are the best of N (sections [1], [3] and [5]: N rounds in which "
                             "the compared decodes alternate)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scaling", nargs="*", default=[], metavar="DxL",
                        help="extra model sizes (e.g. 512x8 768x12) for which section [5] reports the "
                             "chat-layout cache speedup, CFG off (the reference is slow for big models)")
    parser.add_argument("--scaling_only", action="store_true",
                        help="run only section [5] for the --scaling sizes (no summary lines)")
    args = parser.parse_args(cmd)
    t_start = time.perf_counter()
    torch.manual_seed(0)
    vocab = TtTVocabulary.build([f"p{i}" for i in range(args.text_pieces)], codebook_size=args.codes)
    model = build_model(vocab, args.d_model, args.n_layer, args.n_head, args.device)
    rng = torch.Generator().manual_seed(0)
    prompt = build_prompt(vocab, "chat", user_codes=torch.randint(args.codes, (CHAT["prompt_codes"],), generator=rng).tolist())
    forcing = chat_forcing(vocab, rng)
    if args.scaling_only:
        print(f"[5] chat-layout cache speedup (CFG off), best of {args.repeats} interleaved rounds, "
              f"threads={torch.get_num_threads()}")
        scaling(vocab, prompt, forcing, args.scaling, args.repeats, args.device)
        return
    print(f"model d_model={args.d_model} n_layer={args.n_layer} vocab={len(vocab)} ({args.codes} codes), "
          f"threads={torch.get_num_threads()}; chat prompt {len(prompt)} tokens, "
          f"response {len(forcing.text_ids)} text + {sum(forcing.span_lengths)} codes")

    # ---- 1. cached vs reference, chat layout
    print("\n[1] chat turn, block 26, 2 steps/block: cached vs reference (full recompute)")
    # the reference as the official code runs it: the weights as trained ([out, in])
    cpu = args.device == "cpu"
    model_bf16 = copy.deepcopy(model).to(torch.bfloat16)  # ttt_inference --dtype bfloat16 (no relayout)
    layout = default_cpu_weight_layout() if cpu else "as_trained"  # TtTInference's "auto"
    off, on = CHAT_CFG_OFF, dict(CHAT_CFG_OFF, cfg_scale=0.1)
    runs = {"reference": (model, dict(use_cache=False, **off))}
    if cpu:  # both layouts, the cached decode below (and the rest of the bench) in the chosen one
        relaid = copy.deepcopy(model)
        relayout_linear_weights_for_cpu(relaid)
        runs["other"] = (relaid if layout == "as_trained" else model, dict(use_cache=True, **off))
        model = relaid if layout == "input_major" else model
    runs["cached"] = (model, dict(use_cache=True, **off))
    best = interleaved_best(runs, vocab, prompt, forcing, args.repeats)
    (t_ref, r_ref, ref_positions), (t_c, r_c, cached_positions) = best["reference"], best["cached"]
    round_ratios = sorted(a / b for a, b in zip(*(interleaved_best.rounds[k] for k in ("reference", "cached"))))
    if cpu:
        t_other, r_other, _ = best["other"]
        t_rr, _ = timed_decode(relaid, vocab, prompt, forcing, use_cache=False, **off)
    cache_speedup = t_ref / t_c
    print(f"  CFG off: reference {t_ref:.2f}s  cached {t_c:.3f}s  speedup {cache_speedup:.1f}x  "
          f"code agreement {agreement(r_c, r_ref):.3f} (float32)")
    print(f"  per-round ratios (reference / cached decoded back to back): median "
          f"{statistics.median(round_ratios):.2f}x, range {round_ratios[0]:.2f}-{round_ratios[-1]:.2f}x")
    if cpu:
        print(f"  CPU weight layout: cached {layout} (TtTInference's auto on this CPU) {t_c:.3f}s, "
              f"{'input_major' if layout == 'as_trained' else 'as_trained'} {t_other:.3f}s ({t_other / t_c:.2f}x; "
              f"code agreement {agreement(r_other, r_c):.3f}); reference on input-major weights {t_rr:.2f}s")
    print(f"  positions run through the model: reference {ref_positions}, cached {cached_positions} "
          f"(ratio {ref_positions / cached_positions:.1f}: the speedup if time were proportional to them)")
    print("  cached phases: " + ", ".join(f"{k} {v:.3f}s/{r_c.forwards.get(k, '')}" for k, v in r_c.timings.items()))
    t_b, r_b = timed_decode(model_bf16, vocab, prompt, forcing, args.repeats, use_cache=True, **off)
    del model_bf16
    print(f"  cached with bfloat16 weights (--dtype bfloat16; other numerics): {t_b:.3f}s = {t_ref / t_b:.1f}x vs "
          f"the float32 reference, code agreement with it {agreement(r_b, r_ref):.3f}")
    runs = {"reference": (model, dict(use_cache=False, **on)), "cached": (model, dict(use_cache=True, **on)),
            "span_only": (model, dict(use_cache=True, cfg_uncond="span_only", **on))}
    best = interleaved_best(runs, vocab, prompt, forcing, args.repeats)
    (t_ref_g, r_ref_g, _), (t_c_g, r_c_g, _), (t_so, _, _) = best["reference"], best["cached"], best["span_only"]
    print(f"  CFG 0.1 official uncond: reference {t_ref_g:.2f}s  cached {t_c_g:.3f}s  speedup {t_ref_g / t_c_g:.1f}x  "
          f"code agreement {agreement(r_c_g, r_ref_g):.3f}")
    print(f"  CFG 0.1 span_only uncond (cached): {t_so:.3f}s  = {t_ref_g / t_so:.1f}x vs reference, "
          f"{t_c_g / t_so:.1f}x vs cached official")
    print("  code agreement of span_only with the official unconditional input (and of CFG off with CFG on):")
    for w in (0.1, 1.0, 3.0):
        official, span_only = (
            timed_decode(model, vocab, prompt, forcing, use_cache=True, cfg_scale=w, cfg_uncond=u, **CHAT_DECODE)[1]
            for u in ("official", "span_only")
        )
        print(f"    w={w}: span_only vs official {agreement(span_only, official):.3f}  "
              f"(CFG off vs official {agreement(r_c, official):.3f})")

    # ---- 2. TTS-style single long span
    print("\n[2] TTS single span: 639 codes + EOA, block 32, 200 steps (10/block)")
    tts_prompt = build_prompt(vocab, "tts", user_text=[f"p{i}" for i in range(20)])
    tts_forcing = Forcing([vocab.soa_last_id, vocab.im_end_id], [639])
    tts = dict(block_length=32, diffusion_steps=200, max_span_length=640, cfg_scale=0.0)
    t_tr, r_tr = timed_decode(model, vocab, tts_prompt, tts_forcing, use_cache=False, **tts)
    t_tc, r_tc = timed_decode(model, vocab, tts_prompt, tts_forcing, use_cache=True, **tts)
    print(f"  reference {t_tr:.2f}s  cached {t_tc:.2f}s  speedup {t_tr / t_tc:.2f}x  agreement {agreement(r_tc, r_tr):.3f}")
    for name, r in (("reference", r_tr), ("cached", r_tc)):
        print(f"  {name} phases: " + ", ".join(f"{k} {v:.3f}s" for k, v in r.timings.items()))

    # ---- 3. diffusion vs AR-only audio
    print("\n[3] audio generation of the chat layout (260 codes): TtT diffusion vs AR-only (1 code / cached forward,"
          " the decoding of an audio_objective: ar model)")
    runs = {"ar": (model, dict(audio_objective="ar", use_cache=True, **off))}
    runs.update({steps: (model, dict(off, use_cache=True, steps_per_block=steps)) for steps in (1, 2, 4, 8, 13, 26)})
    best = interleaved_best(runs, vocab, prompt, forcing, args.repeats)
    r_ar = best.pop("ar")[1]
    t_ar = audio_seconds(r_ar)
    print(f"  AR-only audio {t_ar:.3f}s ({r_ar.forwards['audio_ar']} one-code forwards; timed round by round with "
          "the rows below)")
    ttfa_rows = []
    diffusion_over_ar = None
    for steps, (t, r, _) in best.items():
        speedup = t_ar / audio_seconds(r)
        diffusion_over_ar = speedup if steps == 2 else diffusion_over_ar
        print(f"  steps/block {steps:2d}: TtT audio {audio_seconds(r):.3f}s  speedup over AR {speedup:.2f}x  (turn {t:.3f}s)")
        ttfa_rows.append((f"block 26, {steps} steps", t, r))

    # ---- 4. time to first audio, real-time factor
    print("\n[4] time to first audio (prefix + 13 text tokens + first block) and RTF (12.5 Hz codes), CFG off")
    t, r = timed_decode(model, vocab, prompt, forcing, args.repeats, use_cache=True,
                        **dict(off, block_length=32, steps_per_block=10))
    ttfa_rows.append(("block 32, 10 steps (paper)", t, r))
    t, r = timed_decode(model, vocab, prompt, forcing, args.repeats, use_cache=True, **on)
    ttfa_rows.append(("block 26, 2 steps, CFG 0.1", t, r))
    for name, t, r in ttfa_rows:
        rtf = t / (len(r.audio_codes) / CODE_RATE_HZ)
        print(f"  {name:28s} ttfa {r.time_to_first_audio:.3f}s  turn {t:.3f}s  RTF {rtf:.3f}")
    # ---- 5. cache speedup vs model size
    if args.scaling:
        print("\n[5] chat-layout cache speedup (CFG off) vs model size: a one-token step reads every weight"
              " once, a full recompute does O(L) work per weight")
        print(f"  d{args.d_model}x{args.n_layer} (above): {cache_speedup:.2f}x")
        scaling(vocab, prompt, forcing, args.scaling, args.repeats, args.device)
    print(f"\n(total bench time {time.perf_counter() - t_start:.0f}s)")
    print(f"cache_speedup={cache_speedup:.2f}")
    print(f"diffusion_over_ar_speedup={diffusion_over_ar:.2f}")
    print(f"ttfa_s={r_c.time_to_first_audio:.4f}")


if __name__ == "__main__":
    main()
