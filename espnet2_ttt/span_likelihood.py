"""How tight is the training bound?  Estimates of an audio span's NLL under a model.

For a span ``A = (a_1 .. a_n)`` (a maximal run of audio-side ids, its end marker included)
after a clean context ``c``, the model is an any-order AR model (doc 5.2):
``p(A | c) = E_pi prod_j q(a_pi(j) | A with positions pi(j..n) masked, c)`` over uniformly
random orders ``pi``.  With ``l(pi) = -sum_j log q(...)``:

    -log p(A | c)  =  -log E_pi exp(-l(pi))                  the span NLL the bound bounds
                  <=  E_pi l(pi)                              Jensen: the ELBO (paper Eq. 20)
                   =  E_t (1/t) sum_{i masked} -log q(a_i | A_t, c)   the training estimator

(``A_t``: each position masked independently with probability ``t ~ U(0, 1)``; the last
identity is the AO-ARM / absorbing-diffusion equivalence, tested exactly by enumeration).

* :func:`order_nlls` gives ``l(pi)`` for given orders (``n`` forwards each, batched);
  their mean estimates the ELBO.
* :func:`importance_weighted_nll` of ``K`` of them, ``-log mean_k exp(-l(pi_k))``, is an
  upper bound on the span NLL whose expectation falls towards it as ``K`` grows (the IWAE
  bound; ``K = 1`` is the ELBO), so ``ELBO - IW_K`` is a lower bound on the gap.
* :func:`causal_span_nll` is the exact span NLL of a left-to-right model (the AR-only
  baseline, ``audio_objective: ar``), to read the bounds against.
* :func:`masking_bound_samples` draws the training estimator (the model's own masking,
  :func:`espnet2_ttt.corruption.diffusion_corruption`, with ``eps = 0``), with a clean
  context or, as training has it, earlier spans masked at the same rate.

Every forward sees the clean sequence's modality mask (as in training) and the span's
inputs with ``[M]`` at its masked positions; logits are scored unshifted, as the diffusion
loss does.  Nothing after the span is input: it cannot be seen from the span anyway.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F

from espnet2_ttt.corruption import CorruptionConfig, diffusion_corruption
from espnet2_ttt.mask import build_modality_mask, causal_mask
from espnet2_ttt.models.transformer import AbsBackbone
from espnet2_ttt.vocabulary import TtTVocabulary


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over the last axis in at least float32 (bfloat16 models included)."""
    return F.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)


@torch.no_grad()
def masked_span_logprobs(
    backbone: AbsBackbone,
    vocab: TtTVocabulary,
    context: torch.Tensor,
    span: torch.Tensor,
    masked: torch.Tensor,
    batch_size: int = 64,
) -> torch.Tensor:
    """``context`` [Lc] ids, ``span`` [n] audio-side ids, ``masked`` [N, Lc + n] bool (the
    positions, context ones included, input as ``[M]``) -> [N, n] ``log q(span_i | inputs)``
    (>= float32).  Entries at unmasked span positions are returned too (the caller selects).
    """
    if not bool(vocab.is_audio_side(span).all()):
        raise ValueError("span holds text-side ids: it must be one run of audio-side ids")
    ids = torch.cat([context, span])
    if masked.shape[1:] != ids.shape:
        raise ValueError(f"masked has shape {tuple(masked.shape)}, expected [N, {len(ids)}]")
    is_audio = vocab.is_audio_side(ids)[None]
    attn_mask, span_pos = build_modality_mask(is_audio), backbone.span_positions(is_audio)
    out = []
    for rows in masked.split(batch_size):
        logits = backbone(torch.where(rows, vocab.mask_id, ids), attn_mask, span_positions=span_pos)[:, len(context):]
        logp = _log_softmax(logits)
        out.append(logp.gather(2, span.expand(len(rows), -1)[:, :, None]).squeeze(2))
    return torch.cat(out)


def random_orders(num_orders: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """[K, n] uniformly random permutations of ``range(n)`` (row ``k``: the order of ``pi_k``)."""
    return torch.rand(num_orders, n, generator=generator).argsort(dim=1)


def order_nlls(
    backbone: AbsBackbone,
    vocab: TtTVocabulary,
    context: torch.Tensor,
    span: torch.Tensor,
    orders: torch.Tensor,
    batch_size: int = 64,
) -> torch.Tensor:
    """[K, n] orders -> [K] ``l(pi) = -sum_j log q(a_pi(j) | positions pi(j..n) masked, c)``."""
    K, n = orders.shape
    rank = orders.argsort(dim=1)  # rank[k, i]: the step at which position i is revealed
    steps = torch.arange(n, device=orders.device)
    masked = rank[:, None, :] >= steps[None, :, None]  # [K, step, n]: still masked at that step
    masked = F.pad(masked.reshape(K * n, n), (len(context), 0), value=False)
    logp = masked_span_logprobs(backbone, vocab, context, span, masked, batch_size)
    scored = logp.view(K, n, n).gather(2, orders[:, :, None].to(logp.device)).squeeze(2)  # [K, step]
    return -scored.sum(dim=1)


def importance_weighted_nll(nlls: torch.Tensor) -> torch.Tensor:
    """[..., K] order NLLs -> [...] ``-log mean_k exp(-l_k)`` (computed stably)."""
    return math.log(nlls.shape[-1]) - torch.logsumexp(-nlls, dim=-1)


def masking_bound_samples(
    backbone: AbsBackbone,
    vocab: TtTVocabulary,
    context: torch.Tensor,
    span: torch.Tensor,
    num_draws: int,
    generator: torch.Generator,
    context_maskable: Optional[torch.Tensor] = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """[D] draws of ``(1/t) sum_{i masked} -log q(a_i | A_t, c)``; their mean estimates the ELBO.

    The masks come from the training corruption with ``eps = 0`` (``t ~ U(0, 1)``).
    ``context_maskable`` [Lc] bool: context positions masked with the same ``t`` (as
    training masks every span of a sample at once; the bound assumes a clean context).
    """
    n_ctx = len(context)
    if context_maskable is None:
        context_maskable = torch.zeros(n_ctx, dtype=torch.bool, device=context.device)
    maskable = torch.cat([context_maskable.bool(), torch.ones(len(span), dtype=torch.bool, device=context.device)])
    ids = torch.cat([context, span]).expand(num_draws, -1)
    _, masked, t = diffusion_corruption(ids, maskable.expand(num_draws, -1).to(ids.device), vocab.mask_id,
                                        CorruptionConfig(eps=0.0), generator)
    logp = masked_span_logprobs(backbone, vocab, context, span, masked, batch_size)
    return -(logp * masked[:, n_ctx:]).sum(dim=1) / t.to(logp)


@torch.no_grad()
def causal_span_nll(backbone: AbsBackbone, vocab: TtTVocabulary, context: torch.Tensor, span: torch.Tensor) -> float:
    """``-sum_i log q(a_i | c, a_<i)`` under plain causal attention (shifted logits): the exact
    span NLL of a model trained with ``audio_objective: ar``.  ``context`` must be non-empty."""
    if len(context) == 0:
        raise ValueError("the span needs a context (at least the SOA that opens it)")
    ids = torch.cat([context, span])
    span_pos = backbone.span_positions(vocab.is_audio_side(ids)[None])
    logits = backbone(ids[None], causal_mask(len(ids), ids.device), span_positions=span_pos)[0, len(context) - 1 : -1]
    return -float(_log_softmax(logits).gather(1, span[:, None]).sum())
