"""Tiny random-weight models from real config classes, with a real (locally trained) BPE tokenizer.

Real architecture code (attention, RoPE, sliding windows, MoE routing) in milliseconds, no network.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    MixtralConfig,
    MixtralForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from bakeoff.data.tickets import generate_out_of_scope, generate_tickets

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

COMMON = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    # Larger than the default 0.02: with a frozen random LM head of std 0.02 the reachable logit range
    # is about +-0.6, so LoRA could barely lower the loss and training tests would prove little.
    initializer_range=0.2,
)

ARCHITECTURES = {
    "llama": (LlamaConfig, LlamaForCausalLM, {}),
    "mistral": (MistralConfig, MistralForCausalLM, {"sliding_window": 16}),
    "mixtral": (MixtralConfig, MixtralForCausalLM, {"num_local_experts": 4, "num_experts_per_tok": 2}),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, {}),
    # Gemma-3 as in the demo: interleaved sliding/full attention layers, explicit head_dim, tied embeddings.
    "gemma3": (
        Gemma3TextConfig,
        Gemma3ForCausalLM,
        {"head_dim": 8, "sliding_window": 512, "layer_types": ["sliding_attention", "full_attention"]},
    ),
}


def tiny_tokenizer(chat: bool = True) -> PreTrainedTokenizerFast:
    corpus = generate_tickets(300, seed=7).texts + generate_out_of_scope(50, seed=7)
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<s>", "<|im_end|>", "<|im_start|>", "<pad>"]
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="<|im_end|>", pad_token="<pad>"
    )
    if chat:
        wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def tiny_model(arch: str, vocab_size: int, seed: int = 0):
    config_class, model_class, extra = ARCHITECTURES[arch]
    torch.manual_seed(seed)
    config = config_class(vocab_size=vocab_size, **COMMON, **extra)
    return model_class(config).eval()


def save_tiny(folder: Path, arch: str = "llama", chat: bool = True, seed: int = 0) -> Path:
    """Write a loadable model folder (config, safetensors, tokenizer) and return it."""
    tokenizer = tiny_tokenizer(chat)
    model = tiny_model(arch, len(tokenizer), seed)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
