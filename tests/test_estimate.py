"""The estimator's formulas on hand-checked cases, and the capacity planner's direction of change."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bakeoff.efficiency import capacity, estimate
from bakeoff.efficiency.catalog import architecture_of
from bakeoff.efficiency.hardware import Hardware, gpu

A100 = gpu("a100-80gb")
H100 = gpu("h100")
SRC = str(Path(__file__).resolve().parents[1] / "src")  # subprocesses run this checkout's code, not an installed copy


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
    share = 0.35 * (8 * 64) / (8 * 64 + estimate.TOKENS_AT_HALF_UTILISATION)  # utilisation at 512 tokens per step
    assert lora.utilisation == pytest.approx(share)
    steps = 63 * 3
    floor = 3 * 32 * estimate.LAYER_FLOOR_S  # forward + backward passes, per layer
    assert lora.time_s == pytest.approx(lora.total_flops / (A100.peak_tflops * 1e12 * share) + steps * floor)
    # Packed training runs a 16-token shared prefix once per batch of 8, not once per example.
    packed = estimate.fine_tune(
        arch, estimate.Workload(prompt_tokens=62, label_tokens=2, shared_prefix_tokens=16, batch_size=8), A100
    )
    assert packed.tokens == 500 * 3 * (64 - 16 * 7 / 8)
    assert packed.flops_per_token == lora.flops_per_token


def test_memory_qlora_below_lora_below_full_and_checkpointing_saves_activations():
    arch = architecture_of("mistral-7b")
    mem = {
        m: estimate.fine_tune(arch, estimate.Workload(method=m), A100).memory_gb["total"]
        for m in ("qlora", "lora", "full")
    }
    assert mem["qlora"] < mem["lora"] < mem["full"]
    full = estimate.fine_tune(arch, estimate.Workload(method="full"), A100).memory_gb
    assert full["allocated"] == pytest.approx(7.2417e9 * 16 / 1e9 + full["activations"] + full["logits"], rel=1e-3)
    assert full["total"] == pytest.approx(full["allocated"] * (1 + estimate.ALLOCATOR_SLACK) + estimate.CUDA_CONTEXT_GB)
    plain = estimate.fine_tune(arch, estimate.Workload(), A100).memory_gb["activations"]
    checkpointed = estimate.fine_tune(arch, estimate.Workload(gradient_checkpointing=True), A100).memory_gb[
        "activations"
    ]
    assert checkpointed == pytest.approx(plain * (2 * 32 + 34) / (34 * 32)), (
        "each layer's input, plus one layer recomputed"
    )


def test_moe_costs_active_flops_but_total_memory():
    mixtral, mistral = architecture_of("mixtral-8x7b"), architecture_of("mistral-7b")
    w = estimate.Workload(lora_targets="attention")  # LoRA on the experts adds its own work (tested below)
    flops_ratio = (
        estimate.fine_tune(mixtral, w, A100).flops_per_token / estimate.fine_tune(mistral, w, A100).flops_per_token
    )
    memory_ratio = (
        estimate.fine_tune(mixtral, w, A100).memory_gb["weights"]
        / estimate.fine_tune(mistral, w, A100).memory_gb["weights"]
    )
    assert 1.5 < flops_ratio < 2.0  # 12.9B vs 7.2B active
    assert memory_ratio == pytest.approx(46.70 / 7.24, rel=0.01)
    serve_moe, serve_dense = estimate.inference(mixtral, w, A100), estimate.inference(mistral, w, A100)
    assert serve_moe.latency_ms_by_batch[1] > serve_dense.latency_ms_by_batch[1], (
        "an MoE is not faster than the dense 7B"
    )


def test_inference_latency_grows_with_batch_and_throughput_peaks():
    serve = estimate.inference(architecture_of("llama-3-8b"), estimate.Workload(), gpu("l4"))
    latencies = [serve.latency_ms_by_batch[b] for b in sorted(serve.latency_ms_by_batch)]
    assert latencies == sorted(latencies)
    assert serve.cost_usd_per_1k_items == pytest.approx(0.80 / 3600 / serve.items_per_s_at_best * 1000)


def test_time_to_first_token_is_the_prompt_alone_and_label_scoring_adds_to_it():
    """TTFT (`prefill_ms_batch1`) runs the whole prompt, LM head on the last position, and scores no label:
    comparable with published TTFT tables. The classification latency adds the labels' continuation."""
    arch = architecture_of("llama-3-8b")
    prompt_only = estimate.Workload(prompt_tokens=512, num_labels=10, label_tokens=3)
    serve = estimate.inference(arch, prompt_only, gpu("h100"))
    assert serve.prefill_ms_batch1 == pytest.approx(estimate.prefill_ms(arch, prompt_only, gpu("h100"), 512))
    assert 0 < serve.prefill_ms_batch1 < serve.latency_ms_by_batch[1] < serve.generation_ms_per_item_batch1
    longer = estimate.inference(arch, estimate.Workload(prompt_tokens=2048), gpu("h100"))
    assert longer.prefill_ms_batch1 > serve.prefill_ms_batch1
    # the labels do not enter it: 1 label or 50 labels, the same time to first token
    many = estimate.inference(arch, estimate.Workload(prompt_tokens=512, num_labels=50, label_tokens=3), gpu("h100"))
    assert (
        many.prefill_ms_batch1 == serve.prefill_ms_batch1 and many.latency_ms_by_batch[1] > serve.latency_ms_by_batch[1]
    )


def test_a_generation_estimate_carries_its_time_to_first_token():
    """--output-tokens: the serving record comes from the decode estimate, which must carry its TTFT (it read 0)."""
    from bakeoff.efficiency import decode_estimate

    arch = architecture_of("qwen2.5-0.5b")
    workload = estimate.Workload(prompt_tokens=120, output_tokens=32, num_labels=1, label_tokens=32)
    generation = decode_estimate.generation(arch, workload, gpu("a10g"), 32)
    serve = decode_estimate.as_inference(arch, generation)
    assert serve.prefill_ms_batch1 == generation.ttft_ms > 0
    assert serve.prefill_ms_batch1 < serve.generation_ms_per_item_batch1


def test_capacity_needs_more_gpus_for_more_load_and_fails_impossible_slas():
    serve = estimate.inference(architecture_of("llama-3-8b"), estimate.Workload(), A100)
    light = capacity.plan(serve, 10, 500, A100.memory_gb, A100.usd_per_hour)
    heavy = capacity.plan(serve, 1000, 500, A100.memory_gb, A100.usd_per_hour)
    assert light.meets_sla and heavy.gpus > light.gpus
    assert heavy.usd_per_month == pytest.approx(heavy.gpus * A100.usd_per_hour * 730)
    assert not capacity.plan(serve, 10, 1.0, A100.memory_gb, A100.usd_per_hour).meets_sla
    big = capacity.plan(
        estimate.inference(architecture_of("mixtral-8x7b"), estimate.Workload(), gpu("l4")), 5, 10_000, 24, 0.8
    )
    assert big.gpus_per_replica >= 4, "Mixtral's 93 GB of bf16 weights span several 24 GB GPUs"


def test_measured_cpu_runs_at_its_measured_peak():
    cpu = Hardware("local-cpu", "cpu", peak_tflops=0.1, memory_gb=24, bandwidth_gbs=20, usd_per_hour=0, measured=True)
    tune = estimate.fine_tune(architecture_of("smollm2-135m"), estimate.Workload(), cpu)
    assert tune.time_s == pytest.approx(tune.total_flops / 0.1e12)
    assert tune.memory_gb["weights"] == pytest.approx(134.5e6 * 4 / 1e9, rel=0.01)


@pytest.mark.integration
def test_estimate_cli_offline_table_and_json(tmp_path):
    args = [
        "mistral-7b",
        "llama-3-8b",
        "mixtral-8x7b",
        "--gpu",
        "a10g",
        "--method",
        "qlora",
        "--train-examples",
        "500",
        "--epochs",
        "3",
        "--sla-p95-ms",
        "200",
        "--load",
        "50",
    ]
    table = subprocess.run(
        [sys.executable, "-m", "bakeoff.cli", "estimate", *args],
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "COLUMNS": "250", "PATH": "", "PYTHONPATH": SRC},
        timeout=120,
    )
    assert table.returncode == 0, table.stderr
    assert "MoE 8x, top-2" in table.stdout and table.stdout.count("dense") == 2
    out = subprocess.run(
        [sys.executable, "-m", "bakeoff.cli", "estimate", *args, "--json"],
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "", "PYTHONPATH": SRC},
        timeout=120,
    )
    payload = json.loads(out.stdout)
    verdicts = {e["model"]: e["architecture"]["is_moe"] for e in payload["estimates"]}
    assert verdicts == {"mistral-7b": False, "llama-3-8b": False, "mixtral-8x7b": True}
    # time to first token, in the JSON and as a table column, below the label-scoring latency
    assert "TTFT b=1 ms" in table.stdout
    for record in payload["estimates"]:
        assert 0 < record["inference"]["prefill_ms_batch1"] < record["inference"]["latency_ms_by_batch"]["1"]
    bad = subprocess.run(
        [sys.executable, "-m", "bakeoff.cli", "estimate", "mistral-7b", "--gpu", "a100"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "", "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"},
    )
    assert bad.returncode == 2 and "did you mean" in bad.stderr


@pytest.mark.parametrize(
    "device_name, memory_gb, key",
    [
        ("NVIDIA A100-SXM4-80GB", 85.1, "a100-80gb"),
        ("NVIDIA A100-SXM4-40GB", 42.4, "a100-40gb"),
        ("NVIDIA H100 80GB HBM3", 85.0, "h100"),
        ("NVIDIA H200", 150.0, "h200"),
        ("NVIDIA L40S", 48.3, "l40s"),
        ("NVIDIA L4", 24.2, "l4"),
        ("NVIDIA A10G", 24.1, "a10g"),
        ("Tesla T4", 15.8, "t4"),
        ("NVIDIA GeForce RTX 4090", 25.4, "rtx-4090"),
    ],
)
def test_a_cuda_device_is_costed_as_its_catalog_gpu(device_name, memory_gb, key):
    from bakeoff.efficiency.hardware import match_gpu

    assert match_gpu(device_name, memory_gb).key == key


def test_an_unknown_cuda_device_has_no_catalog_entry():
    from bakeoff.efficiency.hardware import match_gpu

    assert match_gpu("NVIDIA RTX A6000", 51.0) is None, "an RTX that is not a 4090 must not be costed as one"


# --- issue 17: the model's new terms, the published reference points, calibration -------------------------------


def test_every_published_point_within_25_percent_or_a_stated_outlier():
    from bakeoff.efficiency import reference

    rows = reference.compare()
    held = [r for r in rows if not r["excluded"]]
    outliers = [r for r in held if r["outlier"]]
    assert len(held) >= 15, "the issue asks for at least 15 published points"
    assert len(outliers) <= reference.MAX_OUTLIERS
    for point in reference.points():
        assert point["source"].startswith("https://") and point["conditions"], point["id"]
    misses = [
        f"{r['id']}: {r['ratio']:.2f}" for r in held if not r["outlier"] and abs(r["ratio"] - 1) > reference.TOLERANCE
    ]
    assert not misses, f"estimate / published outside ±25%: {misses}"
    for r in outliers:  # an outlier that came back within tolerance should lose its mark
        assert abs(r["ratio"] - 1) > reference.TOLERANCE, f"{r['id']} is marked an outlier but is within ±25%"


def test_qlora_counts_unquantized_embeddings_head_and_logits():
    arch = architecture_of("llama-3-8b")
    w = estimate.Workload(
        method="qlora", prompt_tokens=512, label_tokens=0, batch_size=1, logits="full", unquantized_format="bf16"
    )
    memory = estimate.fine_tune_memory(arch, w, A100)
    unquantized = arch.params_embedding + arch.params_lm_head + arch.params_other
    assert memory["weights"] * 1e9 == pytest.approx(
        (arch.params_total - unquantized) * estimate.NF4_BYTES + 2 * unquantized
    )
    assert memory["weights"] > 5.5, "Llama-3's 128k-vocab embeddings and head alone are 2.1 GB in bf16"
    assert memory["logits"] * 1e9 == pytest.approx(512 * 128256 * 16)
    upcast = estimate.fine_tune_memory(arch, estimate.Workload(**{**w.__dict__, "unquantized_format": "fp32"}), A100)
    assert upcast["weights"] - memory["weights"] == pytest.approx(2 * unquantized / 1e9), (
        "PEFT's fp32 upcast doubles them"
    )
    assert memory["total"] > memory["allocated"] + estimate.CUDA_CONTEXT_GB - 1e-9


def test_qlora_keeps_fused_moe_experts_in_16_bit():
    """transformers 5 stores Mixtral's experts as 3-D tensors that bitsandbytes' 4-bit loading skips."""
    arch = architecture_of("mixtral-8x7b")
    assert arch.params_fused_experts > 0.9 * arch.params_total, "the experts are most of Mixtral"
    assert architecture_of("mistral-7b").params_fused_experts == 0
    w = estimate.Workload(method="qlora", prompt_tokens=128, label_tokens=2, batch_size=1)
    weights_gb = estimate.fine_tune_memory(arch, w, A100)["weights"]
    dense = arch.params_total - arch.params_fused_experts - arch.params_embedding - arch.params_lm_head
    dense -= arch.params_other
    expected = dense * estimate.NF4_BYTES + 2 * (arch.params_total - dense)  # bf16: the compute dtype on a GPU
    assert weights_gb * 1e9 == pytest.approx(expected)
    assert weights_gb > 85, "not the ~25 GB an all-NF4 Mixtral would take"
    served = estimate.inference(arch, estimate.Workload(method="qlora"), A100)
    assert served.weight_bytes_read_per_pass == pytest.approx(expected)


def test_qlora_is_slower_than_lora_by_the_dequantization_factor():
    arch = architecture_of("mistral-7b")
    lora = estimate.fine_tune(arch, estimate.Workload(method="lora"), A100)
    qlora = estimate.fine_tune(arch, estimate.Workload(method="qlora"), A100)
    floor = lora.time_s - lora.total_flops / (A100.peak_tflops * 1e12 * lora.utilisation)
    assert qlora.time_s - floor == pytest.approx((lora.time_s - floor) * estimate.QLORA_TIME_FACTOR)


def test_checkpointing_adds_a_forward_and_bigger_batches_use_the_gpu_better():
    arch = architecture_of("llama-3-8b")
    plain = estimate.fine_tune(arch, estimate.Workload(), A100)
    checkpointed = estimate.fine_tune(arch, estimate.Workload(gradient_checkpointing=True), A100)
    assert checkpointed.flops_per_token > plain.flops_per_token * 1.4
    per_token = {b: estimate.fine_tune(arch, estimate.Workload(batch_size=b), A100) for b in (1, 8, 64)}
    seconds_per_token = [per_token[b].time_s / per_token[b].tokens for b in (1, 8, 64)]
    assert seconds_per_token == sorted(seconds_per_token, reverse=True)
    assert per_token[64].utilisation < 0.35 < per_token[64].utilisation * 1.1, (
        "approaches train_utilisation at large batches"
    )
    ranked = [estimate.fine_tune(arch, estimate.Workload(lora_rank=r), A100).trainable_params for r in (8, 16, 64)]
    assert ranked[1] == 2 * ranked[0] and ranked[2] == 8 * ranked[0]


def test_batch1_latency_has_a_per_layer_floor():
    tiny = architecture_of("smollm2-135m")
    serve = estimate.inference(tiny, estimate.Workload(prompt_tokens=8, label_tokens=1), gpu("h100"), batch_sizes=(1,))
    assert serve.latency_ms_by_batch[1] >= 1000 * tiny.num_layers * estimate.LAYER_FLOOR_S
    assert serve.latency_ms_by_batch[1] < 1000 * tiny.num_layers * estimate.LAYER_FLOOR_S * 1.5, (
        "a 135M model is floor-bound on an H100"
    )


def test_tensor_parallel_adds_bandwidth_and_flops_minus_allreduces():
    arch = architecture_of("llama-2-70b")
    h100 = gpu("h100")
    ttft = {g: estimate.prefill_ms(arch, estimate.Workload(gpus_per_replica=g), h100, 2048) for g in (1, 2, 4)}
    assert ttft[4] < ttft[2] < ttft[1]
    assert ttft[4] > ttft[1] / 4, "all-reduces keep TP4 from a perfect 4x"
    pcie = estimate.prefill_ms(arch, estimate.Workload(gpus_per_replica=4), gpu("l40s"), 2048)
    nvlink_share = estimate.allreduce_s(arch, h100, 4, 2048) / (ttft[4] / 1000)
    pcie_share = estimate.allreduce_s(arch, gpu("l40s"), 4, 2048) / (pcie / 1000)
    assert pcie_share > 2 * nvlink_share, "PCIe all-reduces cost more of the pass than NVLink ones"


def test_a_mixtral_replica_split_over_two_gpus_gets_both_gpus_bandwidth():
    from bakeoff.efficiency.plan import estimate_record

    mixtral = architecture_of("mixtral-8x7b")
    record = estimate_record("mixtral-8x7b", mixtral, "a100-80gb", estimate.Workload(), 200, 10)
    assert record["inference"]["gpus_per_replica"] == 2 and record["capacity"]["gpus_per_replica"] == 2
    one_gpu = estimate.inference(mixtral, estimate.Workload(), A100, batch_sizes=(1,)).latency_ms_by_batch[1]
    assert record["inference"]["latency_ms_by_batch"][1] < 0.7 * one_gpu


def test_serving_weight_formats_change_bytes_and_fp8_compute():
    arch = architecture_of("llama-3-8b")
    h100 = gpu("h100")
    served = {
        f: estimate.inference(arch, estimate.Workload(serving_weights=f), h100, batch_sizes=(1, 64))
        for f in ("bf16", "fp8", "int8", "nf4")
    }
    assert served["fp8"].weight_bytes_read_per_pass == pytest.approx(served["bf16"].weight_bytes_read_per_pass / 2)
    assert served["nf4"].weight_bytes_read_per_pass < served["int8"].weight_bytes_read_per_pass
    assert served["fp8"].latency_ms_by_batch[64] < served["int8"].latency_ms_by_batch[64], (
        "fp8 GEMMs; int8 weights are dequantized to bf16"
    )
    a100 = estimate.inference(arch, estimate.Workload(serving_weights="fp8"), A100, batch_sizes=(64,))
    assert a100.latency_ms_by_batch[64] == pytest.approx(
        estimate.inference(
            arch, estimate.Workload(serving_weights="int8"), A100, batch_sizes=(64,)
        ).latency_ms_by_batch[64]
    ), "A100 has no fp8 units"
    with pytest.raises(Exception, match="--weights"):
        estimate.inference(arch, estimate.Workload(serving_weights="fp4"), h100)


def _run_with_measurements(run_dir, step_factor: float, latency_factor: float, gpu_key: str = "a10g"):
    """A run folder holding one SmolLM2 LoRA trial whose stored measurements are the given multiples of the estimate."""
    from bakeoff.efficiency.compare import measured_vs_estimated
    from bakeoff.run_folder import RunFolder

    arch, hardware = architecture_of("smollm2-135m"), gpu(gpu_key)
    workload = estimate.Workload(train_examples=40, epochs=1, batch_size=4, prompt_tokens=46)
    step = estimate.fine_tune(arch, workload, hardware).step_time_s * step_factor
    latency = estimate.inference(arch, workload, hardware, batch_sizes=(1,)).latency_ms_by_batch[1] * latency_factor
    store = RunFolder(run_dir).claim_store(
        "f" * 16, {"spec": {"candidates": [{"name": "smollm2 lora", "model": "smollm2-135m"}]}}
    )
    store.start("t1", "smollm2 lora", "lora", 40, 0)
    store.finish(
        "t1",
        {
            "model": {"architecture": arch.as_dict()},
            "efficiency": measured_vs_estimated(arch, workload, hardware, step, latency),
        },
    )
    store.db.close()


def test_calibration_scales_the_run_hardware_and_says_when_it_does_not(tmp_path):
    from bakeoff.efficiency import calibrate
    from bakeoff.efficiency.plan import estimate_records

    _run_with_measurements(tmp_path / "run", step_factor=3.0, latency_factor=5.0)
    calibration = calibrate.load(tmp_path / "run")
    assert calibration.hardware_key == "a10g"
    assert calibration.by_model["smollm2-135m"]["step"] == pytest.approx(3.0)
    assert calibration.by_model["smollm2-135m"]["latency"] == pytest.approx(5.0)
    workload = estimate.Workload()
    (raw,) = estimate_records(["smollm2-135m"], "a10g", workload, 200, 10)
    scaled, other = estimate_records(
        ["smollm2-135m", "qwen2.5-0.5b"], "a10g", workload, 200, 10, calibration=calibration
    )
    assert scaled["fine_tune"]["time_s"] == pytest.approx(3.0 * raw["fine_tune"]["time_s"])
    assert scaled["inference"]["latency_ms_by_batch"][1] == pytest.approx(
        5.0 * raw["inference"]["latency_ms_by_batch"][1]
    )
    assert scaled["calibration"]["applied"] and "measured for smollm2-135m" in scaled["calibration"]["basis"]
    assert "run-wide" in other["calibration"]["basis"], "an unmeasured model gets the run's mean, and is told so"
    (elsewhere,) = estimate_records(["smollm2-135m"], "h100", workload, 200, 10, calibration=calibration)
    assert not elsewhere["calibration"]["applied"] and "a10g" in elsewhere["calibration"]["reason"]


def test_estimate_cli_new_options_and_calibrate(tmp_path):
    from typer.testing import CliRunner

    from bakeoff.cli.main import app

    _run_with_measurements(tmp_path / "run", step_factor=2.0, latency_factor=4.0)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, ["estimate", "smollm2-135m", *args], env={"COLUMNS": "250"})

    plain = json.loads(run("--gpu", "a10g", "--json").stdout)
    shaped = json.loads(
        run(
            "--gpu",
            "a10g",
            "--json",
            "--batch-size",
            "2",
            "--lora-rank",
            "8",
            "--gradient-checkpointing",
            "--gpus-per-replica",
            "3",  # smollm2-135m: 9 heads, 3 KV heads
            "--weights",
            "fp8",
        ).stdout
    )
    assert set(plain) <= set(shaped) and set(plain["estimates"][0]) <= set(shaped["estimates"][0]), (
        "the JSON keeps its shape"
    )
    w = shaped["workload"]
    assert (
        w["batch_size"],
        w["lora_rank"],
        w["gradient_checkpointing"],
        w["gpus_per_replica"],
        w["serving_weights"],
    ) == (2, 8, True, 3, "fp8")
    assert (
        shaped["estimates"][0]["fine_tune"]["memory_gb"]["weights"]
        == plain["estimates"][0]["fine_tune"]["memory_gb"]["weights"]
    ), "--weights is for serving: training weights stay bf16"
    assert (
        shaped["estimates"][0]["inference"]["gpus_per_replica"] == 3
        and shaped["estimates"][0]["capacity"]["gpus_per_replica"] == 3
    )
    table = run("--gpu", "a10g", "--calibrate", str(tmp_path / "run"))
    assert table.exit_code == 0, table.output
    assert "calibrated from" in table.stdout and "step time x2.00" in table.stdout and "latency x4.00" in table.stdout
    assert "NOT applied" in run("--gpu", "h100", "--calibrate", str(tmp_path / "run")).stdout
    for bad in (["--weights", "fp4"], ["--calibrate", str(tmp_path / "nothing")]):
        failed = run("--gpu", "a10g", *bad)
        assert failed.exit_code == 2 and bad[0] in failed.output


def test_the_measured_step_leaves_out_the_first_warm_up_step():
    from bakeoff.training.loop import steady_step_s

    assert steady_step_s({"steps": 4, "step_time_s": 10.0, "first_step_s": 4.0}) == 2.0
    assert steady_step_s({"steps": 4, "step_time_s": 10.0}) == 2.5  # stored before first_step_s existed
    assert steady_step_s({"steps": 1, "step_time_s": 3.0, "first_step_s": 3.0}) == 3.0
    assert steady_step_s(None) is None and steady_step_s({"steps": 0, "step_time_s": 0.0}) is None


def test_a_trained_trial_stores_its_fine_tune_peak_against_the_memory_estimate(tmp_path, tiny_folder):
    """The estimator prices the training state: what the fine-tune holds above the process's own memory before
    the trial loaded its model (on CPU, RSS also holds the interpreter and libraries), not loading's peak."""
    import json

    from run_fixture import make_run

    candidates = [{"name": "tiny lora", "model": str(tiny_folder), "method": "lora"}]
    trial = json.loads((make_run(tmp_path / "run", candidates, [16]) / "results.json").read_text())["trials"][0]
    result = trial["result"]
    tune_mb, trial_mb = result["training"]["peak_memory_mb"], result["timings"]["peak_memory_mb"]
    before_mb = result["training"]["memory_before_load_mb"]  # the interpreter, torch, the test session's heap
    assert 0 < before_mb < tune_mb <= trial_mb
    efficiency = result["efficiency"]
    assert efficiency["measured_memory_gb"] == pytest.approx((tune_mb - before_mb) * 2**20 / 1e9)
    assert efficiency["memory_ratio_measured_over_estimated"] == pytest.approx(
        efficiency["measured_memory_gb"] / efficiency["estimated_memory_gb"]["total"]
    )


def test_a_nested_peak_is_never_above_the_peak_around_it(monkeypatch):
    """Two samplers never sample the same instants: the inner one's peak is handed to the outer one, so a
    trial's peak is at least its fine-tune's. Here only the inner sampler's thread sees the spike."""
    import threading
    import time

    from bakeoff.efficiency import measure

    spiking: list[threading.Thread] = []

    class Process:
        def memory_info(self):
            rss_mb = 500 if threading.current_thread() in spiking else 100
            return type("Info", (), {"rss": rss_mb * 2**20})()

    monkeypatch.setattr(measure.psutil, "Process", Process)
    with measure.PeakMemory("cpu") as outer:
        with measure.PeakMemory("cpu") as inner:
            spiking.append(inner._thread)
            time.sleep(0.3)  # the inner sampler reads every 20 ms
        assert inner.peak_mb == 500
    assert outer.peak_mb == 500, "the inner peak reached the outer one"


def test_nested_peak_memory_on_cuda_measures_its_own_stretch_and_the_outer_keeps_the_load_peak(monkeypatch):
    """One CUDA peak counter for both: a 4-bit load can peak above training, and the fine-tuning reading must
    not report the load's peak, nor the trial's reading lose it. A fake allocator stands in for CUDA."""
    from bakeoff.efficiency import measure

    class FakeCuda:
        allocated = peak = 0.0

        def use(self, mb: float) -> None:  # allocate to `mb` MB (peak follows)
            self.allocated = mb * 2**20
            self.peak = max(self.peak, self.allocated)

    cuda = FakeCuda()
    monkeypatch.setattr(measure.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(measure.torch.cuda, "memory_allocated", lambda: cuda.allocated)
    monkeypatch.setattr(measure.torch.cuda, "max_memory_allocated", lambda: cuda.peak)
    monkeypatch.setattr(measure.torch.cuda, "reset_peak_memory_stats", lambda: setattr(cuda, "peak", cuda.allocated))
    with measure.PeakMemory("cuda") as trial:
        cuda.use(9000)  # quantizing a shard while loading
        cuda.use(4000)  # the 4-bit model
        with measure.PeakMemory("cuda", reset=False) as tuning:
            cuda.use(6000)  # weights + adapters + activations
            cuda.use(4000)
        cuda.use(5000)  # scoring
    assert tuning.peak_mb == 6000, "the fine-tuning reading is its own peak, not the load's"
    assert trial.peak_mb == 9000, "the trial's reading keeps the load peak from before the inner reset"


def test_lora_on_fused_experts_keeps_a_full_size_adapted_stack_per_layer_and_the_estimate_counts_it():
    """The estimator's `expert_lora_weights` rests on how peft adapts fused expert tensors: the forward forms
    `W + scaling * B @ A` at full size and autograd keeps it for the backward, once per MoE layer. Checked on a
    tiny Mixtral through bakeoff's own LoRA preparation (if peft stops doing this, the term is stale)."""
    import torch
    from tiny import tiny_model, tiny_tokenizer

    from bakeoff.config import LoraSpec
    from bakeoff.efficiency.introspect import introspect
    from bakeoff.training.lora import prepare_for_method

    model = tiny_model("mixtral", len(tiny_tokenizer()))
    stacks = [p for n, p in model.named_parameters() if ".experts." in n and p.ndim == 3]
    stack_bytes = {p.numel() * p.element_size() for p in stacks}
    arch = introspect(model.config)
    model = prepare_for_method(model, "lora", LoraSpec(r=4, targets="all"), seed=0, gradient_checkpointing=False)
    kept = []

    def pack(tensor):  # what autograd keeps for the backward: adapted stacks are full-size and carry a gradient
        if tensor.requires_grad and tensor.untyped_storage().nbytes() in stack_bytes:
            kept.append(tensor.untyped_storage().data_ptr())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=torch.randint(0, 50, (2, 12))).logits.sum().backward()
    per_layer = len(stacks) // arch.num_layers  # gate_up_proj and down_proj
    assert len(set(kept)) == per_layer * arch.num_layers, "one kept full-size adapted copy per expert stack"

    cpu = Hardware("local-cpu", "cpu", peak_tflops=0.1, memory_gb=24, bandwidth_gbs=20, usd_per_hour=0, measured=True)
    lora = estimate.fine_tune_memory(arch, estimate.Workload(lora_targets="all"), cpu)
    layer_bytes = arch.params_fused_experts / arch.num_layers * 4  # float32 on a measured CPU
    gate_up_bytes = max(p.numel() for p in stacks) * 4  # the largest stack's gradient, one at a time
    assert gate_up_bytes == pytest.approx(layer_bytes * estimate.GATE_UP_SHARE)
    assert lora["expert_lora_weights"] * 1e9 == pytest.approx(arch.params_fused_experts * 4 + gate_up_bytes)
    checkpointed = estimate.fine_tune_memory(arch, estimate.Workload(gradient_checkpointing=True), cpu)
    assert checkpointed["expert_lora_weights"] * 1e9 == pytest.approx(layer_bytes + gate_up_bytes)
    for untouched in (estimate.Workload(lora_targets="attention"), estimate.Workload(method="full")):
        assert estimate.fine_tune_memory(arch, untouched, cpu)["expert_lora_weights"] == 0.0
    dense = architecture_of("mistral-7b")
    assert estimate.fine_tune_memory(dense, estimate.Workload(), cpu)["expert_lora_weights"] == 0.0


def test_lora_on_fused_experts_forms_each_stack_twice_a_forward_and_reduces_its_gradient_in_the_backward():
    """The premise of `expert_lora_work`, counted on a tiny Mixtral through bakeoff's own LoRA preparation:
    the forward forms every adapted stack twice (baddbmm, 2 x rank FLOPs per expert parameter each) and the
    backward reduces each stack's full-size gradient to A and B (two bmm). If peft or transformers change
    this, the estimator's per-step term is stale."""
    import torch
    from tiny import tiny_model, tiny_tokenizer
    from torch.utils.flop_counter import FlopCounterMode

    from bakeoff.config import LoraSpec
    from bakeoff.efficiency.introspect import introspect
    from bakeoff.training.lora import prepare_for_method

    torch.manual_seed(0)
    model = tiny_model("mixtral", len(tiny_tokenizer()))
    arch = introspect(model.config)
    model = prepare_for_method(model, "lora", LoraSpec(r=4, targets="all"), seed=0, gradient_checkpointing=False)
    with FlopCounterMode(display=False) as forward:
        loss = model(input_ids=torch.randint(0, 50, (2, 12))).logits.sum()
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    rank_flops = 2 * 4 * arch.params_fused_experts  # one formation or one reduction of every stack
    formations = estimate.EXPERT_LORA_FORMATIONS_PER_FORWARD
    assert forward.get_flop_counts()["Global"][torch.ops.aten.baddbmm] == formations * rank_flops
    assert backward.get_flop_counts()["Global"][torch.ops.aten.bmm] == 2 * rank_flops
    work = estimate.expert_lora_work(arch, estimate.Workload(lora_rank=4), "fp32", "fp32")
    assert work["flops_per_step"] == (formations + 2) * rank_flops


def test_lora_on_fused_experts_adds_their_gradient_per_token_and_forming_them_per_step():
    mixtral = architecture_of("mixtral-8x7b")
    experts = mixtral.params_fused_experts
    active = experts * 2 / 8  # 2 of 8 experts per token
    attention_only = estimate.fine_tune(mixtral, estimate.Workload(lora_targets="attention"), H100)
    adapted = estimate.fine_tune(mixtral, estimate.Workload(lora_targets="all"), H100)
    assert adapted.flops_per_token - attention_only.flops_per_token == pytest.approx(2 * active)
    steps = 63 * 3
    rank_flops = 2 * 16 * experts
    assert adapted.total_flops - attention_only.total_flops == pytest.approx(
        adapted.tokens * 2 * active + steps * 4 * rank_flops
    )
    sustained = H100.peak_tflops * 1e12 * adapted.utilisation
    bandwidth = H100.bandwidth_gbs * 1e9 * estimate.BANDWIDTH_EFFICIENCY
    per_step = 4 * rank_flops / sustained + 7 * experts * 2 / bandwidth  # bf16 stacks: 7 passes over their bytes
    assert adapted.time_s - attention_only.time_s == pytest.approx(
        adapted.tokens * 2 * active / sustained + steps * per_step
    )
    assert adapted.step_time_s > 2 * attention_only.step_time_s, "on Mixtral at batch 8 it is most of the step"
    assert adapted.expert_lora_time_s == pytest.approx(adapted.time_s - attention_only.time_s)
    assert attention_only.expert_lora_time_s == 0.0
    qlora_all = estimate.fine_tune(mixtral, estimate.Workload(method="qlora"), H100)
    qlora_attention = estimate.fine_tune(mixtral, estimate.Workload(method="qlora", lora_targets="attention"), H100)
    assert qlora_all.time_s - qlora_attention.time_s == pytest.approx(qlora_all.expert_lora_time_s), (
        "the unquantized experts' work pays no 4-bit dequantization factor"
    )
    checkpointed = estimate.expert_lora_work(mixtral, estimate.Workload(gradient_checkpointing=True), "bf16", "bf16")
    assert checkpointed["flops_per_step"] == 6 * rank_flops and checkpointed["bytes_per_step"] == 11 * experts * 2
    qlora = estimate.expert_lora_work(mixtral, estimate.Workload(method="qlora"), "nf4", "bf16")
    assert qlora["bytes_per_step"] == 7 * experts * 2, "4-bit loading leaves the fused experts in 16 bit"
    for untouched in (estimate.Workload(method="full"), estimate.Workload(lora_targets="attention")):
        assert estimate.expert_lora_work(mixtral, untouched, "bf16", "bf16")["flops_per_step"] == 0
    assert estimate.expert_lora_work(architecture_of("mistral-7b"), estimate.Workload(), "bf16", "bf16") == {
        "flops_per_token": 0.0,
        "flops_per_step": 0.0,
        "bytes_per_step": 0.0,
    }


def test_a_cached_prompt_prefix_is_not_run_per_request():
    """A server that keeps the shared prompt prefix cached (bakeoff serve, vLLM prefix caching) runs only
    each request's own tokens: prompt FLOPs fall with them, while attention still spans the whole prompt."""
    arch = architecture_of("llama-3-8b")
    whole = estimate.inference(arch, estimate.Workload(prompt_tokens=400, label_tokens=1), A100, batch_sizes=(1, 64))
    cached = estimate.inference(
        arch, estimate.Workload(prompt_tokens=400, cached_prefix_tokens=300, label_tokens=1), A100, batch_sizes=(1, 64)
    )
    head = 2 * arch.params_lm_head_compute
    assert (cached.flops_per_item - head) == pytest.approx((whole.flops_per_item - head) / 4)
    assert cached.latency_ms_by_batch[64] < whole.latency_ms_by_batch[64] / 2  # compute-bound: ~1/4 of the work
    assert cached.items_per_s_at_best > 2 * whole.items_per_s_at_best


@pytest.mark.parametrize(
    "flag, value",
    [("--epochs", "0"), ("--train-examples", "-5"), ("--prompt-tokens", "0"), ("--train-utilisation", "0"),
     ("--load", "inf"), ("--load", "0"), ("--sla-p95-ms", "-1"), ("--usd-per-hour", "-1"), ("--num-labels", "0")],
)  # fmt: skip
def test_estimate_refuses_out_of_range_numbers_instead_of_dividing_by_them(flag, value):
    from typer.testing import CliRunner

    from bakeoff.cli.main import app

    result = CliRunner().invoke(app, ["estimate", "mistral-7b", flag, value], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and f"Invalid value for '{flag}'" in result.output, result.output


# ----- workloads a model cannot run are refused, not estimated (issue 42) -----


def test_tensor_parallel_sizes_split_heads_and_kv_heads_as_vllm_does():
    from bakeoff.efficiency.plan import tensor_parallel_sizes

    assert tensor_parallel_sizes(architecture_of("mistral-7b")) == [1, 2, 4, 8, 16, 32]  # 32 heads, 8 KV heads
    assert tensor_parallel_sizes(architecture_of("smollm2-135m")) == [1, 3, 9]  # 9 heads, 3 KV heads
    assert tensor_parallel_sizes(architecture_of("qwen2.5-0.5b")) == [1, 2, 14]  # 14 heads, 2 KV heads (7 would not)


def test_a_replica_raised_for_its_weights_gets_a_size_its_heads_split_into():
    from bakeoff.efficiency.plan import estimate_record

    arch = architecture_of("llama-2-70b")  # bf16 weights need 7 A10Gs; 64 heads do not split over 7
    record = estimate_record("llama-2-70b", arch, "a10g", estimate.Workload(), 2000, 1)
    assert record["inference"]["gpus_per_replica"] == 8 and record["capacity"]["gpus_per_replica"] == 8


@pytest.mark.parametrize("name", ["mistral-7b", "smollm2-135m", "qwen2.5-0.5b", "gemma3-270m"])
def test_the_context_window_bounds_prompt_plus_answer(name):
    from bakeoff.efficiency.plan import refuse_impossible
    from bakeoff.errors import BakeoffError

    arch = architecture_of(name)
    context = arch.context_length
    refuse_impossible(name, arch, estimate.Workload(prompt_tokens=context - 3))  # prompt + 3 label tokens: fits
    refuse_impossible(name, arch, estimate.Workload(prompt_tokens=context - 10, output_tokens=10, label_tokens=10))
    for workload, said in [
        (estimate.Workload(prompt_tokens=context + 1), f"longer than {name}'s context window of {context} tokens"),
        (estimate.Workload(prompt_tokens=context - 2), "plus 3 label tokens"),
        (estimate.Workload(prompt_tokens=context, output_tokens=1, label_tokens=1), "plus --output-tokens 1"),
    ]:
        with pytest.raises(BakeoffError, match=said):
            refuse_impossible(name, arch, workload)


def test_estimate_cli_resolves_the_defaults_it_can_tell_from_given_values():
    from typer.testing import CliRunner

    from bakeoff.cli.main import app

    def workload(*args):
        result = CliRunner().invoke(app, ["estimate", "smollm2-135m", "--json", *args], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["workload"]

    assert (workload()["lora_rank"], workload()["num_labels"], workload()["batch_size"]) == (16, 10, 8)
    assert workload("--method", "full")["method"] == "full", "full without --lora-rank is fine"
    assert workload("--output-tokens", "20")["num_labels"] == 1
    assert workload("--train-examples", "4")["batch_size"] == 4, "the default batch is at most the examples"
    assert workload("--lora-rank", "8", "--num-labels", "3")["lora_rank"] == 8
