"""Estimates from architecture + hardware: fine-tune FLOPs, memory, time and $; inference latency and $.

Every formula is a stated approximation, so a reader can check it:
- Matmul FLOPs per token: 2 x N_body forward, where N_body = active parameters minus embeddings (a
  lookup) minus the LM head; the LM head (V x h) is costed only on the positions bakeoff computes it on
  (label tokens in training, scored positions in inference). MoE: active parameters for FLOPs, total
  parameters for memory (every expert must be resident, and a batch touches them all).
- Attention FLOPs per token, forward: 4 x layers x heads x head_dim x mean context (seq/2, causal).
- Training: LoRA/QLoRA 4N (forward + activation gradients; frozen weights get no gradient), full 6N,
  attention 3x forward; gradient checkpointing adds one forward.
- Training memory: weights (bf16 2 B, QLoRA 4-bit ~0.56 B incl. scales, fp32 4 B per parameter),
  trainable parameters x 16 B (fp32 weight, gradient, Adam m and v), activations 34 x h bytes per token
  per layer in bf16 (Korthikanti et al. 2022, flash/SDPA attention), or 2 x h with checkpointing.
- Inference (label scoring): one prompt pass plus one short continuation pass per batch; latency at batch
  b is the roofline max of compute time and weight-read time (each pass reads every resident weight).
- Time = FLOPs / (peak x utilisation). Utilisation is an input, stated in every output.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bakeoff.efficiency.hardware import Hardware
from bakeoff.efficiency.introspect import Architecture

WEIGHT_BYTES = {"bf16": 2.0, "fp32": 4.0, "int8": 1.0, "nf4": 0.5625}
ACTIVATION_BYTES_PER_TOKEN_PER_LAYER_PER_HIDDEN = 34  # bf16, no recompute
CHECKPOINTED_BYTES_PER_TOKEN_PER_LAYER_PER_HIDDEN = 2
TRAINABLE_BYTES = 16  # fp32 master weight + gradient + Adam m + v
USABLE_MEMORY = 0.9  # fraction of device memory a job can plan on (allocator, CUDA context)


@dataclass(frozen=True)
class Workload:
    """What is being estimated: the fine-tune and the inference traffic."""

    method: str = "lora"  # lora | qlora | full
    train_examples: int = 500
    epochs: int = 3
    prompt_tokens: int = 64  # mean prompt length
    shared_prefix_tokens: int = 0  # prompt tokens every example starts with; packed training runs them once per batch
    label_tokens: int = 3  # mean label continuation length (words + end marker)
    num_labels: int = 10
    batch_size: int = 8
    lora_rank: int = 16
    lora_targets: str = "all"
    gradient_checkpointing: bool = False
    train_utilisation: float = 0.35  # share of peak FLOP/s a fine-tune sustains
    inference_utilisation: float = 0.5
    weight_format: str | None = None  # default: nf4 for qlora, fp32 on a measured CPU, else bf16


@dataclass(frozen=True)
class FineTuneEstimate:
    flops_per_token: float
    tokens: int
    total_flops: float
    step_time_s: float
    time_s: float
    memory_gb: dict  # weights, trainable_states, activations, total
    gpus_needed: int
    cost_usd: float
    trainable_params: int


@dataclass(frozen=True)
class InferenceEstimate:
    flops_per_item: float
    weight_bytes_read_per_pass: float
    latency_ms_by_batch: dict  # batch -> ms
    best_batch: int
    items_per_s_at_best: float
    cost_usd_per_1k_items: float
    generation_ms_per_item_batch1: float  # if the task were answered by generating 16 tokens instead


def _weight_format(workload: Workload, hardware: Hardware) -> str:
    if workload.weight_format:
        return workload.weight_format
    if workload.method == "qlora":
        return "nf4"
    return "fp32" if hardware.measured else "bf16"


def body_params(arch: Architecture) -> int:
    """Active matmul parameters per token, without embeddings and LM head."""
    return arch.params_active - arch.params_embedding - arch.params_lm_head


def attention_flops_per_token(arch: Architecture, seq_len: int) -> float:
    context = seq_len / 2 if arch.sliding_window is None else min(seq_len / 2, arch.sliding_window)
    return 4 * arch.num_layers * arch.num_heads * arch.head_dim * context


def fine_tune(arch: Architecture, workload: Workload, hardware: Hardware) -> FineTuneEstimate:
    seq = workload.prompt_tokens + workload.label_tokens
    attention = attention_flops_per_token(arch, seq)
    head = 2 * arch.params_lm_head_compute * workload.label_tokens / seq  # LM head on label positions only
    forward = 2 * body_params(arch) + attention + head
    matmul_factor = 6 if workload.method == "full" else 4
    per_token = matmul_factor * body_params(arch) + 3 * attention + 3 * head
    if workload.gradient_checkpointing:
        per_token += forward
    # Packed batches (training/packing.py) compute the shared prefix once per batch instead of once per example.
    run_per_example = seq - workload.shared_prefix_tokens * (1 - 1 / max(workload.batch_size, 1))
    tokens = round(workload.train_examples * workload.epochs * run_per_example)
    total = per_token * tokens
    sustained = hardware.peak_tflops * 1e12 * (1.0 if hardware.measured else workload.train_utilisation)
    steps = math.ceil(workload.train_examples / workload.batch_size) * workload.epochs
    time_s = total / sustained

    bytes_per_weight = WEIGHT_BYTES[_weight_format(workload, hardware)]
    trainable = arch.params_total if workload.method == "full" else workload.lora_rank * arch.lora_params_per_rank[workload.lora_targets]
    weights = arch.params_total * bytes_per_weight
    # LoRA: adapters in fp32 with gradient and Adam states. Full: 16 B per parameter in all, weights included.
    states = arch.params_total * TRAINABLE_BYTES - weights if workload.method == "full" else trainable * TRAINABLE_BYTES
    per_hidden = CHECKPOINTED_BYTES_PER_TOKEN_PER_LAYER_PER_HIDDEN if workload.gradient_checkpointing else ACTIVATION_BYTES_PER_TOKEN_PER_LAYER_PER_HIDDEN
    activation_scale = 2.0 if bytes_per_weight == 4.0 else 1.0  # fp32 activations are twice bf16
    activations = per_hidden * arch.hidden_size * arch.num_layers * workload.batch_size * seq * activation_scale
    total_bytes = weights + states + activations
    gpus = max(1, math.ceil(total_bytes / (hardware.memory_gb * 1e9 * USABLE_MEMORY)))
    return FineTuneEstimate(
        flops_per_token=per_token, tokens=tokens, total_flops=total, step_time_s=time_s / steps, time_s=time_s,
        memory_gb={"weights": weights / 1e9, "trainable_states": states / 1e9, "activations": activations / 1e9, "total": total_bytes / 1e9},
        gpus_needed=gpus, cost_usd=time_s / 3600 * hardware.usd_per_hour * gpus, trainable_params=int(trainable),
    )


def inference(arch: Architecture, workload: Workload, hardware: Hardware, batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128)) -> InferenceEstimate:
    continuation = workload.num_labels * max(workload.label_tokens - 1, 0)
    scored_positions = 1 + continuation
    tokens = workload.prompt_tokens + continuation
    flops_item = (2 * body_params(arch) * tokens + attention_flops_per_token(arch, workload.prompt_tokens) * tokens
                  + 2 * arch.params_lm_head_compute * scored_positions)
    bytes_per_weight = WEIGHT_BYTES["fp32" if hardware.measured else ("nf4" if workload.method == "qlora" else "bf16")]
    # Every resident weight is read once per pass; a batch of prompts touches all experts of an MoE.
    weight_bytes = arch.params_total * bytes_per_weight
    passes = 2 if continuation else 1
    sustained = hardware.peak_tflops * 1e12 * (1.0 if hardware.measured else workload.inference_utilisation)
    bandwidth = hardware.bandwidth_gbs * 1e9
    latency = {}
    for b in batch_sizes:
        compute_s = b * flops_item / sustained
        memory_s = passes * weight_bytes / bandwidth
        latency[b] = 1000 * max(compute_s, memory_s)
    best = max(batch_sizes, key=lambda b: b / latency[b])
    items_per_s = best / latency[best] * 1000
    # Generation, for contrast: prefill, then 16 decode steps each reading the weights (batch 1: only the
    # chosen experts of an MoE) and the KV cache.
    active_bytes = (arch.params_active) * bytes_per_weight
    decode_step_s = (active_bytes + arch.kv_cache_bytes_per_token["bfloat16"] * workload.prompt_tokens) / bandwidth
    prefill_s = max(2 * arch.params_active * workload.prompt_tokens / sustained, weight_bytes / bandwidth)
    return InferenceEstimate(
        flops_per_item=flops_item, weight_bytes_read_per_pass=weight_bytes,
        latency_ms_by_batch=latency, best_batch=best, items_per_s_at_best=items_per_s,
        cost_usd_per_1k_items=hardware.usd_per_hour / 3600 / items_per_s * 1000,
        generation_ms_per_item_batch1=1000 * (prefill_s + 16 * decode_step_s),
    )


def as_dict(estimate) -> dict:
    return asdict(estimate)
