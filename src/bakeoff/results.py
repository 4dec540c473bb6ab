"""Typed records of a run's stored results: the shape of results.json (`bakeoff.results/1`), checked.

The store and results.json hold plain JSON; readers (the notebook API, the MLflow exporter) parse it
here once instead of reading nested dicts with `.get`. Field names are the store's. Every statistic
with an interval is a `Stat(value, ci_low, ci_high)`, where the store keeps `accuracy` and
`accuracy_ci: [low, high]` side by side.

results.json holds `schema`, `run` (RunMeta), `trials` (one stored row per trial: identity, status, and
`result` with metrics / timings / training / model / efficiency) and `recommendation`. The mappings that
stay untyped, and what they hold:
  run.analysis: task_type, main_metric, learning_curves (per candidate: `curve` rows of train_size,
           macro_f1 (the task's main metric, named in `metric`), ci; to_share_of_best; to_target),
           paired_comparisons (train_size, seed, a, b, tie and, per metric, difference and ci; McNemar for
           classification), gpu_estimates (efficiency/plan.py's estimate records), judge (evaluation.judge:
           baseline, records of win_rate, win_rate_ci, wins, ties, losses, position_consistency,
           first_position_rate per candidate, size and seed);
  metrics.robustness / out_of_scope / calibration / memorization: evaluation/suite.py (classification) and
           evaluation/target_suite.py (extraction, generation: fallback_detection_rate, scored_against);
  efficiency: efficiency/compare.py (estimated vs measured step time, latency and memory).

Unknown keys are errors (`extra="forbid"`): a key the trial recipe starts writing must be added here,
and the tests that parse a real run say so. Sections whose inner shape belongs to one stage and changes
with it (robustness, out-of-scope, calibration, the model's architecture, efficiency estimates, the
cross-trial analysis) are kept as JSON mappings. No torch, no pandas.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

JsonMap = dict[str, Any]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Stat(Record):
    """A point estimate with its confidence interval (percentile bootstrap, the run's confidence level)."""

    value: float = Field(description="The estimate on the full sample.")
    ci_low: float = Field(description="Lower bound of the interval.")
    ci_high: float = Field(description="Upper bound of the interval.")


def _stat_pairs(data: Any, names: tuple[str, ...]) -> Any:
    """The store's `name` + `name_ci: [low, high]` pairs as one Stat each."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for name in names:
        if name in data and data[name] is None:
            data.pop(f"{name}_ci", None)  # e.g. hallucination_rate when nothing was copied: no interval either
        if name in data and not isinstance(data[name], (dict, Stat)) and data[name] is not None:
            low, high = data.pop(f"{name}_ci", (data[name], data[name]))
            data[name] = {"value": data[name], "ci_low": low, "ci_high": high}
    return data


TARGET_STATS = (
    "valid_output_rate",
    "record_exact_match",
    "field_precision",
    "field_recall",
    "field_f1",
    "field_f1_macro",
    "hallucination_rate",
    "chrf",
    "rouge_l",
    "output_words_mean",
    "output_tokens_mean",
    "refusal_rate",
)


class SplitScores(Record):
    """Quality on one set of items (`metrics.test`, `metrics.train`, `metrics.test_clean`)."""

    items: int | None = Field(None, description="Items scored.")
    accuracy: Stat | None = Field(None, description="Classification: share of items whose top label is right.")
    macro_f1: Stat | None = Field(None, description="Classification: unweighted mean of per-class F1.")
    mean_true_label_prob: float | None = Field(None, description="Mean probability given to the right label.")
    per_class: dict[str, JsonMap] = Field(
        default_factory=dict, description="Per label: precision, recall, f1, support."
    )
    confusion: list[list[int]] = Field(
        default_factory=list,
        description="Confusion matrix, rows true labels, columns predicted, in the run's label order.",
    )
    removed_near_duplicates: int | None = Field(
        None, description="test_clean only: test items dropped as exact or near duplicates of training items."
    )
    # Extraction (evaluation/extraction_metrics.py); higher is better except hallucination_rate.
    fields: list[str] | None = Field(None, description="Extraction: the declared record fields, in order.")
    valid_output_rate: Stat | None = Field(
        None, description="Extraction: outputs that parse as one JSON object with exactly the declared keys."
    )
    record_exact_match: Stat | None = Field(
        None, description="Extraction (main metric): valid outputs whose every field equals the target."
    )
    field_precision: Stat | None = Field(None, description="Extraction: field values right of those predicted.")
    field_recall: Stat | None = Field(None, description="Extraction: target field values predicted right.")
    field_f1: Stat | None = Field(None, description="Extraction: F1 of field values, pooled over fields (micro).")
    field_f1_macro: Stat | None = Field(None, description="Extraction: mean of per-field F1.")
    hallucination_rate: Stat | None = Field(
        None, description="Extraction: predicted values not found in the source text (lower is better)."
    )
    copied_values: int | None = Field(
        None, description="Extraction: predicted non-null values checked against the text."
    )
    per_field: dict[str, JsonMap] | None = Field(
        None, description="Extraction, per field: precision, recall, f1, tp, fp, fn, support, predicted."
    )
    # Generation (evaluation/generation_metrics.py), on a 0-1 scale.
    chrf: Stat | None = Field(None, description="Generation (main metric): corpus chrF (sacrebleu / 100).")
    chrf_sentence_mean: float | None = Field(None, description="Generation: mean sentence-level chrF.")
    rouge_l: Stat | None = Field(None, description="Generation: mean ROUGE-L F-measure (rouge-score).")
    output_words_mean: Stat | None = Field(None, description="Generation: mean output length, words.")
    output_tokens_mean: Stat | None = Field(
        None, description="Generation: mean output length, tokens of the candidate's tokenizer."
    )
    refusal_rate: Stat | None = Field(None, description="Generation: outputs the refusal detector flags.")
    empty_rate: float | None = Field(None, description="Generation: empty or whitespace-only outputs.")

    @model_validator(mode="before")
    @classmethod
    def _from_store(cls, data: Any) -> Any:
        return _stat_pairs(data, ("accuracy", "macro_f1", *TARGET_STATS))


class TrialMetrics(Record):
    """Everything measured about a trial's predictions."""

    task_type: Literal["classification", "extraction", "generation"] | None = Field(
        None, description="Extraction and generation trials: the task type (classification trials omit it)."
    )
    main_metric: str | None = Field(
        None, description="Extraction and generation trials: the metric quality is read in (record_exact_match, chrf)."
    )

    test: SplitScores | None = Field(None, description="Held-out test set.")
    train: SplitScores | None = Field(
        None,
        description="Up to `evaluation.max_train_items` of the examples trained on "
        "(memorization shows as train >> test).",
    )
    test_clean: SplitScores | None = Field(
        None, description="Test items that are neither exact nor near duplicates of training items."
    )
    calibration: JsonMap | None = Field(
        None, description="ece, brier, nll, reliability bins, temperature, after_scaling."
    )
    robustness: JsonMap | None = Field(
        None,
        description="Perturbed test subsets: clean, perturbations {name: scores "
        "and drops}, mean_perturbed_accuracy, worst_perturbation, "
        "paraphrase.",
    )
    out_of_scope: JsonMap | None = Field(
        None,
        description="Out-of-scope detection: by_score {auroc, aupr, ...}, "
        "confidently_wrong_rate, risk_coverage, threshold.",
    )
    memorization: JsonMap | None = Field(None, description="train/test/perturbed accuracy, gap, and the `flag`.")


class Timings(Record):
    """Measured times, speeds and memory of one trial (seconds, items/s, MB as the names say)."""

    inference_s: float | None = Field(None, description="Wall time scoring the test set.")
    inference_items_per_s: float | None = Field(None, description="Test items scored per second.")
    latency_ms_p50: float | None = Field(None, description="Batch-1 latency, median.")
    latency_ms_p95: float | None = Field(None, description="Batch-1 latency, 95th percentile.")
    latency_ms_p99: float | None = Field(None, description="Batch-1 latency, 99th percentile.")
    latency_ms_repeats: list[float] = Field(default_factory=list, description="Every batch-1 latency measured.")
    items_per_s_by_batch: dict[int, float] = Field(
        default_factory=dict, description="Scoring throughput per batch size tried."
    )
    best_batch: int | None = Field(None, description="The batch size with the highest throughput.")
    items_per_s_at_best: float | None = Field(None, description="Throughput at best_batch.")
    load_s: float | None = Field(None, description="LLMs: loading tokenizer and model.")
    fine_tune_s: float | None = Field(None, description="Training (LLMs) or fitting (baselines) wall time.")
    train_tokens_per_s: float | None = Field(
        None, description="LLMs: real training tokens per second of optimizer steps."
    )
    peak_memory_mb: float | None = Field(None, description="Peak memory of the trial (RSS on CPU, allocated on CUDA).")
    scoring_batch_size: int | None = Field(None, description="LLMs: the batch size used to score the test set.")
    # Extraction and generation trials: decoding, timed one item at a time (evaluation/decode.py).
    ttft_ms_p50: float | None = Field(None, description="Generating LLMs: time to first token, median, ms.")
    ttft_ms_p95: float | None = Field(None, description="Generating LLMs: time to first token, 95th percentile, ms.")
    decode_tokens_per_s: float | None = Field(
        None, description="Generating LLMs: tokens per second after the first, batch 1, median."
    )
    latency_items: int | None = Field(None, description="Generating LLMs: items timed one at a time.")
    test_output_tokens: int | None = Field(None, description="Generating LLMs: tokens written for the test set.")
    output_tokens_per_s: float | None = Field(
        None, description="Generating LLMs: tokens written per second over the batched test set."
    )
    decode_batch_size: int | None = Field(None, description="Generating LLMs: batch size of test-set decoding.")
    latency_measure_s: float | None = Field(
        None, description="Wall time of the latency and throughput measurement (`evaluation.latency_budget_s`)."
    )
    evaluation_phase_s: dict[str, float] | None = Field(
        None, description="Seconds per evaluation phase: test, train, validation, robustness, out_of_scope."
    )
    torch_threads: int | None = Field(None, description="LLMs: torch threads the trial ran on (`runner.threads`).")


class Training(Record):
    """How a fine-tune went (LLM trials that train)."""

    steps: int = Field(description="Optimizer steps.")
    epochs_run: int = Field(description="Epochs run (early stopping may end sooner).")
    best_epoch: int = Field(description="Epoch whose weights were kept.")
    stopped_early: bool = Field(description="Whether early stopping ended training.")
    train_loss_per_epoch: list[float] = Field(default_factory=list, description="Mean training loss per epoch.")
    validation_loss_per_epoch: list[float] = Field(
        default_factory=list, description="Validation loss after each epoch."
    )
    wall_s: float = Field(description="Whole loop, validation passes included.")
    step_time_s: float = Field(description="Optimizer steps only.")
    first_step_s: float | None = Field(
        None, description="The first optimizer step (allocation, warm-up); the estimator compares the rest."
    )
    train_tokens: int = Field(description="Real tokens of the training batches, all epochs.")
    computed_tokens: int = Field(
        description="Tokens actually run (packing runs the shared prefix once per row, no padding)."
    )
    packed: bool = Field(description="Packed batches (else left-padded).")
    trainable_params: int | None = Field(None, description="Parameters trained.")
    total_params: int | None = Field(None, description="All parameters of the model.")
    learning_rate: float | None = Field(
        None, description="Peak learning rate used (the spec's, or the method's default)."
    )
    peak_memory_mb: float | None = Field(
        None,
        description="Peak memory over the fine-tune alone, loading excluded (RSS on CPU, allocated on CUDA). "
        "Its part above `memory_before_load_mb` is what `efficiency.memory_ratio_measured_over_estimated` "
        "compares with the estimate. On CPU, RSS also counts a memory-mapped checkpoint's resident pages.",
    )
    memory_before_load_mb: float | None = Field(
        None,
        description="Memory of the process when the trial began, before its model was loaded (RSS on CPU: the "
        "interpreter and libraries; allocated on CUDA). `efficiency.measured_memory_gb` is the fine-tune's peak "
        "above it.",
    )


# The sections of a stored trial result, and the identity keys repeated beside them.
RESULT_SECTIONS = ("metrics", "timings", "training", "model", "efficiency", "ray")
STORED_RESULT_KEYS = {*RESULT_SECTIONS, "model_name", "trial_id", "candidate", "method", "train_size", "seed"}


class TrialRecord(Record):
    """One trial: a candidate at a training size and seed, and what it measured."""

    trial_id: str = Field(description="`candidate/n<size>/s<seed>`.")
    candidate: str = Field(description="The candidate's name in the spec.")
    model_name: str | None = Field(None, description="The candidate's `model` (short name, path, hub id or baseline).")
    method: str = Field(description="lora, qlora, full, zero-shot, or fit (baselines).")
    train_size: int = Field(description="Training examples (0 for zero-shot).")
    seed: int = Field(description="Seed of the subset, initialisation and data order.")
    status: Literal["running", "done", "failed"] = Field(description="`running` means started and not (yet) finished.")
    attempts: int = Field(0, description="Times the trial was started.")
    error: str | None = Field(None, description="Why it failed (failed trials).")
    metrics: TrialMetrics | None = Field(
        None, description="Quality, robustness, out-of-scope, calibration (done trials)."
    )
    timings: Timings | None = Field(None, description="Measured speed and memory (done trials).")
    training: Training | None = Field(None, description="The fine-tune's history (trained LLMs).")
    model: JsonMap | None = Field(
        None, description="What was loaded: kind (llm/baseline), source, dtype, architecture."
    )
    efficiency: JsonMap | None = Field(
        None, description="Estimated vs measured step time and latency on this run's hardware (LLMs)."
    )
    ray: JsonMap | None = Field(
        None, description="Ray runner: the node the trial ran on and its seconds in the worker (`node`, `trial_s`)."
    )

    @classmethod
    def from_stored(cls, row: JsonMap, model_name: str | None = None) -> TrialRecord:
        """A store row (results.json `trials[i]`: identity, status and a nested `result`) as one flat record.
        A section this version does not know fails here, naming it, rather than being dropped."""
        result = row.get("result") or {}
        fields = {
            key: row.get(key)
            for key in ("trial_id", "candidate", "method", "train_size", "seed", "status", "attempts", "error")
        }
        unknown = sorted(set(result) - STORED_RESULT_KEYS)
        if unknown:
            raise ValueError(f"trial {row.get('trial_id')}: stored sections this version does not read: {unknown}")
        sections = {key: result.get(key) for key in RESULT_SECTIONS}
        return cls.model_validate(
            fields
            | sections
            | {"model_name": result.get("model_name", model_name), "attempts": row.get("attempts") or 0}
        )

    @property
    def done(self) -> bool:
        return self.status == "done"


class RunMeta(Record):
    """What the store's run table holds about the run itself."""

    spec: JsonMap | None = Field(None, description="The resolved run spec (config.RunSpec as JSON).")
    fingerprint: str | None = Field(None, description="Hash of the config's part that determines trial results.")
    data_fingerprint: str | None = Field(
        None, description="Hash of the prepared data (every split's texts and labels) the trials ran on."
    )
    versions: dict[str, str] = Field(default_factory=dict, description="Package versions.")
    git_sha: str | None = Field(None, description="bakeoff's git commit, when run from a checkout.")
    python: str | None = Field(None, description="Python version.")
    created: str | None = Field(None, description="When the run folder was created (UTC, ISO 8601).")
    device: str | None = Field(None, description="cpu, cuda, ...")
    torch_threads: int | None = Field(None, description="torch intra-op threads.")
    labels: list[str] = Field(
        default_factory=list, description="The task's labels, in the order of confusion matrices and probabilities."
    )
    data_report: JsonMap | None = Field(
        None, description="Split sizes, duplicates between train and test, dropped texts."
    )
    analysis: JsonMap | None = Field(
        None, description="Cross-trial analysis: learning curves, paired comparisons, GPU estimates."
    )
    serving: dict[str, JsonMap] | None = Field(
        None,
        description="Per candidate, its latest `bakeoff loadtest --run`: trial_id, hardware, sla_p95_ms, steps "
        "(rate_per_s, sent, ok, latency_ms_p95, ...), batching, measured_at (serving/loadtest.py).",
    )

    @field_validator("analysis", mode="before")
    @classmethod
    def _curves_in_quality(cls, analysis: Any) -> Any:
        """Run folders written before the curves named their values `quality` (they said `macro_f1` whatever
        the task's metric) read as today's."""
        if not isinstance(analysis, dict) or not isinstance(analysis.get("learning_curves"), dict):
            return analysis
        curves = {}
        for name, report in analysis["learning_curves"].items():
            report = dict(report)
            if "best_macro_f1" in report:
                report["best_quality"] = report.pop("best_macro_f1")
            report["curve"] = [
                {("quality" if key == "macro_f1" else key): value for key, value in row.items()}
                for row in report.get("curve", [])
            ]
            curves[name] = report
        return {**analysis, "learning_curves": curves}

    @property
    def task_type(self) -> str:
        """classification, extraction or generation (the spec's `task.type`)."""
        return ((self.spec or {}).get("task") or {}).get("type") or "classification"


class Recommendation(Record):
    """The decision engine's answer (decision/engine.py's `recommend`)."""

    choice: str | None = Field(description="The candidate to use, or None when none meets every constraint.")
    excluded: dict[str, str] = Field(
        default_factory=dict, description="Candidate: the constraint it failed, with its number."
    )
    ranking: list[tuple[str, float]] = Field(
        default_factory=list,
        description="(candidate, weighted score), best first; with `decision.costs`: (candidate, expected $ per "
        "month), cheapest first.",
    )
    pareto: list[str] = Field(
        default_factory=list, description="Candidates no other beats on quality, $/month and p95 at once."
    )
    tie: list[str] | None = Field(None, description="The top two, when within noise of each other.")
    no_llm_needed: bool = Field(False, description="A classical baseline is within noise of the best LLM.")
    reason: str = Field(description="Why the choice won.")
    weights: dict[str, float] | None = Field(None, description="Score weights derived from the answers.")
    evidence: list[JsonMap] = Field(default_factory=list, description="Per candidate: the numbers the decision used.")
    answers: JsonMap = Field(default_factory=dict, description="The decision answers used.")
    sensitivity: list[str] = Field(default_factory=list, description="Answers that would change the choice.")
    not_assessed: dict[str, str] = Field(
        default_factory=dict, description="Candidates with no evidence to decide on, and why."
    )
    rationale: str = Field("", description="The paragraph shown at the top of the report.")
    costs: JsonMap | None = Field(
        None,
        description="With `decision.costs`: volume_items_per_month, amortize_months, notes, comparison (the top "
        "two's monthly difference with its paired bootstrap ci) and curves (validation $ per 1k items by threshold).",
    )


class RunResults(Record):
    """A run as results.json describes it: metadata, one record per trial, the recommendation."""

    schema_: str = Field("bakeoff.results/1", alias="schema", description="Schema name and version.")
    run: RunMeta = Field(description="Run metadata.")
    trials: list[TrialRecord] = Field(default_factory=list, description="One record per trial, in run order.")
    recommendation: Recommendation | None = Field(
        None, description="The recommendation for the run's decision answers."
    )

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @classmethod
    def from_stored(cls, stored: JsonMap) -> RunResults:
        """Parse results.json's content (or report.build.load_results', which lacks only the recommendation)."""
        spec = (stored.get("run") or {}).get("spec") or {}
        models = {c["name"]: c.get("model") for c in spec.get("candidates", [])}
        return cls.model_validate(
            {
                "schema": stored.get("schema", "bakeoff.results/1"),
                "run": stored.get("run") or {},
                "trials": [
                    TrialRecord.from_stored(row, models.get(row.get("candidate"))) for row in stored.get("trials", [])
                ],
                "recommendation": stored.get("recommendation"),
            }
        )

    @property
    def name(self) -> str | None:
        return (self.run.spec or {}).get("name")

    @property
    def done_trials(self) -> list[TrialRecord]:
        """Finished trials with their measurements, in run order."""
        return [t for t in self.trials if t.done and t.metrics is not None]

    def with_spec(self, spec: JsonMap) -> RunResults:
        """The same results under another spec (e.g. other decision answers); nothing else changes."""
        return self.model_copy(update={"run": self.run.model_copy(update={"spec": spec})})
