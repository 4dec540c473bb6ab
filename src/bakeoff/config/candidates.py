"""Who competes and how they train: candidates, the training settings they share, and the grid of sizes and seeds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from bakeoff.baselines.registry import is_baseline
from bakeoff.config.base import Spec, safe_folder_name


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
