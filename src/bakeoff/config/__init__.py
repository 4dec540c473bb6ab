"""The run spec: one frozen, typed tree that fully describes a bakeoff run.

Users write it as YAML; `bakeoff validate` resolves it without loading a model. Field descriptions are
the documentation (they show in `bakeoff validate --explain` and in errors), so keep them precise. Rules
that need only the config are validators of these classes; `runners/preflight.py` keeps the checks that
read files, models or the machine.

- `base`: what every section shares; `task_data` and `task`: the task, one class per task type;
  `candidates`, `evaluation`, `decision`, `run`: the other sections and `RunSpec`, the whole;
- `yaml_keys`, `overrides`, `loading`: from a YAML file (and dotted overrides) to a validated spec;
  `explaining`: the resolved spec with every setting's description (`validate --explain`).
"""

from bakeoff.config.base import MAX_NAME_BYTES, Spec, safe_folder_name
from bakeoff.config.candidates import CandidateSpec, GridSpec, LoraSpec, ResourcesSpec, TrainingSpec
from bakeoff.config.decision import CostsSpec, DecisionSpec, EfficiencySpec
from bakeoff.config.evaluation import DEFAULT_PERTURBATIONS, EvaluationSpec, JudgeSpec, PerturbationSpec
from bakeoff.config.explaining import explain
from bakeoff.config.loading import explain_error, load_spec, spec_from_dict
from bakeoff.config.overrides import apply_overrides
from bakeoff.config.run import MlflowTrackingSpec, OutputSpec, RunnerSpec, RunSpec, TrackingSpec
from bakeoff.config.task import (
    BUILTIN_TYPE,
    TASK_CLASSES,
    ClassificationTaskSpec,
    DecodingSpec,
    ExtractionTaskSpec,
    GenerationTaskSpec,
    TaskSpec,
)
from bakeoff.config.task_data import (
    ClassificationDataSpec,
    DataSpec,
    ExtractionDataSpec,
    GenerationDataSpec,
    SplitSpec,
)
from bakeoff.config.yaml_keys import DuplicateKeyError, yaml_load

__all__ = [
    "BUILTIN_TYPE",
    "DEFAULT_PERTURBATIONS",
    "MAX_NAME_BYTES",
    "TASK_CLASSES",
    "CandidateSpec",
    "ClassificationDataSpec",
    "ClassificationTaskSpec",
    "CostsSpec",
    "DataSpec",
    "DecisionSpec",
    "DecodingSpec",
    "DuplicateKeyError",
    "EfficiencySpec",
    "EvaluationSpec",
    "ExtractionDataSpec",
    "ExtractionTaskSpec",
    "GenerationDataSpec",
    "GenerationTaskSpec",
    "GridSpec",
    "JudgeSpec",
    "LoraSpec",
    "MlflowTrackingSpec",
    "OutputSpec",
    "PerturbationSpec",
    "ResourcesSpec",
    "RunSpec",
    "RunnerSpec",
    "Spec",
    "SplitSpec",
    "TaskSpec",
    "TrackingSpec",
    "TrainingSpec",
    "apply_overrides",
    "explain",
    "explain_error",
    "load_spec",
    "safe_folder_name",
    "spec_from_dict",
    "yaml_load",
]
