"""Generation estimates (TTFT + memory-bound decode per token) on hand-computed cases."""

import pytest

from bakeoff.efficiency import decode_estimate, estimate
from bakeoff.efficiency.catalog import architecture_of
from bakeoff.efficiency.hardware import Hardware
from bakeoff.efficiency.introspect import Architecture

GPU = Hardware(key="t", name="test GPU", peak_tflops=100.0, memory_gb=80.0, bandwidth_gbs=1000.0, usd_per_hour=3.6)


def arch(**changes) -> Architecture:
    fields = dict(
        model_type="llama",
        is_moe=False,
        num_experts=0,
        experts_per_token=0,
        has_shared_experts=False,
        params_total=1_000_000_000,
        params_active=1_000_000_000,
        params_embedding=100_000_000,
        params_attention=200_000_000,
        params_mlp=700_000_000,
        params_router=0,
        params_lm_head=0,  # tied: the head multiplies by the 50,000 x 2,000 embedding table
        params_other=0,
        tied_embeddings=True,
        num_layers=10,
        hidden_size=2_000,
        num_heads=16,
        num_kv_heads=4,
        head_dim=128,
        kv_cache_bytes_per_token={"bfloat16": 100_000, "float32": 200_000},
        sliding_window=None,
        vocab_size=50_000,
        context_length=4096,
        lora_params_per_rank={"attention": 1, "all": 1},
    )
    return Architecture(**(fields | changes))


def test_decode_step_is_the_weight_and_kv_read_plus_the_floor():
    # batch 1, context 100 + 50 / 2 = 125: body 0.9e9 + head 0.1e9 params in bf16 = 2e9 bytes, KV 125 x 1e5 =
    # 1.25e7 bytes, at 85% of 1 TB/s; compute (2.01e9 FLOPs at 70% of 100 TFLOP/s = 0.03 ms) does not bind.
    read_s = (2e9 + 1.25e7) / (1000e9 * 0.85)
    floor_s = 10 * 100e-6
    step = decode_estimate.decode_step_s(arch(), estimate.Workload(prompt_tokens=100), GPU, 1, 125)
    assert step == pytest.approx(read_s + floor_s)  # 3.368 ms
    # TTFT: 100 tokens x (2 x 0.9e9 + 4 x 10 x 16 x 128 x 50) + the head once (2e8), at 0.7 x 100 / 228 of peak
    prefill_flops = 100 * (1.8e9 + 4 * 10 * 16 * 128 * 50) + 2e8
    ttft_s = prefill_flops / (100e12 * 0.7 * 100 / 228) + floor_s  # compute-bound: 5.88 ms > 2.35 ms of reads
    g = decode_estimate.generation(arch(), estimate.Workload(prompt_tokens=100), GPU, output_tokens=50)
    assert g.ttft_ms == pytest.approx(1000 * ttft_s)
    assert g.decode_ms_per_token == pytest.approx(1000 * step) and g.decode_tokens_per_s == pytest.approx(1 / step)
    assert g.latency_ms_per_item == pytest.approx(1000 * (ttft_s + 49 * step))  # 171.9 ms
    assert g.weight_bytes_per_step == 2e9 and g.kv_bytes_per_step == 1.25e7
    assert g.cost_usd_per_1k_items == pytest.approx(3.6 / 3600 / g.items_per_s_at_best * 1000)
    assert g.items_per_s_at_best > 1000 / g.latency_ms_per_item  # batching shares the weight reads


def test_moe_decode_reads_the_experts_its_tokens_touch():
    # 8 experts, top-2: per expert (4e9 - 1.75e9) / 6 = 0.375e9 params
    moe = arch(is_moe=True, num_experts=8, experts_per_token=2, params_total=4_000_000_000, params_active=1_750_000_000)
    assert decode_estimate.weight_params_read(moe, 1) == pytest.approx(1.75e9)  # the active parameters
    touched = 8 * (1 - 0.75**4)  # 5.47 experts for 4 tokens
    assert decode_estimate.weight_params_read(moe, 4) == pytest.approx(3.9e9 - (8 - touched) * 0.375e9 + 0.1e9)
    assert decode_estimate.weight_params_read(moe, 10_000) == pytest.approx(4.0e9)  # every expert, once


def test_batches_whose_kv_cache_does_not_fit_are_skipped_and_long_outputs_cost_more():
    small = Hardware(key="s", name="small", peak_tflops=100.0, memory_gb=3.0, bandwidth_gbs=1000.0, usd_per_hour=1.0)
    # 0.9 x 3 GB - 2 GB of weights leaves room for 0.7e9 / (150 x 1e5) = 46 sequences of 150 tokens
    g = decode_estimate.generation(arch(), estimate.Workload(prompt_tokens=100), small, output_tokens=50)
    assert max(g.latency_ms_by_batch) == 32
    short = decode_estimate.generation(arch(), estimate.Workload(prompt_tokens=100), GPU, output_tokens=10)
    long = decode_estimate.generation(arch(), estimate.Workload(prompt_tokens=100), GPU, output_tokens=200)
    assert long.cost_usd_per_1k_items > 3 * short.cost_usd_per_1k_items
    assert long.latency_ms_per_item > 15 * short.latency_ms_per_item  # 199 vs 9 decode steps after the prefill
    with pytest.raises(Exception, match="output_tokens must be at least 1"):
        decode_estimate.generation(arch(), estimate.Workload(), GPU, output_tokens=0)


def test_a_qlora_replica_holds_embeddings_and_head_in_16_bit():
    # nf4 linear layers (0.9e9 params at ~0.5 byte + quantization constants), the 0.1e9 tied embedding in bf16
    qlora = estimate.Workload(prompt_tokens=100, method="qlora")
    g = decode_estimate.generation(arch(), qlora, GPU, output_tokens=50)
    assert g.weight_format == "nf4"
    assert g.resident_weight_bytes == estimate.serving_weight_bytes(arch(), qlora, GPU)
    assert g.resident_weight_bytes == pytest.approx(0.9e9 * estimate.NF4_BYTES + 0.1e9 * 2)
    assert decode_estimate.as_inference(arch(), g).weight_bytes_read_per_pass == g.resident_weight_bytes


def test_generation_candidates_get_estimate_records_and_capacity_plans():
    from bakeoff.efficiency.plan import estimate_record

    smol = architecture_of("smollm2-135m")
    workload = estimate.Workload(prompt_tokens=80, label_tokens=30, num_labels=1, output_tokens=30)
    record = estimate_record("smollm2-135m", smol, "a10g", workload, 2000, 10)
    direct = decode_estimate.generation(smol, workload, GPU.__class__(**{**record["hardware"]}), 30)
    assert record["inference"]["generation_ms_per_item_batch1"] == pytest.approx(direct.latency_ms_per_item)
    assert record["inference"]["latency_ms_by_batch"][1] == pytest.approx(direct.latency_ms_per_item)
    assert record["capacity"]["meets_sla"]
    scoring = estimate_record("smollm2-135m", smol, "a10g", estimate.Workload(prompt_tokens=80), 2000, 10)
    assert record["inference"]["cost_usd_per_1k_items"] > scoring["inference"]["cost_usd_per_1k_items"]


def test_a_generation_trials_measured_output_length_prices_it_by_decoding():
    from bakeoff.efficiency.plan import gpu_estimates

    smol = architecture_of("smollm2-135m").as_dict()

    def trial(name, workload):
        result = {"model": {"kind": "llm", "architecture": smol}, "efficiency": {"workload": workload}}
        return {"status": "done", "candidate": name, "result": result | {"model_name": name}}

    efficiency = {
        "method": "lora",
        "gpus": ["a10g"],
        "sla_p95_ms": 2000.0,
        "load_items_per_s": 10.0,
        "usd_per_hour": {},
    }
    writes = trial("writer", {"prompt_tokens": 80, "output_tokens": 30.4})
    scores = trial("scorer", {"prompt_tokens": 80, "label_tokens": 3, "num_labels": 10})
    records = {r["model"]: r for r in gpu_estimates([writes, scores], efficiency, [200], 3)}
    assert records["writer"]["workload"]["output_tokens"] == 30 and records["writer"]["workload"]["label_tokens"] == 30
    assert records["scorer"]["workload"]["output_tokens"] == 0
    expected = decode_estimate.generation(
        architecture_of("smollm2-135m"), estimate.Workload(prompt_tokens=80), gpu_a10g(), 30
    )
    assert records["writer"]["inference"]["generation_ms_per_item_batch1"] == pytest.approx(
        expected.latency_ms_per_item
    )
    assert (
        records["writer"]["inference"]["cost_usd_per_1k_items"]
        > records["scorer"]["inference"]["cost_usd_per_1k_items"]
    )


def gpu_a10g():
    from bakeoff.efficiency.hardware import gpu

    return gpu("a10g")
