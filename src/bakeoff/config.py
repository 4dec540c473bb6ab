"""The run spec: one frozen, typed tree that fully describes a bakeoff run.

Users write it as YAML; `bakeoff validate` resolves it without loading a model. Field descriptions are
the documentation (they show in `bakeoff validate --explain` and in errors), so keep them precise.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bakeoff.baselines.registry import is_baseline
from bakeoff.errors import ConfigError


class Spec(BaseModel):
    # allow_inf_nan=False: `sla_p95_ms=inf` passed `gt=0` and wrote Infinity, which is not JSON, into results.json
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def safe_folder_name(name: str) -> str:
    """A name that becomes a folder: no separators, no hidden or parent paths, nothing a shell would mangle."""
    if not name.strip() or name.startswith(".") or any(not (c.isalnum() or c in " ._-+") for c in name):
        raise ValueError(
            f"{name!r}: use letters, digits, spaces and . _ - + (not starting with a dot): it names a folder"
        )
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(
            f"{name[:40]!r}...: {len(name.encode())} bytes; use at most {MAX_NAME_BYTES} (UTF-8): it names a folder, "
            "and a trial's folder adds its size and seed"
        )
    return name


MAX_NAME_BYTES = 200  # file systems allow 255 bytes per name; a trial folder adds `__n<size>__s<seed>`


class DataSpec(Spec):
    path: Path | None = Field(
        None,
        description="Labeled examples: .csv, .jsonl, .parquet, or a `datasets` folder saved with save_to_disk "
        "(or give `hub` instead).",
    )
    hub: str | None = Field(
        None,
        description="A dataset by Hugging Face Hub id (e.g. PolyAI/banking77) or a local dataset repo folder, "
        "read with `datasets.load_dataset` (downloaded on first use unless offline); instead of `path`.",
    )
    split: str = Field("train", description="With `hub`: the split holding the labeled training examples.")
    config: str | None = Field(None, description="With `hub`: the dataset's configuration (subset) name, if any.")
    revision: str | None = Field(
        None, description="With `hub`: branch, tag or commit to read. Default: main. The commit used is recorded."
    )
    test_split: str | None = Field(
        None, description="With `hub`: a test split (e.g. test). Without it a test split is drawn from `split`."
    )
    validation_split: str | None = Field(
        None, description="With `hub`: a validation split. Without it one is drawn from the training data."
    )
    test_path: Path | None = Field(
        None, description="Optional test file (same format). Without it a test split is drawn from `path`."
    )
    validation_path: Path | None = Field(
        None, description="Optional validation file. Without it a validation split is drawn from the training data."
    )
    format: Literal["auto", "csv", "jsonl", "parquet", "hf-disk"] = Field(
        "auto", description="File format; `auto` goes by the file extension (a folder is `hf-disk`)."
    )
    text_column: str = Field("text", description="Column holding the input text.")
    label_column: str = Field("label", description="Column holding the class label.")
    id_column: str | None = Field(None, description="Optional column of unique item ids; duplicates are an error.")
    labels: list[str] | None = Field(
        None, description="Keep only these labels (e.g. a slice of a large intent set). Default: all."
    )
    max_per_label: int | None = Field(
        None, ge=2, description="Keep at most this many examples per label from `path` (seeded), to bound run time."
    )
    out_of_scope_labels: list[str] | None = Field(
        None,
        description="Labels whose items are out of scope: never "
        "trained on, used to test abstention (e.g. `oos`, "
        "or intents held out on purpose).",
    )
    out_of_scope_path: Path | None = Field(
        None, description="A file of out-of-scope items (text column only needed), same format as `path`."
    )
    target_column: str | None = Field(
        None,
        description="Extraction: column holding each item's target record as a JSON object (or use `task.fields`).",
    )
    reference_column: str | None = Field(
        None, description="Generation: column holding each item's reference output (e.g. the reply an agent wrote)."
    )

    @field_validator("labels", "out_of_scope_labels", mode="before")
    @classmethod
    def _labels_as_text(cls, value):
        """`labels: [0, 1, 2]` for an integer label column: labels are compared as text (3.0 read as 3)."""
        if not isinstance(value, list):
            return value
        numbers = (int, float)
        return [
            str(int(v)) if isinstance(v, numbers) and not isinstance(v, bool) and float(v).is_integer() else v
            for v in value
        ]

    @model_validator(mode="after")
    def _one_place(self) -> DataSpec:
        if (self.path is None) == (self.hub is None):
            raise ValueError("give exactly one of `task.data.path` (a file) or `task.data.hub` (a dataset id)")
        if self.hub is None:
            given = [k for k in ("test_split", "validation_split", "config", "revision") if getattr(self, k)]
            if given:
                raise ValueError(
                    f"`{given[0]}` goes with `task.data.hub`; with `path` use `test_path` / `validation_path`"
                )
        elif self.test_path or self.validation_path:
            raise ValueError("with `task.data.hub` name splits (`test_split`, `validation_split`), not files")
        return self

    @model_validator(mode="after")
    def _distinct_columns(self) -> DataSpec:
        if self.text_column == self.label_column:
            raise ValueError(
                f"text_column and label_column are both `{self.text_column}`: the label would be in the "
                "input; "
                "set `label_column` to the column that holds the class"
            )
        if self.labels is not None and self.out_of_scope_labels:
            both = sorted(set(self.labels) & set(self.out_of_scope_labels))
            if both:
                raise ValueError(
                    f"labels {both} are in both `labels` (trained on) and `out_of_scope_labels` (never trained on)"
                )
        return self


class SplitSpec(Spec):
    test_fraction: float = Field(
        0.25, gt=0, lt=1, description="Share of the data held out for test when no `test_path` is given."
    )
    validation_fraction: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="Share of the training pool held out for "
        "validation (early stopping) when no "
        "`validation_path` is given.",
    )
    seed: int = Field(0, description="Seed of the stratified splits.")


class DecodingSpec(Spec):
    """How extraction and generation candidates write their outputs (classification scores labels instead)."""

    strategy: Literal["greedy", "sample"] = Field(
        "greedy", description="`greedy`: the most likely token each step; `sample`: draw from temperature/top_p."
    )
    max_new_tokens: int = Field(96, ge=1, description="Most tokens written per item (an unfinished record is invalid).")
    temperature: float = Field(0.7, gt=0, description="Sampling temperature (`strategy: sample` only).")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass (`strategy: sample` only).")
    seed: int = Field(0, description="Seed of sampled decoding (added to the trial's seed).")
    constrained: bool = Field(
        True,
        description="Extraction: allow only tokens that keep the output a JSON object with exactly `task.fields` "
        "as keys and string or null values.",
    )
    batch_size: int = Field(8, ge=1, description="Items decoded together (left-padded).")


class TaskSpec(Spec):
    type: Literal["classification", "extraction", "generation"] = Field(
        "classification",
        description="What the model must produce: one label (classification), "
        "a JSON record of `task.fields` (extraction) or free text (generation).",
    )
    builtin: Literal["support-tickets", "support-tickets-extraction", "support-tickets-replies"] | None = Field(
        None,
        description="A built-in task instead of `data`: `support-tickets` (generated, seeded; classification), "
        "`support-tickets-extraction` (the same tickets with their planted customer, order, amount, date and "
        "product as target records), `support-tickets-replies` (a templated first reply per ticket; generation).",
    )
    builtin_examples: int = Field(
        1200, ge=100, description="How many tickets the built-in generator makes (before splitting)."
    )
    data: DataSpec | None = Field(None, description="Your own labeled data.")
    split: SplitSpec = Field(default_factory=SplitSpec)
    instruction: str = Field(
        "Classify the customer message into one category.",
        description="Instruction placed before each item in LLM prompts (extraction and generation replace this "
        "classification default with their own; extraction appends the field names).",
    )
    prompt_style: Literal["auto", "chat", "plain"] = Field(
        "auto",
        description="LLM prompt form. `plain`: instruction, `Message:` item, `Category:` (fewest tokens per item); "
        "`chat`: the "
        "tokenizer's chat template. `auto`: plain for fine-tuned models (they learn the format), chat for zero-shot.",
    )

    fields: dict[str, str] | list[str] | None = Field(
        None,
        description="Extraction: the record's fields, `{field: column}` to read each from a column (missing values "
        "null), or a list of field names with `task.data.target_column`. Built-in: default its five fields.",
    )
    fallback_reference: str | None = Field(
        None,
        description="Generation: the reply expected for out-of-scope items; their outputs are scored against it. "
        "Without it a fallback-detection rate is reported instead.",
    )
    decoding: DecodingSpec = Field(
        default_factory=DecodingSpec, description="Extraction and generation: how outputs are decoded."
    )

    @field_validator("fields")
    @classmethod
    def _distinct_fields(cls, fields):
        """A field named twice makes a record no JSON object can be (duplicate keys) and no constraint allows."""
        if isinstance(fields, list):
            twice = sorted({f for f in fields if fields.count(f) > 1})
            if twice:
                raise ValueError(f"{', '.join(map(repr, twice))} named more than once; name each field once")
        return fields

    @field_validator("fallback_reference")
    @classmethod
    def _fallback_written(cls, text: str | None) -> str | None:
        """A blank fallback would score every empty output on an out-of-scope item as a perfect reply."""
        if text is not None and not text.strip():
            raise ValueError(
                "blank; write the reply expected for out-of-scope items, or remove the key to report a "
                "fallback-detection rate instead"
            )
        return text

    @model_validator(mode="after")
    def _one_source(self) -> TaskSpec:
        if (self.builtin is None) == (self.data is None):
            raise ValueError("give exactly one of `task.builtin` (e.g. support-tickets) or `task.data` (your file)")
        return self


class LoraSpec(Spec):
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: float = Field(32, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Dropout on the LoRA input (0, as in PEFT and torchtune: on "
        "CPU each mask "
        "costs ~14% of a step in random numbers; early stopping guards against overfitting).",
    )
    targets: Literal["attention", "all"] | list[str] = Field(
        "all",
        description="Which weights get adapters: `attention` (q/k/v/o), `all` (attention + MLP, and MoE experts), "
        "or explicit module names. Chosen from the model's architecture.",
    )


class TrainingSpec(Spec):
    epochs: int = Field(3, ge=1, description="Maximum passes over the training subset (early stopping may end sooner).")
    learning_rate: float | None = Field(
        None, gt=0, description="Peak learning rate. Default: 2e-4 for LoRA/QLoRA, 2e-5 for full fine-tuning."
    )
    batch_size: int = Field(8, ge=1, description="Examples per optimizer step.")
    warmup_fraction: float = Field(
        0.06, ge=0, lt=1, description="Share of steps with linear warm-up; the rest decays linearly to 0."
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    packing: bool = Field(
        True,
        description="Run each batch as rows of [shared prompt prefix | item | item ...] with a "
        "mask that keeps "
        "items apart: no padding, the prefix computed once; exactly the padded batch's loss and "
        "gradients. "
        "Used where exact (SDPA/eager attention, sequences inside any sliding window); false: "
        "left-padded batches.",
    )
    max_grad_norm: float | None = Field(
        1.0, gt=0, description="Clip the gradient norm to this (HF Trainer's default); null: no clipping."
    )
    max_prompt_tokens: int = Field(
        192,
        ge=16,
        description="Prompts longer than this are cut at the end of the item text (its opening states the request).",
    )
    max_validation_items: int = Field(
        100, ge=2, description="Validation items (stratified sample) whose loss is computed after each epoch."
    )
    early_stopping_patience: int = Field(
        1,
        ge=0,
        description="Stop after this many epochs without a lower validation "
        "loss (0 = never stop early). The best epoch's weights "
        "are kept.",
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory.")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="`auto`: bfloat16 on CUDA, float32 on CPU (bf16 is ~100x slower on CPUs without AVX-512 BF16).",
    )
    lora: LoraSpec = Field(default_factory=LoraSpec)


class ResourcesSpec(Spec):
    """What one trial of a candidate asks a Ray cluster for (`runner.kind: ray`); ignored by the local runner."""

    gpus: int | None = Field(
        None,
        ge=0,
        description="GPUs per trial. Default: baselines 0; LLMs what the estimator "
        "says the "
        "method needs on the cluster's GPU type (0 on a cluster without GPUs).",
    )
    cpus: float = Field(1.0, gt=0, description="CPU cores per trial (also the trial's torch threads).")
    memory_gb: float | None = Field(
        None, gt=0, description="Host memory per trial, GB (Ray schedules by it). Default: not reserved."
    )


class CandidateSpec(Spec):
    name: str = Field(
        description="Unique name shown in results (letters, digits, spaces and . _ - + only: it names a folder)."
    )
    model: str = Field(
        description="A short name (smollm2-135m, gemma3-270m), a baseline (tfidf-logreg, minilm-logreg), "
        "a Hugging Face Hub id (downloaded on first use; cache only with --offline), a local model folder, or a "
        ".gguf file."
    )
    method: Literal["lora", "qlora", "full", "zero-shot", "fit"] | None = Field(
        None,
        description="lora | qlora (LoRA on a 4-bit NF4 base; needs bitsandbytes) | full | zero-shot (no "
        "fine-tuning). Baselines: fit. Default: lora for LLMs, fit for baselines.",
    )
    gguf_file: str | None = Field(None, description="GGUF file name inside a model folder, if the folder holds one.")
    trust_remote_code: bool = Field(
        False, description="Run model code shipped with the checkpoint. Off unless you opt in for this candidate."
    )
    allow_pickle: bool = Field(False, description="Allow pickle (.bin) weights. Off: only safetensors and GGUF load.")
    revision: str | None = Field(
        None,
        description="Hub ids: branch, tag or commit to download and load. Default: main. The commit used is "
        "recorded in results.json.",
    )
    train_sizes: list[int] | None = Field(
        None,
        min_length=1,
        description="Only these of `grid.train_sizes` for this "
        "candidate "
        "(e.g. a slow QLoRA row at the largest size only). Default: all of them.",
    )
    learning_rate: float | None = Field(
        None,
        gt=0,
        description="Peak learning rate for this candidate alone (a rate that suits one base model can hurt "
        "another). Default: `training.learning_rate`. Fine-tuned methods only.",
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, description="Ray runner only: GPUs, CPUs and memory one trial asks for."
    )

    @model_validator(mode="after")
    def _rate_only_where_trained(self) -> CandidateSpec:
        if self.learning_rate is not None and self.resolved_method in ("fit", "zero-shot"):
            raise ValueError(
                f"candidate `{self.name}`: `learning_rate` applies to lora, qlora and full fine-tuning, "
                f"not to `{self.resolved_method}`"
            )
        return self

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        return safe_folder_name(name)  # it names the trial folders under the run folder

    @property
    def is_baseline(self) -> bool:
        return is_baseline(self.model)  # registered in baselines/registry.py (lazy: no scikit-learn import)

    @property
    def resolved_method(self) -> str:
        if self.method is not None:
            return self.method
        return "fit" if self.is_baseline else "lora"

    @model_validator(mode="after")
    def _method_fits_kind(self) -> CandidateSpec:
        if self.is_baseline and self.method not in (None, "fit"):
            raise ValueError(f"`{self.model}` is a classical baseline: its method is `fit` (remove `method`)")
        if not self.is_baseline and self.method == "fit":
            raise ValueError("`fit` is for the classical baselines; LLMs take lora, qlora, full or zero-shot")
        return self


class GridSpec(Spec):
    train_sizes: list[int] = Field(
        [50, 200],
        min_length=1,
        description="Training-set sizes (nested, stratified subsets). Zero-shot candidates ignore them.",
    )
    seeds: list[int] = Field([0], min_length=1, description="Seeds; each (candidate, size) runs once per seed.")

    @field_validator("train_sizes")
    @classmethod
    def _positive_sorted(cls, sizes: list[int]) -> list[int]:
        if any(s < 2 for s in sizes):
            raise ValueError("every training size must be at least 2")
        if len(set(sizes)) != len(sizes):
            raise ValueError("training sizes must be distinct")
        return sorted(sizes)


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


class OutputSpec(Spec):
    dir: Path | None = Field(None, description="Run folder. Default: runs/<name>.")
    shared: bool = Field(
        False,
        description="Ray runner: `dir` is storage every node mounts at the same path, so "
        "workers write "
        "predictions and adapters there directly; false: they send them back to the driver through "
        "Ray.",
    )


class RunnerSpec(Spec):
    kind: Literal["local", "ray"] = Field(
        "local",
        description="`local`: trials one after another in this process; "
        "`ray`: each trial "
        "a Ray task with its own resources, several at once (needs `pip install "
        "'bakeoff[ray]'`).",
    )
    address: str | None = Field(
        None,
        description="Ray cluster to join: `auto` (the cluster this machine is part of), "
        "`ray://host:10001`, "
        "or a GCS `host:port`. Default: start a Ray instance on this machine.",
    )
    gpu: str | None = Field(
        None,
        description="Catalog key of the cluster's GPUs, used to size LLM trials without "
        "`resources.gpus`. "
        "Default: read from the nodes' Ray accelerator type.",
    )
    threads: int | Literal["auto"] = Field(
        "auto",
        description="Local runner on CPU: torch threads for LLM trials. `auto`: before each LLM trial, time a few "
        "ms of decoder-like ops at 1 thread and at all of them and use the faster (where other processes hold a "
        "core, ops on all threads wait on it: 5-10x slower steps); an integer fixes the count.",
    )
    progress_every_s: float = Field(
        30.0,
        gt=0,
        description="Local runner: seconds between plain progress lines while a trial trains or scores "
        "(the lines go to RUN_DIR/progress.log, and to the console when it is not a terminal).",
    )
    connect_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Ray runner with `address`: seconds to wait for the cluster's head to answer before the run "
        "stops with one line naming the address (Ray itself retries for minutes).",
    )

    @field_validator("threads")
    @classmethod
    def _positive_threads(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("runner.threads must be `auto` or at least 1")
        return value


class MlflowTrackingSpec(Spec):
    uri: str | None = Field(
        None,
        description="MLflow tracking URI: a tracking server (http://host:5000), a database "
        "(sqlite:///mlflow.db) or a file store folder (file:/path). Default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///mlflow.db in the working folder (open it with `mlflow ui --backend-store-uri "
        "sqlite:///mlflow.db`).",
    )
    experiment: str | None = Field(
        None, description="MLflow experiment to log into (created if missing). Default: the run's `name`."
    )


class TrackingSpec(Spec):
    mlflow: MlflowTrackingSpec | None = Field(
        None,
        description="Log to MLflow while the run goes: a parent run per "
        "bakeoff run, a child "
        "run per trial as each one is stored (`bakeoff export mlflow` does the "
        "same afterwards).",
    )


class RunSpec(Spec):
    name: str = Field(
        description="Run name; also the default folder under runs/ (letters, digits, spaces and . _ - +)."
    )
    task: TaskSpec
    candidates: list[CandidateSpec] = Field(min_length=1)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    grid: GridSpec = Field(default_factory=GridSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    efficiency: EfficiencySpec = Field(default_factory=EfficiencySpec)
    decision: DecisionSpec = Field(default_factory=DecisionSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    tracking: TrackingSpec = Field(
        default_factory=TrackingSpec, description="Experiment tracking (MLflow); does not change results."
    )
    runner: RunnerSpec = Field(
        default_factory=RunnerSpec, description="Where trials run: this process, or a Ray cluster."
    )

    @model_validator(mode="after")
    def _decision_gpu_is_estimated(self) -> RunSpec:
        if self.decision.gpu not in self.efficiency.gpus:
            raise ValueError(
                f"decision.gpu `{self.decision.gpu}` must be one of efficiency.gpus "
                f"{self.efficiency.gpus} (add it there)"
            )
        return self

    @model_validator(mode="after")
    def _judge_names_candidates(self) -> RunSpec:
        judge = self.evaluation.judge
        if judge is None:
            return self
        if self.task.type != "generation":
            raise ValueError("evaluation.judge compares generated text: set task.type to generation or remove it")
        names = [c.name for c in self.candidates]
        for key, name in (("baseline", judge.baseline), ("candidate", judge.candidate)):
            if name is not None and name not in names:
                raise ValueError(f"evaluation.judge.{key} `{name}` is not a candidate; pick one of {names}")
        judging = next((c for c in self.candidates if c.name == judge.candidate), None)
        if judging is not None and judging.is_baseline:
            llms = [c.name for c in self.candidates if not c.is_baseline]
            raise ValueError(
                f"evaluation.judge.candidate `{judging.name}` is a classical baseline and cannot read a judge prompt; "
                f"pick an LLM candidate ({llms}) or an `endpoint`"
            )
        return self

    @model_validator(mode="after")
    def _paraphrase_needs_builtin(self) -> RunSpec:
        names = [p.name for p in self.evaluation.perturbations or []]
        if "paraphrase" in names and self.task.builtin is None:
            raise ValueError(
                "evaluation.perturbations: `paraphrase` needs held-out phrasings, which only the built-in task has"
            )
        return self

    @field_validator("name")
    @classmethod
    def _safe_run_name(cls, name: str) -> str:
        return safe_folder_name(name)  # runs/<name>: a `../` here would write outside runs/

    @model_validator(mode="after")
    def _candidate_sizes_in_grid(self) -> RunSpec:
        for candidate in self.candidates:
            outside = sorted(set(candidate.train_sizes or []) - set(self.grid.train_sizes))
            if outside:
                raise ValueError(
                    f"candidate `{candidate.name}`: train_sizes {outside} are not in grid.train_sizes "
                    f"{self.grid.train_sizes}; pick from those"
                )
        return self

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, candidates: list[CandidateSpec]) -> list[CandidateSpec]:
        names = [c.name for c in candidates]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"candidate names must be unique; repeated: {', '.join(repeated)}")
        return candidates

    @property
    def run_dir(self) -> Path:
        return self.output.dir if self.output.dir is not None else Path("runs") / self.name

    def fingerprint(self) -> str:
        """Hash of everything that determines trial results: not where they are written or tracked, nor the post-hoc
        GPU estimates and decision questions (changing those re-decides; it does not invalidate trials), nor
        where trials run (runner, per-candidate resources): one run folder resumes under either runner."""
        payload = self.model_dump(
            mode="json",
            exclude={
                "output": True,
                "efficiency": True,
                "decision": True,
                "evaluation": {"judge"},  # judged across trials after they finish: it changes no trial
                "tracking": True,
                "runner": True,
                "candidates": {"__all__": {"resources"}},
            },
        )
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def explain(spec: BaseModel, indent: int = 0) -> list[str]:
    """The resolved spec as YAML lines, each setting preceded by its description as a comment
    (`bakeoff validate CONFIG --explain`): what every key means and what value it took."""
    lines = []
    pad = "  " * indent
    values = spec.model_dump(mode="json")  # paths as strings, nested specs as mappings: YAML-ready
    for name, field in type(spec).model_fields.items():
        value = getattr(spec, name)
        if field.description:
            lines.append(f"{pad}# {field.description}")
        if isinstance(value, BaseModel):
            lines += [f"{pad}{name}:", *explain(value, indent + 1)]
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            lines.append(f"{pad}{name}:")
            for item in value:
                item_lines = explain(item, indent + 2)
                first = next(i for i, line in enumerate(item_lines) if not line.lstrip().startswith("#"))
                item_lines[first] = f"{pad}  - " + item_lines[first].lstrip()
                lines += item_lines
        else:
            dumped = yaml.safe_dump(
                {name: values[name]}, default_flow_style=True, width=10_000, sort_keys=False
            ).strip()
            lines.append(f"{pad}{dumped[1:-1] if dumped.startswith('{') else dumped}")
    return lines


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice in one mapping.

    PyYAML keeps the last value of a repeated key without a word: `fields: {order_id: a, order_id: b}` became
    one field, and a second `training:` section silently replaced the first. Merge keys (`<<: *base`) may
    still be overridden, as YAML means them to be."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:  # an unhashable key: PyYAML's own error says so
                    continue
                if first is not key_node.start_mark:
                    raise DuplicateKeyError(key, first, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: Any, first, again) -> None:
        self.key, self.first_line, self.problem_mark = key, first.line + 1, again
        self.problem = f"key `{key}` appears twice in one mapping (lines {first.line + 1} and {again.line + 1})"
        super().__init__(self.problem)


def yaml_load(text: str) -> Any:
    """YAML as `yaml.safe_load` reads it, except that a key repeated in one mapping is a DuplicateKeyError."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted `key=value` overrides (values parsed as YAML) to a raw config dict.

    Every failure names the override, since that is what the user typed."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override `{item}` is not key=value (e.g. training.epochs=2)")
        dotted, value_text = item.split("=", 1)
        keys = [key.strip() for key in dotted.strip().split(".")]
        if not all(keys):
            raise ConfigError(f"override `{item}`: `{dotted}` is not a dotted key (e.g. training.epochs=2)")
        try:
            value = yaml_load(value_text)
        except DuplicateKeyError as err:
            raise ConfigError(
                f"override `{item}`: key `{err.key}` appears twice in the value; YAML would keep only the last, "
                "so write it once"
            ) from None
        except yaml.YAMLError as err:
            raise ConfigError(
                f"override `{item}`: the value is not valid YAML "
                f"({getattr(err, 'problem', None) or err}); "
                "quote it, e.g. key='text'"
            ) from None
        node: Any = raw
        for depth, key in enumerate(keys[:-1]):
            if isinstance(node, list):
                node = node[_list_index(node, key, dotted)]
            else:
                if node.get(key) is None:  # absent, or an empty YAML section (`training:`)
                    node[key] = {}
                node = node[key]
            if not isinstance(node, (dict, list)):
                parent = ".".join(keys[: depth + 1])
                raise ConfigError(
                    f"override `{item}`: `{parent}` is a single value ({node!r}), not a section with keys"
                )
        if isinstance(node, list):
            node[_list_index(node, keys[-1], dotted)] = value
        else:
            node[keys[-1]] = value
    return raw


def _list_index(node: list, key: str, dotted: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise ConfigError(f"override `{dotted}`: `{key}` is not an index of a list of {len(node)}")
    return int(key)


def load_spec(path: Path, overrides: list[str] | None = None) -> RunSpec:
    """Read, override and validate a YAML run spec; errors name the key and the fix."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(
            f"{path} is a folder; give the YAML config file inside it (e.g. {Path(path) / 'config.yaml'})"
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot read the config {path} ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        raw = yaml_load(text)
    except DuplicateKeyError as err:
        raise ConfigError(
            f"{path}: line {err.problem_mark.line + 1}: key `{err.key}` is written twice in one mapping "
            f"(first on line {err.first_line}); YAML would keep only the last: keep one"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: malformed YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides or [])
    spec = spec_from_dict(raw, source=str(path))
    return _resolve_paths(spec, Path(path).parent)


def spec_from_dict(raw: dict[str, Any], source: str = "config") -> RunSpec:
    try:
        return RunSpec.model_validate(raw)
    except ValidationError as err:
        lines = [explain_error(e) for e in err.errors()]
        if len(lines) > 2:  # at most three lines in all: the first problem, then the rest on one line
            lines = [lines[0], f"and {len(lines) - 1} more: " + "; ".join(lines[1:])]
        raise ConfigError(f"{source}: invalid config\n  " + "\n  ".join(lines)) from None


def explain_error(error: dict[str, Any]) -> str:
    key = ".".join(_key_text(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        parent_model = _model_at(error["loc"][:-1])
        field = _key_text(error["loc"][-1])
        known = list(parent_model.model_fields) if parent_model else []
        close = difflib.get_close_matches(field, known, n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"known keys here: {', '.join(known)}"
        return f"{key}: unknown key; {hint}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{key}: {message}"


def _key_text(part: Any) -> str:
    """A key as typed, or quoted when it holds line breaks or other invisible characters."""
    text = str(part)
    return text if text and text.isprintable() and text.strip() == text else repr(text)


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The spec class that sits at a location of the tree (list indices skipped)."""
    model: type[BaseModel] = RunSpec
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            inner = getattr(candidate, "__args__", (candidate,))
            found = next((a for a in (candidate, *inner) if isinstance(a, type) and issubclass(a, BaseModel)), None)
            if found:
                model = found
                break
        else:
            return None
    return model


def _resolve_paths(spec: RunSpec, base: Path) -> RunSpec:
    """Data paths in a YAML file are relative to that file, so configs work from any folder."""
    data = spec.task.data
    if data is None:
        return spec

    def fix(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else (base / p).resolve()

    data = data.model_copy(
        update={
            "path": fix(data.path),
            "test_path": fix(data.test_path),
            "validation_path": fix(data.validation_path),
            "out_of_scope_path": fix(data.out_of_scope_path),
            # A local dataset folder under `hub:` is relative to the config file too; a Hub id stays as written.
            "hub": str((base / data.hub).resolve()) if data.hub and (base / data.hub).is_dir() else data.hub,
        }
    )
    return spec.model_copy(update={"task": spec.task.model_copy(update={"data": data})})
