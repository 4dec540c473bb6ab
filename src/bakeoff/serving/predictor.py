"""Load one finished trial of a run for inference: the same `texts -> probabilities` function it was
evaluated with, plus the abstention threshold chosen on validation data.

Everything comes from the run folder: the resolved spec and labels from the store, the fitted baseline
(`baseline.joblib`) or the LoRA adapter / fully fine-tuned model from the trial's folder, and the prompt
style and scoring mode (first-token or full) from the trial's record. So the served probabilities are the
ones in the trial's `predictions.npz` (up to float32 batching noise for LLMs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bakeoff.errors import BakeoffError
from bakeoff.run_folder import RunFolder, TrialFolder


@dataclass(frozen=True)
class ServedModel:
    """A loaded candidate: `predict(texts) -> probabilities [N, K]` and what /healthz reports about it."""

    candidate: str
    trial_id: str
    kind: str  # "baseline" | "llm"
    labels: list[str]
    threshold: float | None  # max-probability abstention threshold (chosen on validation); None: never abstain
    temperature: float | None  # fitted on validation; reported, not applied (the threshold is on raw probabilities)
    device: str
    hardware: str  # "cpu" or the catalog GPU key the device matches
    predict: Callable[[list[str]], np.ndarray] = field(repr=False)
    # Which run the trial belongs to, so `bakeoff loadtest --run` can refuse to store a test of another run's model.
    run_fingerprint: str | None = None
    task_type: str = "classification"

    def info(self) -> dict:
        return {
            "candidate": self.candidate,
            "trial_id": self.trial_id,
            "run_fingerprint": self.run_fingerprint,
            "task_type": self.task_type,
            "kind": self.kind,
            "labels": self.labels,
            "abstain_threshold_max_prob": self.threshold,
            "temperature": self.temperature,
            "device": self.device,
            "hardware": self.hardware,
        }


@dataclass(frozen=True)
class TrialRecord:
    """A finished trial as stored: where its files are and what it measured."""

    run_dir: Path
    spec: dict
    labels: list[str]
    trial: dict
    fingerprint: str | None = None  # the run's config fingerprint (store key `fingerprint`)

    @property
    def files(self) -> TrialFolder:
        return RunFolder(self.run_dir).trial(self.trial["trial_id"])

    @property
    def folder(self) -> Path:
        return self.files.path

    @property
    def task_type(self) -> str:
        return ((self.spec or {}).get("task") or {}).get("type") or "classification"


def find_trial(run_dir: Path, candidate: str, train_size: int | None = None, seed: int | None = None) -> TrialRecord:
    """The finished trial of `candidate` (largest training size and lowest seed unless given)."""
    store = RunFolder(run_dir).open_store(hint="pass the folder `bakeoff run` wrote")
    try:
        meta, trials = store.metadata(), store.trials()
    finally:
        store.close()
    task_type = ((meta.get("spec") or {}).get("task") or {}).get("type") or "classification"
    if task_type != "classification":
        raise BakeoffError(
            f"{run_dir} holds a `{task_type}` task: serving and export cover classification trials only so far; "
            "its outputs are in each trial folder's predictions.jsonl"
        )
    done = [t for t in trials if t["status"] == "done" and t["result"]]
    names = sorted({t["candidate"] for t in done})
    mine = [t for t in done if t["candidate"] == candidate]
    if not mine:
        raise BakeoffError(
            f"--candidate `{candidate}` has no finished trial in {run_dir}; choose one of: {', '.join(names) or 'none'}"
        )
    if train_size is not None:
        sizes = sorted({t["train_size"] for t in mine})
        mine = [t for t in mine if t["train_size"] == train_size]
        if not mine:
            raise BakeoffError(f"--train-size {train_size}: `{candidate}` finished at sizes {sizes}; pick one of them")
    if seed is not None:
        mine = [t for t in mine if t["seed"] == seed]
        if not mine:
            raise BakeoffError(f"--seed {seed}: no finished `{candidate}` trial with that seed")
    trial = max(mine, key=lambda t: (t["train_size"], -t["seed"]))
    return TrialRecord(Path(run_dir), meta["spec"], meta["labels"], trial, meta.get("fingerprint"))


def run_test_texts(run_dir: Path) -> list[str]:
    """The run's evaluated test items, in the order of every trial's predictions.npz."""
    from bakeoff.config import RunSpec
    from bakeoff.data.splits import stratified_indices
    from bakeoff.data.task import prepare_task

    store = RunFolder(run_dir).open_store("--run ")  # refuses a folder without one: opening would create it
    try:
        stored = store.get_meta("spec")
    finally:
        store.close()
    task_type = ((stored or {}).get("task") or {}).get("type") or "classification"
    if task_type != "classification":
        raise BakeoffError(
            f"--run {run_dir} holds a `{task_type}` task: its test texts are not for a classifier; "
            "pass --texts FILE (one text per line)"
        )
    spec = RunSpec.model_validate(stored)
    task = prepare_task(spec.task)
    index = stratified_indices(task.test.labels, spec.evaluation.max_test_items, seed=0)
    return [task.test.texts[i] for i in index]


def load_served_model(record: TrialRecord) -> ServedModel:
    result = record.trial["result"]
    metrics = result["metrics"]
    threshold = ((metrics.get("out_of_scope") or {}).get("threshold") or {}).get("max_prob")
    temperature = (metrics.get("calibration") or {}).get("temperature")
    kind = result["model"]["kind"]
    check_saved_files(record)
    predict, device = _load_baseline(record) if kind == "baseline" else _load_llm(record)
    return ServedModel(
        candidate=record.trial["candidate"],
        trial_id=record.trial["trial_id"],
        kind=kind,
        labels=list(record.labels),
        threshold=threshold,
        temperature=temperature,
        device=device,
        hardware=_hardware_key(device),
        predict=predict,
        run_fingerprint=record.fingerprint,
        task_type=record.task_type,
    )


# How to get a trial's files back: the runner skips a trial the store holds as done, even when its folder is gone.
RERUN_HINT = "re-run the trial (`bakeoff run` its config with a new `output.dir`)"


def check_saved_files(record: TrialRecord) -> None:
    """Refuse, in one line naming the file, a trial whose saved model is missing or cut short, before any load:
    a deleted trial folder, a truncated `baseline.joblib`, adapter or model weights."""
    kind, method, name = record.trial["result"]["model"]["kind"], record.trial["method"], record.trial["candidate"]
    if kind != "baseline" and method not in ("lora", "qlora", "full"):
        return  # zero-shot: the base model alone, nothing saved in the trial folder
    folder = record.folder
    if not folder.is_dir():
        raise BakeoffError(
            f"trial folder {folder} is missing (deleted or moved): put it back, or {RERUN_HINT} to serve `{name}`"
        )
    if kind == "baseline":
        path = record.files.baseline
        if not path.is_file():
            raise BakeoffError(f"{path} is missing: this run predates saved baselines; {RERUN_HINT} to serve `{name}`")
        return
    saved = record.files.weights(method)
    config = saved / ("config.json" if method == "full" else "adapter_config.json")
    weights = sorted(saved.glob("*.safetensors")) if saved.is_dir() else []
    if not config.is_file() or not weights:
        raise BakeoffError(f"{saved} has no saved model: the trial folder is incomplete; {RERUN_HINT}")
    for path in [config, *weights]:
        problem = _unreadable(path)
        if problem is not None:
            raise BakeoffError(f"{path} is damaged ({problem}): {RERUN_HINT} to serve `{name}`")


def _unreadable(path: Path) -> str | None:
    """Why a saved JSON or safetensors file cannot be read (cut short, overwritten), or None. Cheap: safetensors
    checks its header against the file's length without reading the tensors."""
    import json

    try:
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
            return None
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as handle:
            handle.keys()
    except Exception as err:  # noqa: BLE001 - any failure to parse a file we wrote means it is damaged
        return f"{type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else 'unreadable'}"
    return None


def _hardware_key(device: str) -> str:
    if not device.startswith("cuda"):
        return "cpu"
    import torch

    from bakeoff.efficiency.hardware import match_gpu

    properties = torch.cuda.get_device_properties(torch.device(device))
    match = match_gpu(properties.name, properties.total_memory / 1e9)
    return match.key if match is not None else properties.name


def _load_baseline(record: TrialRecord):
    import joblib

    from bakeoff.baselines.registry import lookup

    path = record.files.baseline
    try:
        saved = joblib.load(path)  # pickle: only load run folders you made
        entry = lookup(saved["kind"])  # the registered name the trial saved it under
        model = entry.restore(saved)
    except BakeoffError:
        raise  # one the user can act on, e.g. minilm-logreg's package not installed
    except Exception as err:  # noqa: BLE001 - a file cut short fails anywhere in unpickling (EOFError, KeyError, ...)
        raise BakeoffError(
            f"{path} is damaged, cut short or overwritten ({type(err).__name__} reading it): {RERUN_HINT} "
            f"to serve `{record.trial['candidate']}`"
        ) from None
    return (lambda texts: model.predict_proba(texts)), "cpu"


def _load_llm(record: TrialRecord):
    """Base model + adapter (merged), prompt format and scoring mode exactly as the trial evaluated them."""
    from bakeoff.config import RunSpec
    from bakeoff.models.options import default_device, load_options
    from bakeoff.models.prompt import PromptEncoder, PromptFormat
    from bakeoff.models.trained import load_trained

    spec = RunSpec.model_validate(record.spec)
    candidate = next(c for c in spec.candidates if c.name == record.trial["candidate"])
    method, model_info = record.trial["method"], record.trial["result"]["model"]
    if method == "qlora":  # the adapter on a fresh NF4 base, as the trial scored it (bitsandbytes: CPU or CUDA)
        from bakeoff.models.load import require_bitsandbytes

        require_bitsandbytes(candidate.name)
    device = default_device()
    options = load_options(spec, candidate, device, method)
    model, tokenizer, _ = load_trained(candidate, record.trial, record.files, options)
    fmt = PromptFormat(
        spec.task.instruction,
        list(record.labels),
        show_label_list=method == "zero-shot",
        max_prompt_tokens=spec.training.max_prompt_tokens,
        style=model_info["prompt_style"],
    )
    return llm_predict(
        model, PromptEncoder(tokenizer, fmt), tokenizer.pad_token_id, model_info.get("scoring") == "first-token"
    ), device


def llm_predict(model, encoder, pad_id: int, first_token: bool) -> Callable[[list[str]], np.ndarray]:
    """`texts -> probabilities [N, K]`: the run's label scoring, all given texts in one batch. The prompt
    prefix every request shares (instruction, system turn, label list) is run once, here."""
    from bakeoff.evaluation.score import cached_prefix, label_log_probs, probabilities

    prefix = cached_prefix(model, encoder)

    def predict(texts: list[str]) -> np.ndarray:
        items = encoder.encode(texts)
        return probabilities(
            label_log_probs(model, items, encoder.label_ids, pad_id, max(1, len(items)), None, first_token, prefix)
        )

    return predict
