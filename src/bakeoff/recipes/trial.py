"""Run one trial: fit or fine-tune a candidate on a training subset, evaluate it, return a result record.

Both kinds of candidate reduce to a `predict(texts) -> (probs, raw scores)` function handed to the
evaluation suite, so LLMs and baselines are measured identically. The record is plain JSON (what the
store keeps); test probabilities are also saved per trial (predictions.npz) for paired comparisons.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bakeoff.baselines.registry import Baseline, BaselineSetup, lookup
from bakeoff.config import RunSpec
from bakeoff.data.examples import Examples
from bakeoff.data.splits import stratified_sample
from bakeoff.data.task import TaskData
from bakeoff.efficiency.compare import measured_vs_estimated
from bakeoff.efficiency.estimate import Workload
from bakeoff.efficiency.hardware import this_machine
from bakeoff.efficiency.introspect import introspect
from bakeoff.efficiency.latency import measure_scoring, with_pass_throughput
from bakeoff.efficiency.measure import PeakMemory, Stopwatch
from bakeoff.errors import BakeoffError
from bakeoff.evaluation.perturb import PerturbationFailed
from bakeoff.evaluation.score import cached_prefix, distinct_first_tokens, label_log_probs, probabilities
from bakeoff.evaluation.suite import SuiteOutput, run_suite
from bakeoff.models.hub import candidate_source
from bakeoff.models.load import load_model, load_tokenizer
from bakeoff.models.options import default_device, load_options, resolve_dtype  # noqa: F401 (re-exported)
from bakeoff.models.prompt import PromptEncoder, PromptFormat, prompt_style, shared_prefix_length
from bakeoff.models.trained import merge_unquantized_adapters, own_adapted_weights
from bakeoff.run_folder import RunFolder, TrialFolder
from bakeoff.runners.grid import Trial
from bakeoff.training.loop import LoopInputs, TrainingDiverged, steady_step_s, train
from bakeoff.training.lora import prepare_for_method, trainable_summary

DEFAULT_LEARNING_RATE = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5}
LATENCY_SAMPLE = 64  # test items used for the latency / throughput measurement


@dataclass
class TrialContext:
    """What every trial of a run shares."""

    spec: RunSpec
    task: TaskData
    run_dir: Path
    device: str
    on_step: object = None  # callable(loss) per optimizer step, for progress bars
    on_scored: object = None  # callable(n_items) per scoring batch
    on_epoch: object = None  # callable(epoch, train_loss, validation_loss) after each epoch
    on_phase: object = None  # callable(phase, n_items) as an evaluation phase starts scoring


def _evaluate(ctx: TrialContext, trial: Trial, predict, train_subset: Examples | None) -> SuiteOutput:
    output = run_suite(
        predict,
        ctx.task,
        ctx.spec.evaluation,
        train_subset,
        trial.seed,
        ctx.spec.task.builtin is not None,
        on_phase=ctx.on_phase,
    )
    files = RunFolder(ctx.run_dir).trial(trial.trial_id)
    files.path.mkdir(parents=True, exist_ok=True)
    partial = files.path / "predictions.partial.npz"
    # Validation probabilities too: `decision.costs` picks each trial's abstention threshold on them, not on test.
    np.savez_compressed(
        partial,
        probs=output.test_probs,
        raw=output.test_raw,
        y_true=output.test_true,
        val_probs=output.val_probs,
        val_true=output.val_true,
    )
    os.replace(partial, files.predictions)  # atomic: never a half-written file
    return output


def _timings(output: SuiteOutput) -> dict:
    return {
        "inference_s": output.inference_s,
        "inference_items_per_s": output.test_items / output.inference_s if output.inference_s else None,
        "evaluation_phase_s": output.phase_s,
    }


def run_baseline_trial(trial: Trial, ctx: TrialContext, train_subset: Examples) -> dict:
    name = trial.candidate.model
    # Built before the measurements: loading shared weights (MiniLM, once per process) is not fitting.
    model = lookup(name).build(BaselineSetup("classification", trial.seed, labels=tuple(ctx.task.labels)))
    with PeakMemory("cpu") as memory:
        with Stopwatch() as fit_watch:
            model.fit(train_subset)
        _save_baseline(name, model, RunFolder(ctx.run_dir).trial(trial.trial_id))
        output = _evaluate(ctx, trial, model.predict, train_subset)
        with Stopwatch() as latency_watch:
            serving = measure_scoring(
                lambda texts, size: model.predict_proba(texts),
                ctx.task.test.texts[:LATENCY_SAMPLE],
                repeats=ctx.spec.evaluation.latency_repeats,
                budget_s=ctx.spec.evaluation.latency_budget_s,
            )
    timings = (
        _timings(output)
        | serving
        | {
            "fine_tune_s": fit_watch.seconds,
            "train_tokens_per_s": None,
            "peak_memory_mb": memory.peak_mb,
            "latency_measure_s": latency_watch.seconds,
        }
    )
    return {
        "metrics": output.metrics,
        "timings": timings,
        "training": None,
        "model": {"kind": "baseline", "name": trial.candidate.model},
        "efficiency": None,
    }


def run_llm_trial(trial: Trial, ctx: TrialContext, train_subset: Examples) -> dict:
    spec, candidate, method = ctx.spec, trial.candidate, trial.method
    options = load_options(spec, candidate, ctx.device, method)
    # A Hub id is fetched into this node's cache on first use (under a per-node lock); offline, from cache only.
    source = candidate_source(candidate)
    files = RunFolder(ctx.run_dir).trial(trial.trial_id)
    with PeakMemory(ctx.device) as memory:
        with Stopwatch() as load_watch:
            tokenizer = load_tokenizer(source, options)
            model = load_model(source, options)
        encoder = _prompt_encoder(ctx, method, tokenizer)
        training = None
        if method != "zero-shot":
            with PeakMemory(ctx.device, reset=False) as tune_memory:  # the training state, without loading
                model, training = _fine_tune(model, method, encoder, tokenizer, trial, ctx, train_subset)
            training["peak_memory_mb"] = tune_memory.peak_mb
            training["memory_before_load_mb"] = memory.start_mb  # the process before this trial's model
            _save_weights(model, method, files)
            merge_for_inference(model)

        first_token = first_token_scoring(spec.evaluation.scoring, method, encoder.label_ids, candidate.name)
        prefix = cached_prefix(model, encoder)  # run once, as `bakeoff serve` does: batch-1 latency skips it

        def score(items, batch_size):
            return label_log_probs(
                model, items, encoder.label_ids, tokenizer.pad_token_id, batch_size, ctx.on_scored, first_token, prefix
            )

        latency_items = encoder.encode(ctx.task.test.texts[:LATENCY_SAMPLE])
        auto_batch = spec.evaluation.batch_size == "auto"
        with Stopwatch() as latency_watch:
            serving = measure_scoring(
                score,
                latency_items,
                repeats=spec.evaluation.latency_repeats,
                batch_sizes=(4, 8, 16, 32) if auto_batch else (),  # fixed: the test pass is the measurement
                budget_s=spec.evaluation.latency_budget_s,
            )
        batch_size = serving["best_batch"] if auto_batch else spec.evaluation.batch_size

        def predict(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
            log_likelihoods = score(encoder.encode(texts), batch_size)
            return probabilities(log_likelihoods), log_likelihoods

        output = _evaluate(ctx, trial, predict, train_subset if method != "zero-shot" else None)
        if not auto_batch:
            serving = with_pass_throughput(serving, batch_size, output.test_items, output.inference_s)
    timings = _llm_timings(
        output, serving, training, batch_size, load_watch.seconds, memory.peak_mb, latency_watch.seconds
    )
    architecture = introspect(model.config)
    model_info = _llm_model_info(architecture, source, ctx, options, first_token, encoder)
    efficiency = _efficiency(architecture, trial, ctx, encoder, latency_items, training, serving, prefix)
    return {
        "metrics": output.metrics,
        "timings": timings,
        "training": training,
        "model": model_info,
        "efficiency": efficiency,
    }


def _prompt_encoder(ctx: TrialContext, method: str, tokenizer) -> PromptEncoder:
    """The task's prompt under this tokenizer: zero-shot prompts list the labels; fine-tuned ones need not."""
    spec = ctx.spec
    fmt = PromptFormat(
        spec.task.instruction,
        ctx.task.labels,
        show_label_list=method == "zero-shot",
        max_prompt_tokens=spec.training.max_prompt_tokens,
        style=prompt_style(spec.task.prompt_style, fine_tuned=method != "zero-shot"),
    )
    return PromptEncoder(tokenizer, fmt)


def _llm_timings(
    output: SuiteOutput,
    serving: dict,
    training: dict | None,
    batch_size: int,
    load_s: float,
    peak_memory_mb: float,
    latency_measure_s: float,
) -> dict:
    """An LLM trial's timings: the evaluation's, the serving measurement's, loading, fine-tuning and memory."""
    return (
        _timings(output)
        | serving
        | {
            "load_s": load_s,
            "fine_tune_s": training["wall_s"] if training else 0.0,
            "train_tokens_per_s": training["train_tokens"] / training["step_time_s"]
            if training and training["step_time_s"]
            else None,
            "peak_memory_mb": peak_memory_mb,
            "scoring_batch_size": batch_size,
            "latency_measure_s": latency_measure_s,
            "torch_threads": torch.get_num_threads(),
        }
    )


def _llm_model_info(architecture, source, ctx: TrialContext, options, first_token: bool, encoder) -> dict:
    """What was scored: the model's source, device, dtype and architecture, and how it was prompted and scored."""
    return {
        "kind": "llm",
        "source": source.description,
        "device": ctx.device,
        "dtype": str(options.dtype),
        "architecture": architecture.as_dict(),
        "scoring": "first-token" if first_token else "full",
        "prompt_style": encoder.style,
    } | source.provenance  # Hub ids: hub_id, revision asked for, commit_sha loaded


OUT_OF_MEMORY = (
    "out of memory; try a smaller `training.batch_size`, `training.gradient_checkpointing: true`, or QLoRA on GPU"
)


@dataclass(frozen=True)
class TrialOutcome:
    """What one trial ends with, for the store: its result record, or why it failed (one of the two)."""

    record: dict | None
    error: str | None = None


def run_trial(trial: Trial, ctx: TrialContext, train_subset: Examples) -> TrialOutcome:
    """Run one trial to a storable outcome; shared by the local and the Ray runner, so both store the same record.

    A diverged loss, running out of memory or a perturbation plugin that raises is the trial's own failure
    (stored, the run goes on); anything else (a bug, a full disk) propagates to the runner."""
    recipe = run_baseline_trial if trial.candidate.is_baseline else run_llm_trial
    if ctx.spec.task.type != "classification":
        from bakeoff.recipes.target_trial import run_target_trial as recipe  # extraction / generation
    try:
        result = recipe(trial, ctx, train_subset)
    except (TrainingDiverged, PerturbationFailed) as err:  # a user's perturbation plugin: its trial fails, named
        return TrialOutcome(None, str(err))
    except (torch.OutOfMemoryError, MemoryError):  # the device's memory, or the host's for a CPU run
        return TrialOutcome(None, OUT_OF_MEMORY)
    identity = {
        "trial_id": trial.trial_id,
        "candidate": trial.candidate.name,
        "model_name": trial.candidate.model,
        "method": trial.method,
        "train_size": trial.train_size,
        "seed": trial.seed,
    }
    return TrialOutcome(result | identity)


def merge_for_inference(model) -> bool:
    """Fold LoRA weights into the base weights (after they are saved): inference then runs plain matmuls
    instead of base + two small adapter matmuls per targeted layer. Same function, fewer kernel calls.

    On a 4-bit (QLoRA) base only the adapters on weights left unquantized are merged (fused MoE experts:
    `models/trained.py::merge_unquantized_adapters`, which says why the 4-bit layers' adapters are not), so
    QLoRA is scored as the function that was trained and saved, at the cost of the 4-bit layers' adapter
    matmuls. Returns whether anything was merged."""
    if not hasattr(model, "merge_adapter"):
        return False
    if getattr(model, "is_loaded_in_4bit", False):
        return merge_unquantized_adapters(model) > 0
    own_adapted_weights(model)
    try:
        model.merge_adapter()
    except (
        ValueError,
        NotImplementedError,
        RuntimeError,
    ):  # some adapter types (e.g. on quantized layers) cannot merge
        return False
    return True


def first_token_scoring(setting: str, method: str, label_ids: list[list[int]], candidate: str) -> bool:
    if setting == "full":
        return False
    distinct = distinct_first_tokens(label_ids)
    if setting == "first-token" and not distinct:
        raise BakeoffError(
            f"candidate `{candidate}`: `evaluation.scoring: first-token` needs labels that start with "
            "distinct "
            "tokens under its tokenizer; use `auto` or `full`"
        )
    return distinct and (setting == "first-token" or method != "zero-shot")


def learning_rate_for(trial: Trial, spec, method: str) -> float:
    """The candidate's own `learning_rate`, else `training.learning_rate`, else the method's default."""
    return trial.candidate.learning_rate or spec.training.learning_rate or DEFAULT_LEARNING_RATE[method]


def _fine_tune(model, method, encoder, tokenizer, trial, ctx, train_subset):
    from accelerate import Accelerator

    spec = ctx.spec
    model = prepare_for_method(model, method, spec.training.lora, trial.seed, spec.training.gradient_checkpointing)
    trainable, total = trainable_summary(model)
    validation = stratified_sample(ctx.task.validation, spec.training.max_validation_items, seed=0)
    inputs = LoopInputs(
        train=encoder.encode(train_subset.texts, train_subset.labels),
        validation=encoder.encode(validation.texts, validation.labels),
        label_ids=encoder.label_ids,
        pad_id=tokenizer.pad_token_id,
        learning_rate=learning_rate_for(trial, spec, method),
        seed=trial.seed,
    )
    accelerator = Accelerator(cpu=ctx.device == "cpu")
    outcome = train(model, inputs, spec.training, accelerator, on_step=ctx.on_step, on_epoch=ctx.on_epoch)
    return model, asdict(outcome) | {
        "trainable_params": trainable,
        "total_params": total,
        "learning_rate": inputs.learning_rate,
    }


def _efficiency(architecture, trial, ctx, encoder, latency_items, training, serving, prefix) -> dict | None:
    """Measured vs estimated step time and latency on the hardware this trial ran on."""
    hardware = this_machine(ctx.device)
    if hardware is None:
        return None
    spec = ctx.spec
    lora = spec.training.lora
    workload = Workload(
        method=trial.method if trial.method != "zero-shot" else "lora",
        train_examples=max(trial.train_size, 1),
        epochs=training["epochs_run"] if training else 1,
        prompt_tokens=round(sum(len(i.prompt_ids) for i in latency_items) / len(latency_items)),
        shared_prefix_tokens=shared_prefix_length([i.prompt_ids for i in latency_items])
        if training and training.get("packed")
        else 0,
        cached_prefix_tokens=len(prefix.ids) if prefix is not None else 0,
        label_tokens=round(sum(map(len, encoder.label_ids)) / len(encoder.label_ids)),
        num_labels=len(encoder.label_ids),
        batch_size=spec.training.batch_size,
        lora_rank=lora.r,
        lora_targets=lora.targets if isinstance(lora.targets, str) else "all",
        gradient_checkpointing=spec.training.gradient_checkpointing,
    )
    measured_step = steady_step_s(training)
    measured_memory_gb = (
        (training["peak_memory_mb"] - training["memory_before_load_mb"]) * 2**20 / 1e9 if training else None
    )
    return measured_vs_estimated(
        architecture, workload, hardware, measured_step, serving.get("latency_ms_p50"), measured_memory_gb
    )


def _save_baseline(name: str, model: Baseline, files: TrialFolder) -> None:
    """The fitted baseline's state (joblib) under its registered name, for `bakeoff serve`. The MiniLM
    embedder is not saved: it is the shipped model, loaded again by path. joblib is pickle: load only run
    folders you made."""
    import joblib

    files.path.mkdir(parents=True, exist_ok=True)
    partial = files.path / "baseline.partial.joblib"
    joblib.dump({"kind": name} | model.state(), partial)
    os.replace(partial, files.baseline)


def _save_weights(model, method: str, files: TrialFolder) -> None:
    """LoRA: the adapter (safetensors, a few MB). Full fine-tune: the whole model (safetensors)."""
    partial = files.path / "weights.partial"
    final = files.weights(method)
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
