"""One trial of an extraction or generation task: fit or fine-tune a candidate, write outputs, evaluate them.

The classification recipe (`recipes/trial.py`) reduces every candidate to label probabilities; here every
candidate reduces to `write(texts) -> outputs` (strings: JSON records or replies), handed to
`evaluation/target_suite.py`. LLMs are fine-tuned with the classification loop itself: each item's target
ids become its own "label" continuation, so packing, early stopping and the loss on target tokens only are
the same code. Outputs for the test set are saved per trial (predictions.jsonl) beside the metrics.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from bakeoff.baselines.registry import BaselineSetup, lookup
from bakeoff.data.examples import Examples
from bakeoff.data.splits import stratified_sample
from bakeoff.data.targets import instruction, target_fields
from bakeoff.efficiency.compare import measured_vs_estimated
from bakeoff.efficiency.decode_estimate import generation
from bakeoff.efficiency.estimate import Workload
from bakeoff.efficiency.hardware import this_machine
from bakeoff.efficiency.introspect import introspect
from bakeoff.efficiency.latency import measure_scoring
from bakeoff.efficiency.measure import PeakMemory, Stopwatch
from bakeoff.evaluation.decode import Decoder, decode, decode_speed
from bakeoff.evaluation.json_constraint import RecordGrammar, token_texts
from bakeoff.evaluation.target_suite import run_target_suite
from bakeoff.models.hub import candidate_source
from bakeoff.models.load import load_model, load_tokenizer
from bakeoff.models.prompt import prompt_style, shared_prefix_length
from bakeoff.models.target_prompt import TargetEncoder
from bakeoff.run_folder import RunFolder
from bakeoff.runners.grid import Trial
from bakeoff.training.loop import LoopInputs, steady_step_s, train
from bakeoff.training.lora import prepare_for_method, trainable_summary

LATENCY_SAMPLE = 64  # test items used for the latency measurement (as in recipes/trial.py)


def run_target_trial(trial: Trial, ctx, train_subset: Examples) -> dict:
    """`ctx` is the classification recipe's TrialContext (spec, task, run folder, device, progress hooks)."""
    if trial.candidate.is_baseline:
        return _baseline_trial(trial, ctx, train_subset)
    return _llm_trial(trial, ctx, train_subset)


def _evaluate(ctx, trial: Trial, write, train_subset: Examples | None, tokenizer=None, train_score_note=None):
    return run_target_suite(
        write,
        ctx.task,
        ctx.spec,
        train_subset,
        trial.seed,
        RunFolder(ctx.run_dir).trial(trial.trial_id).path,
        tokenizer,
        train_score_note=train_score_note,
        on_phase=getattr(ctx, "on_phase", None),
    )


def _baseline_trial(trial: Trial, ctx, train_subset: Examples) -> dict:
    spec = ctx.spec
    setup = BaselineSetup(spec.task.type, trial.seed, fields=tuple(target_fields(spec.task)))  # no fields: generation
    model = lookup(trial.candidate.model).build(setup)
    with PeakMemory("cpu") as memory:
        with Stopwatch() as fit_watch:
            model.fit(train_subset)
        output = _evaluate(ctx, trial, model.predict, train_subset, train_score_note=model.train_score_note)
        with Stopwatch() as latency_watch:
            serving = measure_scoring(
                lambda texts, size: model.predict(texts),
                ctx.task.test.texts[:LATENCY_SAMPLE],
                repeats=spec.evaluation.latency_repeats,
                budget_s=spec.evaluation.latency_budget_s,
            )
    timings = {
        "latency_measure_s": latency_watch.seconds,
        "inference_s": output.inference_s,
        "inference_items_per_s": output.test_items / output.inference_s if output.inference_s else None,
        "fine_tune_s": fit_watch.seconds,
        "train_tokens_per_s": None,
        "peak_memory_mb": memory.peak_mb,
    } | serving
    return {
        "metrics": output.metrics,
        "timings": timings,
        "training": None,
        "model": {"kind": "baseline", "name": trial.candidate.model, "task_type": spec.task.type},
        "efficiency": None,
    }


def _llm_trial(trial: Trial, ctx, train_subset: Examples) -> dict:
    from bakeoff.recipes.trial import _save_weights, load_options, merge_for_inference

    spec, candidate, method = ctx.spec, trial.candidate, trial.method
    task_spec = spec.task
    options = load_options(spec, candidate, ctx.device, method)
    source = candidate_source(candidate)  # a Hub id is fetched on first use, as in the classification recipe
    files = RunFolder(ctx.run_dir).trial(trial.trial_id)
    with PeakMemory(ctx.device) as memory:
        with Stopwatch() as load_watch:
            tokenizer = load_tokenizer(source, options)
            model = load_model(source, options)
        encoder = _target_encoder(spec, method, tokenizer)
        training, target_tokens = None, None  # target_tokens: mean target length trained on (tokens)
        if method != "zero-shot":
            with PeakMemory(ctx.device, reset=False) as tune_memory:  # the training state, without loading
                model, training, target_tokens = _fine_tune(model, method, encoder, tokenizer, trial, ctx, train_subset)
            training["peak_memory_mb"] = tune_memory.peak_mb
            training["memory_before_load_mb"] = memory.start_mb  # the process before this trial's model
            _save_weights(model, method, files)
            merge_for_inference(model)
        model.eval()
        decoder = _decoder(model, tokenizer, task_spec, trial.seed)

        written: list[tuple[int, float]] = []  # (tokens, seconds) per call; the first call is the test set

        def write(texts: list[str]) -> list[str]:
            decoded = decode(decoder, encoder.encode_prompts(texts), ctx.on_scored)
            written.append((sum(decoded.new_tokens), decoded.seconds))
            return decoded.texts

        output = _evaluate(ctx, trial, write, train_subset if method != "zero-shot" else None, tokenizer)
        latency_prompts = encoder.encode_prompts(ctx.task.test.texts[:LATENCY_SAMPLE])
        with Stopwatch() as latency_watch:
            serving = decode_speed(
                decoder, latency_prompts, spec.evaluation.latency_repeats, spec.evaluation.latency_budget_s
            )
    timings = _llm_timings(
        output, serving, training, written[0], task_spec, load_watch.seconds, memory.peak_mb, latency_watch.seconds
    )
    architecture = introspect(model.config)
    model_info = _llm_model_info(architecture, source, ctx, options, decoder, encoder)
    efficiency = _efficiency(
        architecture, trial, ctx, latency_prompts, training, target_tokens, serving, written[0][0], output
    )
    return {
        "metrics": output.metrics,
        "timings": timings,
        "training": training,
        "model": model_info,
        "efficiency": efficiency,
    }


def _target_encoder(spec, method: str, tokenizer) -> TargetEncoder:
    """The task's prompts and targets under this tokenizer, in the prompt style of a zero-shot or tuned model."""
    task_spec = spec.task
    return TargetEncoder(
        tokenizer,
        instruction(task_spec),
        task_spec.type,
        spec.training.max_prompt_tokens,
        prompt_style(task_spec.prompt_style, fine_tuned=method != "zero-shot"),
    )


def _decoder(model, tokenizer, task_spec, seed: int) -> Decoder:
    """The task's decoding; an extraction task's constrained decoding follows the grammar of its records."""
    grammar = None
    if task_spec.type == "extraction" and task_spec.decoding.constrained:
        grammar = RecordGrammar(tuple(target_fields(task_spec)))
    return Decoder(model, tokenizer, task_spec.decoding, grammar, token_texts(tokenizer) if grammar else None, seed)


def _llm_timings(
    output,
    serving: dict,
    training: dict | None,
    test_written: tuple[int, float],
    task_spec,
    load_s: float,
    peak_memory_mb: float,
    latency_measure_s: float,
) -> dict:
    """An LLM trial's timings: the latency measurement, the test set's writing (`test_written`: its output
    tokens and seconds, batched), loading, fine-tuning and memory, then the serving measurement's."""
    test_tokens, test_seconds = test_written
    return {
        "latency_measure_s": latency_measure_s,
        "torch_threads": torch.get_num_threads(),
        "inference_s": output.inference_s,
        "inference_items_per_s": output.test_items / output.inference_s if output.inference_s else None,
        "test_output_tokens": test_tokens,
        "output_tokens_per_s": test_tokens / test_seconds if test_seconds else None,  # batched, whole test set
        "load_s": load_s,
        "fine_tune_s": training["wall_s"] if training else 0.0,
        "train_tokens_per_s": training["train_tokens"] / training["step_time_s"]
        if training and training["step_time_s"]
        else None,
        "peak_memory_mb": peak_memory_mb,
        "decode_batch_size": task_spec.decoding.batch_size,
    } | serving


def _llm_model_info(architecture, source, ctx, options, decoder: Decoder, encoder: TargetEncoder) -> dict:
    """What wrote the outputs: the model's source, device, dtype and architecture, its decoding and prompt style."""
    task_spec = ctx.spec.task
    return {
        "kind": "llm",
        "task_type": task_spec.type,
        "source": source.description,
        "device": ctx.device,
        "dtype": str(options.dtype),
        "architecture": architecture.as_dict(),
        "decoding": task_spec.decoding.strategy + (" (JSON-constrained)" if decoder.grammar else ""),
        "prompt_style": encoder.style,
    } | source.provenance  # Hub ids: hub_id, revision asked for, commit_sha loaded


def _efficiency(
    architecture, trial: Trial, ctx, prompts, training, target_tokens, serving, test_tokens, output
) -> dict | None:
    """Measured vs estimated on this machine: step time, and batch-1 writing (TTFT, decode tokens/s, latency)
    for the mean output length measured on the test set. The workload's `output_tokens` is what the GPU
    estimates (`evaluation/analysis.py`) cost each item by."""
    hardware = this_machine(ctx.device)
    if hardware is None or not output.test_items:
        return None
    spec, lora = ctx.spec, ctx.spec.training.lora
    output_tokens = max(1, round(test_tokens / output.test_items))
    workload = Workload(
        method=trial.method if trial.method != "zero-shot" else "lora",
        train_examples=max(trial.train_size, 1),
        epochs=training["epochs_run"] if training else 1,
        prompt_tokens=round(sum(map(len, prompts)) / len(prompts)),
        shared_prefix_tokens=shared_prefix_length(prompts) if training and training.get("packed") else 0,
        label_tokens=round(target_tokens) if target_tokens else output_tokens,
        num_labels=1,
        batch_size=spec.training.batch_size,
        lora_rank=lora.r,
        lora_targets=lora.targets if isinstance(lora.targets, str) else "all",
        gradient_checkpointing=spec.training.gradient_checkpointing,
        output_tokens=output_tokens,
    )
    measured_step = steady_step_s(training)
    measured_memory_gb = (
        (training["peak_memory_mb"] - training["memory_before_load_mb"]) * 2**20 / 1e9 if training else None
    )
    record = measured_vs_estimated(architecture, workload, hardware, measured_step, None, measured_memory_gb)
    written = generation(architecture, workload, hardware, output_tokens)
    measured_latency = serving.get("latency_ms_p50")
    return record | {
        "estimated_latency_ms_b1": written.latency_ms_per_item,
        "measured_latency_ms_b1": measured_latency,
        "latency_ratio_measured_over_estimated": measured_latency / written.latency_ms_per_item
        if measured_latency
        else None,
        "estimated_ttft_ms": written.ttft_ms,
        "measured_ttft_ms": serving.get("ttft_ms_p50"),
        "estimated_decode_tokens_per_s": written.decode_tokens_per_s,
        "measured_decode_tokens_per_s": serving.get("decode_tokens_per_s"),
    }


def _fine_tune(model, method, encoder: TargetEncoder, tokenizer, trial: Trial, ctx, train_subset: Examples):
    """The classification loop on (prompt, target) items: item i of train + validation has label index i."""
    from accelerate import Accelerator

    from bakeoff.recipes.trial import learning_rate_for

    spec = ctx.spec
    model = prepare_for_method(model, method, spec.training.lora, trial.seed, spec.training.gradient_checkpointing)
    trainable, total = trainable_summary(model)
    validation = stratified_sample(ctx.task.validation, spec.training.max_validation_items, seed=0)
    train_items, train_targets = encoder.encode_targets(train_subset.texts, train_subset.targets)
    validation_items, validation_targets = encoder.encode_targets(validation.texts, validation.targets)
    offset = len(train_items)
    validation_items = [type(item)(item.prompt_ids, item.label_index + offset) for item in validation_items]
    inputs = LoopInputs(
        train=train_items,
        validation=validation_items,
        label_ids=train_targets + validation_targets,
        pad_id=tokenizer.pad_token_id,
        learning_rate=learning_rate_for(trial, spec, method),
        seed=trial.seed,
    )
    accelerator = Accelerator(cpu=ctx.device == "cpu")
    outcome = train(model, inputs, spec.training, accelerator, on_step=ctx.on_step, on_epoch=ctx.on_epoch)
    return (
        model,
        asdict(outcome)
        | {
            "trainable_params": trainable,
            "total_params": total,
            "learning_rate": inputs.learning_rate,
        },
        sum(map(len, train_targets)) / max(len(train_targets), 1),
    )
