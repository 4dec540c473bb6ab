"""Seeded stratified splits, and nested training subsets for learning curves."""

from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import train_test_split

from bakeoff.data.examples import Examples
from bakeoff.errors import DataError


def stratified_split(examples: Examples, fraction: float, seed: int, what: str) -> tuple[Examples, Examples]:
    """(rest, held_out) with `fraction` of each label held out; every label keeps >= 1 on each side."""
    indices = np.arange(len(examples))
    labels, n = len(set(examples.labels)), len(examples)
    held = math.ceil(fraction * n)  # as train_test_split counts a fractional test_size
    if held < labels or n - held < labels:
        side = f"{held} {what} items" if held < labels else f"{n - held} items left beside the {held} {what} items"
        setting = f"`task.split.{what}_fraction`"
        enough = math.ceil(100 * labels / n) / 100  # rounded up: a rounded-down fraction could still fall short
        fix = f"raise {setting} to at least {enough:.2f}" if held < labels else f"lower {setting}"
        raise DataError(
            f"cannot draw a stratified {what} split: {side} ({fraction:g} of {n}) for {labels} labels, and every "
            f"label needs one on each side; {fix}, add examples, or give a `task.data.{what}_path` file"
        )
    try:
        rest, held = train_test_split(indices, test_size=fraction, stratify=examples.labels, random_state=seed)
    except ValueError as err:
        raise DataError(
            f"cannot draw a stratified {what} split: {err}. Use more data per label or a different fraction."
        ) from None
    return examples.subset(sorted(rest)), examples.subset(sorted(held))


def nested_order(labels: list[str], seed: int) -> list[int]:
    """An ordering of items whose every prefix is (close to) stratified.

    Taking the first n items gives a stratified subset of size n, and a smaller subset is always
    contained in a larger one, so learning-curve points differ only by added data. Each item gets the
    rank (position within its shuffled label + jitter) / label size; the first item of every label comes
    before any label's second item, so any prefix at least as long as the label count covers all labels.
    """
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    ranks = np.empty(len(labels), dtype=float)
    first = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels_arr):
        members = np.flatnonzero(labels_arr == label)
        rng.shuffle(members)
        ranks[members] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
        first[members[0]] = True
    ranks[first] = -1 + rng.random(int(first.sum()))  # all labels' first items lead, in random order
    return [int(i) for i in np.argsort(ranks, kind="stable")]


def nested_subsets(labels: list[str], sizes: list[int], seed: int) -> dict[int, list[int]]:
    """Indices of the training subset for each size (each contained in the next)."""
    if max(sizes) > len(labels):
        raise DataError(
            f"`grid.train_sizes` asks for {max(sizes)} training examples but the training pool has {len(labels)}; "
            f"use sizes up to {len(labels)}"
        )
    order = nested_order(labels, seed)
    return {size: sorted(order[:size]) for size in sizes}


def stratified_indices(labels: list[str], n: int | None, seed: int) -> list[int]:
    """Indices of at most n items, stratified by label (all of them when n is None or large enough)."""
    if n is None or n >= len(labels):
        return list(range(len(labels)))
    return sorted(nested_order(labels, seed)[:n])


def stratified_sample(examples: Examples, n: int | None, seed: int) -> Examples:
    return examples.subset(stratified_indices(examples.labels, n, seed))


def held_out_splits(
    everything: Examples, given_test: Examples | None, given_validation: Examples | None, split
) -> tuple[Examples, Examples, Examples, int]:
    """`(train_pool, validation, test, empty_dropped)`: the test and validation sets the user gave (empty texts
    dropped), or stratified splits of `everything` (`split`: config.SplitSpec) where none was given."""
    from bakeoff.data.validate import drop_empty

    dropped = 0
    if given_test is None:
        pool, test = stratified_split(everything, split.test_fraction, split.seed, "test")
    else:
        test, n = drop_empty(given_test)
        dropped, pool = dropped + n, everything
    if given_validation is None:
        train_pool, validation = stratified_split(pool, split.validation_fraction, split.seed + 1, "validation")
    else:
        validation, n = drop_empty(given_validation)
        dropped, train_pool = dropped + n, pool
    return train_pool, validation, test, dropped
