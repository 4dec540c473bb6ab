"""Read labeled examples from CSV, JSONL, Parquet or a `datasets` folder; map the text/label columns."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

from bakeoff.config import DataSpec
from bakeoff.data.tickets import Examples
from bakeoff.errors import DataError

_BY_SUFFIX = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def detect_format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    if path.is_dir():
        return "hf-disk"
    fmt = _BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: cannot tell the format from the extension; set `task.data.format` (csv, jsonl, parquet, hf-disk)")
    return fmt


def read_table(path: Path, declared_format: str = "auto") -> pd.DataFrame:
    """The file as a DataFrame, or a DataError that names the file and what is wrong with it."""
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    fmt = detect_format(path, declared_format)
    try:
        if fmt == "csv":
            return pd.read_csv(path, encoding="utf-8", dtype=str, keep_default_na=False, na_values=[""])
        if fmt == "jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        if fmt == "parquet":
            return pd.read_parquet(path)
        from datasets import load_from_disk

        loaded = load_from_disk(str(path))
        if hasattr(loaded, "keys"):  # a DatasetDict: take its single split, or refuse to guess
            splits = list(loaded.keys())
            if len(splits) != 1:
                raise DataError(f"{path} holds splits {splits}; point `path`/`test_path` at one split folder each")
            loaded = loaded[splits[0]]
        return loaded.to_pandas()
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.start}); re-save the file as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (ValueError, pd.errors.ParserError, OSError) as err:
        raise DataError(f"{path}: cannot read as {fmt}: {str(err).splitlines()[0]}") from None


def table_to_examples(frame: pd.DataFrame, spec: DataSpec, path: Path) -> Examples:
    """Take the text and label columns; refuse missing columns and missing labels, naming rows."""
    if frame.empty:
        raise DataError(f"{path}: the file has no rows")
    missing = [c for c in (spec.text_column, spec.label_column) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: no column {', '.join(repr(m) for m in missing)}; columns are {list(frame.columns)}. "
            "Set `task.data.text_column` / `task.data.label_column`."
        )
    labels = frame[spec.label_column]
    blank = labels.isna() | (labels.astype(str).str.strip() == "") | (labels.astype(str).str.lower() == "nan")
    if blank.any():
        rows = [int(i) + 2 for i in frame.index[blank][:5]]  # +2: header line and 1-based lines
        raise DataError(f"{path}: {int(blank.sum())} rows have an empty or NaN label (file lines {rows}...); fill or drop them")
    if spec.id_column is not None:
        if spec.id_column not in frame.columns:
            raise DataError(f"{path}: no id column {spec.id_column!r}; columns are {list(frame.columns)}")
        ids = frame[spec.id_column].astype(str)
        repeated = ids[ids.duplicated(keep=False)]
        if len(repeated):
            raise DataError(f"{path}: {repeated.nunique()} ids occur more than once (e.g. {repeated.iloc[0]!r}); ids must be unique")
    texts = frame[spec.text_column].fillna("").astype(str).tolist()
    return Examples(texts, labels.astype(str).str.strip().tolist())


def load_texts(path: Path, spec: DataSpec) -> list[str]:
    """Texts only (out-of-scope files need no label column)."""
    frame = read_table(path, spec.format)
    if spec.text_column not in frame.columns:
        raise DataError(f"{path}: no column {spec.text_column!r}; columns are {list(frame.columns)}. Set `task.data.text_column`.")
    return [t for t in frame[spec.text_column].fillna("").astype(str) if t.strip()]


def load_examples(path: Path, spec: DataSpec) -> Examples:
    return table_to_examples(read_table(path, spec.format), spec, path)


def keep_labels(examples: Examples, labels: list[str] | None, max_per_label: int | None, seed: int) -> Examples:
    """Restrict to some labels and/or cap examples per label (seeded), keeping the original order."""
    indices = list(range(len(examples)))
    if labels is not None:
        unknown = sorted(set(labels) - set(examples.labels))
        if unknown:
            raise DataError(f"`task.data.labels` names labels absent from the data: {unknown[:5]}")
        wanted = set(labels)
        indices = [i for i in indices if examples.labels[i] in wanted]
    if max_per_label is not None:
        rng = random.Random(seed)
        by_label: dict[str, list[int]] = {}
        for i in indices:
            by_label.setdefault(examples.labels[i], []).append(i)
        kept = set()
        for members in by_label.values():
            kept.update(rng.sample(members, min(max_per_label, len(members))))
        indices = [i for i in indices if i in kept]
    return examples.subset(indices)
