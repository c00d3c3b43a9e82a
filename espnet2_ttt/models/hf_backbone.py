"""A pretrained decoder-only LLM (Qwen2 / Qwen2.5 first) from Hugging Face ``transformers`` as the TtT backbone.

Vocabulary: the model's embedding and output layer are rebuilt for our token list.  Row ``i``
starts from the pretrained row ``pretrained_rows(token_list)[i]`` (text pieces, template
tokens and, in an official TtT checkpoint, span markers, mask and codes; see
:mod:`espnet2_ttt.pretrained_vocab`).  Every other row (our new specials, the codes of a plain
LLM) starts at the mean of the pretrained tokenizer's rows plus seeded Gaussian noise of
``new_row_noise`` times their per-dimension std: mean initialisation keeps the new tokens'
first logits at the average level (they neither dominate the softmax nor vanish from it), the
noise makes the new rows distinct.  Tied input/output embeddings stay tied.

Mask: our ``[B, 1, Lq, Lk]`` bool "may attend" mask goes to the model as its 4-D attention mask,
which transformers hands unchanged to SDPA (``attn_implementation: sdpa``), or as the additive
float mask (0 / dtype min) the ``eager`` path adds to the scores.  ``attn_mask=None`` lets the
model build its own causal mask, bottom-right aligned against the cache.

Cache: :class:`HFCache` wraps the library's ``DynamicCache`` into our contract (``length``,
``crop(n)``).  DynamicCache always appends, so a forward with ``extend_cache=False`` crops it
back to its previous length afterwards.

The training config (``config.yaml``) records the model's ``hf_config``; a model rebuilt from it
with ``load_weights: false`` needs neither the pretrained directory nor its weights (they come
from the ``.pth``), which is how ``TtTTask.build_model_from_file`` builds it.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from espnet2_ttt.models.transformer import AbsBackbone, is_full_attention

ATTN_IMPLEMENTATIONS = ("sdpa", "eager")


class HFCache:
    """Our cache contract over ``transformers.DynamicCache``: ``length`` and ``crop(n)`` (keep n)."""

    def __init__(self, config):
        from transformers import DynamicCache

        self.hf = DynamicCache(config=config)

    @property
    def length(self) -> int:
        return self.hf.get_seq_length()

    def crop(self, length: int) -> None:
        extra = self.length - length
        if extra > 0:
            self.hf.crop(-extra)


class HFCausalLM(AbsBackbone):
    """``AutoModelForCausalLM`` with our vocabulary, mask and cache (module docstring).

    Args:
        vocab_size, token_list: set by the task (our token list; its text pieces must be the
            pretrained tokenizer's model tokens, see ``make_token_list``).
        pretrained: local directory or hub name of the model and its tokenizer.
        hf_config: the model's config as a dict (written into config.yaml by the task); used
            instead of ``pretrained``'s config when ``load_weights`` is false.
        load_weights: load the pretrained weights (false: architecture only, random weights).
        dtype: parameter dtype the model is loaded in ("float32", "bfloat16", ...).
        attn_implementation: "sdpa" (bool mask) or "eager" (additive float mask).
        gradient_checkpointing: recompute decoder layers in backward (training memory).
        max_len: longest sequence (default: the model's ``max_position_embeddings``).
        new_row_noise, init_seed: initialisation of the new rows.
    """

    needs_token_list = True  # the task passes token_list (and load_weights) to this backbone

    def __init__(
        self,
        vocab_size: int,
        token_list: Sequence[str],
        pretrained: Optional[str] = None,
        hf_config: Optional[Dict[str, Any]] = None,
        load_weights: bool = True,
        dtype: str = "float32",
        attn_implementation: str = "sdpa",
        gradient_checkpointing: bool = False,
        max_len: Optional[int] = None,
        new_row_noise: float = 0.1,
        init_seed: int = 0,
    ):
        super().__init__()
        from transformers import AutoConfig, AutoModelForCausalLM

        if len(token_list) != vocab_size:
            raise ValueError(f"token_list has {len(token_list)} tokens but vocab_size={vocab_size}")
        if attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS} (a 4-D mask is needed), "
                             f"got {attn_implementation!r}")
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}")
        if pretrained is None and (load_weights or hf_config is None):
            raise ValueError("backbone_conf needs pretrained: <directory or hub name> (or hf_config with load_weights: false)")
        kwargs = dict(dtype=torch_dtype, attn_implementation=attn_implementation)
        if load_weights:
            from espnet2_ttt.pretrained_vocab import HFTextTokenizer, pretrained_rows

            model = AutoModelForCausalLM.from_pretrained(pretrained, **kwargs)
            pretrained_vocab = HFTextTokenizer(pretrained).vocab
            rows: Optional[List[int]] = pretrained_rows(token_list, pretrained_vocab)
            known: Optional[List[int]] = sorted(set(pretrained_vocab.values()))
        else:
            config = config_from_dict(hf_config) if hf_config is not None else AutoConfig.from_pretrained(pretrained)
            model = AutoModelForCausalLM.from_config(config, **kwargs)
            rows = known = None
        _check_exact_cache_possible(model.config, pretrained or "hf_config")
        self.model = model
        self.vocab_size = vocab_size
        self.attn_implementation = attn_implementation
        self.max_len = max_len or model.config.max_position_embeddings
        if model.config.vocab_size != vocab_size or rows is not None:
            gen = torch.Generator().manual_seed(init_seed)
            self._set_vocabulary(rows, known, new_row_noise, gen)
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def _set_vocabulary(self, rows, known, noise: float, gen: torch.Generator) -> None:
        """New [V, d] embedding and output layer, rows taken from the pretrained ones (module docstring)."""
        model, V = self.model, self.vocab_size
        emb, out = model.get_input_embeddings(), model.get_output_embeddings()
        n = emb.weight.shape[0]
        if rows is not None and max(rows) >= n:
            raise ValueError(f"the pretrained tokenizer has ids up to {max(rows)} but the model only {n} embedding rows")
        known = None if known is None else [k for k in known if k < n]  # added tokens beyond the matrix have no row
        tied = out.weight is emb.weight
        new_emb = nn.Embedding(V, emb.weight.shape[1], device=emb.weight.device, dtype=emb.weight.dtype)
        new_emb.weight.data = _extend_rows(emb.weight.data, rows, known, V, noise, gen)
        new_out = nn.Linear(out.in_features, V, bias=out.bias is not None, device=out.weight.device, dtype=out.weight.dtype)
        if tied:
            new_out.weight = new_emb.weight
        else:
            new_out.weight.data = _extend_rows(out.weight.data, rows, known, V, noise, gen)
        if out.bias is not None:
            new_out.bias.data = _extend_rows(out.bias.data[:, None], rows, known, V, 0.0, gen)[:, 0]
        model.set_input_embeddings(new_emb)
        model.set_output_embeddings(new_out)
        model.config.vocab_size = V

    def hf_config(self) -> Dict[str, Any]:
        """The model's config as a plain dict (for config.yaml)."""
        return {k: v for k, v in self.model.config.to_dict().items() if not k.startswith("_")}

    def new_cache(self) -> HFCache:
        return HFCache(self.model.config)

    def forward(self, input_ids, attn_mask, position_ids=None, cache=None, extend_cache=False, span_positions=None,
                logits_to_keep=0):
        """[B, L] ids, [B, 1, L, cache.length + L] bool mask (None: causal; ``FULL_ATTENTION``: none
        hidden) -> [B, L, V] logits (``logits_to_keep`` k > 0: the last k positions', [B, k, V]).

        ``span_positions`` is not used (``uses_span_positions`` is False: the pretrained
        architecture has no such embedding)."""
        B, L = input_ids.shape
        past = 0 if cache is None else cache.length
        if position_ids is None:
            position_ids = torch.arange(past, past + L, device=input_ids.device).expand(B, L)
        if int(position_ids.max()) >= self.max_len:
            raise ValueError(f"position {int(position_ids.max())} exceeds the backbone's max_len={self.max_len}")
        mask = None
        if is_full_attention(attn_mask):
            attn_mask = torch.ones(B, 1, L, past + L, dtype=torch.bool, device=input_ids.device)
        if attn_mask is not None:
            if attn_mask.dtype != torch.bool or attn_mask.shape[-2:] != (L, past + L):
                raise ValueError(f"attn_mask must be bool [B, 1, {L}, {past + L}], got {attn_mask.dtype} {tuple(attn_mask.shape)}")
            mask = attn_mask
            if self.attn_implementation == "eager":
                dtype = self.model.get_input_embeddings().weight.dtype
                mask = torch.zeros(attn_mask.shape, dtype=dtype, device=attn_mask.device)
                mask = mask.masked_fill(~attn_mask, torch.finfo(dtype).min)
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=position_ids,
            cache=None if cache is None else cache.hf,
            use_cache=cache is not None,
            **({"logits_to_keep": logits_to_keep} if logits_to_keep else {}),
        )
        if cache is not None and not extend_cache:
            cache.crop(past)
        return out.logits


def config_from_dict(config: Dict[str, Any]):
    """A transformers config object from ``HFCausalLM.hf_config()``'s dict."""
    from transformers import CONFIG_MAPPING

    if config.get("model_type") not in CONFIG_MAPPING:
        raise ValueError(f"hf_config has unknown model_type {config.get('model_type')!r}")
    return CONFIG_MAPPING[config["model_type"]].from_dict(dict(config))


def _check_exact_cache_possible(config, where: str) -> None:
    """Sliding-window layers drop old keys: the decoder's exact cache (and the mask) would not hold."""
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    if getattr(config, "use_sliding_window", False) or any(t != "full_attention" for t in layer_types):
        raise ValueError(f"{where}: sliding-window / non-full attention layers are not supported "
                         f"(layer_types={sorted(set(layer_types))}, use_sliding_window={getattr(config, 'use_sliding_window', None)})")


def _extend_rows(old: torch.Tensor, rows, known, V: int, noise: float, gen: torch.Generator) -> torch.Tensor:
    """[N, d] pretrained rows -> [V, d]: row i = old[rows[i]], or mean + noise * std * N(0, 1) where rows[i] < 0."""
    ref = old.float() if known is None else old[torch.tensor(known, device=old.device)].float()
    std = ref.std(0) if len(ref) > 1 else torch.zeros_like(ref[0])
    new = ref.mean(0) + noise * std * torch.randn(V, old.shape[1], generator=gen).to(old.device)
    if rows is not None:
        idx = torch.tensor(rows, device=old.device)
        keep = idx >= 0
        new[keep] = old[idx[keep]].float()
    return new.to(old.dtype)
