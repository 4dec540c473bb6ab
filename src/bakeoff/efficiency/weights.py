"""What a model's weights cost to hold, by storage format: bytes per weight, what 4-bit loading leaves
unquantized, the resident bytes of a model, and the largest weight QLoRA dequantizes at a time.

`bakeoff.efficiency.estimate` builds its memory and serving estimates on these and re-exports them.
"""

from __future__ import annotations

from bakeoff.efficiency.introspect import Architecture

# Bytes per weight. nf4: 4-bit codes + one 8-bit absmax per 64-weight block + one fp32 constant per 256
# blocks (QLoRA double quantization: Dettmers et al. 2023, sec. 3, 0.127 bits/param of constants).
# fp8/int8: one byte, per-channel scales negligible.
# Fused gated experts (transformers 5): gate_up_proj (experts, 2 x intermediate, hidden) and down_proj
# (experts, hidden, intermediate), so the larger stack is 2/3 of a layer's expert parameters.
GATE_UP_SHARE = 2 / 3
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)
WEIGHT_BYTES = {"bf16": 2.0, "fp32": 4.0, "fp8": 1.0, "int8": 1.0, "nf4": NF4_BYTES}
SERVING_WEIGHT_FORMATS = ("bf16", "fp8", "int8", "nf4")


def unquantized_params(arch: Architecture) -> int:
    """Parameters 4-bit loading leaves alone: embeddings, LM head and norms (QLoRA paper sec. 4), and the
    fused 3-D expert tensors of transformers-5 MoE models, which bitsandbytes' Linear4bit cannot wrap
    (bitsandbytes#1849): 96% of Mixtral-8x7B, so its QLoRA base is ~90 GB in bf16, not ~25 GB."""
    return arch.params_embedding + arch.params_lm_head + arch.params_other + arch.params_fused_experts


def resident_weight_bytes(arch: Architecture, weight_format: str, unquantized_format: str) -> float:
    """Bytes of resident weights; under nf4 only the linear layers are 4-bit."""
    if weight_format != "nf4":
        return arch.params_total * WEIGHT_BYTES[weight_format]
    unquantized = unquantized_params(arch)
    return (arch.params_total - unquantized) * NF4_BYTES + unquantized * WEIGHT_BYTES[unquantized_format]


def largest_4bit_weight(arch: Architecture) -> int:
    """Parameters of the largest layer 4-bit loading quantizes: a dense MLP matrix, one linear expert's, or an
    attention projection (fused expert tensors are never 4-bit). bitsandbytes multiplies a 4-bit layer by
    dequantizing its whole weight to the compute dtype first (`gemm_4bit`'s default path, in forward and
    again in backward), so one such weight is alive at a time beside the rest."""
    attention = arch.num_heads * arch.head_dim * arch.hidden_size  # q_proj / o_proj
    linear_mlp = arch.params_mlp - arch.params_fused_experts
    per_matrix = linear_mlp / arch.num_layers / 3 / max(arch.num_experts, 1) if linear_mlp > 0 else 0
    return int(max(attention, per_matrix))
