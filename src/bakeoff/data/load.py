"""Read labeled examples from CSV, JSONL, Parquet or a `datasets` folder; map the text/label columns."""

from __future__ import annotations

import difflib
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd

from bakeoff.config import DataSpec
from bakeoff.data.examples import Examples
from bakeoff.errors import DataError

_BY_SUFFIX = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def detect_format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    if path.is_dir():
        return "hf-disk"
    fmt = _BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: cannot tell the format from the extension; set `task.data.format` (csv, jsonl, parquet, hf-disk)"
        )
    return fmt


# Leading bytes of binary formats users mistake for text (or the reverse): named so the error can say
# "this is a Parquet file" instead of "re-save as UTF-8".
_MAGIC = {
    b"PAR1": "parquet",
    b"PK\x03\x04": "zip (an Excel workbook?)",
    b"\x1f\x8b": "gzip",
    b"SQLite format 3": "SQLite",
}


def _sniff(path: Path) -> str | None:
    """The binary format a file's first bytes announce, if any."""
    if path.is_dir():
        return None
    with open(path, "rb") as handle:
        head = handle.read(16)
    return next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)


def _first_character(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read(4096).lstrip("\ufeff \t\r\n")[:1]


def read_table(path: Path, declared_format: str = "auto") -> pd.DataFrame:
    """The file as a DataFrame, or a DataError that names the file and what is wrong with it."""
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    fmt = detect_format(path, declared_format)
    if fmt == "hf-disk" and not path.is_dir():
        raise DataError(
            f"{path}: `format: hf-disk` needs a folder saved with `save_to_disk`; this is a file (set `format: auto`)"
        )
    if fmt != "hf-disk" and path.is_dir():
        raise DataError(
            f"{path} is a folder; point the path at a {fmt} file (or use `format: hf-disk` for a `save_to_disk` folder)"
        )
    sniffed = _sniff(path)
    if sniffed is not None and sniffed != fmt:
        hint = (
            "set `task.data.format: parquet` (or `auto`)"
            if sniffed == "parquet"
            else "export it as CSV, JSON Lines or Parquet"
        )
        raise DataError(f"{path}: this is a {sniffed} file, not {fmt}; {hint}")
    try:
        if fmt == "csv":
            return pd.read_csv(path, encoding="utf-8", dtype=str, keep_default_na=False, na_values=[""])
        if fmt == "jsonl":
            # A .json file may hold one JSON array of records rather than one record per line.
            # utf-8-sig: a byte-order mark (Excel, Notepad) is read past, as pandas does for CSV.
            lines = _first_character(path) != "["
            _refuse_repeated_keys(path, lines)
            return _records_frame(path, pd.read_json(path, lines=lines, dtype=False, encoding="utf-8-sig"))
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
    except DataError:
        raise
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.start}); re-save the file as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (ValueError, TypeError, pd.errors.ParserError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: cannot read as {fmt}: {first}") from None
    except Exception as err:  # datasets/pyarrow raise their own types for damaged folders and files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: cannot read as {fmt}: {first}") from None


class _Object(dict):
    """A JSON object as read, remembering the first key it named twice (json keeps the last value)."""

    repeated: str | None = None


def first_duplicate_key(pairs: list[tuple[str, object]]) -> str | None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return None


def _object(pairs: list[tuple[str, object]]) -> _Object:
    found = _Object(pairs)
    if len(found) < len(pairs):
        found.repeated = first_duplicate_key(pairs)
    return found


def _repeated_in(value) -> str | None:
    """The first key named twice in any object inside `value` (a row, or a record nested in it)."""
    if isinstance(value, _Object) and value.repeated is not None:
        return value.repeated
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return next((key for child in children if (key := _repeated_in(child)) is not None), None)


def _refuse_repeated_keys(path: Path, lines: bool) -> None:
    """Refuse a JSON row (or a record inside one) that names a key twice: pandas, like `json`, silently keeps
    the last value. Parsed once more with `json` because pandas has no hook for it; JSON that does not parse
    is left to pandas, whose error names the problem."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        if lines:
            rows = (json.loads(line, object_pairs_hook=_object) for line in text.split("\n") if line.strip())
        else:
            parsed = json.loads(text, object_pairs_hook=_object)
            rows = parsed if isinstance(parsed, list) else [parsed]
        for row, value in enumerate(rows):
            key = _repeated_in(value)
            if key is not None:
                raise DataError(
                    f"{path}: data row {row + 1} names the key `{key}` twice; JSON would keep only the last value: "
                    "write each key once"
                )
    except (ValueError, RecursionError):
        return


def _records_frame(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """JSON rows must be objects with named fields; numbered columns mean they were bare values or arrays."""
    if len(frame.columns) and all(isinstance(c, int) for c in frame.columns):
        raise DataError(
            f"{path}: the JSON rows are not objects with named fields (found {len(frame.columns)} unnamed "
            "values "
            'per row); write one object per row, e.g. {"text": "...", "label": "..."}'
        )
    return frame


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
    for column in (spec.text_column, spec.label_column):
        nested = frame[column].map(_is_nested)
        if nested.any():
            raise DataError(
                f"{path}: column {column!r} holds lists or records (data row {int(frame.index[nested][0]) + 1}: "
                f"{str(frame[column][nested].iloc[0])[:60]}); bakeoff classifies one text into one label: "
                "give one string per row (a multi-label task needs one row per label)"
            )
    labels = frame[spec.label_column]
    # Missing is a missing cell (CSV: an empty one; "NaN" or "None" written out is a label like any other).
    blank = labels.isna() | (labels.astype(str).str.strip() == "")
    if blank.any():
        # Data rows, not file lines: a quoted CSV field may span lines, and JSON Lines has no header.
        rows = [int(i) + 1 for i in frame.index[blank][:5]]
        raise DataError(
            f"{path}: {int(blank.sum())} rows have an empty or missing label (data rows {rows}, 1-based, not "
            "counting a header); fill or drop them"
        )
    if spec.id_column is not None:
        check_ids(frame, spec.id_column, path)
    texts = frame[spec.text_column].fillna("").astype(str).tolist()
    return Examples(texts, [label_text(value) for value in labels])


def check_ids(frame: pd.DataFrame, id_column: str, path: Path | str) -> None:
    """`task.data.id_column` exists and its ids are unique."""
    if id_column not in frame.columns:
        raise DataError(
            f"{path}: no id column {id_column!r} (task.data.id_column); columns are {list(frame.columns)}. "
            "Name the column of item ids, or remove the key"
        )
    ids = frame[id_column].astype(str)
    repeated = ids[ids.duplicated(keep=False)]
    if len(repeated):
        raise DataError(
            f"{path}: {repeated.nunique()} ids occur more than once (e.g. {repeated.iloc[0]!r}); ids must be unique"
        )


def label_text(value) -> str:
    """A label cell as text. A whole-number float is written as the integer it is: an integer label column
    with one missing value (or one `1.0` in JSON) arrives as floats, and `3.0` must still be label `3`."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _is_nested(value) -> bool:
    """A list, record or array cell (parquet list columns arrive as numpy arrays), not a scalar."""
    return isinstance(value, (list, tuple, dict, set)) or getattr(value, "ndim", 0) > 0


def normalise_labels(examples: Examples, where: str) -> tuple[Examples, list[str]]:
    """Labels with their surrounding spaces removed, and a warning per set of spellings merged that way.

    `"refund "` and `"refund"` are one class typed twice; kept apart, a class would be split in two (and
    out-of-scope or `labels:` lists would match only one spelling). Merging silently hid a vanished class,
    so every merge is reported."""
    stripped = [label.strip() for label in examples.labels]
    spellings: dict[str, set[str]] = {}
    for raw, clean in zip(examples.labels, stripped):
        spellings.setdefault(clean, set()).add(raw)
    warnings = [
        f"{where}: labels {sorted(map(repr, raws))} differ only by surrounding spaces; merged into {clean!r}"
        for clean, raws in sorted(spellings.items())
        if len(raws) > 1
    ]
    return Examples(examples.texts, stripped), warnings


def load_texts(path: Path, spec: DataSpec) -> list[str]:
    """Texts only (out-of-scope files need no label column)."""
    frame = read_table(path, spec.format)
    if spec.text_column not in frame.columns:
        raise DataError(
            f"{path}: no column {spec.text_column!r}; columns are {list(frame.columns)}. Set `task.data.text_column`."
        )
    return [t for t in frame[spec.text_column].fillna("").astype(str) if t.strip()]


def load_examples(path: Path, spec: DataSpec) -> tuple[Examples, list[str]]:
    """Examples with normalised labels, and the warnings normalising raised."""
    return normalise_labels(table_to_examples(read_table(path, spec.format), spec, path), str(path))


def keep_labels(examples: Examples, labels: list[str] | None, max_per_label: int | None, seed: int) -> Examples:
    """Restrict to some labels and/or cap examples per label (seeded), keeping the original order."""
    indices = list(range(len(examples)))
    if labels is not None:
        unknown = sorted(set(labels) - set(examples.labels))
        if unknown:
            hints = [
                f"{label!r} (did you mean {close[0]!r}?)"
                if (close := difflib.get_close_matches(label, set(examples.labels), n=1))
                else repr(label)
                for label in unknown[:5]
            ]
            raise DataError(f"`task.data.labels` names labels absent from the data: {', '.join(hints)}")
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
