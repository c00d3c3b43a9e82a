"""Training noise (SST, BANOM, PPM, t, masks) per rank: ranks seeded alike draw apart, a rerun
or a resumed epoch draws the same, and the global RNG's other users do not shift it."""
import datetime
import random
import time

import pytest
import torch
import torch.multiprocessing as mp

from espnet2_ttt.espnet_model import TtTModel
from espnet2_ttt.models.transformer import TtTTransformer

from helpers import chat_sequence, tiny_vocab

SEED, EPOCHS, STEPS = 3, (1, 2), 12


def _model_and_batch():
    """The same weights and batch on every caller (final spans of 24 codes: SST applies)."""
    torch.manual_seed(SEED)
    v = tiny_vocab()
    model = TtTModel(v, TtTTransformer(len(v), d_model=32, n_layer=2, n_head=2))
    rng = random.Random(0)
    seqs = [chat_sequence(rng, k, chunk=4, span=20) for k in (1, 2, 3, 2)]
    L = max(map(len, seqs))
    ids = torch.tensor([v.tokens_to_ids(s) + [0] * (L - len(s)) for s in seqs])
    return model, ids, torch.tensor([len(s) for s in seqs])


def _epoch_draws(model, ids, lengths, epoch, disturb_global_rng=False):
    """What ESPnet does at an epoch start (global seed + epoch, then train()), then STEPS
    forwards of one batch: the backbone's input ids (SST cut, BANOM coin, PPM, masks) and the losses."""
    torch.manual_seed(SEED + epoch)
    model.train()
    inputs, losses = [], []
    hook = model.backbone.register_forward_hook(lambda m, args, out: inputs.append(args[0].clone()))
    with torch.no_grad():
        for _ in range(STEPS):
            if disturb_global_rng:
                torch.rand(100)  # e.g. dropout or a data loader drawing from the global RNG
            losses.append(model(ids, lengths)[0].item())
    hook.remove()
    return {"inputs": inputs, "losses": losses}


def test_train_reseeds_from_the_global_seed_only():
    """A resumed epoch (fresh model, global seed + epoch, train()) draws what the uninterrupted
    run drew in that epoch; global draws between forwards do not shift the corruption."""
    model, ids, lengths = _model_and_batch()
    run = [_epoch_draws(model, ids, lengths, e) for e in EPOCHS]
    resumed, _, _ = _model_and_batch()
    again = _epoch_draws(resumed, ids, lengths, EPOCHS[-1], disturb_global_rng=True)
    assert again["losses"] == run[-1]["losses"]
    assert all(torch.equal(a, b) for a, b in zip(again["inputs"], run[-1]["inputs"]))
    assert run[0]["losses"] != run[1]["losses"]  # epochs draw apart


def _rank_worker(rank, world_size, init_file, out_dir):
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                         world_size=world_size, timeout=datetime.timedelta(seconds=60))
    try:
        model, ids, lengths = _model_and_batch()  # same weights, same batch, same global seed on both ranks
        draws = [_epoch_draws(model, ids, lengths, e) for e in EPOCHS]
        model.eval()
        with torch.no_grad():
            valid_stats = model(ids, lengths)[1]
        torch.save({"draws": draws, "valid": {k: v.item() for k, v in valid_stats.items()}}, f"{out_dir}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def _run_two_ranks(tmp_path, name, timeout_s=240):
    out = tmp_path / name
    out.mkdir()
    ctx = mp.start_processes(_rank_worker, args=(2, str(out / "init"), str(out)), nprocs=2, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + timeout_s
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for proc in ctx.processes:
                proc.kill()
            pytest.fail(f"two-rank run {name} did not finish within {timeout_s} s")
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


def _banom_and_sst(step_inputs, v):
    """Per step: whether the input has [M] (BANOM chose diffusion) and its padded shape (SST cuts)."""
    return [(bool((x == v.mask_id).any()), x.shape[1], int((x == v.pad_id).sum())) for x in step_inputs]


def test_two_gloo_ranks_draw_apart_and_reproduce(tmp_path):
    first = _run_two_ranks(tmp_path, "run1")
    second = _run_two_ranks(tmp_path, "run2")
    v = tiny_vocab()
    for r in range(2):  # a rerun reproduces every rank's draws exactly
        for a, b in zip(first[r]["draws"], second[r]["draws"]):
            assert a["losses"] == b["losses"]
            assert all(torch.equal(x, y) for x, y in zip(a["inputs"], b["inputs"]))
    for e in range(len(EPOCHS)):
        r0, r1 = first[0]["draws"][e]["inputs"], first[1]["draws"][e]["inputs"]
        s0, s1 = _banom_and_sst(r0, v), _banom_and_sst(r1, v)
        assert [s[0] for s in s0] != [s[0] for s in s1]  # BANOM coins
        assert [s[1:] for s in s0] != [s[1:] for s in s1]  # SST cuts
        # t, PPM and masks: wherever both ranks corrupt, their inputs differ
        both = [i for i in range(STEPS) if s0[i][0] and s1[i][0]]
        assert both and all(not torch.equal(r0[i], r1[i]) for i in both)
    assert first[0]["valid"] == first[1]["valid"]  # validation draws are the same on every rank
