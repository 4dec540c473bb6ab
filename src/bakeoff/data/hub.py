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


@dataclass(frozen=True)
class HubSplit:
    frame: pd.DataFrame
    where: str  # `id:split`, named in data errors
    commit_sha: str | None  # the commit read (Hub datasets); None for local folders


def load_split(spec: DataSpec, split: str) -> HubSplit:
    """One split of `spec.hub` as a DataFrame, or a DataError naming the key to fix."""
    from datasets import load_dataset_builder

    where = f"{spec.hub}:{split}"
    try:
        builder = load_dataset_builder(str(spec.hub), spec.config, revision=spec.revision)
        builder.download_and_prepare()
        splits = sorted(builder.info.splits or {})
        if splits and split not in splits:
            raise DataError(f"`{spec.hub}` has no split `{split}`; its splits are {splits} (set `task.data.split`)")
        dataset = builder.as_dataset(split=split)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - datasets raises many types; each becomes one line here
        raise DataError(_message(spec, err)) from None
    sha = builder.hash if isinstance(builder.hash, str) and _COMMIT.match(builder.hash) else None
    return HubSplit(_with_label_names(dataset), where, sha)


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
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    name = type(err).__name__
    if "offline" in first.lower() or name in ("ConnectError", "ConnectionError", "OfflineModeIsEnabled"):
        return (
            f"`task.data.hub: {spec.hub}` is not in the local `datasets` cache and the Hub cannot be reached "
            f"({name}); run once with network, or without --offline"
        )
    if name == "DatasetNotFoundError":
        return f"`task.data.hub: {spec.hub}` not found (no Hub dataset, no local folder); check the id ({first})"
    if "config" in first.lower() and "name" in first.lower():
        return f"`task.data.config`: {first}"
    if name == "RevisionNotFoundError" or "revision" in first.lower():
        return f"`task.data.revision: {spec.revision}` not found for `{spec.hub}`; set a branch, tag or commit"
    return f"`task.data.hub: {spec.hub}`: cannot load ({name}: {first})"
