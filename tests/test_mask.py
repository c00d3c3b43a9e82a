import torch

from espnet2_ttt.mask import build_modality_mask, positions_in_span, segment_ids


def brute_force_mask(is_audio, valid):
    """O(L^2) definition straight from the method: causal, plus bidirectional inside a span."""
    B, L = is_audio.shape
    out = torch.zeros(B, 1, L, L, dtype=torch.bool)
    for b in range(B):
        for i in range(L):
            for j in range(L):
                if not valid[b, j]:
                    continue
                if j <= i:
                    out[b, 0, i, j] = True
                elif is_audio[b, i] and is_audio[b, j]:
                    # same span: every token between i and j (inclusive) is audio side
                    out[b, 0, i, j] = bool(is_audio[b, i : j + 1].all())
    return out


def test_worked_example_from_the_method_doc():
    # "Hi" "there" SOA a1 a2 a3 EOA "ok" SOA a4
    is_audio = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 0, 0, 1]], dtype=torch.bool)
    assert segment_ids(is_audio).tolist() == [[1, 2, 3, 3, 3, 3, 3, 4, 5, 5]]
    expected = torch.ones(10, 10).tril().bool()
    expected[3:7, 3:7] = True
    assert torch.equal(build_modality_mask(is_audio)[0, 0], expected)


def test_mask_equals_brute_force_on_random_layouts_with_padding():
    g = torch.Generator().manual_seed(0)
    for trial in range(30):
        B, L = 3, int(torch.randint(1, 24, (), generator=g))
        # runs of audio of random lengths
        is_audio = torch.rand(B, L, generator=g) < torch.rand((), generator=g)
        lengths = torch.randint(1, L + 1, (B,), generator=g)
        valid = torch.arange(L)[None] < lengths[:, None]
        got = build_modality_mask(is_audio, valid)
        assert torch.equal(got, brute_force_mask(is_audio, valid)), f"trial {trial}"
        # every row keeps at least key 0, so SDPA never sees an all-masked row
        assert got[..., 0].all()


def test_last_rows_match_the_full_mask():
    g = torch.Generator().manual_seed(1)
    is_audio = torch.rand(2, 30, generator=g) < 0.6
    full = build_modality_mask(is_audio)
    for n in (1, 5, 30):
        assert torch.equal(build_modality_mask(is_audio, num_queries=n), full[:, :, -n:])


def test_positions_in_span_count_along_each_span():
    is_audio = torch.tensor([[1, 1, 0, 0, 1, 1, 1, 0, 1], [0, 1, 0, 1, 1, 0, 0, 0, 0]]).bool()
    expected = torch.tensor([[1, 2, 0, 0, 1, 2, 3, 0, 1], [0, 1, 0, 1, 2, 0, 0, 0, 0]])
    assert torch.equal(positions_in_span(is_audio), expected)
    # a position's value depends only on what precedes it: the tail of a longer sequence agrees
    assert torch.equal(positions_in_span(is_audio[:, :6]), expected[:, :6])
