"""The estimator next to published measurements (catalog/published.yaml): one estimate per point, same units.

`compare()` gives, per point, the published number, the estimate and estimated / published. The test holds
every ratio within ±25% except points marked `outlier` (at most two, each with its reason); the README
table is printed from the same rows by `python -m bakeoff.efficiency.reference` (`--json`: the rows).
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import yaml

from bakeoff.efficiency import estimate
from bakeoff.efficiency.hardware import gpu

TOLERANCE = 0.25
MAX_OUTLIERS = 2


@lru_cache(maxsize=1)
def points() -> list[dict]:
    return yaml.safe_load(files("bakeoff.efficiency").joinpath("catalog/published.yaml").read_text())["points"]


def estimated(point: dict) -> float:
    """The estimator's figure for a published point, in the point's unit."""
    from bakeoff.efficiency.catalog import architecture_of

    arch = architecture_of(point["model"])
    hardware = gpu(point["gpu"])
    workload = estimate.Workload(**point.get("workload", {}))
    kind = point["kind"]
    if kind == "train_memory":
        memory = estimate.fine_tune_memory(arch, workload, hardware)
        return {
            "allocated": memory["allocated"],
            "reserved": memory["allocated"] + memory["allocator_slack"],
            "device": memory["total"],
        }[point["metric"]]
    if kind == "train_throughput":
        tune = estimate.fine_tune(arch, workload, hardware)
        return tune.tokens / tune.time_s
    if kind == "prefill_ms":
        return estimate.prefill_ms(arch, workload, hardware, workload.prompt_tokens)
    if kind == "weights_gb":
        return arch.params_total * estimate.WEIGHT_BYTES[workload.serving_weights] / 1e9
    raise ValueError(f"unknown kind {kind!r} in published.yaml")


def compare() -> list[dict]:
    rows = []
    for point in points():
        value = estimated(point)
        rows.append(
            {
                "id": point["id"],
                "kind": point["kind"],
                "model": point["model"],
                "gpu": point["gpu"],
                "published": float(point["published"]),
                "unit": point["unit"],
                "estimated": value,
                "ratio": value / float(point["published"]),
                "outlier": point.get("outlier"),
                "excluded": point.get("excluded"),
                "source": point["source"],
            }
        )
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = ["| point | model | GPU | published | estimated | est / pub |", "|---|---|---|---|---|---|"]
    for r in rows:
        mark = " (known outlier)" if r["outlier"] else " (excluded)" if r["excluded"] else ""
        lines.append(
            f"| {r['id']}{mark} | {r['model']} | {r['gpu']} | {r['published']:g} {r['unit']} | "
            f"{r['estimated']:.3g} {r['unit']} | {r['ratio']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    rows = compare()
    print(json.dumps(rows, indent=1) if "--json" in sys.argv[1:] else markdown_table(rows))
