"""`task`: what the models must produce, and from which data. One class per task type, each with only its own
keys (`validate --explain` and the configuration reference show a type only what it reads); `task.type`
picks the class. The rules that need nothing but the config (a key of another type, a built-in task of
another type, fields and columns that contradict each other) are validators here; preflight keeps the
checks that read files, models or the machine."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from bakeoff.config.base import Spec
from bakeoff.config.task_data import (
    ClassificationDataSpec,
    DataSpec,
    ExtractionDataSpec,
    GenerationDataSpec,
    SplitSpec,
)


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


SAMPLING_KEYS = ("temperature", "top_p", "seed")  # DecodingSpec settings only sampled decoding reads
TaskType = Literal["classification", "extraction", "generation"]
BUILTIN_TYPE = {
    "support-tickets": "classification",
    "support-tickets-extraction": "extraction",
    "support-tickets-replies": "generation",
}
TYPE_DESCRIPTION = (
    "What the model must produce: one label (classification), "
    "a JSON record of `task.fields` (extraction) or free text (generation)."
)
DECODING_DESCRIPTION = "Extraction and generation: how outputs are decoded."
# Keys only some task types have (`data.` under task.data), in the order a refusal names the first one set.
TYPE_KEYS = (
    "fields",
    "data.target_column",
    "data.reference_column",
    "fallback_reference",
    "data.out_of_scope_path",
    "data.out_of_scope_labels",
    "data.labels",
    "data.max_per_label",
    "decoding",
)


DataClass = type[DataSpec]  # (inside TaskSpec, `type` is the field)


class TaskSpec(Spec):
    """Keys every task type has; `task.type` adds that type's own keys (the sections marked with a type).

    One subclass per type (`ClassificationTaskSpec`, `ExtractionTaskSpec`, `GenerationTaskSpec`):
    `TaskSpec(**keys)` and `TaskSpec.model_validate(keys)` build the class of `keys["type"]`, as `Path(...)`
    builds a PosixPath."""

    type: TaskType = Field("classification", description=TYPE_DESCRIPTION)
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

    data_spec: ClassVar[DataClass] = DataSpec  # each type's own `task.data` class

    def __new__(cls, *args: Any, **keys: Any) -> TaskSpec:
        return super().__new__(TASK_CLASSES[task_type(keys)] if cls is TaskSpec else cls)

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> TaskSpec:
        if cls is TaskSpec:
            return TASK_CLASSES[task_type(obj)].model_validate(obj, **options)
        return super().model_validate(obj, **options)

    @model_validator(mode="before")
    @classmethod
    def _fits_its_type(cls, raw: Any) -> Any:
        """Refuse a built-in task of another type, and another type's keys when set (a spec written out whole
        holds them unset: those are dropped)."""
        kind = raw.get("type", "classification") if isinstance(raw, dict) else None
        if not isinstance(kind, str) or kind not in TASK_CLASSES:
            return raw  # not a mapping, or an unknown type: the field's own error says so
        if TASK_CLASSES[kind] is not cls:
            raise ValueError(f"task.type `{kind}` is built by {TASK_CLASSES[kind].__name__}, not {cls.__name__}")
        builtin = raw.get("builtin")
        if isinstance(builtin, str) and BUILTIN_TYPE.get(builtin, kind) != kind:
            wanted = next(name for name, k in BUILTIN_TYPE.items() if k == kind)
            raise ValueError(
                f"task.builtin `{builtin}` is a {BUILTIN_TYPE[builtin]} task but task.type is `{kind}`; "
                f"use `builtin: {wanted}` or `type: {BUILTIN_TYPE[builtin]}`"
            )
        data = _keys_of(raw.get("data"))
        stray = [key for key in TYPE_KEYS if not _own_key(cls, key) and _is_set(key, raw, data)]
        if stray:
            raise ValueError(_stray_message(f"task.{stray[0]}", kind))
        own = {key: value for key, value in raw.items() if key not in TYPE_KEYS or _own_key(cls, key)}
        if isinstance(raw.get("data"), DataSpec) and not isinstance(raw["data"], cls.data_spec):
            own["data"] = data  # a DataSpec built alone, read again as this type's
        return own

    @model_validator(mode="after")
    def _one_source(self) -> TaskSpec:
        if (self.builtin is None) == (self.data is None):
            raise ValueError("give exactly one of `task.builtin` (e.g. support-tickets) or `task.data` (your file)")
        return self


def _keys_of(data: Any) -> dict:
    """`task.data` as given: a mapping, or a DataSpec built alone (its keys, unset ones left out)."""
    if isinstance(data, DataSpec):
        return data.model_dump(exclude_defaults=True)
    return data if isinstance(data, dict) else {}


def _own_key(cls: type[TaskSpec], key: str) -> bool:
    if key.startswith("data."):
        return key.removeprefix("data.") in cls.data_spec.model_fields
    return key in cls.model_fields


def _is_set(key: str, task: dict, data: dict) -> bool:
    value = data.get(key.removeprefix("data.")) if key.startswith("data.") else task.get(key)
    if key == "decoding" and value is not None:
        try:
            return DecodingSpec.model_validate(value) != DecodingSpec()  # written out whole: all defaults
        except ValueError:
            return True
    return value is not None


def _stray_message(key: str, kind: str) -> str:
    article = "an" if kind == "extraction" else "a"
    if key.startswith("task.data.out_of_scope"):
        # Silently ignored before: an extraction run has no out-of-scope evaluation (a record is never "declined").
        scored = "classification" if key.endswith("labels") else "classification and generation"
        return (
            f"`{key}` has no use in {article} {kind} task: out-of-scope items are scored for {scored} only; remove it"
        )
    if key in ("task.data.labels", "task.data.max_per_label"):
        # Silently ignored before: extraction and generation read every row, labels only stratify their splits.
        return (
            f"`{key}` has no use in {article} {kind} task: every row is read (a label column only balances the "
            "splits), nothing is filtered or capped by label; remove it"
        )
    owners = ", ".join(t for t, c in TASK_CLASSES.items() if _own_key(c, key.removeprefix("task.")))
    return f"`{key}` is for another task type ({owners}); task.type is `{kind}`: remove it or set the type"


def check_greedy_decoding(decoding: DecodingSpec) -> None:
    """Sampling settings with greedy decoding were ignored without a word (a `temperature: 0.2` meant to
    matter did nothing). Values other than the defaults count, not keys written: a resolved spec written
    out whole (`validate --explain`, a stored spec) holds every default and must still validate."""
    fields = DecodingSpec.model_fields
    given = [key for key in SAMPLING_KEYS if getattr(decoding, key) != fields[key].default]
    if decoding.strategy == "greedy" and given:
        raise ValueError(
            f"task.decoding.{given[0]}: {getattr(decoding, given[0])} is for sampled decoding, but "
            f"task.decoding.strategy is greedy, which ignores it; set `strategy: sample` or remove `{given[0]}`"
        )


class ClassificationTaskSpec(TaskSpec):
    """A classification task: one label per item, from `task.data`'s label column (or the built-in categories)."""

    data: ClassificationDataSpec | None = Field(None, description="Your own labeled data.")
    data_spec = ClassificationDataSpec


class ExtractionTaskSpec(TaskSpec):
    """An extraction task: a JSON record of `task.fields` per item."""

    type: Literal["extraction"] = Field("extraction", description=TYPE_DESCRIPTION)
    data: ExtractionDataSpec | None = Field(None, description="Your own labeled data.")
    fields: dict[str, str] | list[str] | None = Field(
        None,
        description="Extraction: the record's fields, `{field: column}` to read each from a column (missing values "
        "null), or a list of field names with `task.data.target_column`. Built-in: default its five fields.",
    )
    decoding: DecodingSpec = Field(default_factory=DecodingSpec, description=DECODING_DESCRIPTION)
    data_spec = ExtractionDataSpec

    @field_validator("fields")
    @classmethod
    def _distinct_fields(cls, fields):
        """A field named twice makes a record no JSON object can be (duplicate keys) and no constraint allows."""
        if isinstance(fields, list):
            twice = sorted({f for f in fields if fields.count(f) > 1})
            if twice:
                raise ValueError(f"{', '.join(map(repr, twice))} named more than once; name each field once")
        return fields

    @model_validator(mode="after")
    def _fields_and_decoding_agree(self) -> ExtractionTaskSpec:
        check_greedy_decoding(self.decoding)
        self._check_fields()
        if self.decoding.strategy == "sample" and self.decoding.constrained:
            raise ValueError(
                "task.decoding: constrained extraction decodes greedily; set `strategy: greedy` "
                "(or `constrained: false` to sample unconstrained)"
            )
        return self

    def _check_fields(self) -> None:
        """Where each record comes from is said once, and never from the input text. The built-in task's own
        field names are checked by preflight, against its generator."""
        fields, data = self.fields, self.data
        if fields is not None and not fields:
            raise ValueError("task.fields is empty; name at least one field")
        if data is None:
            if isinstance(fields, dict):
                raise ValueError("task.fields: the built-in task has no columns; give a list of its fields")
            return
        if data.target_column is None and not isinstance(fields, dict):
            raise ValueError(
                "task.type extraction needs `task.data.target_column` (JSON records) or `task.fields: {field: column}`"
            )
        if data.target_column is not None and fields is None:
            raise ValueError("task.data.target_column needs `task.fields`: the list of the record's fields, in order")
        if data.target_column is not None and isinstance(fields, dict):
            raise ValueError(
                "give either `task.data.target_column` with a list of `task.fields`, or `task.fields: {field: column}`"
            )
        if data.target_column is not None and data.target_column == data.text_column:
            raise ValueError(
                f"task.data.target_column and task.data.text_column are both `{data.text_column}`: the records "
                "would be the input; set `target_column` to the column of JSON records"
            )
        in_text = [
            field
            for field, column in (fields if isinstance(fields, dict) else {}).items()
            if column == data.text_column
        ]
        if in_text:
            raise ValueError(
                f"task.fields: `{in_text[0]}` maps to `{data.text_column}`, the input text column "
                "(task.data.text_column): the answer would be the whole input; map it to the column that holds "
                "the field's value"
            )


class GenerationTaskSpec(TaskSpec):
    """A generation task: free text per item (e.g. a first reply), scored against reference outputs."""

    type: Literal["generation"] = Field("generation", description=TYPE_DESCRIPTION)
    data: GenerationDataSpec | None = Field(None, description="Your own labeled data.")
    fallback_reference: str | None = Field(
        None,
        description="Generation: the reply expected for out-of-scope items; their outputs are scored against it. "
        "Without it a fallback-detection rate is reported instead.",
    )
    decoding: DecodingSpec = Field(default_factory=DecodingSpec, description=DECODING_DESCRIPTION)
    data_spec = GenerationDataSpec

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
    def _references_and_decoding_agree(self) -> GenerationTaskSpec:
        check_greedy_decoding(self.decoding)
        data = self.data
        if data is None:
            return self  # the built-in replies have their references and out-of-scope items
        if data.reference_column is None:
            raise ValueError(
                "task.type generation needs `task.data.reference_column` (the column of reference outputs)"
            )
        if self.fallback_reference and data.out_of_scope_path is None:
            # Silently unused before: the fallback is scored on out-of-scope items, and user data has none without it.
            raise ValueError(
                "task.fallback_reference is scored on out-of-scope items, and there are none: set "
                "`task.data.out_of_scope_path` to a file of them, or remove `fallback_reference`"
            )
        if data.reference_column == data.text_column:
            raise ValueError(
                f"task.data.reference_column and task.data.text_column are both `{data.text_column}`: the model "
                "would be asked to copy its input; set `reference_column` to the column of reference outputs"
            )
        return self


TASK_CLASSES: dict[str, type[TaskSpec]] = {
    "classification": ClassificationTaskSpec,
    "extraction": ExtractionTaskSpec,
    "generation": GenerationTaskSpec,
}


def task_type(task: Any) -> str:
    """The task type a mapping or spec names (classification by default; an unknown type is left to the
    classification class, whose `type` field then refuses it with the three known ones)."""
    kind = task.get("type", "classification") if isinstance(task, dict) else getattr(task, "type", "classification")
    return kind if isinstance(kind, str) and kind in TASK_CLASSES else "classification"


def _tag(task: Any) -> str | None:
    return task_type(task) if isinstance(task, (dict, TaskSpec)) else None  # None: not a task at all


# `RunSpec.task`: the class of the task's type (its tag shows in a pydantic error's location; config error
# messages leave it out).
AnyTaskSpec = Annotated[
    Annotated[ClassificationTaskSpec, Tag("classification")]
    | Annotated[ExtractionTaskSpec, Tag("extraction")]
    | Annotated[GenerationTaskSpec, Tag("generation")],
    Discriminator(
        _tag,
        custom_error_type="task_type",
        custom_error_message="Input should be a valid dictionary or instance of TaskSpec",
    ),
]


def with_every_type_key(task: dict[str, Any]) -> dict[str, Any]:
    """A dumped task (mode json) with every other type's keys at their unset values: the shape of the spec
    before task types had their own classes, which run fingerprints hash (a run folder keeps resuming)."""
    flat = dict(task)
    data = dict(task["data"]) if isinstance(task.get("data"), dict) else None
    for kind in TASK_CLASSES.values():
        for name, field in kind.model_fields.items():
            flat.setdefault(name, _dumped(field.get_default(call_default_factory=True)))
        if data is not None:
            for name, field in kind.data_spec.model_fields.items():
                data.setdefault(name, _dumped(field.get_default(call_default_factory=True)))
    if data is not None:
        flat["data"] = data
    return flat


def _dumped(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, Spec) else value
