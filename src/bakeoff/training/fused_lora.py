"""LoRA's update added inside the GEMM while training: `addmm(base, A(x), B^T, alpha=scaling)`.

PEFT computes a LoRA layer as `base(x) + B(A(x)) * scaling`: after the rank-r product it makes two more
passes over the [tokens, out_features] output (the scaling, then the sum) and one more in backward (the
scaling again). `torch.addmm` folds both into the matrix multiply, which adds `alpha * (h @ B^T)` to
the base output as it writes. Same arithmetic: equal losses and gradients (tests/test_training.py);
an in-process A/B on SmolLM2-135M (all-linear LoRA, packed batches of 8) gave
+3.3% training steps/s on the 2-core CPU.

The fused forward is installed through PEFT's `LoraVariant` hook (the mechanism DoRA uses) for the
duration of `fused_lora_forward(model)` only, on plain `lora.Linear` layers whose adapter is vanilla
LoRA without a bias; everything else (DoRA, expert layers, mixed-adapter batches) keeps PEFT's own
forward. Merging and saving never see it: the variant is removed on exit.

QLoRA's 4-bit layers (PEFT's `lora.bnb.Linear4bit`) are switched only when their compute dtype is the
adapters' float32 (the CPU path). There PEFT sums `result + lora_B(lora_A(x)) * scaling` in float32, the
same arithmetic as above. In bf16 it casts the LoRA term to bf16 *before* the sum; the fused sum in
float32 would round differently, so those layers keep PEFT's forward.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from peft.tuners.lora.layer import Linear as LoraLinear
from peft.tuners.lora.layer import LoraVariant
from torch import nn


class AddmmLora(LoraVariant):
    """Vanilla LoRA with the scaling and the residual sum done by addmm."""

    @staticmethod
    def init(module, adapter_name: str, **kwargs) -> None:
        """Nothing to create: it reuses the adapter's own A and B."""

    @staticmethod
    def merge_safe(module, active_adapter: str, orig_weight: torch.Tensor) -> torch.Tensor:
        return orig_weight + module.get_delta_weight(active_adapter).to(orig_weight.dtype)

    @staticmethod
    def merge_unsafe(module, active_adapter: str, orig_weight: torch.Tensor) -> None:
        orig_weight.data += module.get_delta_weight(active_adapter).to(orig_weight.dtype)

    @staticmethod
    def unmerge(module, active_adapter: str, orig_weight: torch.Tensor) -> torch.Tensor:
        return orig_weight - module.get_delta_weight(active_adapter).to(orig_weight.dtype)

    @staticmethod
    def forward(module, active_adapter: str, x: torch.Tensor, result: torch.Tensor, **kwargs) -> torch.Tensor:
        low_rank = module.lora_A[active_adapter](module.lora_dropout[active_adapter](x))
        # Adapters of a bf16/fp16 model are kept in fp32 by PEFT: the sum is then fp32, as in PEFT's `result + ...`
        # (which promotes), and PEFT casts it back to the base layer's dtype after this returns.
        base = result.reshape(-1, result.shape[-1]).to(low_rank.dtype)
        out = torch.addmm(
            base,
            low_rank.reshape(-1, low_rank.shape[-1]),
            module.lora_B[active_adapter].weight.t(),
            alpha=module.scaling[active_adapter],
        )
        return out.view(result.shape)


def _exact_layer(module: nn.Module, adapter: str) -> bool:
    """A LoRA layer type whose PEFT forward computes exactly what `AddmmLora.forward` does."""
    if type(module) is LoraLinear:
        return True
    # Looked up, not imported: PEFT loads its bitsandbytes layers only where bitsandbytes is installed.
    bnb_4bit = getattr(sys.modules.get("peft.tuners.lora.bnb"), "Linear4bit", None)
    return (
        bnb_4bit is not None
        and type(module) is bnb_4bit
        and module.get_base_layer().compute_dtype == module.lora_A[adapter].weight.dtype == torch.float32
    )


def _fusable(module: nn.Module, adapter: str) -> bool:
    return (
        adapter in getattr(module, "lora_A", {})
        and adapter not in module.lora_variant
        and _exact_layer(module, adapter)
        and module.lora_B[adapter].bias is None
        and not module.merged
    )


@contextmanager
def fused_lora_forward(model: nn.Module) -> Iterator[int]:
    """Run eligible LoRA layers of `model` through `AddmmLora` inside the block; yields how many were switched."""
    switched = [
        (module, adapter)
        for module in model.modules()
        if hasattr(module, "lora_variant") and hasattr(module, "active_adapters")
        for adapter in module.active_adapters
        if _fusable(module, adapter)
    ]
    for module, adapter in switched:
        module.lora_variant[adapter] = AddmmLora
    try:
        yield len(switched)
    finally:
        for module, adapter in switched:
            if module.lora_variant.get(adapter) is AddmmLora:
                del module.lora_variant[adapter]
