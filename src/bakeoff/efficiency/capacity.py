"""How many GPUs serve a load within a p95 latency SLA, and what they cost per month.

Assumptions (stated in every output): each replica runs dynamic batching with a maximum batch b; a
request arriving while a batch is in flight waits for it, then is served with the next batch, so its
latency is at most two batch service times: p95 <= 2 x S(b). Replicas are planned at <= 70% utilisation
so queues stay short (M/D/1 waits grow quickly above that). A replica spans as many GPUs as its weights
need. The best plan is the batch size that meets the SLA with the fewest GPUs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bakeoff.efficiency.estimate import USABLE_MEMORY, InferenceEstimate

TARGET_UTILISATION = 0.7
HOURS_PER_MONTH = 730
ASSUMPTIONS = (
    "dynamic batching; p95 latency <= 2 x batch service time; replicas planned at <= 70% utilisation; "
    "a replica spans enough GPUs to hold the weights; 730 h per month"
)


@dataclass(frozen=True)
class CapacityPlan:
    meets_sla: bool
    batch_size: int | None
    p95_ms: float | None
    gpus_per_replica: int
    replicas: int
    gpus: int
    usd_per_month: float
    assumptions: str = ASSUMPTIONS

    def as_dict(self) -> dict:
        return asdict(self)


def gpus_to_hold(weight_bytes: float, memory_gb: float) -> int:
    """GPUs a replica needs for its weights, planning on USABLE_MEMORY of each."""
    return max(1, math.ceil(weight_bytes / (memory_gb * 1e9 * USABLE_MEMORY)))


def plan(
    inference: InferenceEstimate,
    load_items_per_s: float,
    sla_p95_ms: float,
    memory_gb: float,
    usd_per_hour: float,
    gpus_per_replica: int = 1,
) -> CapacityPlan:
    """`gpus_per_replica`: at least this many (tensor parallel); more if the weights need them."""
    gpus_per_replica = max(
        gpus_per_replica, inference.gpus_per_replica, gpus_to_hold(inference.weight_bytes_read_per_pass, memory_gb)
    )
    return plan_batches(inference.latency_ms_by_batch, load_items_per_s, sla_p95_ms, gpus_per_replica, usd_per_hour)


def plan_batches(
    latency_ms_by_batch: dict[int, float],
    load_items_per_s: float,
    sla_p95_ms: float | None,
    gpus_per_replica: int,
    usd_per_hour: float,
) -> CapacityPlan:
    """The rule above on given batch latencies (ms per batch on one replica): of the batches whose p95
    meets the SLA (any batch without an SLA), the one that serves the load with the fewest GPUs.
    The decision engine applies it to stored estimates, so the rule and its constants live here once."""
    best: CapacityPlan | None = None
    for batch, latency_ms in sorted((int(b), ms) for b, ms in latency_ms_by_batch.items()):
        p95 = 2 * latency_ms
        if sla_p95_ms is not None and p95 > sla_p95_ms:
            continue
        per_replica = batch / (latency_ms / 1000) * TARGET_UTILISATION
        replicas = max(1, math.ceil(load_items_per_s / per_replica))
        gpus = replicas * gpus_per_replica
        candidate = CapacityPlan(
            True, batch, p95, gpus_per_replica, replicas, gpus, gpus * usd_per_hour * HOURS_PER_MONTH
        )
        if best is None or candidate.gpus < best.gpus:
            best = candidate
    if best is None:
        return CapacityPlan(False, None, None, gpus_per_replica, 0, 0, 0.0)
    return best
