"""Everything `bakeoff run` refuses before any trial starts, in one function that `bakeoff validate` calls too.

`validate` is a contract: if it says ok, `run` does not refuse the config minutes later (before this,
8 inputs passed `validate` and failed in `run`, some only after the baselines had trained). So the
checks live here once, cheapest first, and both commands raise the same message. Nothing here loads
model weights: sources are resolved and their config.json and weight files are inspected. Rules that need
only the config are validators of the spec (`bakeoff.config`), which refuse it as it is read, with the same
messages; here are the checks that read files, models, catalogs or the machine, and the runner settings
that `--runner` may still change after the config is read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bakeoff.baselines.registry import baseline_names, similar_baselines
from bakeoff.config import CandidateSpec, RunSpec
from bakeoff.data.splits import nested_subsets
from bakeoff.data.task import TaskData, prepare_task
from bakeoff.efficiency.hardware import gpu
from bakeoff.errors import BakeoffError, ConfigError, ModelError
from bakeoff.evaluation import perturb
from bakeoff.models.load import require_bitsandbytes
from bakeoff.models.sources import ModelSource, resolve_source
from bakeoff.run_folder import OUTPUTS, RunFolder, owns
from bakeoff.tracking.live import check_tracking

PROBE_TEXT = "Probe text 123, from Maria on March 3 for $5."


def preflight(spec: RunSpec, check_data: bool = True, create_run_dir: bool = False) -> TaskData | None:
    """Refuse what would fail later; returns the prepared task (None with check_data=False).

    `create_run_dir`: `run` makes the folder and writes a probe file; `validate` only checks that the
    folder (or its nearest existing parent) is writable, and leaves no trace."""
    check_hardware_names(spec)
    check_builtin_fields(spec)
    check_perturbations(spec)
    for candidate in spec.candidates:
        if not candidate.is_baseline:
            check_not_a_baseline_typo(candidate)
            check_candidate(candidate, spec)
    task = None
    if check_data:
        task = prepare_task(spec.task)
        for seed in spec.grid.seeds:
            nested_subsets(task.train_pool.labels, spec.grid.train_sizes, seed)
        check_costs(spec, task.labels)
    check_run_dir(spec.run_dir, create_run_dir)
    check_tracking(spec)  # MLflow extra installed and tracking URI reachable, when `tracking.mlflow` is set
    return task


def check_costs(spec: RunSpec, labels: list[str] | None) -> None:
    """`decision.costs` is read only when the report is built, after every trial: refuse up front what it
    would refuse then, a matrix label the task does not have (another task type is refused by the config)."""
    costs = spec.decision.costs
    if costs is not None and labels is not None:
        from bakeoff.decision.costs import cost_matrix

        cost_matrix(costs, labels)


def check_hardware_names(spec: RunSpec) -> None:
    for key in spec.efficiency.gpus:
        gpu(key)  # unknown GPU names fail now, with a suggestion
    # Checked here, not in RunnerSpec: a spec stored by an earlier version (`--runner local` kept the config's
    # address) must still load for serve, export and loadtest.
    ray_only = [key for key in ("address", "gpu") if getattr(spec.runner, key) is not None]
    if spec.runner.kind == "local" and ray_only:
        raise ConfigError(
            f"runner.{ray_only[0]} is a setting of the Ray runner, and runner.kind is `local`: set "
            f"`runner.kind: ray` (or `--runner ray`), or remove runner.{ray_only[0]}"
        )
    # The Ray runner reads runner.gpu only once connected to the cluster: refuse a wrong one before that.
    if spec.runner.gpu == "local-cpu":
        raise ConfigError(
            "runner.gpu `local-cpu` is this machine's CPU, not a GPU of the cluster; name the cluster's GPU "
            "(e.g. a10g, h100), or leave it out to read it from the nodes"
        )
    if spec.runner.gpu is not None:
        try:
            gpu(spec.runner.gpu)
        except BakeoffError as err:
            raise ConfigError(f"runner.gpu: {err}") from None
    for key in spec.efficiency.usd_per_hour:
        gpu(key)
        if key not in spec.efficiency.gpus:
            raise ConfigError(
                f"efficiency.usd_per_hour sets a price for `{key}`, which is not in efficiency.gpus "
                f"{spec.efficiency.gpus}: add it there, or the price is never used"
            )


def check_builtin_fields(spec: RunSpec) -> None:
    """`task.fields` of the built-in extraction task are fields its generator plants (every other rule of the
    task's keys is a validator of the config)."""
    task = spec.task
    if task.type != "extraction" or task.data is not None or not isinstance(task.fields, list):
        return
    from bakeoff.data.tickets import RECORD_FIELDS

    unknown = sorted(set(task.fields) - set(RECORD_FIELDS))
    if unknown:
        raise ConfigError(f"task.fields: {unknown} are not fields of the built-in task ({', '.join(RECORD_FIELDS)})")


def check_not_a_baseline_typo(candidate: CandidateSpec) -> None:
    """`model: tfidf-logref` would otherwise be looked up as a Hub id and refused as one: name the baseline meant.
    A local folder or file of that name is a model, not a typo."""
    model = candidate.model
    if "/" in model or Path(model).expanduser().exists():
        return
    close = similar_baselines(model)
    if close:
        raise ConfigError(
            f"candidate `{candidate.name}`: unknown model `{model}`: did you mean the baseline `{close[0]}`? "
            f"(baselines: {', '.join(baseline_names())})"
        )


def check_perturbations(spec: RunSpec) -> None:
    perturb.load_plugins(spec.evaluation.plugins)
    for item in spec.evaluation.resolved_perturbations(spec.task.builtin is not None):
        if item.name != "paraphrase":
            perturb.apply(item.name, dict(item.params), [PROBE_TEXT], seed=0)


def check_candidate(candidate: CandidateSpec, spec: RunSpec | None = None) -> None:
    """The model can be found, and loading it would need neither pickle nor foreign code without opt-in;
    with `spec`, what an extraction or generation task decodes fits the model's context."""
    if candidate.resolved_method == "qlora":
        require_bitsandbytes(candidate.name)  # CPU or CUDA: bitsandbytes 0.50 runs 4-bit layers on both
    source = resolve_source(candidate.model, candidate.gguf_file, candidate.revision)
    if source.kind == "hub" and source.commit_sha is None:
        check_hub_candidate(candidate)
        return
    folder = _local_files(source)
    if folder is None:
        return
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    except (OSError, ValueError) as err:
        raise ModelError(f"candidate `{candidate.name}`: cannot read {config_path} ({err})") from None
    if spec is not None and isinstance(config, dict):
        check_context(candidate, spec, config)
    if isinstance(config, dict) and config.get("auto_map") and not candidate.trust_remote_code:
        raise ModelError(
            f"candidate `{candidate.name}`: {source.description} needs its own code (config.json has "
            "auto_map); "
            "set `trust_remote_code: true` on this candidate if you trust it"
        )
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    safe = any(n.endswith(".safetensors") for n in names)
    pickled = any(n.endswith((".bin", ".pt", ".pth", ".ckpt")) for n in names)
    if pickled and not safe and not candidate.allow_pickle:
        raise ModelError(
            f"candidate `{candidate.name}`: {source.description} has only pickle weights (.bin), which "
            "can run code "
            "when loaded; set `allow_pickle: true` on this candidate if you trust the file, or convert to "
            "safetensors"
        )


CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")


def check_context(candidate: CandidateSpec, spec: RunSpec, config: dict) -> None:
    """A prompt (at most `training.max_prompt_tokens`) plus `max_new_tokens` must fit the positions the model
    has: past them outputs are garbage or the forward pass fails, only after training. Read from config.json
    (a multimodal model's `text_config`), as introspection does, without loading weights; a model whose
    config names no length is not checked."""
    if spec.task.type == "classification":
        return  # labels are scored, nothing is decoded
    nested = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    found = next(  # the text model's own length first, then the top level's (some configs keep it there)
        (
            (key, where[key])
            for where in (nested, config)
            for key in CONTEXT_KEYS
            if isinstance(where.get(key), int) and not isinstance(where.get(key), bool) and where[key] > 0
        ),
        None,
    )
    if found is None:
        return
    key, context = found
    prompt, new = spec.training.max_prompt_tokens, spec.task.decoding.max_new_tokens
    if prompt + new > context:
        room = context - prompt
        fix = (
            f"set task.decoding.max_new_tokens to at most {room}"
            if room >= 1
            else f"lower training.max_prompt_tokens below {context}"
        )
        raise ConfigError(
            f"candidate `{candidate.name}`: task.decoding.max_new_tokens {new} + training.max_prompt_tokens "
            f"{prompt} = {prompt + new} tokens exceed the model's context of {context} ({key} in its config.json); "
            f"{fix}"
        )


def check_hub_candidate(candidate: CandidateSpec) -> None:
    """Online Hub id: reachable, readable with this token, weights loading can use, room in the cache.

    From the file listing and one HEAD request only: no weights are downloaded (`validate` stays fast),
    and no network means one line and exit 2 within seconds (the calls time out after 10 s)."""
    from rich.console import Console

    from bakeoff.models import hub

    who = f"candidate `{candidate.name}`"
    plan = hub.plan_download(
        candidate.model,
        candidate.revision,
        candidate.gguf_file,
        candidate.allow_pickle,
        candidate.trust_remote_code,
        who,
    )
    hub.check_access(plan, who)
    hub.check_disk(plan, who)
    Console(stderr=True).print(
        f"{who}: {candidate.model} at commit {plan.listing.commit_sha[:12]}: {len(plan.files)} files, "
        f"{plan.total_bytes / 1e9:.2f} GB, {plan.missing_bytes / 1e9:.2f} GB not yet in the cache",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _local_files(source: ModelSource) -> Path | None:
    """The folder holding the source's config and weights (None for GGUF: converted on first load)."""
    if source.kind in ("folder", "hub"):  # a cached Hub source's location is its snapshot folder
        return Path(source.location)
    return None


def is_run_folder(folder: Path) -> bool:
    """Empty, or a folder bakeoff made: its results store, its results.json, or only files bakeoff writes (a
    stopped run whose store was moved away, as the damaged-store message advises, or not made yet)."""
    others = [p.name for p in folder.iterdir() if not owns(p.name)]
    if not others or RunFolder(folder).has_store():
        return True
    try:
        results = json.loads(RunFolder(folder).results_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(results, dict) and str(results.get("schema", "")).startswith("bakeoff.results/")


def check_run_dir(run_dir: Path, create: bool) -> None:
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise BakeoffError(f"the run folder {run_dir} is a file; set `output.dir` to a folder")
    if run_dir.is_dir() and not is_run_folder(run_dir):
        found = sorted(p.name for p in run_dir.iterdir() if not owns(p.name))
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise BakeoffError(
            f"the run folder {run_dir} holds files bakeoff did not write ({shown}), and a run writes "
            f"{', '.join(OUTPUTS)} there; set `output.dir` to a new or empty folder, or to a bakeoff run folder"
        )
    if create:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            probe = RunFolder(run_dir).write_probe
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise BakeoffError(
                f"cannot write to the run folder {run_dir} ({err.strerror}); set `output.dir` to a writable folder"
            ) from None
        return
    existing = next(p for p in (run_dir, *run_dir.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise BakeoffError(
            f"cannot write to the run folder {run_dir} ({existing} is not a writable folder); "
            "set `output.dir` to a writable folder"
        )
