"""How trials are scored: the test set, perturbations, calibration, the optional LLM judge."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bakeoff.config.base import Spec


class PerturbationSpec(Spec):
    name: str = Field(
        description="A registered perturbation (typos, drop_double, lowercase, uppercase, punctuation, "
        "whitespace, "
        "contractions, synonyms, padding, entities, truncate) or `paraphrase` (built-in task "
        "only)."
    )
    params: dict[str, float | int | str] = Field(
        default_factory=dict, description="Keyword parameters, e.g. {rate: 0.05} for typos."
    )


class JudgeSpec(Spec):
    """LLM-as-judge for generation tasks: pairwise win-rate of each candidate against `baseline`."""

    candidate: str | None = Field(None, description="A candidate of this run that judges (its fine-tuned model).")
    endpoint: str | None = Field(
        None, description="Instead: an OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1) to judge with."
    )
    model: str | None = Field(None, description="Model name sent to `endpoint` (required with it).")
    api_key_env: str | None = Field(
        None, description="Environment variable holding the endpoint's API key (the key itself never goes in YAML)."
    )
    baseline: str = Field(description="The candidate every other candidate is compared against.")
    max_items: int = Field(100, ge=2, description="Test items judged per candidate (two judge calls each).")
    timeout_s: float = Field(60.0, gt=0, description="Endpoint timeout per judge call, seconds.")

    @model_validator(mode="after")
    def _one_judge(self) -> JudgeSpec:
        if (self.candidate is None) == (self.endpoint is None):
            raise ValueError("evaluation.judge: give exactly one of `candidate` (a run candidate) or `endpoint`")
        if self.endpoint is not None and not self.model:
            raise ValueError("evaluation.judge.endpoint needs `model` (the model name the endpoint serves)")
        return self


DEFAULT_PERTURBATIONS = ("typos", "lowercase", "padding", "entities", "synonyms", "truncate", "paraphrase")


class EvaluationSpec(Spec):
    batch_size: int | Literal["auto"] = Field(
        16,
        description="Items per scoring batch on average (batches are "
        "length-sorted and of equal padded size: more short "
        "items, fewer long ones), or `auto`: measure throughput "
        "at 4/8/16/32 on a test sample first and use the fastest.",
    )
    scoring: Literal["full", "auto", "first-token"] = Field(
        "full",
        description="LLM label scoring: `full` sums the log-probs of every label token (exact); `first-token` "
        "scores only "
        "the first token (labels must start with distinct tokens); `auto` uses first-token for fine-tuned candidates "
        "when "
        "possible and full otherwise (zero-shot models are never sure of the rest of a label).",
    )
    bootstrap_samples: int = Field(1000, ge=100, description="Bootstrap resamples for confidence intervals.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Confidence level of the intervals.")
    max_test_items: int | None = Field(
        None, ge=10, description="Score at most this many test items (stratified, seeded). Default: all."
    )
    max_train_items: int = Field(
        200, ge=0, description="Also score up to this many training items, so memorization shows (train vs test)."
    )
    latency_repeats: int = Field(
        12, ge=3, description="Items scored one at a time (after 2 warm-up calls) for batch-1 latency p50/p95/p99."
    )
    latency_budget_s: float | None = Field(
        20.0,
        gt=0,
        description="Stop the batch-1 latency repeats once they have taken this many seconds (at least 3 are "
        "kept; `latency_repeats` is the most), so a slow model does not spend minutes on latency. null: always "
        "`latency_repeats`.",
    )
    perturbations: list[PerturbationSpec] | None = Field(
        None,
        description=f"Perturbed copies of the test set to score. Default: {', '.join(DEFAULT_PERTURBATIONS)} "
        "(paraphrase only on the built-in task). [] for none.",
    )
    plugins: list[str] = Field(
        default_factory=list, description="Python modules to import first; they may @register perturbations."
    )
    max_perturbed_items: int = Field(100, ge=10, description="Test items (stratified) perturbed per perturbation.")
    perturbation_budget_s: float | None = Field(
        None,
        gt=0,
        description="Seconds the perturbation suite may spend scoring, estimated from the test set's scoring "
        "speed: the stratified perturbed subset shrinks to fit (never below 20 items, never above "
        "`max_perturbed_items`); the items used and each CI's width are in the results. null: "
        "`max_perturbed_items`.",
    )
    max_validation_items: int = Field(
        100, ge=10, description="Validation items scored to fit temperature scaling and the abstention threshold."
    )
    max_out_of_scope_items: int = Field(
        200, ge=4, description="Out-of-scope items scored (split half validation, half test)."
    )
    calibration_bins: int = Field(
        15, ge=2, description="Equal-width confidence bins for ECE and the reliability diagram."
    )
    memorization_train_accuracy: float = Field(
        0.98,
        gt=0,
        le=1,
        description="Train accuracy at or above which a candidate counts as near-perfect on what it saw.",
    )
    memorization_drop: float = Field(
        0.10, gt=0, lt=1, description="Accuracy drop from train to perturbed held-out items that flags memorization."
    )
    appetite_share_of_best: float = Field(
        0.9, gt=0, le=1, description="Report examples needed to reach this share of a candidate's best macro-F1."
    )
    appetite_target_macro_f1: float | None = Field(
        None, gt=0, le=1, description="Also report examples needed to reach this absolute macro-F1."
    )
    judge: JudgeSpec | None = Field(
        None, description="Optional LLM-as-judge for generation tasks (off by default); see docs/task-types.md."
    )

    def resolved_perturbations(self, builtin_task: bool) -> list[PerturbationSpec]:
        if self.perturbations is not None:
            return self.perturbations
        return [PerturbationSpec(name=n) for n in DEFAULT_PERTURBATIONS if n != "paraphrase" or builtin_task]
