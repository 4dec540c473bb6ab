"""Estimates from architecture + hardware: fine-tune FLOPs, memory, time and $; inference latency and $.

Every formula is a stated approximation, so a reader can check it. Each constant below carries a one-line
physical reason and a source; `tests/data/published_estimates.yaml` holds the published measurements the
whole model is tested against (within ±25%, `tests/test_estimate.py`).

- Matmul FLOPs per token: 2 x N_body forward, where N_body = active parameters minus embeddings (a
  lookup) minus the LM head; the LM head (V x h) is costed on the positions it is computed on (label
  tokens in bakeoff's training and scoring; every position in frameworks that compute full logits).
  MoE: active parameters for FLOPs, total parameters for memory (every expert must be resident).
- Attention FLOPs per token, forward: 4 x layers x heads x head_dim x mean context (seq/2, causal).
- Training: LoRA/QLoRA 4N (forward + activation gradients; frozen weights get no gradient), full 6N,
  attention 3x forward; gradient checkpointing adds one forward. QLoRA pays a dequantization factor.
  LoRA on fused MoE experts (peft) also pays, per token, the full-size gradient of each adapted expert
  stack (+2 x active expert parameters) and, per step, forming those stacks and reducing their gradients
  to A and B: 8 x rank x expert parameters of thin matmuls and 7 full passes over the experts' bytes.
- Training memory: weights, trainable states, activations, logits, under QLoRA the one 4-bit weight being
  dequantized, under LoRA on fused MoE experts their full-size adapted copies (peft), and (for what must fit
  on the device) the CUDA context and allocator slack; `memory_gb["allocated"]` is the part
  `torch.cuda.max_memory_allocated` sees.
- Time = FLOPs / (peak x utilisation(tokens per pass)) + a per-layer floor. Training runs on one GPU;
  serving with tensor parallelism adds the GPUs' FLOP/s and bandwidth and pays two all-reduces per layer.
- Inference (label scoring): one prompt pass plus one short continuation pass per batch; a pass takes the
  larger of compute time and weight-read time, plus the per-layer floor and the all-reduces.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bakeoff.efficiency.hardware import Hardware
from bakeoff.efficiency.introspect import Architecture
from bakeoff.efficiency.weights import (
    GATE_UP_SHARE,
    SERVING_WEIGHT_FORMATS,
    WEIGHT_BYTES,
    largest_4bit_weight,
    resident_weight_bytes,
)

# Weight formats and their bytes live in `weights`; these two are re-exported for callers of `estimate`.
from bakeoff.efficiency.weights import NF4_BYTES as NF4_BYTES
from bakeoff.efficiency.weights import unquantized_params as unquantized_params

# Activations stored for backward, bytes per token per layer per hidden unit, bf16, flash/SDPA attention
# (no s^2 term): 34 (Korthikanti et al. 2022, "Reducing Activation Recomputation", table 2).
ACTIVATION_BYTES_PER_TOKEN_PER_LAYER_PER_HIDDEN = 34
# With checkpointing only each layer's bf16 input is kept (2 bytes per hidden unit), plus one layer's full
# activations while it is recomputed (same paper, sec. 4).
CHECKPOINTED_BYTES_PER_TOKEN_PER_LAYER_PER_HIDDEN = 2
TRAINABLE_BYTES = 16  # fp32 master weight + gradient + Adam m + v (Rajbhandari et al. 2020, ZeRO, sec. 3.1)
# Logits, bytes per position per vocabulary entry. Unchunked (HF transformers' loss): bf16 logits, their
# fp32 upcast, fp32 log-softmax, fp32 and bf16 gradients = 2 + 4 + 4 + 4 + 2. Chunked cross-entropy
# (litgpt, torchtune CEWithChunkedOutputLoss): the bf16 logits and their bf16 gradient stay, the fp32
# copies exist for one chunk at a time.
LOGIT_BYTES = {"full": 16, "chunked": 4}
# CUDA context + cuBLAS/cuDNN workspaces: ~0.5 GB on Ampere/Hopper with PyTorch 2.x (PyTorch CUDA
# semantics docs, "memory management": the context is not counted by memory_allocated).
CUDA_CONTEXT_GB = 0.5
# Caching-allocator slack: reserved exceeds allocated by block rounding and fragmentation, ~5-10% in
# training (PyTorch docs, torch.cuda.memory_reserved vs memory_allocated); we plan on 7%.
ALLOCATOR_SLACK = 0.07
USABLE_MEMORY = 0.9  # fraction of device memory a job can plan on (kept for the capacity planner)

# QLoRA step time over LoRA at equal batch: nf4 blocks are dequantized to bf16 before every matmul,
# forward and backward. litgpt's A10G table (config_hub/finetune/README.md): Llama-2-7B 45.67 vs 32.82
# min (1.39x), Mistral-7B 44.75 vs 31.01 min (1.44x), same micro-batch.
QLORA_TIME_FACTOR = 1.4
# Utilisation grows with tokens per pass: a GEMM with M rows (M = tokens in the pass) fills a GPU's SMs only
# when M spans enough 128-row tiles (about one per SM: 108 on A100, 132 on H100), so sustained share of
# peak ~ u_max x T / (T + T_HALF). T_HALF = 128 tokens: one tile row (CUTLASS default 128x128 tiles).
TOKENS_AT_HALF_UTILISATION = 128
# Per-layer floor at small batches: a decoder layer runs ~20 dependent kernels (norms, rotary, QKV,
# attention, projections, MLP, residuals); each costs ~5 us of launch and tail even when its math is
# trivial (NVIDIA, "Getting Started with CUDA Graphs": 2-5+ us per launch). 100 us per layer per pass.
LAYER_FLOOR_S = 100e-6
# Tensor parallelism: two all-reduces per layer (after attention and after the MLP; Shoeybi et al. 2019,
# Megatron-LM, sec. 3). Each moves 2(g-1)/g of the activations over the interconnect and pays a fixed
# latency (~25 us for NCCL small messages on NVLink, nccl-tests all_reduce_perf).
ALLREDUCE_LATENCY_S = 25e-6
# Achievable share of datasheet HBM bandwidth when streaming weights (~85%: A100 STREAM-like copies reach
# ~1.7 of 2.0 TB/s; NVIDIA "Optimizing inference" guides quote 80-90%).
BANDWIDTH_EFFICIENCY = 0.85
# FP8 GEMMs: per-tensor scaling and activation re-quantization around every GEMM give ~1.5x, not 2x, of
# the bf16 rate end to end (NVIDIA TensorRT-LLM H100 FP8 blog: 1.4-1.6x over FP16 at equal batch).
FP8_SPEEDUP_OVER_BF16 = 1.5


@dataclass(frozen=True)
class Workload:
    """What is being estimated: the fine-tune and the inference traffic."""

    method: str = "lora"  # lora | qlora | full
    train_examples: int = 500
    epochs: int = 3
    prompt_tokens: int = 64  # mean prompt length
    shared_prefix_tokens: int = 0  # prompt tokens every example starts with; packed training runs them once per batch
    cached_prefix_tokens: int = 0  # serving: prompt tokens kept cached (bakeoff serve, vLLM prefix caching), not rerun
    label_tokens: int = 3  # mean label continuation length (words + end marker)
    num_labels: int = 10
    output_tokens: int = 0  # extraction / generation: mean tokens written per item (decode_estimate.py); 0: labels
    batch_size: int = 8
    lora_rank: int = 16
    lora_targets: str = "all"
    gradient_checkpointing: bool = False
    train_utilisation: float = 0.35  # share of peak FLOP/s a fine-tune sustains at large tokens per step
    inference_utilisation: float = 0.7  # share of peak FLOP/s a long prefill sustains
    weight_format: str | None = None  # default: nf4 for qlora, fp32 on a measured CPU, else bf16
    gpus_per_replica: int = 1  # serving: tensor parallel degree (FLOP/s and bandwidth add up, minus all-reduces)
    serving_weights: str | None = (
        None  # serving weight format (bf16 | fp8 | int8 | nf4); default: weight_format, else nf4 for qlora, else bf16
    )
    logits: str = "labels"  # labels (bakeoff: LM head on label positions) | full | chunked (every position)
    # QLoRA: format of what 4-bit loading leaves unquantized (embeddings, LM head, norms, fused experts).
    # Default: the compute dtype, as bakeoff keeps them (fp32 on a measured CPU, else bf16); "fp32" after
    # PEFT's prepare_model_for_kbit_training upcast.
    unquantized_format: str | None = None


@dataclass(frozen=True)
class FineTuneEstimate:
    flops_per_token: float
    tokens: int
    total_flops: float
    step_time_s: float
    time_s: float
    memory_gb: dict  # weights, trainable_states, activations, logits, expert_lora_weights, dequantized_weight,
    # allocated, cuda_context, allocator_slack, total
    gpus_needed: int
    cost_usd: float
    trainable_params: int
    utilisation: float = 0.0  # share of peak FLOP/s assumed at this batch's tokens per step
    expert_lora_time_s: float = 0.0  # of time_s: LoRA's own work on fused MoE experts (`expert_lora_work`)


@dataclass(frozen=True)
class InferenceEstimate:
    flops_per_item: float
    weight_bytes_read_per_pass: float
    latency_ms_by_batch: dict  # batch -> ms: one label-scoring pass (prompt after the cached prefix + label tokens)
    best_batch: int
    items_per_s_at_best: float
    cost_usd_per_1k_items: float
    generation_ms_per_item_batch1: float  # if the task were answered by generating 16 tokens instead
    # Time to first token at batch 1: the whole prompt (no cached prefix), LM head on the last position only; no
    # label scoring. What published TTFT tables (vLLM, TensorRT-LLM) report, for comparison with them.
    prefill_ms_batch1: float = 0.0
    gpus_per_replica: int = 1
    weight_format: str = "bf16"


def _weight_format(workload: Workload, hardware: Hardware) -> str:
    if workload.weight_format:
        return workload.weight_format
    if workload.method == "qlora":
        return "nf4"
    return "fp32" if hardware.measured else "bf16"


def _unquantized_format(workload: Workload, hardware: Hardware) -> str:
    if workload.unquantized_format:
        return workload.unquantized_format
    return "fp32" if hardware.measured else "bf16"


def body_params(arch: Architecture) -> int:
    """Active matmul parameters per token, without embeddings and LM head."""
    return arch.params_active - arch.params_embedding - arch.params_lm_head


def attention_flops_per_token(arch: Architecture, seq_len: int) -> float:
    context = seq_len / 2 if arch.sliding_window is None else min(seq_len / 2, arch.sliding_window)
    return 4 * arch.num_layers * arch.num_heads * arch.head_dim * context


def utilisation(u_max: float, tokens: float, hardware: Hardware) -> float:
    """Share of peak at `tokens` rows per GEMM. A measured CPU's peak is already an achieved rate: 1.0."""
    if hardware.measured:
        return 1.0
    return u_max * tokens / (tokens + TOKENS_AT_HALF_UTILISATION)


def peak_flops(hardware: Hardware, weight_format: str, gpus: int = 1) -> float:
    """FLOP/s of a replica: the dense bf16 peak (fp8 GEMMs where the GPU has them), times its GPUs."""
    tflops = hardware.peak_tflops
    if weight_format == "fp8" and hardware.fp8_tflops:
        tflops = min(hardware.fp8_tflops, FP8_SPEEDUP_OVER_BF16 * hardware.peak_tflops)
    return tflops * 1e12 * gpus


def floor_s(arch: Architecture, hardware: Hardware, passes: float = 1.0) -> float:
    """Per-layer launch floor; none on a measured CPU (there, --calibrate measures the overheads)."""
    return 0.0 if hardware.measured else passes * arch.num_layers * LAYER_FLOOR_S


def allreduce_s(arch: Architecture, hardware: Hardware, gpus: int, tokens: float, passes: float = 1.0) -> float:
    """Two all-reduces per layer per pass of `tokens` bf16 hidden states across `gpus` (0 for one GPU)."""
    if gpus <= 1:
        return 0.0
    moved = 2 * (gpus - 1) / gpus * tokens * arch.hidden_size * 2
    return passes * 2 * arch.num_layers * (ALLREDUCE_LATENCY_S + moved / (hardware.interconnect_gbs * 1e9))


def _check(workload: Workload) -> None:
    from bakeoff.errors import BakeoffError

    if workload.gpus_per_replica < 1:
        raise BakeoffError(f"--gpus-per-replica must be at least 1, not {workload.gpus_per_replica}")
    if workload.weight_format and workload.weight_format not in WEIGHT_BYTES:
        raise BakeoffError(f"weight_format must be one of {', '.join(WEIGHT_BYTES)}, not {workload.weight_format!r}")
    if workload.serving_weights and workload.serving_weights not in SERVING_WEIGHT_FORMATS:
        raise BakeoffError(
            f"--weights must be one of {', '.join(SERVING_WEIGHT_FORMATS)}, not {workload.serving_weights!r}"
        )
    if workload.logits not in ("labels", "full", "chunked"):
        raise BakeoffError(f"logits must be labels, full or chunked, not {workload.logits!r}")


def expert_lora_bytes(arch: Architecture, workload: Workload, weight_format: str, unquantized_format: str) -> float:
    """LoRA on fused MoE expert tensors (`lora.targets: all`; peft `target_parameters`): peft forms each adapted
    stack `W + scaling * B @ A` at full size on every forward (`_LoraFactorsProxy`, a parametrization), and
    autograd keeps it for the experts' backward; the backward then forms each stack's full-size gradient before
    reducing it to A and B, one stack at a time. So each MoE layer holds a second copy of its experts until its
    backward (one layer at a time under gradient checkpointing), plus the gradient of the largest stack: the
    fused gate_up projection, 2/3 of a layer's experts in transformers 5's layout.
    Measured on Mixtral-8x7B cut to one layer on CPU (bench/real_shapes.py, bf16 checkpoint): the fine-tune
    held 15.0 GB against 7.6 GB estimated without this term."""
    if workload.method == "full" or workload.lora_targets != "all" or not arch.params_fused_experts:
        return 0.0
    dtype = unquantized_format if weight_format == "nf4" else weight_format  # experts are never 4-bit here
    per_layer = arch.params_fused_experts / arch.num_layers * WEIGHT_BYTES[dtype]
    kept = per_layer if workload.gradient_checkpointing else arch.params_fused_experts * WEIGHT_BYTES[dtype]
    return kept + per_layer * GATE_UP_SHARE


# Forming the adapted expert stacks: transformers 5's expert modules read each stack twice per forward, and
# peft re-forms it (`W + scaling * B @ A`, one baddbmm) at every read; the backward reduces the stack's
# full-size gradient to A and B (two bmm). Counted on a tiny Mixtral (torch FlopCounterMode: baddbmm 4rP in
# the forward, bmm 4rP in the backward) and seen on the real shapes (two full-size copies per stack per
# step in the torch profiler). Bytes: each formation reads W and writes W' (2 x 2 passes), the backward
# writes the gradient and reads it twice (3).
EXPERT_LORA_FORMATIONS_PER_FORWARD = 2
EXPERT_LORA_BACKWARD_PASSES = 3


def expert_lora_work(arch: Architecture, workload: Workload, weight_format: str, unquantized_format: str) -> dict:
    """Work LoRA on fused MoE expert tensors (`lora.targets: all`; peft `target_parameters`) adds to a step.

    peft forms each adapted stack `W' = W + scaling * B @ A` at full size, and W' takes part in autograd: so
    the backward computes the full-size gradient of every stack for the tokens routed to it (what full
    fine-tuning of the experts computes: 2 FLOPs per active expert parameter per token), then reduces it to
    A's and B's gradients. Per step, independent of tokens: the formations and reductions (2 x rank FLOPs
    per expert parameter each, thin matmuls bound by memory) and full passes over the stacks' bytes; under
    gradient checkpointing the recomputed forward forms them again. On the real Mixtral-8x7B shapes this is
    most of a LoRA step at small batches; attention-only targets avoid it."""
    none = {"flops_per_token": 0.0, "flops_per_step": 0.0, "bytes_per_step": 0.0}
    if workload.method == "full" or workload.lora_targets != "all" or not arch.params_fused_experts:
        return none
    dtype = unquantized_format if weight_format == "nf4" else weight_format  # experts are never 4-bit here
    experts = arch.params_fused_experts
    active = experts * arch.experts_per_token / max(arch.num_experts, 1)
    forwards = 2 if workload.gradient_checkpointing else 1
    formations = EXPERT_LORA_FORMATIONS_PER_FORWARD * forwards
    return {
        "flops_per_token": 2.0 * active,
        "flops_per_step": 2.0 * workload.lora_rank * experts * (formations + 2),
        "bytes_per_step": experts * WEIGHT_BYTES[dtype] * (2 * formations + EXPERT_LORA_BACKWARD_PASSES),
    }


def fine_tune_memory(arch: Architecture, workload: Workload, hardware: Hardware) -> dict:
    """Bytes (GB) a fine-tune holds at its peak, by part. `allocated` is what max_memory_allocated reports."""
    seq = workload.prompt_tokens + workload.label_tokens
    tokens = workload.batch_size * seq
    weight_format = _weight_format(workload, hardware)
    trainable = (
        arch.params_total
        if workload.method == "full"
        else workload.lora_rank * arch.lora_params_per_rank[workload.lora_targets]
    )
    weights = resident_weight_bytes(arch, weight_format, _unquantized_format(workload, hardware))
    # LoRA: adapters in fp32 with gradient and Adam states. Full: 16 B per parameter in all, weights included.
    states = arch.params_total * TRAINABLE_BYTES - weights if workload.method == "full" else trainable * TRAINABLE_BYTES
    activation_scale = 2.0 if weight_format == "fp32" else 1.0  # fp32 activations are twice bf16
    per_layer_full = ACTIVATION_BYTES_PER_TOKEN_PER_LAYER_PER_HIDDEN * arch.hidden_size * tokens * activation_scale
    if workload.gradient_checkpointing:
        kept = (
            CHECKPOINTED_BYTES_PER_TOKEN_PER_LAYER_PER_HIDDEN
            * arch.hidden_size
            * tokens
            * activation_scale
            * arch.num_layers
        )
        activations = kept + per_layer_full  # plus the one layer being recomputed
    else:
        activations = per_layer_full * arch.num_layers
    positions = workload.batch_size * workload.label_tokens if workload.logits == "labels" else tokens
    logits = positions * arch.vocab_size * LOGIT_BYTES["chunked" if workload.logits == "chunked" else "full"]
    experts = expert_lora_bytes(arch, workload, weight_format, _unquantized_format(workload, hardware))
    dequantized = (
        largest_4bit_weight(arch) * WEIGHT_BYTES[_unquantized_format(workload, hardware)]
        if weight_format == "nf4"
        else 0.0
    )
    allocated = weights + states + activations + logits + experts + dequantized
    context = 0.0 if hardware.measured else CUDA_CONTEXT_GB * 1e9
    slack = ALLOCATOR_SLACK * allocated
    return {
        "weights": weights / 1e9,
        "trainable_states": states / 1e9,
        "activations": activations / 1e9,
        "logits": logits / 1e9,
        "expert_lora_weights": experts / 1e9,
        "dequantized_weight": dequantized / 1e9,
        "allocated": allocated / 1e9,
        "cuda_context": context / 1e9,
        "allocator_slack": slack / 1e9,
        "total": (allocated + context + slack) / 1e9,
        "trainable_params": int(trainable),
    }


def fine_tune(arch: Architecture, workload: Workload, hardware: Hardware) -> FineTuneEstimate:
    _check(workload)
    seq = workload.prompt_tokens + workload.label_tokens
    attention = attention_flops_per_token(arch, seq)
    head_positions = workload.label_tokens / seq if workload.logits == "labels" else 1.0  # LM head positions per token
    head = 2 * arch.params_lm_head_compute * head_positions
    forward = 2 * body_params(arch) + attention + head
    matmul_factor = 6 if workload.method == "full" else 4
    weight_format = _weight_format(workload, hardware)
    experts = expert_lora_work(arch, workload, weight_format, _unquantized_format(workload, hardware))
    per_token = matmul_factor * body_params(arch) + 3 * attention + 3 * head + experts["flops_per_token"]
    if workload.gradient_checkpointing:
        per_token += forward
    # Packed batches (training/packing.py) compute the shared prefix once per batch instead of once per example.
    run_per_example = seq - workload.shared_prefix_tokens * (1 - 1 / max(workload.batch_size, 1))
    tokens = round(workload.train_examples * workload.epochs * run_per_example)
    steps = math.ceil(workload.train_examples / workload.batch_size) * workload.epochs
    total = per_token * tokens + steps * experts["flops_per_step"]
    tokens_per_step = workload.batch_size * run_per_example
    share = utilisation(workload.train_utilisation, tokens_per_step, hardware)
    sustained = (
        peak_flops(hardware, "bf16") * share
    )  # training GEMMs run in bf16 (nf4 is dequantized first), on one GPU
    slowdown = QLORA_TIME_FACTOR if weight_format == "nf4" and not hardware.measured else 1.0
    passes = 3 + (1 if workload.gradient_checkpointing else 0)  # forward, backward (2x), recompute
    per_step_overhead = floor_s(arch, hardware, passes)
    bandwidth = hardware.bandwidth_gbs * 1e9 * (1.0 if hardware.measured else BANDWIDTH_EFFICIENCY)
    expert_step_s = experts["flops_per_step"] / sustained + experts["bytes_per_step"] / bandwidth
    expert_time_s = experts["flops_per_token"] * tokens / sustained + steps * expert_step_s
    time_s = (per_token - experts["flops_per_token"]) * tokens / sustained * slowdown
    time_s += steps * per_step_overhead + expert_time_s

    memory = fine_tune_memory(arch, workload, hardware)
    trainable = memory.pop("trainable_params")
    per_gpu_total = memory["total"] * 1e9
    needed = max(1, math.ceil(per_gpu_total / (hardware.memory_gb * 1e9)))
    return FineTuneEstimate(
        flops_per_token=per_token,
        tokens=tokens,
        total_flops=total,
        step_time_s=time_s / steps,
        time_s=time_s,
        memory_gb=memory,
        gpus_needed=needed,
        cost_usd=time_s / 3600 * hardware.usd_per_hour * needed,
        trainable_params=int(trainable),
        utilisation=share,
        expert_lora_time_s=expert_time_s,
    )


def serving_format(workload: Workload, hardware: Hardware) -> str:
    if hardware.measured:
        return "fp32"
    if workload.serving_weights:
        return workload.serving_weights
    if workload.weight_format:
        return workload.weight_format
    return "nf4" if workload.method == "qlora" else "bf16"


def serving_weight_bytes(arch: Architecture, workload: Workload, hardware: Hardware) -> float:
    """Bytes of weights a serving replica holds (and a pass reads), in the serving format."""
    return resident_weight_bytes(arch, serving_format(workload, hardware), _unquantized_format(workload, hardware))


def pass_time_s(
    arch: Architecture,
    hardware: Hardware,
    flops: float,
    tokens: float,
    weight_bytes: float,
    workload: Workload,
    weight_format: str,
) -> float:
    """One forward pass of `tokens` tokens on one replica: max(compute, weight read) + floor + all-reduces."""
    gpus = workload.gpus_per_replica
    compute = flops / (
        peak_flops(hardware, weight_format, gpus) * utilisation(workload.inference_utilisation, tokens, hardware)
    )
    efficiency = 1.0 if hardware.measured else BANDWIDTH_EFFICIENCY
    memory = weight_bytes / (hardware.bandwidth_gbs * 1e9 * gpus * efficiency)
    return max(compute, memory) + floor_s(arch, hardware) + allreduce_s(arch, hardware, gpus, tokens)


def prefill_ms(arch: Architecture, workload: Workload, hardware: Hardware, prompt_tokens: int, batch: int = 1) -> float:
    """Time to first token for `batch` prompts of `prompt_tokens`: one pass, LM head on the last position."""
    _check(workload)
    weight_format = serving_format(workload, hardware)
    tokens = batch * prompt_tokens
    flops = (
        2 * body_params(arch) + attention_flops_per_token(arch, prompt_tokens)
    ) * tokens + 2 * arch.params_lm_head_compute * batch
    weight_bytes = serving_weight_bytes(arch, workload, hardware)
    return 1000 * pass_time_s(arch, hardware, flops, tokens, weight_bytes, workload, weight_format)


def inference(
    arch: Architecture, workload: Workload, hardware: Hardware, batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128)
) -> InferenceEstimate:
    _check(workload)
    continuation = workload.num_labels * max(workload.label_tokens - 1, 0)
    scored_positions = 1 + continuation
    weight_format = serving_format(workload, hardware)
    # Each request runs its prompt after the cached prefix (attending over the whole prompt).
    run_tokens = max(workload.prompt_tokens - workload.cached_prefix_tokens, 1)
    prompt_flops = (2 * body_params(arch) + attention_flops_per_token(arch, workload.prompt_tokens)) * run_tokens
    continuation_flops = (
        2 * body_params(arch) + attention_flops_per_token(arch, workload.prompt_tokens)
    ) * continuation
    head_flops = 2 * arch.params_lm_head_compute * scored_positions
    flops_item = prompt_flops + continuation_flops + head_flops
    # Every resident weight is read once per pass; a batch of prompts touches all experts of an MoE.
    weight_bytes = serving_weight_bytes(arch, workload, hardware)
    latency = {}
    for b in batch_sizes:
        seconds = pass_time_s(
            arch,
            hardware,
            b * (prompt_flops + head_flops),
            b * run_tokens,
            weight_bytes,
            workload,
            weight_format,
        )
        if continuation:
            seconds += pass_time_s(
                arch, hardware, b * continuation_flops, b * continuation, weight_bytes, workload, weight_format
            )
        latency[b] = 1000 * seconds
    best = max(batch_sizes, key=lambda b: b / latency[b])
    items_per_s = best / latency[best] * 1000
    gpus = workload.gpus_per_replica
    # Generation, for contrast: prefill, then 16 decode steps each reading the weights (batch 1: only the
    # chosen experts of an MoE) and the KV cache.
    bandwidth = hardware.bandwidth_gbs * 1e9 * gpus * (1.0 if hardware.measured else BANDWIDTH_EFFICIENCY)
    active_bytes = arch.params_active * WEIGHT_BYTES[weight_format]
    decode_step_s = (
        (active_bytes + arch.kv_cache_bytes_per_token["bfloat16"] * workload.prompt_tokens) / bandwidth
        + floor_s(arch, hardware)
        + allreduce_s(arch, hardware, gpus, 1)
    )
    prefill_s = prefill_ms(arch, workload, hardware, workload.prompt_tokens) / 1000  # time to first token
    return InferenceEstimate(
        flops_per_item=flops_item,
        weight_bytes_read_per_pass=weight_bytes,
        latency_ms_by_batch=latency,
        best_batch=best,
        items_per_s_at_best=items_per_s,
        cost_usd_per_1k_items=hardware.usd_per_hour * gpus / 3600 / items_per_s * 1000,
        generation_ms_per_item_batch1=1000 * (prefill_s + 16 * decode_step_s),
        prefill_ms_batch1=1000 * prefill_s,
        gpus_per_replica=gpus,
        weight_format=weight_format,
    )


def as_dict(estimate) -> dict:
    return asdict(estimate)
