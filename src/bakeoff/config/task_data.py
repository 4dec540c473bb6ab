"""`task.data`: where a task's examples come from. The keys every task type reads are on `DataSpec`; each
type's own keys are on its subclass (`ClassificationDataSpec`, `ExtractionDataSpec`, `GenerationDataSpec`),
so a task of one type never holds, or explains, another type's keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bakeoff.config.base import Spec


class DataSpec(Spec):
    """Keys every task type reads; `task.type` adds that type's own keys (the sections marked with a type).

    `DataSpec(**keys)` alone builds the subclass those keys belong to (classification unless `target_column`
    or `reference_column` is set), as `Path(...)` builds a PosixPath; a task reads it again as its type's."""

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

    def __new__(cls, *args: Any, **keys: Any) -> DataSpec:
        return super().__new__(data_class(keys) if cls is DataSpec else cls)

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> DataSpec:
        if cls is DataSpec and isinstance(obj, dict):
            return data_class(obj).model_validate(obj, **options)
        return super().model_validate(obj, **options)

    @model_validator(mode="before")
    @classmethod
    def _unset_keys_of_other_types(cls, raw: Any) -> Any:
        """A spec written out whole by an earlier version (a stored spec, its `validate --explain`) holds every
        type's keys, unset (null): those are dropped; a set one is refused by the task, or as an unknown key."""
        if not isinstance(raw, dict):
            return raw
        return {k: v for k, v in raw.items() if not (v is None and k in TYPE_DATA_KEYS and k not in cls.model_fields)}

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
        return self


OUT_OF_SCOPE_PATH = "A file of out-of-scope items (text column only needed), same format as `path`."


class ClassificationDataSpec(DataSpec):
    """`task.data` of a classification task: which labels to keep, and out-of-scope items."""

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
    out_of_scope_path: Path | None = Field(None, description=OUT_OF_SCOPE_PATH)

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
    def _kept_labels_are_in_scope(self) -> ClassificationDataSpec:
        if self.labels is not None and self.out_of_scope_labels:
            both = sorted(set(self.labels) & set(self.out_of_scope_labels))
            if both:
                raise ValueError(
                    f"labels {both} are in both `labels` (trained on) and `out_of_scope_labels` (never trained on)"
                )
        return self


class ExtractionDataSpec(DataSpec):
    """`task.data` of an extraction task: where each item's target record is."""

    target_column: str | None = Field(
        None,
        description="Extraction: column holding each item's target record as a JSON object (or use `task.fields`).",
    )


class GenerationDataSpec(DataSpec):
    """`task.data` of a generation task: the reference outputs, and out-of-scope items."""

    reference_column: str | None = Field(
        None, description="Generation: column holding each item's reference output (e.g. the reply an agent wrote)."
    )
    out_of_scope_path: Path | None = Field(None, description=OUT_OF_SCOPE_PATH)


DATA_CLASSES: dict[str, type[DataSpec]] = {
    "classification": ClassificationDataSpec,
    "extraction": ExtractionDataSpec,
    "generation": GenerationDataSpec,
}
# Keys only some task types read.
TYPE_DATA_KEYS = tuple(
    dict.fromkeys(
        key for kind in DATA_CLASSES.values() for key in kind.model_fields if key not in DataSpec.model_fields
    )
)


def data_class(keys: Any) -> type[DataSpec]:
    """The data class a bare `DataSpec(...)` builds: the type whose own key is set, else classification."""
    keys = keys if isinstance(keys, dict) else {}
    if keys.get("target_column") is not None:
        return ExtractionDataSpec
    if keys.get("reference_column") is not None:
        return GenerationDataSpec
    return ClassificationDataSpec


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
