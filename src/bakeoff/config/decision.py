"""The questions after the trials: GPU estimates, costs of errors and review, and the decision's constraints."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from bakeoff.config.base import Spec


class EfficiencySpec(Spec):
    gpus: list[str] = Field(
        ["l4", "a10g", "a100-80gb", "h100"],
        description="GPUs (catalog keys) to estimate each LLM candidate's fine-tune and serving cost on.",
    )
    method: Literal["lora", "qlora", "full"] = Field(
        "lora", description="Fine-tuning method assumed for the GPU estimates."
    )
    train_examples: int | None = Field(
        None, ge=1, description="Training examples assumed for the GPU estimates. Default: the grid's largest size."
    )
    sla_p95_ms: float = Field(200.0, gt=0, description="p95 latency SLA for the capacity plan, ms.")
    load_items_per_s: float = Field(50.0, gt=0, description="Serving load for the capacity plan, items per second.")
    usd_per_hour: dict[str, float] = Field(
        default_factory=dict, description="Override catalog prices per GPU, e.g. {a10g: 0.75}."
    )


class CostsSpec(Spec):
    """What errors, abstentions and human review cost (`decision.costs`): the decision then ranks by $ per month.

    Classification only for now. Every item is either answered by the model (a wrong answer costs `error`, or
    `matrix[true][predicted]`) or, below a confidence threshold chosen on validation, sent to a person (`review`)."""

    error: float = Field(ge=0, description="$ per wrong answer the model gives (a label pair not in `matrix`).")
    matrix: dict[str, dict[str, Annotated[float, Field(ge=0)]]] | None = Field(
        None,
        description="$ per wrong answer by label pair, `{true_label: {predicted_label: cost}}`; pairs left out "
        "cost `error`, a right answer 0.",
    )
    review: float | None = Field(
        None,
        ge=0,
        description="$ per item a person handles instead of the model (below the confidence threshold). "
        "Unset: no review, the model answers every item.",
    )
    volume: float | None = Field(
        None,
        gt=0,
        description="Items per month. Default: the decision's load (items/s) around the clock.",
    )
    amortize_months: float = Field(
        12, gt=0, description="Months the fine-tune's cost is spread over in the monthly total."
    )


class DecisionSpec(Spec):
    """The four questions behind a recommendation (and two thresholds). Unset means "no constraint"."""

    task_specificity: Literal["auto", "narrow", "open-ended"] = Field(
        "auto",
        description="narrow: classification/extraction with a fixed answer space (label scoring applies); "
        "open-ended: generation (robustness and out-of-scope weigh more). auto: from task.type.",
    )
    max_fine_tune_usd: float | None = Field(None, gt=0, description="Budget for one fine-tune, $.")
    max_usd_per_1k_items: float | None = Field(None, gt=0, description="Budget per 1,000 items served, $.")
    max_usd_per_month: float | None = Field(None, gt=0, description="Serving budget per month at the target load, $.")
    gpu: str = Field("a10g", description="GPU the team will deploy on (catalog key; must be in `efficiency.gpus`).")
    max_gpus: int | None = Field(None, ge=1, description="GPUs available for serving.")
    sla_p95_ms: float | None = Field(None, gt=0, description="p95 latency SLA, ms.")
    load_items_per_s: float | None = Field(
        None, gt=0, description="Target load, items/s (default: efficiency.load_items_per_s)."
    )
    memory_limit_gb: float | None = Field(None, gt=0, description="Memory per GPU the model may use, GB.")
    labeled_examples: int | None = Field(
        None,
        ge=1,
        description="Labeled examples the team has (quality is read from "
        "the learning curve there). Default: the grid's "
        "largest size.",
    )
    out_of_scope_share: float = Field(
        0.0, ge=0, le=1, description="Share of production traffic expected to be out of scope."
    )
    min_macro_f1: float | None = Field(None, gt=0, le=1, description="Minimum acceptable macro-F1.")
    cpu_usd_per_hour: float = Field(
        0.10, ge=0, description="$ per hour of the CPU box that serves classical baselines."
    )
    costs: CostsSpec | None = Field(
        None,
        description="What errors and human review cost: when given, candidates are ranked by expected $ per "
        "month, errors included (docs/costs.md).",
    )
