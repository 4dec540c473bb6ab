"""Hardware: the GPU catalog (datasheet numbers, overridable prices) and this machine, measured once.

The local CPU has no datasheet we can trust, so it is measured: fp32 matmul throughput (GFLOP/s) and
memory copy bandwidth (GB/s), cached per machine so every run reuses the same numbers.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from importlib.resources import files

import yaml

from bakeoff.cache import cache_root
from bakeoff.errors import BakeoffError

# torch is imported only where this machine is measured: the GPU catalog and prices are used by the
# decision engine and reports, which must run without torch.


@dataclass(frozen=True)
class Hardware:
    key: str
    name: str
    peak_tflops: float  # dense bf16 for GPUs; measured fp32 matmul for the local CPU
    memory_gb: float
    bandwidth_gbs: float
    usd_per_hour: float
    measured: bool = False  # True for the local machine
    note: str = ""
    fp8_tflops: float = 0.0  # dense FP8 tensor throughput; 0 where the GPU has none
    interconnect_gbs: float = 32.0  # GPU-to-GPU bandwidth per direction (NVLink, else PCIe Gen4)

    def as_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def _catalog() -> dict:
    return yaml.safe_load(files("bakeoff.efficiency").joinpath("catalog/hardware.yaml").read_text())


def price_provenance() -> str:
    catalog = _catalog()
    return f"{catalog['prices_source']} (as of {catalog['prices_as_of']})"


def gpu(key: str, usd_per_hour: float | None = None) -> Hardware:
    gpus = _catalog()["gpus"]
    if key not in gpus:
        import difflib

        close = difflib.get_close_matches(key, gpus, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        raise BakeoffError(f"unknown GPU `{key}`{hint} Known: {', '.join(gpus)}, local-cpu (this machine, measured)")
    entry = gpus[key]
    hardware = Hardware(
        key,
        entry["name"],
        float(entry["bf16_tflops"]),
        float(entry["memory_gb"]),
        float(entry["bandwidth_gbs"]),
        float(entry["usd_per_hour"]),
        note=entry.get("note", ""),
        fp8_tflops=float(entry.get("fp8_tflops", 0)),
        interconnect_gbs=float(entry.get("interconnect_gbs", 32)),
    )
    return hardware if usd_per_hour is None else replace(hardware, usd_per_hour=usd_per_hour)


def hardware_for(key: str, usd_per_hour: float | None = None) -> Hardware:
    """A catalog GPU, or `local-cpu`: this machine, measured once (needs torch)."""
    if key == "local-cpu":
        machine = local_cpu()
        return machine if usd_per_hour is None else replace(machine, usd_per_hour=usd_per_hour)
    return gpu(key, usd_per_hour)


def gpu_keys() -> list[str]:
    return list(_catalog()["gpus"])


def measure_cpu(size: int = 1024, repeats: int = 5) -> dict:
    """Best-of-N fp32 matmul GFLOP/s and memory-copy GB/s on this machine, with the current threads."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    gflops = 2 * size**3 / best / 1e9
    source = torch.empty(64 * 2**20 // 4)  # 64 MiB: far larger than the caches
    target = torch.empty_like(source)
    target.copy_(source)
    best_copy = min(_timed(lambda: target.copy_(source)) for _ in range(repeats))
    bandwidth = 2 * source.numel() * 4 / best_copy / 1e9  # read + write
    return {"matmul_gflops": gflops, "bandwidth_gbs": bandwidth, "threads": torch.get_num_threads()}


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def local_cpu(refresh: bool = False) -> Hardware:
    """This machine's CPU as Hardware, measured once and cached under the bakeoff cache."""
    import torch

    threads = torch.get_num_threads()
    path = cache_root() / "machine" / f"cpu-{platform.node()}-{threads}threads.json"
    if path.is_file() and not refresh:
        measured = json.loads(path.read_text())
    else:
        measured = measure_cpu()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(measured))
        os.replace(partial, path)
    memory_gb = _total_memory_gb()
    return Hardware(
        "local-cpu",
        f"{platform.processor() or platform.machine()} ({threads} threads)",
        measured["matmul_gflops"] / 1000,
        memory_gb,
        measured["bandwidth_gbs"],
        0.0,
        measured=True,
        note="measured: fp32 matmul peak and memory-copy bandwidth",
    )


def _total_memory_gb() -> float:
    import psutil

    return psutil.virtual_memory().total / 1e9


def this_machine(device: str) -> Hardware | None:
    """The hardware a trial runs on: the measured local CPU, or the catalog GPU matching the CUDA device."""
    import torch

    if not device.startswith("cuda"):
        return local_cpu()
    properties = torch.cuda.get_device_properties(torch.device(device))
    return match_gpu(properties.name, properties.total_memory / 1e9)


def _family(key: str) -> str:
    """What a CUDA device name contains for this catalog key: `match`, else the key's first word (a100-80gb: a100)."""
    return _catalog()["gpus"][key].get("match", key.split("-")[0])


def match_gpu(device_name: str, memory_gb: float) -> Hardware | None:
    """The catalog GPU whose family appears in the device name; between sizes of one family (A100 40/80 GB),
    the one whose memory is nearest the device's."""
    name = device_name.replace(" ", "").lower()
    longest_first = sorted(gpu_keys(), key=len, reverse=True)
    family = next((_family(key) for key in longest_first if _family(key) in name), None)
    if family is None:
        return None
    sizes = [gpu(key) for key in gpu_keys() if _family(key) == family]
    return min(sizes, key=lambda hardware: abs(hardware.memory_gb - memory_gb))
