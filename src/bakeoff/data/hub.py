"""Read a labeled split from a dataset on the Hugging Face Hub (or a local dataset repo folder).

Through `datasets` itself: `load_dataset_builder` + `download_and_prepare` + `as_dataset` are the three
steps `datasets.load_dataset` runs, called apart only to read the builder's hash, which for a Hub
dataset is the commit it read, so the run can record exactly which data it compared on. Downloads go
to the `datasets` cache on first use; offline (HF_HUB_OFFLINE=1 / --offline) only the cache is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from bakeoff.config import DataSpec
from bakeoff.errors import DataError

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$", re.ASCII)  # name or owner/name


@dataclass(frozen=True)
class HubSplit:
    frame: pd.DataFrame
    where: str  # `id:split`, named in data errors
    commit_sha: str | None  # the commit read (Hub datasets); None for local folders


def load_split(spec: DataSpec, split: str) -> HubSplit:
    """One split of `spec.hub` as a DataFrame, or a DataError naming the key to fix."""
    from pathlib import Path

    from datasets import load_dataset_builder

    where = f"{spec.hub}:{split}"
    if not _HUB_ID.match(str(spec.hub)) and not Path(str(spec.hub)).exists():
        raise DataError(
            f"`task.data.hub: {spec.hub}` is neither a local dataset folder nor a Hub id (owner/name: letters, "
            "digits, - _ .); check the id, or the folder's path"
        )
    builder = _offline_builder(spec)
    if builder is None:
        _probe(spec)
    import datasets

    # A local folder is prepared in a moment: its "Generating train split" bars would only bury a data error.
    quiet = Path(str(spec.hub)).exists() and datasets.is_progress_bar_enabled()
    if quiet:
        datasets.disable_progress_bars()
    try:
        builder = builder or load_dataset_builder(str(spec.hub), spec.config, revision=spec.revision)
        builder.download_and_prepare()
        splits = sorted(builder.info.splits or {})
        if splits and split not in splits:
            raise DataError(f"`{spec.hub}` has no split `{split}`; its splits are {splits} (set `task.data.split`)")
        dataset = builder.as_dataset(split=split)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - datasets raises many types; each becomes one line here
        raise DataError(_message(spec, err)) from None
    finally:
        if quiet:
            datasets.enable_progress_bars()
    sha = builder.hash if isinstance(builder.hash, str) and _COMMIT.match(builder.hash) else None
    return HubSplit(_with_label_names(dataset), where, sha)


def source_record(spec: DataSpec, commits: set[str | None]) -> dict:
    """What a run records of `task.data.hub`: id, config, splits, revision asked for, and the commit read
    (None for a local folder, or when the splits came from different commits)."""
    return {
        "hub": spec.hub,
        "config": spec.config,
        "splits": {"train": spec.split, "test": spec.test_split, "validation": spec.validation_split},
        "revision": spec.revision,
        "commit_sha": next(iter(commits)) if len(commits) == 1 else None,
    }


def _offline() -> bool:
    import os

    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def _probe(spec: DataSpec) -> None:
    """Online, one metadata call (10 s timeout, no retries) before `datasets` starts: with no network
    `datasets` retries for ~30 s before failing, and `validate` must answer within 30 s."""
    import os
    from pathlib import Path

    if _offline() or Path(str(spec.hub)).exists() or str(spec.hub).count("/") != 1:
        return
    import httpx2
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    endpoint = (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    token = os.environ.get("HF_TOKEN") or None  # never put it in a message
    try:
        HfApi(endpoint=endpoint, token=token).dataset_info(str(spec.hub), revision=spec.revision, timeout=10)
    except GatedRepoError:
        raise DataError(
            f"`task.data.hub: {spec.hub}` is gated: accept its terms at {endpoint}/datasets/{spec.hub} while "
            "logged in, then set HF_TOKEN to a read token of that account"
        ) from None
    except RevisionNotFoundError:
        raise DataError(
            f"`task.data.revision: {spec.revision}` not found for `{spec.hub}`; set a branch, tag or commit"
        ) from None
    except RepositoryNotFoundError:
        raise DataError(
            f"`task.data.hub: {spec.hub}` is not a dataset on the Hub or is private; check the id, or set HF_TOKEN"
        ) from None
    except (httpx2.TransportError, ConnectionError) as err:
        raise DataError(
            f"`task.data.hub: {spec.hub}`: cannot reach the Hugging Face Hub at {endpoint} ({type(err).__name__}); "
            "check the network or HF_ENDPOINT, or run with --offline if the dataset is cached"
        ) from None
    except HfHubHTTPError as err:
        status = getattr(err.response, "status_code", None)
        raise DataError(f"`task.data.hub: {spec.hub}`: the Hub answered {status}; try again later") from None


def _offline_builder(spec: DataSpec):
    """Offline, the prepared cache of exactly the commit `revision` (default main) names, or None.

    Offline, `datasets` itself ignores `revision` and opens whichever commit was prepared last (newest
    folder): after a run on `v1`, a run asking for main silently read v1. The Hub cache's refs file (written
    when the dataset was downloaded) says which commit a branch or tag meant; that commit's prepared
    folder is opened directly with `datasets`' own cache builder. None (online, or not resolvable) leaves
    it to `load_dataset_builder`."""
    from pathlib import Path

    from huggingface_hub import constants

    if not _offline() or spec.hub is None or spec.hub.count("/") != 1 or Path(spec.hub).exists():
        return None
    revision = spec.revision or "main"
    if _COMMIT.match(revision):
        sha = revision
    else:
        ref = Path(constants.HF_HUB_CACHE) / f"datasets--{spec.hub.replace('/', '--')}" / "refs" / revision
        if not ref.is_file():
            return None
        sha = ref.read_text().strip()
    from datasets import config as datasets_config
    from datasets.naming import camelcase_to_snakecase
    from datasets.packaged_modules.cache.cache import Cache

    namespace, name = spec.hub.split("/")
    root = Path(datasets_config.HF_DATASETS_CACHE) / f"{namespace}___{camelcase_to_snakecase(name)}"
    prepared = sorted(root.glob(f"{spec.config or '*'}/*/{sha}"))
    if not prepared:
        return None
    config_name, version = prepared[0].parts[-3], prepared[0].parts[-2]
    return Cache(dataset_name=name, repo_id=spec.hub, config_name=config_name, version=version, hash=sha)


def _with_label_names(dataset) -> pd.DataFrame:
    """ClassLabel columns as their names: PolyAI/banking77 stores `label` as 0..76, and an LLM is prompted
    with (and scored on) the label text, so `card_arrival`, not `11`."""
    from datasets import ClassLabel

    frame = dataset.to_pandas()
    for column, feature in dataset.features.items():
        if isinstance(feature, ClassLabel):
            frame[column] = [feature.int2str(int(v)) if v is not None and v >= 0 else None for v in frame[column]]
    return frame


def _message(spec: DataSpec, err: Exception) -> str:
    if type(err).__name__ == "DatasetGenerationError" and err.__cause__ is not None:
        err = err.__cause__  # "An error occurred while generating the dataset": the cause says which
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    name = type(err).__name__
    if "offline" in first.lower() or name in ("ConnectError", "ConnectionError", "OfflineModeIsEnabled"):
        fix = "run once without --offline (or HF_HUB_OFFLINE=1)" if _offline() else "check the network or HF_ENDPOINT"
        return (
            f"`task.data.hub: {spec.hub}` is not in the local `datasets` cache and the Hub cannot be reached "
            f"({name}); {fix}"
        )
    if name == "GatedRepoError" or " 401 " in f" {first} " or " 403 " in f" {first} ":
        return (
            f"`task.data.hub: {spec.hub}` is gated: accept its terms on its Hub page while logged in, then set "
            "HF_TOKEN to a read token of that account"
        )
    if name == "DatasetNotFoundError":
        return f"`task.data.hub: {spec.hub}` not found (no Hub dataset, no local folder); check the id ({first})"
    if "config" in first.lower() and "name" in first.lower():
        return f"`task.data.config`: {first}"
    if name == "RevisionNotFoundError" or "revision" in first.lower():
        return f"`task.data.revision: {spec.revision}` not found for `{spec.hub}`; set a branch, tag or commit"
    return f"`task.data.hub: {spec.hub}`: cannot load ({name}: {first})"
