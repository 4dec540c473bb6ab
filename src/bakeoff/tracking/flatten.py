"""A stored run as MLflow's three kinds of values: params (fixed strings), metrics (numbers), tags (strings).

Pure functions over typed results (`bakeoff.results`), no MLflow import, so what lands where is tested
without a tracking store. Naming:
- metrics keep the store's path, dot-joined: `test.accuracy`, `robustness.perturbations.typos.accuracy`,
  `test.per_class.<label>.f1`; an interval adds `<key>.ci_low` and `<key>.ci_high` (the store's
  `accuracy_ci: [low, high]` and `Stat` alike); booleans are 0/1; timings, training and efficiency
  estimates get a `timings.` / `training.` / `efficiency.` prefix;
- params are what defines a trial or run and never changes for it (MLflow refuses to change a param):
  candidate, method, train size, seed, hyperparameters, the spec's result-determining sections;
- tags carry what may change on re-export: status, the recommendation.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

from bakeoff.results import RunResults, TrialRecord

MAX_KEY = 250  # MLflow's limit on metric, param and tag keys
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\- ]")  # MLflow keys: no `/` either (the file store makes folders of it)

# The spec sections that change results (RunSpec.fingerprint's payload): fixed for a run, so params.
SPEC_PARAM_SECTIONS = ("task", "training", "grid", "evaluation")
TRAINED_METHODS = ("lora", "qlora", "full")


def safe_key(key: str) -> str:
    """`key` in the characters MLflow takes. A dotted part that had to change keeps a short hash of what
    it was, so two labels or fields that differ only in such characters (`名前` and `金額`, `a/b` and
    `a_b`) stay two keys instead of one overwriting the other."""
    return ".".join(_safe_part(part) for part in key.split(".")).strip()[:MAX_KEY]


def _safe_part(part: str) -> str:
    cleaned = _UNSAFE.sub("_", part)
    if cleaned == part:
        return part
    return f"{cleaned}-{hashlib.sha1(part.encode()).hexdigest()[:6]}"


def _is_stat(value: dict) -> bool:
    return set(value) == {"value", "ci_low", "ci_high"}


def scalar_metrics(data, prefix: str = "") -> dict[str, float]:
    """Every number under `data`, keyed by its dotted path; intervals as `.ci_low` / `.ci_high`; lists skipped."""
    out: dict[str, float] = {}
    if isinstance(data, dict):
        if _is_stat(data):
            for key, suffix in (("value", ""), ("ci_low", ".ci_low"), ("ci_high", ".ci_high")):
                if data[key] is not None:
                    out[safe_key(prefix + suffix)] = float(data[key])
            return out
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (list, tuple)) and str(key).endswith("_ci") and len(value) == 2:
                base = path.removesuffix("_ci")
                out |= {safe_key(f"{base}.ci_low"): float(value[0]), safe_key(f"{base}.ci_high"): float(value[1])}
            else:
                out |= scalar_metrics(value, path)
    elif isinstance(data, (bool, int, float)):  # booleans as 0/1
        out[safe_key(prefix)] = float(data)
    return out


def _flat_params(data, prefix: str) -> dict[str, str]:
    """Nested settings as dotted string params; lists as JSON."""
    out: dict[str, str] = {}
    for key, value in (data or {}).items():
        path = f"{prefix}.{key}"
        if isinstance(value, dict) and value:
            out |= _flat_params(value, path)
        else:
            text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
            out[safe_key(path)] = text[:MAX_PARAM_VALUE]
    return out


def run_params(results: RunResults) -> dict[str, str]:
    """The bakeoff run's identity and result-determining settings."""
    spec = results.run.spec or {}
    params = {
        "name": str(spec.get("name")),
        "fingerprint": str(results.run.fingerprint),
        "device": str(results.run.device),
        "git_sha": str(results.run.git_sha),
        "python": str(results.run.python),
        "candidates": json.dumps([c.get("name") for c in spec.get("candidates", [])])[:MAX_PARAM_VALUE],
    }
    params |= {safe_key(f"version.{k}"): v for k, v in results.run.versions.items()}
    for section in SPEC_PARAM_SECTIONS:
        params |= _flat_params(spec.get(section), section)
    return params


def recommendation_tags(results: RunResults) -> dict[str, str]:
    """The recommendation as tags (`mlflow.note.content` is the run description MLflow's UI shows)."""
    rec = results.recommendation
    if rec is None:
        return {"bakeoff.choice": "", "bakeoff.reason": "no finished trials"}
    tags = {
        "bakeoff.choice": rec.choice or "",
        "bakeoff.reason": rec.reason,
        "bakeoff.no_llm_needed": str(rec.no_llm_needed).lower(),
        "bakeoff.tie": ", ".join(rec.tie or []),
        "bakeoff.pareto": ", ".join(rec.pareto),
        "bakeoff.ranking": ", ".join(f"{name} {score:.4f}" for name, score in rec.ranking),
        "bakeoff.sensitivity": "; ".join(rec.sensitivity),
        "bakeoff.answers": json.dumps(rec.answers, sort_keys=True),
        "bakeoff.rationale": rec.rationale,
        "mlflow.note.content": rec.rationale,
    }
    tags |= {safe_key(f"bakeoff.excluded.{name}"): reason for name, reason in rec.excluded.items()}
    return {key: value[:MAX_TAG_VALUE] for key, value in tags.items()}


def run_metrics(results: RunResults) -> dict[str, float]:
    statuses = [t.status for t in results.trials]
    return {
        "trials.done": float(statuses.count("done")),
        "trials.failed": float(statuses.count("failed")),
        "trials.total": float(len(statuses)),
    }


def trial_params(trial: TrialRecord, spec: dict | None) -> dict[str, str]:
    """What defines the trial: identity, and for trained LLMs the hyperparameters actually used."""
    params = {
        "trial_id": trial.trial_id,
        "candidate": trial.candidate,
        "model_name": str(trial.model_name),
        "method": trial.method,
        "train_size": str(trial.train_size),
        "seed": str(trial.seed),
    }
    if trial.method in TRAINED_METHODS:
        params |= _flat_params((spec or {}).get("training"), "training")
        if trial.training is not None and trial.training.learning_rate is not None:
            params["training.learning_rate"] = str(
                trial.training.learning_rate
            )  # resolved: the spec may leave it to the default
    model = trial.model or {}
    params |= {
        safe_key(f"model.{k}"): str(v)[:MAX_PARAM_VALUE] for k, v in model.items() if not isinstance(v, (dict, list))
    }
    architecture = model.get("architecture") or {}
    params |= {
        safe_key(f"architecture.{k}"): str(v) for k, v in architecture.items() if not isinstance(v, (dict, list))
    }
    return params


def trial_metrics(trial: TrialRecord) -> dict[str, float]:
    """Every scalar the trial stored: metrics (with interval bounds), timings, training summary, efficiency
    estimates."""
    out: dict[str, float] = {}
    if trial.metrics is not None:
        out |= scalar_metrics(trial.metrics.model_dump(exclude_none=True))
    if trial.timings is not None:
        out |= scalar_metrics(trial.timings.model_dump(exclude_none=True), "timings")
    if trial.training is not None:
        out |= scalar_metrics(trial.training.model_dump(exclude_none=True), "training")
    if trial.efficiency is not None:
        out |= scalar_metrics(trial.efficiency, "efficiency")
    return {key: value for key, value in out.items() if key}


def trial_series(trial: TrialRecord) -> dict[str, list[float]]:
    """Per-epoch loss curves, logged as MLflow metric histories (step = epoch, from 1)."""
    if trial.training is None:
        return {}
    return {
        "training.train_loss": trial.training.train_loss_per_epoch,
        "training.validation_loss": trial.training.validation_loss_per_epoch,
    }


def trial_tags(trial: TrialRecord) -> dict[str, str]:
    tags = {"bakeoff.status": trial.status, "bakeoff.attempts": str(trial.attempts)}
    if trial.error:
        tags["bakeoff.error"] = trial.error[:MAX_TAG_VALUE]
    return tags


def same_value(a: float | None, b: float) -> bool:
    return a is not None and (a == b or (math.isnan(a) and math.isnan(b)))
