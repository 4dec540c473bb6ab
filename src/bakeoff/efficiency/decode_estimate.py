"""Generation estimates: time to first token, decode time per generated token, cost per item.

Label scoring (`estimate.inference`) runs one prompt pass per item. Extraction and generation write
`output_tokens` tokens one at a time, so an item costs a prefill plus `output_tokens - 1` decode steps:

- TTFT: `estimate.prefill_ms` (the prompt's compute, or its weight read when that is longer, plus the
  per-layer floor): the first token comes out of the prefill.
- One decode step at batch b and context c: reads every weight a token of the batch touches once
  (dense: the body and the LM head, not the embedding table, of which only b rows are read; MoE: the
  shared weights plus the routed experts b tokens touch, E x (1 - (1 - k/E)^b) of E, each chosen with
  probability k/E), plus b x c x the KV bytes per token of the cache, at `BANDWIDTH_EFFICIENCY` of
  the datasheet bandwidth. Decode GEMMs have b rows, so at small b they are bound by that read; the
  compute time 2 x N_active + attention over c + the LM head, per token, at `inference_utilisation` of
  peak, binds only at large b. Step = max(read, compute) + per-layer floor + tensor-parallel
  all-reduces (`estimate.floor_s`, `estimate.allreduce_s`).
- The mean decode context is prompt + output / 2 (the cache grows by one token per step).
- Per item at batch b: prefill of b prompts + (output_tokens - 1) steps at b; a batch is skipped when
  weights plus its KV cache (b x (prompt + output) tokens) exceed `estimate.USABLE_MEMORY` of the replica.
  Cost per 1k items: the replica's $/h at the best-throughput batch.

`as_inference` returns the same record type label scoring produces (`estimate.InferenceEstimate`), so
capacity plans, the decision's costs and the report read generation candidates unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bakeoff.efficiency import estimate
from bakeoff.efficiency.hardware import Hardware
from bakeoff.efficiency.introspect import Architecture

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class GenerationEstimate:
    prompt_tokens: int
    output_tokens: int
    ttft_ms: float  # batch 1: the prompt's prefill
    decode_ms_per_token: float  # batch 1, at the mean context
    decode_tokens_per_s: float  # batch 1
    latency_ms_per_item: float  # batch 1: ttft + (output_tokens - 1) decode steps
    weight_bytes_per_step: float  # batch 1
    kv_bytes_per_step: float  # batch 1, at the mean context
    resident_weight_bytes: float  # what a replica holds (under nf4, embeddings and LM head stay 16-bit)
    latency_ms_by_batch: dict  # batch -> ms to write a whole batch of items
    best_batch: int
    items_per_s_at_best: float
    cost_usd_per_1k_items: float
    gpus_per_replica: int = 1
    weight_format: str = "bf16"

    def as_dict(self) -> dict:
        return asdict(self)


def weight_params_read(arch: Architecture, batch: int) -> float:
    """Parameters one decode step reads for `batch` tokens: body (shared weights + touched experts) and LM head."""
    body_total = arch.params_total - arch.params_embedding - arch.params_lm_head
    routed = arch.num_experts - arch.experts_per_token
    if not arch.is_moe or routed <= 0:
        return body_total + arch.params_lm_head_compute
    per_expert = (arch.params_total - arch.params_active) / routed
    experts = arch.num_experts
    touched = experts * (1 - (1 - arch.experts_per_token / experts) ** batch)
    return body_total - (experts - touched) * per_expert + arch.params_lm_head_compute


def _kv_bytes_per_token(arch: Architecture, hardware: Hardware) -> float:
    return arch.kv_cache_bytes_per_token["float32" if hardware.measured else "bfloat16"]


def decode_step_s(
    arch: Architecture, workload: estimate.Workload, hardware: Hardware, batch: int, context: float
) -> float:
    """One decode step for `batch` sequences at `context` cached tokens each (see the module docstring)."""
    weight_format = estimate.serving_format(workload, hardware)
    gpus = workload.gpus_per_replica
    read = weight_params_read(arch, batch) * estimate.WEIGHT_BYTES[
        weight_format
    ] + batch * context * _kv_bytes_per_token(arch, hardware)
    efficiency = 1.0 if hardware.measured else estimate.BANDWIDTH_EFFICIENCY
    read_s = read / (hardware.bandwidth_gbs * 1e9 * gpus * efficiency)
    flops = batch * (
        2 * estimate.body_params(arch)
        + estimate.attention_flops_per_token(arch, 2 * context)  # its context is seq / 2
        + 2 * arch.params_lm_head_compute
    )
    share = 1.0 if hardware.measured else workload.inference_utilisation
    compute_s = flops / (estimate.peak_flops(hardware, weight_format, gpus) * share)
    return max(read_s, compute_s) + estimate.floor_s(arch, hardware) + estimate.allreduce_s(arch, hardware, gpus, batch)


def generation(
    arch: Architecture,
    workload: estimate.Workload,
    hardware: Hardware,
    output_tokens: int,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
) -> GenerationEstimate:
    """Writing `output_tokens` tokens after a `workload.prompt_tokens` prompt."""
    estimate._check(workload)
    if output_tokens < 1:
        from bakeoff.errors import BakeoffError

        raise BakeoffError(f"output_tokens must be at least 1 for a generation estimate, not {output_tokens}")
    prompt = workload.prompt_tokens
    context = prompt + output_tokens / 2
    weight_format = estimate.serving_format(workload, hardware)
    gpus = workload.gpus_per_replica
    capacity_bytes = estimate.USABLE_MEMORY * hardware.memory_gb * 1e9 * gpus
    resident = estimate.serving_weight_bytes(arch, workload, hardware)
    latency: dict[int, float] = {}
    for b in batch_sizes:
        if b > 1 and resident + b * (prompt + output_tokens) * _kv_bytes_per_token(arch, hardware) > capacity_bytes:
            break
        steps_ms = (output_tokens - 1) * 1000 * decode_step_s(arch, workload, hardware, b, context)
        latency[b] = estimate.prefill_ms(arch, workload, hardware, prompt, batch=b) + steps_ms
    best = max(latency, key=lambda b: b / latency[b])
    items_per_s = best / latency[best] * 1000
    step_ms = 1000 * decode_step_s(arch, workload, hardware, 1, context)
    return GenerationEstimate(
        prompt_tokens=prompt,
        output_tokens=output_tokens,
        ttft_ms=estimate.prefill_ms(arch, workload, hardware, prompt),
        decode_ms_per_token=step_ms,
        decode_tokens_per_s=1000 / step_ms,
        latency_ms_per_item=latency[1],
        weight_bytes_per_step=weight_params_read(arch, 1) * estimate.WEIGHT_BYTES[weight_format],
        kv_bytes_per_step=context * _kv_bytes_per_token(arch, hardware),
        resident_weight_bytes=resident,
        latency_ms_by_batch=latency,
        best_batch=best,
        items_per_s_at_best=items_per_s,
        cost_usd_per_1k_items=hardware.usd_per_hour * gpus / 3600 / items_per_s * 1000,
        gpus_per_replica=gpus,
        weight_format=weight_format,
    )


def as_inference(arch: Architecture, g: GenerationEstimate) -> estimate.InferenceEstimate:
    """The generation estimate in label scoring's record type: latency per batch of whole items, so the
    capacity planner, the decision and the report treat generation candidates like any other."""
    per_token = 2 * estimate.body_params(arch) + 2 * arch.params_lm_head_compute
    return estimate.InferenceEstimate(
        flops_per_item=per_token * (g.prompt_tokens + g.output_tokens),
        weight_bytes_read_per_pass=g.resident_weight_bytes,
        latency_ms_by_batch=g.latency_ms_by_batch,
        best_batch=g.best_batch,
        items_per_s_at_best=g.items_per_s_at_best,
        cost_usd_per_1k_items=g.cost_usd_per_1k_items,
        generation_ms_per_item_batch1=g.latency_ms_per_item,
        prefill_ms_batch1=g.ttft_ms,
        gpus_per_replica=g.gpus_per_replica,
        weight_format=g.weight_format,
    )
