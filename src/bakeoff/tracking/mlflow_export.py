"""Export a stored bakeoff run to MLflow: one parent run, one child run per finished or failed trial.

Teams keep experiments in MLflow; a bakeoff run lands there beside their other fine-tunes. What
lands where is `tracking/flatten.py`'s; this module talks to the tracking store.

- Idempotent: the parent is found again by the tags `bakeoff.run_fingerprint` + `bakeoff.run_created`
  (the store's fingerprint and creation time: one run folder, wherever it is moved), each child by
  `bakeoff.trial_id`. Re-exporting updates tags, logs only metrics whose value changed (so histories
  do not grow on every export), adds missing params (MLflow refuses to change one) and replaces artifacts.
- Reads the store only (report.build.read_results: the stored analysis): the run folder is never
  written, also when the export fails. Files for the parent's artifacts are staged in a temporary folder.
- mlflow is imported here only, on use. The default store is `sqlite:///mlflow.db` in the working folder,
  the embedded store MLflow 3 recommends (`mlflow ui` opens it as it is), with artifacts in `mlartifacts/`
  beside it. Local `file:` stores still work when asked for by path: MLflow 3 refuses them unless
  MLFLOW_ALLOW_FILE_STORE=true, which we set for file URIs. Database URIs need the full `mlflow` package
  (SQLAlchemy); mlflow-skinny alone reaches only file stores and tracking servers.
- MLflow's HTTP client retries for minutes by default; the reachability probe runs with no retries
  and a short timeout, so a wrong URI is one clear error in seconds.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from bakeoff.errors import BakeoffError
from bakeoff.results import RunResults
from bakeoff.run_folder import RunFolder
from bakeoff.tracking import flatten

# MLflow 3 keeps the `./mlruns` file store in maintenance mode (its own client refuses to open one unless
# MLFLOW_ALLOW_FILE_STORE=true); the embedded store it recommends is SQLite, opened by `mlflow ui` from the same
# folder. File stores still work when asked for (a path or file: URI).
DEFAULT_URI = "sqlite:///mlflow.db"
ARTIFACTS_FOLDER = "mlartifacts"  # beside a SQLite store: where `mlflow server` keeps them by default
PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
EXPORT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}  # unless the user set them
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


@dataclass
class ExportSummary:
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    child_run_ids: dict[str, str] = field(default_factory=dict)  # trial_id -> MLflow run id
    created: int = 0  # MLflow runs created by this export (0 on a re-export)
    skipped: list[str] = field(default_factory=list)  # trials still running (not exported)


def resolve_uri(uri: str | None) -> str:
    """--tracking-uri / tracking.mlflow.uri, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working
    folder; local paths become file: URIs, and a relative SQLite path an absolute one (the same store whichever
    folder a later command runs in)."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    scheme = urlparse(uri).scheme
    if scheme in ("", "file") or len(scheme) == 1:  # a path (a one-letter scheme is a Windows drive)
        path = Path(urlparse(uri).path if scheme == "file" else uri).expanduser().resolve()
        return path.as_uri()
    database = sqlite_path(uri)
    if database is not None:
        return "sqlite:///" + str(database.expanduser().resolve())
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The file of a `sqlite:///PATH` URI (relative, or absolute with a fourth slash), or None."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri[len(prefix) :] in ("", ":memory:"):
        return None
    return Path(uri[len(prefix) :])


@contextlib.contextmanager
def _env(values: dict[str, str], override: bool):
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if override or saved[key] is None:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _reason(err: Exception) -> str:
    """The useful part of an MLflow / requests error: `[Errno 111] Connection refused`, `HTTP 404`, or its first
    line."""
    text = str(err)
    errno_text = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if errno_text:
        return errno_text.group(0).strip()
    status = re.search(r"error code (\d{3})", text)
    if status:
        return f"HTTP {status.group(1)}: is this an MLflow tracking server?"
    return (text.splitlines() or [type(err).__name__])[0][:200]


def connect(uri: str | None):
    """An MlflowClient for `uri`, checked reachable; BakeoffError (one line) if the extra is missing or the URI is not
    usable."""
    uri = resolve_uri(uri)
    scheme = urlparse(uri).scheme.split("+")[0]
    if importlib.util.find_spec("mlflow") is None:
        raise BakeoffError("MLflow export needs the `mlflow` extra: pip install 'bakeoff[mlflow]' (or mlflow)")
    if scheme in DATABASE_SCHEMES and importlib.util.find_spec("sqlalchemy") is None:
        raise BakeoffError(
            f"tracking URI {uri}: database stores (the default, sqlite:///mlflow.db) need the full `mlflow` "
            "package: pip install 'bakeoff[mlflow]'; mlflow-skinny alone writes to a folder (file:/path) or a "
            "tracking server (http://host:5000)"
        )
    if scheme == "file":
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # a file store the user asked for by path
    database = sqlite_path(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    from mlflow.tracking import MlflowClient

    with _env(PROBE_ENV, override=True):
        try:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri if scheme in ("file", "http", "https") else None)
            client.search_experiments(max_results=1)
        except Exception as err:  # noqa: BLE001 (MlflowException, requests' errors, OSError: all mean "not usable")
            raise BakeoffError(
                f"cannot use the MLflow tracking URI {uri} ({_reason(err)}); start the server or fix "
                "--tracking-uri / `tracking.mlflow.uri`"
            ) from None
    return client


def _experiment_id(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        database = sqlite_path(client.tracking_uri)
        # Beside the database, as `mlflow server` does: not ./mlruns under whichever folder this command runs in.
        location = (database.parent / ARTIFACTS_FOLDER).as_uri() if database is not None else None
        return client.create_experiment(name, artifact_location=location)
    if experiment.lifecycle_stage == "deleted":
        raise BakeoffError(
            f"MLflow experiment `{name}` is deleted; restore it in MLflow, or pass --experiment with another name"
        )
    return experiment.experiment_id


def _existing_runs(client, experiment_id: str, identity: dict[str, str]) -> list:
    query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in identity.items())
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=query, max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _sync(
    client,
    run,
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str],
    series: dict[str, list[float]] | None = None,
) -> None:
    """Bring one MLflow run to these values, logging only what is new or changed."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    have_params, have_metrics, have_tags = run.data.params, run.data.metrics, run.data.tags
    new_params = [Param(k, v) for k, v in params.items() if k not in have_params]
    new_tags = [RunTag(k, v) for k, v in tags.items() if have_tags.get(k) != v]
    new_metrics = [Metric(k, v, now, 0) for k, v in metrics.items() if not flatten.same_value(have_metrics.get(k), v)]
    for key, values in (series or {}).items():
        if values and not flatten.same_value(have_metrics.get(key), float(values[-1])):
            new_metrics += [Metric(key, float(v), now, step) for step, v in enumerate(values, start=1)]
    run_id = run.info.run_id
    for start in range(0, len(new_params), 100):
        client.log_batch(run_id, params=new_params[start : start + 100])
    for start in range(0, len(new_tags), 100):
        client.log_batch(run_id, tags=new_tags[start : start + 100])
    for start in range(0, len(new_metrics), 1000):
        client.log_batch(run_id, metrics=new_metrics[start : start + 1000])


def _stage_parent_files(results: RunResults, run_dir: Path, folder: Path) -> None:
    """Copies of what the parent run carries, in a temporary folder (the run folder is only read)."""
    (folder / "spec.json").write_text(json.dumps(results.run.spec, indent=1))
    (folder / "versions.json").write_text(
        json.dumps(results.run.versions | {"python": results.run.python, "git_sha": results.run.git_sha}, indent=1)
    )
    for path in RunFolder(run_dir).outputs:  # summary.md, results.json, report.html
        if path.is_file():
            shutil.copy2(path, folder / path.name)


def export_results(
    client, results: RunResults, run_dir: Path, experiment: str | None = None, weights: bool = False, final: bool = True
) -> ExportSummary:
    """Export typed results (read from `run_dir`'s store) through a connected client.

    `final=False` (logging while a run goes) leaves the parent RUNNING and skips the report files,
    which do not exist yet."""
    from mlflow.entities import RunStatus

    meta = results.run
    if not meta.fingerprint or not meta.created:
        raise BakeoffError(
            f"{run_dir}: the store has no fingerprint or creation time; re-run `bakeoff run` on its config first"
        )
    name = experiment or results.name or run_dir.name
    experiment_id = _experiment_id(client, name)
    identity = {"bakeoff.run_fingerprint": meta.fingerprint, "bakeoff.run_created": meta.created}
    existing = _existing_runs(client, experiment_id, identity)
    parents = [r for r in existing if r.data.tags.get("bakeoff.kind") == "run"]
    children = {r.data.tags.get("bakeoff.trial_id"): r for r in existing if r.data.tags.get("bakeoff.kind") == "trial"}
    summary = ExportSummary(client.tracking_uri, experiment_id, "")

    if parents:
        parent = parents[0]
    else:
        parent = client.create_run(experiment_id, run_name=results.name, tags=identity | {"bakeoff.kind": "run"})
        summary.created += 1
    summary.parent_run_id = parent.info.run_id
    parent_tags = {"bakeoff.state": "finished" if final else "running"} | (
        flatten.recommendation_tags(results) if final else {}
    )
    _sync(client, parent, flatten.run_params(results), flatten.run_metrics(results), parent_tags)

    spec = meta.spec
    for trial in results.trials:
        if trial.status == "running":
            summary.skipped.append(trial.trial_id)
            continue
        child = children.get(trial.trial_id)
        if child is None:
            tags = identity | {
                "bakeoff.kind": "trial",
                "bakeoff.trial_id": trial.trial_id,
                "mlflow.parentRunId": parent.info.run_id,
            }
            child = client.create_run(experiment_id, run_name=trial.trial_id, tags=tags)
            summary.created += 1
        _sync(
            client,
            child,
            flatten.trial_params(trial, spec),
            flatten.trial_metrics(trial),
            flatten.trial_tags(trial),
            flatten.trial_series(trial),
        )
        # The trained weights: a LoRA/QLoRA adapter folder, or a full fine-tune's whole model.
        for saved in RunFolder(run_dir).trial(trial.trial_id).weight_folders if weights and trial.done else ():
            if saved.is_dir():
                client.log_artifacts(child.info.run_id, str(saved), saved.name)
        status = RunStatus.FINISHED if trial.done else RunStatus.FAILED
        if child.info.status != RunStatus.to_string(status):
            client.set_terminated(child.info.run_id, RunStatus.to_string(status))
        summary.child_run_ids[trial.trial_id] = child.info.run_id

    if final:
        with tempfile.TemporaryDirectory(prefix="bakeoff-mlflow-") as staging:
            _stage_parent_files(results, run_dir, Path(staging))
            client.log_artifacts(parent.info.run_id, staging)
        if parent.info.status != "FINISHED":
            client.set_terminated(parent.info.run_id, "FINISHED")
    return summary


def export_run(
    run_dir: Path,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    weights: bool = False,
    final: bool = True,
    client=None,
) -> ExportSummary:
    """Export the run stored in `run_dir` (results.sqlite) to MLflow; see the module docstring."""
    from bakeoff.report.build import read_results

    run_dir = Path(run_dir)
    # The run's stored analysis and recommendation, as the report and `load_run` read them. Raises BakeoffError
    # for a folder without a store, before any MLflow import.
    results = read_results(run_dir, decide=final)
    client = client or connect(tracking_uri)
    with _env(EXPORT_ENV, override=False):
        try:
            summary = export_results(client, results, run_dir, experiment, weights, final)
        except BakeoffError:
            raise
        except Exception as err:
            from mlflow.exceptions import MlflowException

            if not isinstance(err, (MlflowException, OSError)):
                raise
            raise BakeoffError(
                f"MLflow export to {client.tracking_uri} failed ({_reason(err)}); the run folder is "
                "unchanged, "
                "run the same command again"
            ) from None
    return summary
