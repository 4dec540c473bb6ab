"""The estimator's formulas on hand-checked cases, and the capacity planner's direction of change."""

import json
import subprocess
import sys

import pytest

from bakeoff.efficiency import capacity, estimate
from bakeoff.efficiency.catalog import architecture_of
from bakeoff.efficiency.hardware import Hardware, gpu

A100 = gpu("a100-80gb")


def test_lora_is_4n_and_full_is_6n_per_token():
    arch = architecture_of("llama-3-8b")
    base = estimate.Workload(prompt_tokens=62, label_tokens=2)
    lora = estimate.fine_tune(arch, base, A100)
    full = estimate.fine_tune(arch, estimate.Workload(method="full", prompt_tokens=62, label_tokens=2), A100)
    body = estimate.body_params(arch)
    assert full.flops_per_token - lora.flops_per_token == pytest.approx(2 * body)
    attention = estimate.attention_flops_per_token(arch, 64)
    assert attention == 4 * 32 * 32 * 128 * 32  # layers x heads x head_dim x mean context (64 / 2)
    head = 2 * arch.params_lm_head_compute * 2 / 64
    assert lora.flops_per_token == pytest.approx(4 * body + 3 * attention + 3 * head)
    assert lora.tokens == 500 * 3 * 64
    assert lora.time_s == pytest.approx(lora.total_flops / (A100.peak_tflops * 1e12 * 0.35))
    # Packed training runs a 16-token shared prefix once per batch of 8, not once per example.
    packed = estimate.fine_tune(arch, estimate.Workload(prompt_tokens=62, label_tokens=2, shared_prefix_tokens=16, batch_size=8), A100)
    assert packed.tokens == 500 * 3 * (64 - 16 * 7 / 8)
    assert packed.flops_per_token == lora.flops_per_token


def test_memory_qlora_below_lora_below_full_and_checkpointing_saves_activations():
    arch = architecture_of("mistral-7b")
    mem = {m: estimate.fine_tune(arch, estimate.Workload(method=m), A100).memory_gb["total"] for m in ("qlora", "lora", "full")}
    assert mem["qlora"] < mem["lora"] < mem["full"]
    assert estimate.fine_tune(arch, estimate.Workload(method="full"), A100).memory_gb["total"] == pytest.approx(7.2417e9 * 16 / 1e9 + estimate.fine_tune(arch, estimate.Workload(method="full"), A100).memory_gb["activations"], rel=1e-3)
    plain = estimate.fine_tune(arch, estimate.Workload(), A100).memory_gb["activations"]
    checkpointed = estimate.fine_tune(arch, estimate.Workload(gradient_checkpointing=True), A100).memory_gb["activations"]
    assert checkpointed == pytest.approx(plain * 2 / 34)


def test_moe_costs_active_flops_but_total_memory():
    mixtral, mistral = architecture_of("mixtral-8x7b"), architecture_of("mistral-7b")
    w = estimate.Workload()
    flops_ratio = estimate.fine_tune(mixtral, w, A100).flops_per_token / estimate.fine_tune(mistral, w, A100).flops_per_token
    memory_ratio = estimate.fine_tune(mixtral, w, A100).memory_gb["weights"] / estimate.fine_tune(mistral, w, A100).memory_gb["weights"]
    assert 1.5 < flops_ratio < 2.0  # 12.9B vs 7.2B active
    assert memory_ratio == pytest.approx(46.70 / 7.24, rel=0.01)
    serve_moe, serve_dense = estimate.inference(mixtral, w, A100), estimate.inference(mistral, w, A100)
    assert serve_moe.latency_ms_by_batch[1] > serve_dense.latency_ms_by_batch[1], "an MoE is not faster than the dense 7B"


def test_inference_latency_grows_with_batch_and_throughput_peaks():
    serve = estimate.inference(architecture_of("llama-3-8b"), estimate.Workload(), gpu("l4"))
    latencies = [serve.latency_ms_by_batch[b] for b in sorted(serve.latency_ms_by_batch)]
    assert latencies == sorted(latencies)
    assert serve.cost_usd_per_1k_items == pytest.approx(0.80 / 3600 / serve.items_per_s_at_best * 1000)


def test_capacity_needs_more_gpus_for_more_load_and_fails_impossible_slas():
    serve = estimate.inference(architecture_of("llama-3-8b"), estimate.Workload(), A100)
    light = capacity.plan(serve, 10, 500, A100.memory_gb, A100.usd_per_hour)
    heavy = capacity.plan(serve, 1000, 500, A100.memory_gb, A100.usd_per_hour)
    assert light.meets_sla and heavy.gpus > light.gpus
    assert heavy.usd_per_month == pytest.approx(heavy.gpus * A100.usd_per_hour * 730)
    assert not capacity.plan(serve, 10, 1.0, A100.memory_gb, A100.usd_per_hour).meets_sla
    big = capacity.plan(estimate.inference(architecture_of("mixtral-8x7b"), estimate.Workload(), gpu("l4")), 5, 10_000, 24, 0.8)
    assert big.gpus_per_replica >= 4, "Mixtral's 93 GB of bf16 weights span several 24 GB GPUs"


def test_measured_cpu_runs_at_its_measured_peak():
    cpu = Hardware("local-cpu", "cpu", peak_tflops=0.1, memory_gb=24, bandwidth_gbs=20, usd_per_hour=0, measured=True)
    tune = estimate.fine_tune(architecture_of("smollm2-135m"), estimate.Workload(), cpu)
    assert tune.time_s == pytest.approx(tune.total_flops / 0.1e12)
    assert tune.memory_gb["weights"] == pytest.approx(134.5e6 * 4 / 1e9, rel=0.01)


def test_estimate_cli_offline_table_and_json(tmp_path):
    args = ["mistral-7b", "llama-3-8b", "mixtral-8x7b", "--gpu", "a10g", "--method", "qlora", "--train-examples", "500",
            "--epochs", "3", "--sla-p95-ms", "200", "--load", "50"]
    table = subprocess.run([sys.executable, "-m", "bakeoff.cli", "estimate", *args], capture_output=True, text=True,
                           env={"HF_HUB_OFFLINE": "1", "COLUMNS": "250", "PATH": ""}, timeout=120)
    assert table.returncode == 0, table.stderr
    assert "MoE 8x, top-2" in table.stdout and table.stdout.count("dense") == 2
    out = subprocess.run([sys.executable, "-m", "bakeoff.cli", "estimate", *args, "--json"], capture_output=True, text=True,
                         env={"HF_HUB_OFFLINE": "1", "PATH": ""}, timeout=120)
    payload = json.loads(out.stdout)
    verdicts = {e["model"]: e["architecture"]["is_moe"] for e in payload["estimates"]}
    assert verdicts == {"mistral-7b": False, "llama-3-8b": False, "mixtral-8x7b": True}
    bad = subprocess.run([sys.executable, "-m", "bakeoff.cli", "estimate", "mistral-7b", "--gpu", "a100"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "did you mean" in bad.stderr


@pytest.mark.parametrize("device_name, memory_gb, key", [
    ("NVIDIA A100-SXM4-80GB", 85.1, "a100-80gb"),
    ("NVIDIA A100-SXM4-40GB", 42.4, "a100-40gb"),
    ("NVIDIA H100 80GB HBM3", 85.0, "h100"),
    ("NVIDIA H200", 150.0, "h200"),
    ("NVIDIA L40S", 48.3, "l40s"),
    ("NVIDIA L4", 24.2, "l4"),
    ("NVIDIA A10G", 24.1, "a10g"),
    ("Tesla T4", 15.8, "t4"),
])
def test_a_cuda_device_is_costed_as_its_catalog_gpu(device_name, memory_gb, key):
    from bakeoff.efficiency.hardware import match_gpu

    assert match_gpu(device_name, memory_gb).key == key


def test_an_unknown_cuda_device_has_no_catalog_entry():
    from bakeoff.efficiency.hardware import match_gpu

    assert match_gpu("NVIDIA RTX 4090", 25.4) is None
