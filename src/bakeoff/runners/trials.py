"""Run one trial: fit or fine-tune a candidate on a training subset, score it, return a result record.

A result record is plain JSON (what the store keeps and the summary reads). Test probabilities are
also saved per trial (predictions.npz) so later comparisons can pair items across candidates.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bakeoff.baselines.classical import BaselineClassifier, SentenceEmbedder
from bakeoff.config import RunSpec
from bakeoff.data.splits import stratified_sample
from bakeoff.data.task import TaskData
from bakeoff.data.tickets import Examples
from bakeoff.efficiency.compare import measured_vs_estimated
from bakeoff.efficiency.estimate import Workload
from bakeoff.efficiency.hardware import this_machine
from bakeoff.efficiency.introspect import introspect
from bakeoff.efficiency.latency import measure_scoring
from bakeoff.efficiency.measure import PeakMemory, Stopwatch
from bakeoff.errors import BakeoffError
from bakeoff.evaluation.metrics import quality
from bakeoff.evaluation.score import label_log_probs, probabilities
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.prompt import PromptEncoder, PromptFormat
from bakeoff.models.sources import resolve_source
from bakeoff.runners.grid import Trial
from bakeoff.training.lora import prepare_for_method, trainable_summary
from bakeoff.training.loop import LoopInputs, train

DEFAULT_LEARNING_RATE = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5}


@dataclass
class TrialContext:
    """What every trial of a run shares."""

    spec: RunSpec
    task: TaskData
    run_dir: Path
    device: str
    embedder: SentenceEmbedder | None = None
    on_step: object = None  # callable(loss) per optimizer step, for progress bars
    on_scored: object = None  # callable(n_items) per scoring batch


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(setting: str, device: str) -> torch.dtype:
    if setting == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[setting]


def label_ids_of(examples: Examples, labels: list[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[label] for label in examples.labels], dtype=np.int64)


def _evaluate(ctx: TrialContext, trial: Trial, predict, train_subset: Examples | None) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """(metrics, inference timings, test probabilities, test truth); `predict(examples) -> probs`."""
    evaluation = ctx.spec.evaluation
    test = stratified_sample(ctx.task.test, evaluation.max_test_items, seed=0)
    with Stopwatch() as watch:
        test_probs = predict(test)
    labels = ctx.task.labels
    y_true = label_ids_of(test, labels)
    metrics = {"test": quality(y_true, test_probs, labels, evaluation.bootstrap_samples, evaluation.confidence, trial.seed)}
    if train_subset is not None and evaluation.max_train_items > 0:
        seen = stratified_sample(train_subset, evaluation.max_train_items, seed=0)
        metrics["train"] = quality(label_ids_of(seen, labels), predict(seen), labels, evaluation.bootstrap_samples, evaluation.confidence, trial.seed)
    timings = {"inference_s": watch.seconds, "inference_items_per_s": len(test) / watch.seconds if watch.seconds else None}
    return metrics, timings, test_probs, y_true


def _save_predictions(trial_dir: Path, probs: np.ndarray, y_true: np.ndarray) -> None:
    trial_dir.mkdir(parents=True, exist_ok=True)
    partial = trial_dir / "predictions.partial.npz"
    np.savez_compressed(partial, probs=probs, y_true=y_true)
    os.replace(partial, trial_dir / "predictions.npz")  # atomic: never a half-written file


def run_baseline_trial(trial: Trial, ctx: TrialContext, train_subset: Examples) -> dict:
    labels = ctx.task.labels
    embedder = ctx.embedder
    if trial.candidate.model == "minilm-logreg" and embedder is None:
        embedder = ctx.embedder = SentenceEmbedder()
    with PeakMemory("cpu") as memory:
        with Stopwatch() as fit_watch:
            model = BaselineClassifier(trial.candidate.model, len(labels), trial.seed, embedder)
            model.fit(train_subset.texts, label_ids_of(train_subset, labels))
        metrics, timings, probs, y_true = _evaluate(ctx, trial, lambda ex: model.predict_proba(ex.texts), train_subset)
        timings.update(measure_scoring(lambda texts, size: model.predict_proba(texts), ctx.task.test.texts[:64],
                                       repeats=ctx.spec.evaluation.latency_repeats))
    _save_predictions(ctx.run_dir / "trials" / trial.folder_name, probs, y_true)
    timings.update({"fine_tune_s": fit_watch.seconds, "train_tokens_per_s": None, "peak_memory_mb": memory.peak_mb})
    return {"metrics": metrics, "timings": timings, "training": None, "model": {"kind": "baseline", "name": trial.candidate.model}}


def run_llm_trial(trial: Trial, ctx: TrialContext, train_subset: Examples) -> dict:
    spec, candidate, method = ctx.spec, trial.candidate, trial.method
    if method == "qlora" and not ctx.device.startswith("cuda"):
        raise BakeoffError(f"candidate `{candidate.name}`: QLoRA needs a CUDA GPU (bitsandbytes 4-bit kernels); on this machine use `method: lora`")
    options = LoadOptions(
        device=ctx.device, dtype=resolve_dtype(spec.training.dtype, ctx.device),
        trust_remote_code=candidate.trust_remote_code, allow_pickle=candidate.allow_pickle, load_in_4bit=method == "qlora",
    )
    source = resolve_source(candidate.model, candidate.gguf_file)
    trial_dir = ctx.run_dir / "trials" / trial.folder_name
    with PeakMemory(ctx.device) as memory:
        with Stopwatch() as load_watch:
            tokenizer = load_tokenizer(source, options)
            model = load_model(source, options)
        fmt = PromptFormat(spec.task.instruction, ctx.task.labels, show_label_list=method == "zero-shot",
                           max_prompt_tokens=spec.training.max_prompt_tokens)
        encoder = PromptEncoder(tokenizer, fmt)
        training = None
        if method != "zero-shot":
            model = prepare_for_method(model, method, spec.training.lora, trial.seed, spec.training.gradient_checkpointing)
            trainable, total = trainable_summary(model)
            validation = stratified_sample(ctx.task.validation, spec.training.max_validation_items, seed=0)
            inputs = LoopInputs(
                train=encoder.encode(train_subset.texts, train_subset.labels),
                validation=encoder.encode(validation.texts, validation.labels),
                label_ids=encoder.label_ids, pad_id=tokenizer.pad_token_id,
                learning_rate=spec.training.learning_rate or DEFAULT_LEARNING_RATE[method], seed=trial.seed,
            )
            from accelerate import Accelerator

            outcome = train(model, inputs, spec.training, Accelerator(cpu=ctx.device == "cpu"), on_step=ctx.on_step)
            training = asdict(outcome) | {"trainable_params": trainable, "total_params": total, "learning_rate": inputs.learning_rate}
            _save_weights(model, method, trial_dir)

        def predict(examples: Examples) -> np.ndarray:
            items = encoder.encode(examples.texts, examples.labels)
            scores = label_log_probs(model, items, encoder.label_ids, tokenizer.pad_token_id, spec.evaluation.batch_size, ctx.on_scored)
            return probabilities(scores)

        metrics, timings, probs, y_true = _evaluate(ctx, trial, predict, train_subset if method != "zero-shot" else None)
        test_items = encoder.encode(ctx.task.test.texts[:64], ctx.task.test.labels[:64])
        serving = measure_scoring(
            lambda batch_items, size: label_log_probs(model, batch_items, encoder.label_ids, tokenizer.pad_token_id, size),
            test_items, repeats=spec.evaluation.latency_repeats,
        )
    _save_predictions(trial_dir, probs, y_true)
    architecture = introspect(model.config)
    workload = Workload(
        method=method if method != "zero-shot" else "lora", train_examples=max(trial.train_size, 1),
        epochs=training["epochs_run"] if training else 1,
        prompt_tokens=round(sum(len(i.prompt_ids) for i in test_items) / len(test_items)),
        label_tokens=round(sum(map(len, encoder.label_ids)) / len(encoder.label_ids)), num_labels=len(encoder.label_ids),
        batch_size=spec.training.batch_size, lora_rank=spec.training.lora.r,
        lora_targets=spec.training.lora.targets if isinstance(spec.training.lora.targets, str) else "all",
        gradient_checkpointing=spec.training.gradient_checkpointing,
    )
    hardware = this_machine(ctx.device)
    efficiency = measured_vs_estimated(
        architecture, workload, hardware, training["step_time_s"] / training["steps"] if training and training["steps"] else None,
        serving.get("latency_ms_p50"),
    ) if hardware else None
    timings.update(serving)
    timings.update({
        "load_s": load_watch.seconds,
        "fine_tune_s": training["wall_s"] if training else 0.0,
        "train_tokens_per_s": outcome.train_tokens_per_s if training else None,
        "peak_memory_mb": memory.peak_mb,
    })
    model_info = {"kind": "llm", "source": source.description, "device": ctx.device, "dtype": str(options.dtype),
                  "architecture": architecture.as_dict()}
    return {"metrics": metrics, "timings": timings, "training": training, "model": model_info, "efficiency": efficiency}


def _save_weights(model, method: str, trial_dir: Path) -> None:
    """LoRA: the adapter (safetensors, a few MB). Full fine-tune: the whole model (safetensors)."""
    partial = trial_dir / "weights.partial"
    final = trial_dir / ("adapter" if method in ("lora", "qlora") else "model")
    model.save_pretrained(partial, safe_serialization=True)
    if final.exists():
        import shutil

        shutil.rmtree(final)
    os.replace(partial, final)
