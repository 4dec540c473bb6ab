"""Everything `bakeoff run` refuses before any trial starts, in one function that `bakeoff validate` calls too.

`validate` is a contract: if it says ok, `run` does not refuse the config minutes later (before this,
8 inputs passed `validate` and failed in `run`, some only after the baselines had trained). So the
checks live here once, cheapest first, and both commands raise the same message. Nothing here loads
model weights: sources are resolved and their config.json and weight files are inspected.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bakeoff.baselines.registry import baseline_names, lookup, similar_baselines
from bakeoff.config import CandidateSpec, RunSpec
from bakeoff.data.splits import nested_subsets
from bakeoff.data.task import TaskData, prepare_task
from bakeoff.efficiency.hardware import gpu
from bakeoff.errors import BakeoffError, ConfigError, ModelError
from bakeoff.evaluation import perturb
from bakeoff.models.load import require_bitsandbytes
from bakeoff.models.sources import ModelSource, resolve_source
from bakeoff.tracking.live import check_tracking

PROBE_TEXT = "Probe text 123, from Maria on March 3 for $5."


def preflight(spec: RunSpec, check_data: bool = True, create_run_dir: bool = False) -> TaskData | None:
    """Refuse what would fail later; returns the prepared task (None with check_data=False).

    `create_run_dir`: `run` makes the folder and writes a probe file; `validate` only checks that the
    folder (or its nearest existing parent) is writable, and leaves no trace."""
    check_hardware_names(spec)
    check_task_type(spec)
    check_perturbations(spec)
    for candidate in spec.candidates:
        if not candidate.is_baseline:
            check_not_a_baseline_typo(candidate)
            check_candidate(candidate, spec)
    check_costs(spec, None)
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
    would refuse then (another task type; with the labels known, a matrix label the task does not have)."""
    costs = spec.decision.costs
    if costs is None:
        return
    if spec.task.type != "classification":
        raise ConfigError(
            f"decision.costs: costing errors applies to classification runs; task.type is `{spec.task.type}` "
            "(per wrong field or failed reply: not yet). Remove `decision.costs`"
        )
    if labels is not None:
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


BUILTIN_TYPE = {
    "support-tickets": "classification",
    "support-tickets-extraction": "extraction",
    "support-tickets-replies": "generation",
}


def check_task_type(spec: RunSpec) -> None:
    """Settings fit `task.type`: its built-in variant, where targets come from, baselines, decoding."""
    task, kind = spec.task, spec.task.type
    if task.builtin is not None and BUILTIN_TYPE[task.builtin] != kind:
        wanted = next(name for name, k in BUILTIN_TYPE.items() if k == kind)
        raise ConfigError(
            f"task.builtin `{task.builtin}` is a {BUILTIN_TYPE[task.builtin]} task but task.type is `{kind}`; "
            f"use `builtin: {wanted}` or `type: {BUILTIN_TYPE[task.builtin]}`"
        )
    data = task.data
    set_keys = [
        key
        for key, value in (
            ("task.fields", task.fields),
            ("task.data.target_column", data.target_column if data else None),
            ("task.data.reference_column", data.reference_column if data else None),
            ("task.fallback_reference", task.fallback_reference),
            ("task.data.out_of_scope_path", data.out_of_scope_path if data else None),
            ("task.data.out_of_scope_labels", data.out_of_scope_labels if data else None),
            ("task.data.labels", data.labels if data else None),
            ("task.data.max_per_label", data.max_per_label if data else None),
        )
        if value is not None
    ]
    allowed = {
        "classification": {
            "task.data.out_of_scope_path",
            "task.data.out_of_scope_labels",
            "task.data.labels",
            "task.data.max_per_label",
        },
        "extraction": {"task.fields", "task.data.target_column"},
        "generation": {"task.data.reference_column", "task.fallback_reference", "task.data.out_of_scope_path"},
    }[kind]
    stray = [key for key in set_keys if key not in allowed]
    if stray and stray[0].startswith("task.data.out_of_scope"):
        # Silently ignored before: an extraction run has no out-of-scope evaluation (a record is never "declined").
        scored = "classification" if stray[0].endswith("labels") else "classification and generation"
        article = "an" if kind == "extraction" else "a"
        raise ConfigError(
            f"`{stray[0]}` has no use in {article} {kind} task: out-of-scope items are scored for {scored} only; "
            "remove it"
        )
    if stray and stray[0] in ("task.data.labels", "task.data.max_per_label"):
        # Silently ignored before: extraction and generation read every row, labels only stratify their splits.
        raise ConfigError(
            f"`{stray[0]}` has no use in {'an' if kind == 'extraction' else 'a'} {kind} task: every row is read "
            "(a label column only balances the splits), nothing is filtered or capped by label; remove it"
        )
    if stray:
        raise ConfigError(f"`{stray[0]}` is for another task type; task.type is `{kind}`: remove it or set the type")
    check_decoding(spec)
    if kind == "extraction":
        _check_extraction_fields(spec)
        if task.decoding.strategy == "sample" and task.decoding.constrained:
            raise ConfigError(
                "task.decoding: constrained extraction decodes greedily; set `strategy: greedy` "
                "(or `constrained: false` to sample unconstrained)"
            )
    if kind == "generation" and data is not None and data.reference_column is None:
        raise ConfigError("task.type generation needs `task.data.reference_column` (the column of reference outputs)")
    if kind == "generation" and data is not None and task.fallback_reference and data.out_of_scope_path is None:
        # Silently unused before: the fallback is scored on out-of-scope items, and user data has none without it.
        raise ConfigError(
            "task.fallback_reference is scored on out-of-scope items, and there are none: set "
            "`task.data.out_of_scope_path` to a file of them, or remove `fallback_reference`"
        )
    if kind == "generation" and data is not None and data.reference_column == data.text_column:
        raise ConfigError(
            f"task.data.reference_column and task.data.text_column are both `{data.text_column}`: the model would "
            "be asked to copy its input; set `reference_column` to the column of reference outputs"
        )
    check_baselines_serve(spec)


def check_baselines_serve(spec: RunSpec) -> None:
    """Each baseline candidate serves `task.type` (the registry says which types each one serves)."""
    kind = spec.task.type
    for candidate in spec.candidates:
        if not candidate.is_baseline:
            continue
        entry = lookup(candidate.model)
        if not entry.serves(kind):
            serves = " or ".join(entry.task_types)
            article = "an" if serves[0] in "aeiou" else "a"
            fitting = " or ".join(baseline_names(kind)) or "an LLM candidate (no baseline serves it)"
            raise ConfigError(
                f"candidate `{candidate.name}`: `{candidate.model}` is {article} {serves} baseline and task.type is "
                f"`{kind}`; use {fitting}"
            )


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


def _check_extraction_fields(spec: RunSpec) -> None:
    from bakeoff.data.tickets import RECORD_FIELDS

    task, data = spec.task, spec.task.data
    if task.fields is not None and not task.fields:
        raise ConfigError("task.fields is empty; name at least one field")
    if data is None:
        if isinstance(task.fields, dict):
            raise ConfigError("task.fields: the built-in task has no columns; give a list of its fields")
        unknown = sorted(set(task.fields or []) - set(RECORD_FIELDS))
        if unknown:
            raise ConfigError(
                f"task.fields: {unknown} are not fields of the built-in task ({', '.join(RECORD_FIELDS)})"
            )
        return
    if data.target_column is None and not isinstance(task.fields, dict):
        raise ConfigError(
            "task.type extraction needs `task.data.target_column` (JSON records) or `task.fields: {field: column}`"
        )
    if data.target_column is not None and task.fields is None:
        raise ConfigError("task.data.target_column needs `task.fields`: the list of the record's fields, in order")
    if data.target_column is not None and isinstance(task.fields, dict):
        raise ConfigError(
            "give either `task.data.target_column` with a list of `task.fields`, or `task.fields: {field: column}`"
        )
    if data.target_column is not None and data.target_column == data.text_column:
        raise ConfigError(
            f"task.data.target_column and task.data.text_column are both `{data.text_column}`: the records would "
            "be the input; set `target_column` to the column of JSON records"
        )
    columns = task.fields if isinstance(task.fields, dict) else {}
    in_text = [field for field, column in columns.items() if column == data.text_column]
    if in_text:
        raise ConfigError(
            f"task.fields: `{in_text[0]}` maps to `{data.text_column}`, the input text column "
            "(task.data.text_column): the answer would be the whole input; map it to the column that holds "
            "the field's value"
        )


SAMPLING_KEYS = ("temperature", "top_p", "seed")  # DecodingSpec settings only sampled decoding reads


def check_decoding(spec: RunSpec) -> None:
    """Sampling settings with greedy decoding were ignored without a word (a `temperature: 0.2` meant to
    matter did nothing). Values other than the defaults count, not keys written: a resolved spec written
    out whole (`validate --explain`, a stored spec) holds every default and must still validate."""
    decoding = spec.task.decoding
    fields = type(decoding).model_fields
    given = [key for key in SAMPLING_KEYS if getattr(decoding, key) != fields[key].default]
    if decoding.strategy == "greedy" and given:
        raise ConfigError(
            f"task.decoding.{given[0]}: {getattr(decoding, given[0])} is for sampled decoding, but "
            f"task.decoding.strategy is greedy, which ignores it; set `strategy: sample` or remove `{given[0]}`"
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


# What bakeoff itself writes in a run folder besides its outputs: what a stopped run leaves when its store is
# gone (moved away, as the damaged-store message advises) or not made yet.
OWN_FILES = {".bakeoff.lock", ".write-test", "progress.log", "trials", "whatif"}
RUN_OUTPUTS = ("summary.md", "results.json", "report.html")


def _own_file(name: str) -> bool:
    """A name bakeoff writes: its lock, log, trials, what-ifs, the store and its WAL/journal files (also a store
    renamed in place, results.sqlite.bad), and the `.partial` files of an interrupted write."""
    return name in OWN_FILES or name.startswith("results.sqlite") or name.endswith(".partial")


def is_run_folder(folder: Path) -> bool:
    """Empty, or a folder bakeoff made: its results store, its results.json, or only files bakeoff writes (a
    stopped run whose store was moved away, as the damaged-store message advises, or not made yet)."""
    others = [p.name for p in folder.iterdir() if not _own_file(p.name)]
    if not others or (folder / "results.sqlite").is_file():
        return True
    try:
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(results, dict) and str(results.get("schema", "")).startswith("bakeoff.results/")


def check_run_dir(run_dir: Path, create: bool) -> None:
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise BakeoffError(f"the run folder {run_dir} is a file; set `output.dir` to a folder")
    if run_dir.is_dir() and not is_run_folder(run_dir):
        found = sorted(p.name for p in run_dir.iterdir() if not _own_file(p.name))
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise BakeoffError(
            f"the run folder {run_dir} holds files bakeoff did not write ({shown}), and a run writes "
            f"{', '.join(RUN_OUTPUTS)} there; set `output.dir` to a new or empty folder, or to a bakeoff run folder"
        )
    if create:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            probe = run_dir / ".write-test"
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
