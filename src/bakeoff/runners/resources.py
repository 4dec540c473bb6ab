"""What each trial asks a Ray cluster for, and a refusal before anything runs when no node could give it.

A trial is one Ray task, so it needs its resources declared up front: Ray places it on a node with that
many free GPUs, CPUs and bytes, and runs several at once where they fit. Baselines are CPU tasks. An LLM
trial takes `candidates[].resources.gpus` when the user declares it, else what the estimator says the
method needs on the cluster's GPU type (weights + optimizer states + activations against usable memory:
Mixtral-8x7B bf16 LoRA needs two 80 GB GPUs). On a cluster without GPUs LLM trials are CPU tasks.

A request no node can meet would wait in Ray's queue forever (Ray cannot know a bigger node will never
join), so it is refused here, with the numbers, before the first trial starts. No torch here: this runs
on the driver before any model code.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bakeoff.config import RunSpec
from bakeoff.efficiency import capacity, estimate
from bakeoff.efficiency.hardware import Hardware, gpu, gpu_keys, match_gpu
from bakeoff.errors import BakeoffError
from bakeoff.runners.grid import Trial


@dataclass(frozen=True)
class NodeCapacity:
    """One alive node of the cluster, as Ray reports its total resources."""

    name: str
    gpus: float
    cpus: float
    memory_gb: float
    accelerator: str | None  # Ray's accelerator type label, e.g. "A100-80G", "H100"; None without GPUs


@dataclass(frozen=True)
class TrialResources:
    gpus: int
    cpus: float
    memory_gb: float | None
    why: str  # how `gpus` was chosen, shown in the plan and in refusals

    def ray_options(self) -> dict:
        """Keyword options for `ray.remote(...).options(...)`."""
        options = {"num_gpus": self.gpus, "num_cpus": self.cpus}
        if self.memory_gb is not None:
            options["memory"] = int(self.memory_gb * 1e9)
        return options


def nodes_from_ray(nodes: list[dict]) -> list[NodeCapacity]:
    """Alive nodes from `ray.nodes()` (whose `Resources` are totals, not what is free now)."""
    out = []
    for node in nodes:
        if not node.get("Alive", False):
            continue
        resources = node.get("Resources", {})
        accelerator = next((key.split(":", 1)[1] for key in resources if key.startswith("accelerator_type:")), None)
        out.append(
            NodeCapacity(
                node.get("NodeManagerAddress", "?"),
                resources.get("GPU", 0.0),
                resources.get("CPU", 0.0),
                resources.get("memory", 0.0) / 1e9,
                accelerator,
            )
        )
    return out


def cluster_gpu(nodes: list[NodeCapacity], override: str | None) -> Hardware | None:
    """The catalog GPU the cluster's LLM trials are sized for: `runner.gpu`, else the nodes' Ray accelerator
    type (the smallest-memory match, so a trial never asks for too few GPUs); None on a cluster without GPUs."""
    if override is not None:
        return gpu(override)
    types = sorted({node.accelerator for node in nodes if node.gpus > 0 and node.accelerator})
    matches = [hardware for hardware in (_catalog_match(label) for label in types) if hardware is not None]
    if matches:
        return min(matches, key=lambda hardware: hardware.memory_gb)
    if any(node.gpus > 0 for node in nodes):
        raise BakeoffError(
            "cannot tell which GPU the Ray cluster has (accelerator types: "
            f"{', '.join(types) or 'none reported'}); "
            f"set `runner.gpu` to one of {', '.join(gpu_keys())}, or `resources.gpus` on each LLM "
            "candidate"
        )
    return None


def _catalog_match(label: str) -> Hardware | None:
    """Ray labels sizes as "A100-80G"; without a size, assume the family's smallest."""
    size = re.search(r"(\d+)G", label)
    return match_gpu(label, float(size.group(1)) if size else 0.0)


def trial_resources(trial: Trial, spec: RunSpec, hardware: Hardware | None, num_labels: int) -> TrialResources:
    declared = trial.candidate.resources
    if trial.method == "qlora" and declared.gpus == 0:
        raise BakeoffError(
            f"candidate `{trial.candidate.name}`: QLoRA needs a CUDA GPU but `resources.gpus` is 0; "
            "remove `resources.gpus` or set it to 1 or more"
        )
    if declared.gpus is not None:
        return TrialResources(declared.gpus, declared.cpus, declared.memory_gb, "declared in resources.gpus")
    if trial.candidate.is_baseline:
        return TrialResources(0, declared.cpus, declared.memory_gb, "baseline: CPU")
    if hardware is None:
        return TrialResources(0, declared.cpus, declared.memory_gb, "no GPUs in the cluster: runs on CPU")
    return TrialResources(
        estimated_gpus(trial, spec, hardware, num_labels),
        declared.cpus,
        declared.memory_gb,
        f"estimated for {trial.method} on {hardware.key}",
    )


def estimated_gpus(trial: Trial, spec: RunSpec, hardware: Hardware, num_labels: int) -> int:
    """GPUs the estimator says one trial needs on `hardware`: the fine-tune's memory, or for zero-shot the
    weights one serving replica must hold."""
    from bakeoff.efficiency.catalog import architecture_of  # reads the model's config (transformers), no weights

    candidate, training = trial.candidate, spec.training
    architecture = architecture_of(candidate.model, candidate.trust_remote_code)
    method = trial.method if trial.method != "zero-shot" else "lora"
    workload = estimate.Workload(
        method=method,
        train_examples=max(trial.train_size, 1),
        epochs=training.epochs,
        prompt_tokens=training.max_prompt_tokens,  # the longest a prompt may be: memory is sized for the worst batch
        num_labels=num_labels,
        batch_size=training.batch_size,
        lora_rank=training.lora.r,
        lora_targets=training.lora.targets if isinstance(training.lora.targets, str) else "all",
        gradient_checkpointing=training.gradient_checkpointing,
    )
    if trial.method == "zero-shot":
        serving = estimate.inference(architecture, workload, hardware)
        efficiency = spec.efficiency
        return capacity.plan(
            serving, efficiency.load_items_per_s, efficiency.sla_p95_ms, hardware.memory_gb, hardware.usd_per_hour
        ).gpus_per_replica
    return estimate.fine_tune(architecture, workload, hardware).gpus_needed


def refuse_unplaceable(plans: dict[Trial, TrialResources], nodes: list[NodeCapacity]) -> None:
    """Raise, naming the first trial no single node can hold (a Ray task never spans nodes) and the numbers."""
    for trial, need in plans.items():
        if any(_fits(need, node) for node in nodes):
            continue
        biggest = max(nodes, key=lambda node: (node.gpus, node.cpus, node.memory_gb), default=None)
        offer = (
            f"the largest of {len(nodes)} node(s) has {_count(biggest.gpus, 'GPU')}, "
            f"{_count(biggest.cpus, 'CPU')} "
            f"and {biggest.memory_gb:.1f} GB memory"
            if biggest
            else "the cluster has no alive nodes"
        )
        memory = f", {need.memory_gb:g} GB memory" if need.memory_gb is not None else ""
        raise BakeoffError(
            f"trial `{trial.trial_id}` asks for {_count(need.gpus, 'GPU')}, {_count(need.cpus, 'CPU')}{memory} "
            f"({need.why}) but {offer}; "
            f"lower `resources` of candidate `{trial.candidate.name}`, or join a cluster with bigger nodes "
            "(`--ray-address`). "
            "No trial was started."
        )


def _fits(need: TrialResources, node: NodeCapacity) -> bool:
    memory_ok = need.memory_gb is None or need.memory_gb <= node.memory_gb
    return need.gpus <= node.gpus and need.cpus <= node.cpus and memory_ok


def _count(amount: float, unit: str) -> str:
    whole = math.isclose(amount, round(amount))
    text = str(round(amount)) if whole else f"{amount:g}"
    return f"{text} {unit}" + ("" if whole and round(amount) == 1 else "s")
