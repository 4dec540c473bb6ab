"""The whole run spec (`RunSpec`), the sections that change no result (output, runner, tracking), and the
rules that relate one section to another."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bakeoff.baselines.registry import baseline_names, lookup
from bakeoff.config.base import Spec, safe_folder_name
from bakeoff.config.candidates import CandidateSpec, GridSpec, TrainingSpec
from bakeoff.config.decision import DecisionSpec, EfficiencySpec
from bakeoff.config.evaluation import EvaluationSpec
from bakeoff.config.task import AnyTaskSpec, with_every_type_key


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
    task: AnyTaskSpec
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

    @model_validator(mode="after")
    def _baselines_serve_the_task(self) -> RunSpec:
        """Each baseline candidate serves `task.type` (the registry says which types each one serves)."""
        kind = self.task.type
        for candidate in self.candidates:
            entry = lookup(candidate.model) if candidate.is_baseline else None
            if entry is not None and not entry.serves(kind):
                serves = " or ".join(entry.task_types)
                article = "an" if serves[0] in "aeiou" else "a"
                fitting = " or ".join(baseline_names(kind)) or "an LLM candidate (no baseline serves it)"
                raise ValueError(
                    f"candidate `{candidate.name}`: `{candidate.model}` is {article} {serves} baseline and task.type "
                    f"is `{kind}`; use {fitting}"
                )
        return self

    @model_validator(mode="after")
    def _costs_for_classification(self) -> RunSpec:
        """`decision.costs` is read only when the report is built, after every trial: refused up front for
        another task type (its labels are checked against the data by preflight)."""
        if self.decision.costs is not None and self.task.type != "classification":
            raise ValueError(
                f"decision.costs: costing errors applies to classification runs; task.type is `{self.task.type}` "
                "(per wrong field or failed reply: not yet). Remove `decision.costs`"
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
        payload["task"] = with_every_type_key(payload["task"])  # as hashed before each type had its own keys
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
