"""Estimate records for a list of models on one GPU: architecture, fine-tune, inference, capacity.

Used by `bakeoff estimate` and at the end of every run (for the run's LLM candidates on the GPUs in
`efficiency.gpus`), so the report can say what each candidate would cost on the hardware a team buys.
"""

from __future__ import annotations

from dataclasses import replace

from bakeoff.efficiency import capacity, estimate
from bakeoff.efficiency.hardware import hardware_for
from bakeoff.efficiency.introspect import Architecture
from bakeoff.errors import BakeoffError


def tensor_parallel_sizes(arch: Architecture) -> list[int]:
    """GPUs a replica can be split over by tensor parallelism, as vLLM allows: the number divides the attention
    heads, and divides the KV heads or is a multiple of them (KV heads are then replicated)."""
    kv_heads = arch.num_kv_heads or arch.num_heads
    return [
        size
        for size in range(1, arch.num_heads + 1)
        if arch.num_heads % size == 0 and (kv_heads % size == 0 if size <= kv_heads else size % kv_heads == 0)
    ]


def refuse_impossible(name: str, arch: Architecture, workload: estimate.Workload) -> None:
    """Refuse a `bakeoff estimate` workload this model cannot run, naming the option and the model's limit.

    Without it a 10M-token prompt on a 32k-context model came back as 5 PB of memory on 209,549 GPUs, and
    tensor parallelism over more GPUs than heads as a faster replica."""
    context = arch.context_length
    written = workload.output_tokens or workload.label_tokens
    if context and workload.prompt_tokens > context:
        raise BakeoffError(
            f"--prompt-tokens {workload.prompt_tokens} is longer than {name}'s context window of {context} tokens "
            "(max_position_embeddings); use at most that"
        )
    if context and workload.prompt_tokens + written > context:
        what = f"--output-tokens {workload.output_tokens}" if workload.output_tokens else f"{written} label tokens"
        raise BakeoffError(
            f"--prompt-tokens {workload.prompt_tokens} plus {what} is {workload.prompt_tokens + written} tokens, more "
            f"than {name}'s context window of {context} tokens (max_position_embeddings); shorten the prompt"
            + (" or the output" if workload.output_tokens else "")
        )
    sizes = tensor_parallel_sizes(arch)
    if workload.gpus_per_replica not in sizes:
        raise BakeoffError(
            f"--gpus-per-replica {workload.gpus_per_replica}: {name} has {arch.num_heads} attention heads and "
            f"{arch.num_kv_heads} KV heads, and tensor parallelism splits them evenly (as vLLM requires); use one "
            f"of {', '.join(map(str, sizes))}"
        )
    if workload.method != "full" and workload.lora_rank > arch.hidden_size:
        raise BakeoffError(
            f"--lora-rank {workload.lora_rank} is above {name}'s hidden size ({arch.hidden_size}): a LoRA rank "
            "cannot exceed the matrices it adapts; use a smaller rank"
        )


def estimate_record(
    name: str,
    arch: Architecture,
    gpu_key: str,
    workload: estimate.Workload,
    sla_p95_ms: float,
    load: float,
    usd_per_hour: float | None = None,
    calibration=None,
) -> dict:
    """`calibration` (efficiency.calibrate.Calibration): scale times by a run's measured/estimated ratios."""
    hardware = hardware_for(gpu_key, usd_per_hour)
    tune = estimate.fine_tune(arch, workload, hardware)
    # A replica spans as many GPUs as its weights need; its latency then gets all of their bandwidth and FLOP/s.
    weight_bytes = estimate.serving_weight_bytes(arch, workload, hardware)
    needed = max(capacity.gpus_to_hold(weight_bytes, hardware.memory_gb), workload.gpus_per_replica)
    # Raised to a size tensor parallelism can use (llama-2-70b needing 7 A10Gs runs on 8); beyond the heads, as is.
    needed = next((size for size in tensor_parallel_sizes(arch) if size >= needed), needed)
    serving_workload = replace(workload, gpus_per_replica=needed) if not hardware.measured else workload
    if workload.output_tokens:  # extraction / generation: prefill + a decode step per written token
        from bakeoff.efficiency import decode_estimate

        written = decode_estimate.generation(arch, serving_workload, hardware, workload.output_tokens)
        serve = decode_estimate.as_inference(arch, written)
    else:
        serve = estimate.inference(arch, serving_workload, hardware)
    record = {
        "model": name,
        "architecture": arch.as_dict(),
        "hardware": hardware.as_dict(),
        "workload": dict(workload.__dict__),
        "fine_tune": estimate.as_dict(tune),
        "inference": estimate.as_dict(serve),
    }
    if calibration is not None:
        from bakeoff.efficiency.calibrate import apply

        record = apply(record, calibration)
    plan = capacity.plan(
        estimate.InferenceEstimate(**record["inference"]),
        load,
        sla_p95_ms,
        hardware.memory_gb,
        hardware.usd_per_hour,
        gpus_per_replica=serving_workload.gpus_per_replica,
    )
    record["capacity"] = plan.as_dict()
    return record


def estimate_records(
    models: list[str],
    gpu_key: str,
    workload: estimate.Workload,
    sla_p95_ms: float,
    load: float,
    usd_per_hour: float | None = None,
    calibration=None,
) -> list[dict]:
    """One record per model (catalog name, folder or cached hub id), all on `gpu_key`; a workload a model
    cannot run (a prompt beyond its context, tensor parallelism its heads do not split into) is refused."""
    from bakeoff.efficiency.catalog import architecture_of  # reads configs: needs transformers

    architectures = [(name, architecture_of(name)) for name in models]
    for name, arch in architectures:  # all refused before any is estimated
        refuse_impossible(name, arch, workload)
    return [
        estimate_record(name, arch, gpu_key, workload, sla_p95_ms, load, usd_per_hour, calibration)
        for name, arch in architectures
    ]


def gpu_estimates(trials: list[dict], efficiency: dict, train_sizes: list[int], epochs: int) -> list[dict]:
    """For each LLM candidate of the run, estimates on each GPU of `efficiency.gpus` (architecture as measured).

    Reads each trial's `result.efficiency.workload`: classification stores prompt_tokens, label_tokens,
    num_labels (and shared_prefix_tokens, cached_prefix_tokens); an extraction / generation trial stores
    prompt_tokens (mean prompt tokens) and output_tokens (mean tokens written per test item), and is then
    costed by decoding (`efficiency/decode_estimate.py`). A trial without it gets no estimate, and the
    decision says so."""
    from bakeoff.efficiency.estimate import Workload

    seen: dict[str, tuple[dict, dict]] = {}
    for trial in trials:
        result = trial.get("result") or {}
        model = result.get("model") or {}
        if trial["status"] == "done" and model.get("kind") == "llm" and result.get("efficiency"):
            seen.setdefault(
                result.get("model_name") or trial["candidate"],
                (model["architecture"], result["efficiency"]["workload"]),
            )
    records = []
    for name, (arch, measured_workload) in seen.items():
        # Extraction / generation trials measure output_tokens (mean tokens written per test item); their
        # fine-tune target is that long too, and there are no labels to score.
        output_tokens = round(measured_workload.get("output_tokens") or 0)
        workload = Workload(
            method=efficiency["method"],
            train_examples=efficiency.get("train_examples") or max(train_sizes),
            epochs=epochs,
            prompt_tokens=measured_workload["prompt_tokens"],
            label_tokens=measured_workload["label_tokens"] if not output_tokens else output_tokens,
            shared_prefix_tokens=measured_workload.get("shared_prefix_tokens", 0),
            cached_prefix_tokens=measured_workload.get("cached_prefix_tokens", 0),
            num_labels=measured_workload["num_labels"] if not output_tokens else 1,
            output_tokens=output_tokens,
        )
        for gpu_key in efficiency["gpus"]:
            records.append(
                estimate_record(
                    name,
                    Architecture(**arch),
                    gpu_key,
                    workload,
                    efficiency["sla_p95_ms"],
                    efficiency["load_items_per_s"],
                    efficiency["usd_per_hour"].get(gpu_key),
                )
            )
    return records
