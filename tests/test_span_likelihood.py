"""Span NLL estimates (espnet2_ttt.span_likelihood) against enumerations on a random float64 model."""
import itertools
import math

import pytest
import torch

from espnet2_ttt.corruption import CorruptionConfig, diffusion_corruption
from espnet2_ttt.mask import build_modality_mask, positions_in_span
from espnet2_ttt.models.transformer import TtTTransformer
from espnet2_ttt.span_likelihood import (
    causal_span_nll,
    importance_weighted_nll,
    masked_span_logprobs,
    masking_bound_samples,
    order_nlls,
    random_orders,
)
from espnet2_ttt.vocabulary import TtTVocabulary


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    vocab = TtTVocabulary.build(["a", "b", "c"], codebook_size=5)
    model = TtTTransformer(len(vocab), d_model=32, n_layer=2, n_head=4, max_len=64, init_std=0.3).double().eval()
    t = vocab.token2id
    context = torch.tensor([vocab.im_start_id, vocab.role_ids["assistant"], t["a"], t["c"], vocab.soa_id])
    span = torch.cat([vocab.code_to_id(torch.tensor([3, 0, 3])), torch.tensor([vocab.eoa_id])])
    return vocab, model, context, span


def reference_logprob(model, vocab, context, span, masked_positions, position, masked_context=()):
    """log q(span[position] | span with [M] at masked_positions, context with [M] at
    masked_context): one plain forward."""
    ids = torch.cat([context, span])
    inputs = ids.clone()
    for i in masked_positions:
        inputs[len(context) + i] = vocab.mask_id
    for i in masked_context:
        inputs[i] = vocab.mask_id
    is_audio = vocab.is_audio_side(ids)[None]
    with torch.no_grad():
        logits = model(inputs[None], build_modality_mask(is_audio), span_positions=positions_in_span(is_audio))
        logits = logits[0, len(context) + position]
    return float(torch.log_softmax(logits, -1)[span[position]])


@pytest.mark.parametrize("span_position_embeddings", [0, 2])
def test_order_nlls_equal_step_by_step_reference(setup, span_position_embeddings):
    vocab, model, context, span = setup
    if span_position_embeddings:
        torch.manual_seed(1)
        model = TtTTransformer(len(vocab), d_model=32, n_layer=2, n_head=4, max_len=64, init_std=0.3,
                               span_position_embeddings=span_position_embeddings).double().eval()
    orders = torch.tensor(list(itertools.permutations(range(len(span)))))
    got = order_nlls(model, vocab, context, span, orders, batch_size=7)
    for order, value in zip(orders.tolist(), got.tolist()):
        ref = -sum(reference_logprob(model, vocab, context, span, order[j:], order[j]) for j in range(len(order)))
        assert value == pytest.approx(ref, abs=1e-10)


def exact_elbo_and_nll(model, vocab, context, span):
    orders = torch.tensor(list(itertools.permutations(range(len(span)))))
    nlls = order_nlls(model, vocab, context, span, orders)
    return float(nlls.mean()), float(importance_weighted_nll(nlls))


def test_masking_bound_equals_order_bound_exactly(setup):
    """E_t (1/t) sum_masked -log q = E_pi l(pi): the subset weights int t^(k-1) (1-t)^(n-k) dt."""
    vocab, model, context, span = setup
    n = len(span)
    subsets = [s for k in range(1, n + 1) for s in itertools.combinations(range(n), k)]
    masked = torch.zeros(len(subsets), n, dtype=torch.bool)
    for row, s in enumerate(subsets):
        masked[row, list(s)] = True
    logp = masked_span_logprobs(model, vocab, context, span, torch.nn.functional.pad(masked, (len(context), 0)))
    weights = torch.tensor([math.factorial(len(s) - 1) * math.factorial(n - len(s)) / math.factorial(n) for s in subsets],
                           dtype=torch.float64)
    masking_bound = float((weights * -(logp * masked).sum(1)).sum())
    elbo, nll = exact_elbo_and_nll(model, vocab, context, span)
    assert masking_bound == pytest.approx(elbo, abs=1e-10)
    assert nll < elbo  # Jensen, strict for a model whose orders disagree


def test_monte_carlo_estimates_match_the_exact_elbo(setup):
    vocab, model, context, span = setup
    elbo, _ = exact_elbo_and_nll(model, vocab, context, span)
    g = torch.Generator().manual_seed(0)
    draws = masking_bound_samples(model, vocab, context, span, 3000, g, batch_size=500)
    orders = order_nlls(model, vocab, context, span, random_orders(600, len(span), g), batch_size=500)
    for x in (draws, orders):
        stderr = float(x.std()) / math.sqrt(len(x))
        assert abs(float(x.mean()) - elbo) < 4 * stderr
    assert float(orders.std()) < float(draws.std())  # fewer, costlier draws with less variance


def test_masking_draws_with_a_noisy_context_equal_a_reference(setup):
    """Earlier-span positions of the context are masked at the draw's rate, as in training."""
    vocab, model, context, span = setup
    earlier = torch.cat([vocab.code_to_id(torch.tensor([1, 2, 4])), torch.tensor([vocab.eoa_id])])
    context = torch.cat([context, earlier, context[2:]])  # ... SOA span EOA text SOA
    maskable = vocab.is_audio_side(context) & (torch.arange(len(context)) >= 5)
    draws = 12
    got = masking_bound_samples(model, vocab, context, span, draws, torch.Generator().manual_seed(3), maskable)
    ids = torch.cat([context, span]).expand(draws, -1)
    _, masked, t = diffusion_corruption(ids, torch.cat([maskable, torch.ones(len(span), dtype=torch.bool)]).expand(draws, -1),
                                        vocab.mask_id, CorruptionConfig(eps=0.0), torch.Generator().manual_seed(3))
    assert not masked[:, :5].any()
    for row in range(draws):
        in_span = torch.nonzero(masked[row, len(context):]).squeeze(1).tolist()
        in_context = torch.nonzero(masked[row, : len(context)]).squeeze(1).tolist()
        ref = -sum(reference_logprob(model, vocab, context, span, in_span, i, in_context) for i in in_span) / float(t[row])
        assert float(got[row]) == pytest.approx(ref, abs=1e-10)
    clean = masking_bound_samples(model, vocab, context, span, draws, torch.Generator().manual_seed(3))
    both = masked[:, : len(context)].any(1) & masked[:, len(context):].any(1)
    assert both.sum() >= 3 and bool((clean != got)[both].all()) and torch.equal(clean[~both], got[~both])


def test_importance_weighted_nll_values():
    assert float(importance_weighted_nll(torch.tensor([2.0, 2.0, 2.0]))) == pytest.approx(2.0)
    # -log((e^-1000 + e^-1000 / 3) / 2), far below exp's range
    far = torch.tensor([1000.0, 1000.0 + math.log(3)], dtype=torch.float64)
    assert float(importance_weighted_nll(far)) == pytest.approx(1000.0 - math.log((1 + 1 / 3) / 2), abs=1e-9)
    nlls = torch.tensor([[1.0, 3.0], [5.0, 5.0]])
    assert importance_weighted_nll(nlls).shape == (2,)


def test_span_must_be_audio_side(setup):
    vocab, model, context, span = setup
    with pytest.raises(ValueError, match="text-side"):
        masked_span_logprobs(model, vocab, context, torch.cat([span, context[-1:]]), torch.ones(1, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match="expected"):
        masked_span_logprobs(model, vocab, context, span, torch.ones(1, 4, dtype=torch.bool))


def test_causal_span_nll_equals_next_token_steps(setup):
    vocab, model, context, span = setup
    ref = 0.0
    for i in range(len(span)):
        prefix = torch.cat([context, span[:i]])
        with torch.no_grad():
            logits = model(prefix[None], None)[0, -1]  # plain causal, last position
        ref -= float(torch.log_softmax(logits, -1)[span[i]])
    assert causal_span_nll(model, vocab, context, span) == pytest.approx(ref, abs=1e-10)
    with pytest.raises(ValueError, match="context"):
        causal_span_nll(model, vocab, context[:0], span)
