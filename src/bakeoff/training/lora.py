"""Prepare a model for its fine-tuning method: LoRA targets from the architecture, QLoRA, full.

Targets are found by looking at the model, not by guessing names per family: attention projections are
the Linear layers inside a block's attention module, MLP projections those inside its MLP, and MoE
experts (fused 3-D parameters in transformers 5, which LoRA-by-module-name never reaches) are adapted
through `target_parameters`. Routers stay frozen: adapting them destabilises expert load.
"""

from __future__ import annotations

import re

import torch
from peft import LoraConfig, get_peft_model
from rich.console import Console
from torch import nn

from bakeoff.config import LoraSpec
from bakeoff.errors import ModelError

_LAYER_PREFIX = re.compile(r"^.*?\.layers\.\d+\.")
_ATTENTION = ("attn", "attention")
_MLP = ("mlp", "feed_forward", "ffn")
_ROUTERS = ("gate", "router")  # a Linear named exactly this inside an MoE block is its router


def _within_block(name: str) -> str | None:
    """`model.layers.3.self_attn.q_proj` -> `self_attn.q_proj` (None outside the repeated blocks)."""
    match = _LAYER_PREFIX.match(name)
    return name[match.end() :] if match else None


def find_targets(model: nn.Module, scope: str | list[str]) -> tuple[list[str], list[str]]:
    """(target_modules, target_parameters) for peft, chosen from the model's own structure."""
    if isinstance(scope, list):
        return scope, []
    has_experts = any(p.ndim == 3 and ".experts." in n for n, p in model.named_parameters())
    modules: set[str] = set()
    for name, module in model.named_modules():
        inner = _within_block(name)
        if inner is None or not isinstance(module, nn.Linear):
            continue
        parent, _, leaf = inner.rpartition(".")
        if any(key in parent for key in _ATTENTION):
            modules.add(leaf)
        elif scope == "all" and any(key in parent for key in _MLP):
            if has_experts and leaf in _ROUTERS:
                continue
            modules.add(leaf)
    parameters: set[str] = set()
    if scope == "all" and has_experts:
        for name, param in model.named_parameters():
            inner = _within_block(name)
            if inner is not None and param.ndim == 3 and ".experts." in f".{inner}":
                parameters.add(inner)
    if not modules and not parameters:
        raise ModelError(
            "found no attention or MLP Linear layers to adapt; set `training.lora.targets` to module names"
        )
    return sorted(modules), sorted(parameters)


def apply_lora(model: nn.Module, spec: LoraSpec, seed: int) -> nn.Module:
    modules, parameters = find_targets(model, spec.targets)
    dropout = spec.dropout
    if parameters and dropout:
        # peft's ParamWrapper (LoRA on fused expert tensors) refuses dropout, and dropout is per config.
        Console(stderr=True).print(
            f"[yellow]LoRA on MoE experts: lora dropout {dropout} -> 0 (peft supports none there)[/yellow]"
        )
        dropout = 0.0
    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=dropout,
        target_modules=modules,
        target_parameters=parameters or None,
        bias="none",
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)  # LoRA A matrices are randomly initialised
    return get_peft_model(model, config)


def prepare_for_method(
    model: nn.Module, method: str, spec: LoraSpec, seed: int, gradient_checkpointing: bool
) -> nn.Module:
    """Freeze/unfreeze and wrap the model for lora, qlora or full fine-tuning.

    QLoRA is LoRA on a base loaded in 4-bit (`models/load.py`), prepared exactly like LoRA. PEFT's
    `prepare_model_for_kbit_training` is not used: it casts every parameter that is not 4-bit to float32,
    which on a bf16 GPU run doubles the embeddings, LM head and norms (1 GB more for a 7B model), turns
    the whole residual stream and attention to float32, and would double Mixtral's unquantized expert
    tensors (90 GB -> 180 GB). Those weights stay in the compute dtype; the adapters are float32 (PEFT's
    default) either way.
    """
    if method == "qlora" and not getattr(model, "is_loaded_in_4bit", False):
        raise ValueError("qlora needs a model loaded with `LoadOptions(load_in_4bit=True)`")
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if method != "full":
            model.enable_input_require_grads()
    if method in ("lora", "qlora"):
        return apply_lora(model, spec, seed)
    if method == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    raise ValueError(f"no training for method {method!r}")


def trainable_summary(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
