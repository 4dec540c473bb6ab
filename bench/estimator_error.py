"""How wrong is bakeoff's estimator on this machine, before and after calibration from one run?

    python bench/estimator_error.py --calibrate runs/estimator-calibration [--out bench/results/estimator_error.json]

The calibration run is `bakeoff run bench/configs/estimator_calibration.yaml` (SmolLM2-135M and Gemma-3-270M
LoRA, batch 4, 16 examples, 1 epoch). This bench then measures both models again with bakeoff's own code
path on a different workload (batch 8, 32 generated tickets, 1 epoch): the mean LoRA step time after the
first (warm-up) step and the
batch-1 label-scoring latency (p50 after warm-up, first-token scoring as fine-tuned candidates use). It
prints measured / estimated for the raw estimate (the naive way) and for the estimate calibrated from the
run (`bakeoff estimate --calibrate`), with the fp32 matmul peak measured in the same process.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import asdict
from pathlib import Path

import torch
from accelerate import Accelerator
from report import write_json
from rich.console import Console
from rich.table import Table

from bakeoff.config import LoraSpec, TrainingSpec
from bakeoff.data.tickets import generate_tickets
from bakeoff.efficiency import calibrate, estimate
from bakeoff.efficiency.hardware import Hardware, local_cpu, measure_cpu
from bakeoff.efficiency.introspect import introspect
from bakeoff.efficiency.latency import measure_scoring
from bakeoff.evaluation.score import label_log_probs
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.prompt import PromptEncoder, PromptFormat, prompt_style, shared_prefix_length
from bakeoff.models.sources import resolve_source
from bakeoff.recipes.trial import first_token_scoring, merge_for_inference
from bakeoff.training.loop import LoopInputs, steady_step_s, train
from bakeoff.training.lora import prepare_for_method

BATCH = 8
TRAIN_ITEMS = 32  # 4 steps: the first (warm-up) and 3 steady ones
LATENCY_REPEATS = 4
MODELS = ("smollm2-135m", "gemma3-270m")


def measure(name: str, data, cpu: Hardware) -> dict:
    source = resolve_source(name)
    tokenizer = load_tokenizer(source, LoadOptions())
    labels = sorted(set(data.labels))
    encoder = PromptEncoder(
        tokenizer,
        PromptFormat(
            "Classify the customer message into one category.",
            labels,
            False,
            style=prompt_style("auto", fine_tuned=True),
        ),
    )
    items = encoder.encode(data.texts, data.labels)
    torch.manual_seed(0)
    model = prepare_for_method(load_model(source, LoadOptions()), "lora", LoraSpec(r=16, targets="all"), 0, False)
    inputs = LoopInputs(
        items[:TRAIN_ITEMS],
        items[TRAIN_ITEMS : TRAIN_ITEMS + 8],
        encoder.label_ids,
        tokenizer.pad_token_id,
        1e-3,
        seed=0,
    )
    result = train(
        model,
        inputs,
        TrainingSpec(epochs=1, batch_size=BATCH, early_stopping_patience=0, max_validation_items=8),
        Accelerator(cpu=True),
    )
    merge_for_inference(model)
    first_token = first_token_scoring("auto", "lora", encoder.label_ids, name)
    serving = measure_scoring(
        lambda batch, size: label_log_probs(
            model, batch, encoder.label_ids, tokenizer.pad_token_id, size, None, first_token
        ),
        items[TRAIN_ITEMS + 8 :],
        repeats=LATENCY_REPEATS,
        batch_sizes=(4,),
    )
    train_items = items[:TRAIN_ITEMS]
    workload = estimate.Workload(
        method="lora",
        train_examples=TRAIN_ITEMS,
        epochs=1,
        prompt_tokens=round(statistics.mean(len(i.prompt_ids) for i in train_items)),
        shared_prefix_tokens=shared_prefix_length([i.prompt_ids for i in train_items]) if result.packed else 0,
        label_tokens=round(statistics.mean(len(ids) for ids in encoder.label_ids)),
        num_labels=len(labels),
        batch_size=BATCH,
    )
    arch = introspect(model.config)
    return {
        "model": name,
        "arch": arch,
        "workload": workload,
        "measured_step_s": steady_step_s(asdict(result)),  # after the first step, as trials record it
        "measured_latency_ms_b1": serving["latency_ms_p50"],
        "steps": result.steps,
    }


def run(run_dir: Path, out: Path) -> dict:
    console = Console()
    peak = measure_cpu(size=2048)
    # Estimates use the cached measurement of this machine, as `bakeoff estimate --gpu local-cpu` and the run do;
    # the fresh one is printed beside it (the machine is shared, so the two differ when it is busy).
    cpu = local_cpu()
    console.print(
        f"measured now: fp32 matmul (2048^2) {peak['matmul_gflops']:.1f} GFLOP/s, copy bandwidth "
        f"{peak['bandwidth_gbs']:.1f} GB/s, "
        f"{peak['threads']} threads; cached (used by the estimates): {1000 * cpu.peak_tflops:.1f} GFLOP/s, "
        f"{cpu.bandwidth_gbs:.1f} GB/s"
    )
    calibration = calibrate.load(run_dir)
    data = generate_tickets(60, seed=11)
    rows = []
    for name in MODELS:
        m = measure(name, data, cpu)
        tune = estimate.fine_tune(m["arch"], m["workload"], cpu)
        serve = estimate.inference(m["arch"], m["workload"], cpu, batch_sizes=(1,))
        ratios, basis = calibration.ratios_for(name)
        step_raw = m["measured_step_s"] / tune.step_time_s
        latency_raw = m["measured_latency_ms_b1"] / serve.latency_ms_by_batch[1]
        rows.append(
            {
                "model": name,
                "measured_step_s": m["measured_step_s"],
                "estimated_step_s": tune.step_time_s,
                "step_ratio_raw": step_raw,
                "step_calibration": ratios["step"],
                "step_ratio_calibrated": step_raw / ratios["step"],
                "measured_latency_ms_b1": m["measured_latency_ms_b1"],
                "estimated_latency_ms_b1": serve.latency_ms_by_batch[1],
                "latency_ratio_raw": latency_raw,
                "latency_calibration": ratios["latency"],
                "latency_ratio_calibrated": latency_raw / ratios["latency"],
                "calibration_basis": basis,
                "workload": m["workload"].__dict__,
                "steps": m["steps"],
            }
        )
    table = Table(title=f"estimator error on this CPU, ratio = measured / estimated; calibrated from {run_dir}")
    for column in (
        "model",
        "step s meas",
        "step s est",
        "raw",
        "calib. x",
        "calibrated",
        "lat. ms meas",
        "lat. ms est",
        "raw",
        "calib. x",
        "calibrated",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in rows:
        table.add_row(
            r["model"],
            f"{r['measured_step_s']:.2f}",
            f"{r['estimated_step_s']:.3f}",
            f"{r['step_ratio_raw']:.1f}",
            f"{r['step_calibration']:.1f}",
            f"{r['step_ratio_calibrated']:.2f}",
            f"{r['measured_latency_ms_b1']:.0f}",
            f"{r['estimated_latency_ms_b1']:.1f}",
            f"{r['latency_ratio_raw']:.1f}",
            f"{r['latency_calibration']:.1f}",
            f"{r['latency_ratio_calibrated']:.2f}",
        )
    console.print(table)
    return write_json(
        console,
        out,
        {
            "cpu_now": peak,
            "cpu_cached": cpu.as_dict(),
            "batch_size": BATCH,
            "calibration": calibration.as_dict(),
            "rows": rows,
        },
        table=table,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calibrate", type=Path, required=True, help="run folder of bench/configs/estimator_calibration.yaml"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/estimator_error.json"))
    args = parser.parse_args()
    run(args.calibrate, args.out)
