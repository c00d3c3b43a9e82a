"""Tiny randomly initialised Qwen2 checkpoints, written offline (no hub access) by tests and device checks.

``save_tiny_qwen(dir)`` writes a Qwen-style checkpoint: a byte-level BPE tokenizer trained on a
fixed bilingual text (so any text encodes) with Qwen's ``<|endoftext|>``/``<|im_start|>``/
``<|im_end|>``, and a 2-layer Qwen2ForCausalLM.  ``official=True`` writes the official TtT format
instead: the same tokenizer extended, in the official order, with ``<|begin_of_audio|>``,
``<|end_of_audio|>``, ``<|begin_of_quad|>``, ``<|audio|>``, ``<|audio_0..K-1|>`` and then
``<|mask_token|>``, ``<|end_of_audio_new|>``, ``<|end_of_audio_span_last|>``, the model's
embedding sized to the whole tokenizer.
"""
from pathlib import Path
from typing import Union

import torch

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
OFFICIAL_PRE_EXTENDED = ["<|begin_of_audio|>", "<|end_of_audio|>", "<|begin_of_quad|>", "<|audio|>"]
OFFICIAL_ADDED_BY_TRAINING = ["<|mask_token|>", "<|end_of_audio_new|>", "<|end_of_audio_span_last|>"]
TEXT = [
    "system user assistant",
    "hello there, how are you today? I am fine, thank you.",
    "Transcribe the speech. Read the following text aloud:",
    "the quick brown fox jumps over the lazy dog 0123456789",
    "你好，今天天气很好。我们去公园散步吧。",
]


def save_tiny_qwen(
    path: Union[str, Path], official: bool = False, codebook_size: int = 24, hidden: int = 32,
    layers: int = 2, tie: bool = True, seed: int = 0,
) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(TEXT * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    added = QWEN_SPECIALS[1:]
    if official:
        added += OFFICIAL_PRE_EXTENDED + [f"<|audio_{k}|>" for k in range(codebook_size)] + OFFICIAL_ADDED_BY_TRAINING
    tokenizer.add_tokens(added, special_tokens=True)
    tokenizer.save_pretrained(path)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=tie,
        rope_parameters={"rope_theta": 10000.0, "rope_type": "default"},
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():  # larger than the default init, so that different inputs give clearly different logits
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.2)
    model.save_pretrained(path)
    return path
