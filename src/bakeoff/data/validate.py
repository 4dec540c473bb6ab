"""Checks on task data before any model sees it: fatal problems raise, the rest is counted and reported."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.neighbors import NearestNeighbors

from bakeoff.data.examples import Examples
from bakeoff.errors import DataError

NEAR_DUPLICATE_COSINE = 0.9  # char 3-5-gram TF-IDF cosine at or above which two texts count as near-duplicates


@dataclass(frozen=True)
class DataReport:
    """What was found in the data; stored with the run and shown in the summary."""

    train_examples: int
    validation_examples: int
    test_examples: int
    labels: int
    smallest_label_count: int
    empty_texts_dropped: int
    duplicate_train_texts: int
    test_exact_in_train: int
    test_near_duplicates_of_train: int
    warnings: tuple[str, ...] = ()  # what was normalised on the way in (e.g. labels merged); shown at run start
    hub: dict | None = None  # `task.data.hub` datasets: id, config, splits, revision asked for, commit_sha read

    def as_dict(self) -> dict:
        return asdict(self)


def drop_empty(examples: Examples) -> tuple[Examples, int]:
    keep = [i for i, t in enumerate(examples.texts) if t.strip()]
    return examples.subset(keep), len(examples) - len(keep)


def check_labels(examples: Examples, where: str, min_per_label: int = 2) -> None:
    """Refuse data a classifier cannot be trained or evaluated on; name the labels that fail. `min_per_label`:
    one for training plus one for each held-out split drawn from these examples (test, validation)."""
    counts = Counter(examples.labels)
    if not counts:
        raise DataError(f"{where}: no examples left (every text empty, or every label filtered out)")
    if len(counts) < 2:
        raise DataError(
            f"{where}: every example has the label {next(iter(counts))!r}; a classifier needs at least 2 labels"
        )
    rare = sorted(label for label, n in counts.items() if n < min_per_label)
    if rare:
        why = "" if min_per_label <= 2 else " (one to train on and one for each split drawn from this data)"
        raise DataError(
            f"{where}: {len(rare)} labels have fewer than {min_per_label} examples{why} "
            f"({', '.join(map(repr, rare[:5]))}); add examples, or drop them with `task.data.labels`"
        )


def check_held_out_labels(train: Examples, held_out: Examples, which: str) -> None:
    """Test or validation items must carry labels the model was trained on (else scoring has no class for them)."""
    unseen = sorted(set(held_out.labels) - set(train.labels))
    if not held_out.labels:
        raise DataError(f"the {which} data has no items left (after out-of-scope labels, `labels` and empty texts)")
    if not set(held_out.labels) & set(train.labels):
        raise DataError(
            f"the {which} file shares no labels with the training data (training: {_some(train.labels)}; "
            f"{which}: {_some(held_out.labels)}); check `label_column` and the files"
        )
    if unseen:
        raise DataError(
            f"the {which} data has labels never seen in training: {unseen[:5]}; remove them, add training "
            "examples, "
            "or list them in `out_of_scope_labels`"
        )


def consistency_warnings(train: Examples) -> list[str]:
    """What the data says twice, differently: labels that differ only in letter case (kept apart: case may
    mean something), and training texts that carry more than one label."""
    by_case: dict[str, list[str]] = {}
    for label in sorted(set(train.labels)):
        by_case.setdefault(label.casefold(), []).append(label)
    found = [
        f"training data: labels {spellings} differ only in letter case; they are {len(spellings)} classes (merge "
        "them in the data if they are one)"
        for spellings in by_case.values()
        if len(spellings) > 1
    ]
    labels_of: dict[str, set[str]] = {}
    for text, label in zip(train.texts, train.labels):
        labels_of.setdefault(text.strip().lower(), set()).add(label)
    conflicting = [text for text, labels in labels_of.items() if len(labels) > 1]
    if conflicting:
        first = conflicting[0]
        found.append(
            f"training data: {len(conflicting)} texts occur with more than one label (e.g. {first[:60]!r}: "
            f"{sorted(labels_of[first])}); no model can fit both, so accuracy on them is capped"
        )
    return found


def _some(labels: list[str], shown: int = 4) -> str:
    distinct = sorted(set(labels))
    more = f", ... ({len(distinct)} in all)" if len(distinct) > shown else ""
    return ", ".join(map(repr, distinct[:shown])) + more


def near_duplicate_mask(
    reference: list[str], queries: list[str], threshold: float = NEAR_DUPLICATE_COSINE
) -> np.ndarray:
    """True for each query whose nearest reference text has char-n-gram cosine >= threshold."""
    if not reference or not queries:
        return np.zeros(len(queries), dtype=bool)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True)
    ref = vectorizer.fit_transform(reference)
    qry = vectorizer.transform(queries)
    distances, _ = NearestNeighbors(n_neighbors=1, metric="cosine").fit(ref).kneighbors(qry)
    return (1.0 - distances[:, 0]) >= threshold


def report(
    train: Examples,
    validation: Examples,
    test: Examples,
    empty_dropped: int,
    warnings: list[str] = (),
    labels_are_classes: bool = True,  # False for extraction/generation, whose labels only stratify the splits
) -> DataReport:
    normalized_train = {t.strip().lower() for t in train.texts}
    counts = Counter(train.labels)
    warnings = [*warnings, *(consistency_warnings(train) if labels_are_classes else [])]
    return DataReport(
        train_examples=len(train),
        validation_examples=len(validation),
        test_examples=len(test),
        labels=len(counts),
        smallest_label_count=min(counts.values()),
        empty_texts_dropped=empty_dropped,
        duplicate_train_texts=len(train) - len({t.strip().lower() for t in train.texts}),
        test_exact_in_train=sum(t.strip().lower() in normalized_train for t in test.texts),
        test_near_duplicates_of_train=int(near_duplicate_mask(train.texts, test.texts).sum()),
        warnings=tuple(warnings),
    )
