"""`model: crf`, the extraction baseline: a CRF sequence tagger (sklearn-crfsuite) over the text's tokens.

Training: each target value is found in its text (first case-insensitive occurrence, on token boundaries)
and its tokens are tagged B-field / I-field, the rest O. Prediction: the first tagged span of each field,
read back from the text as written, becomes that field's value (null when none). It can only copy values
that occur in the text, which is exactly the question it answers: do you need an LLM to pull them out?
Registered in `baselines/registry.py` for extraction.
"""

from __future__ import annotations

import json
import re

from bakeoff.baselines.registry import BaselineSetup
from bakeoff.data.examples import Examples
from bakeoff.errors import ModelError

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens_with_spans(text: str) -> list[tuple[str, int, int]]:
    """Words and single punctuation marks with their [start, end) character offsets."""
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _shape(word: str) -> str:
    shape = re.sub(r"[A-Z]", "A", word)
    shape = re.sub(r"[a-z]", "a", shape)
    return re.sub(r"\d", "0", shape)


def _features(tokens: list[tuple[str, int, int]], i: int) -> dict:
    word = tokens[i][0]
    features = {
        "bias": 1.0,
        "lower": word.lower(),
        "shape": _shape(word)[:6],
        "suffix3": word[-3:].lower(),
        "is_digit": word.isdigit(),
        "is_title": word.istitle(),
        "is_upper": word.isupper(),
        "has_digit": any(c.isdigit() for c in word),
        "length": min(len(word), 8),
    }
    for offset in (-2, -1, 1, 2):
        j = i + offset
        if 0 <= j < len(tokens):
            features[f"{offset}:lower"] = tokens[j][0].lower()
            features[f"{offset}:shape"] = _shape(tokens[j][0])[:6]
        else:
            features[f"{offset}:edge"] = True
    return features


def tag_tokens(text: str, record: dict, fields: list[str]) -> tuple[list[tuple[str, int, int]], list[str]]:
    """The text's tokens and their BIO tags from the record's values (values not in the text are skipped)."""
    tokens = tokens_with_spans(text)
    tags = ["O"] * len(tokens)
    lowered = text.lower()
    starts, ends = {s for _, s, _ in tokens}, {e for _, _, e in tokens}
    for field in fields:
        value = record.get(field)
        if not isinstance(value, str) or not value.strip():
            continue
        # The first occurrence that starts and ends on token boundaries: "12.5" inside "12.50" (or "Ann" inside
        # "Anna") would tag part of a token's neighbours and teach the tagger a span the text does not hold.
        start = lowered.find(value.lower())
        while start >= 0 and not (start in starts and start + len(value) in ends):
            start = lowered.find(value.lower(), start + 1)
        if start < 0:
            continue
        end = start + len(value)
        inside = [k for k, (_, s, e) in enumerate(tokens) if s >= start and e <= end and tags[k] == "O"]
        for n, k in enumerate(inside):
            tags[k] = f"{'B' if n == 0 else 'I'}-{field}"
    return tokens, tags


def spans_to_record(text: str, tokens: list[tuple[str, int, int]], tags: list[str], fields: list[str]) -> dict:
    """The first span of each field, as written in the text; null for fields never tagged."""
    record: dict[str, str | None] = dict.fromkeys(fields)
    k = 0
    while k < len(tags):
        tag = tags[k]
        if tag == "O":
            k += 1
            continue
        field = tag[2:]
        end = k + 1
        while end < len(tags) and tags[end] == f"I-{field}":
            end += 1
        if field in record and record[field] is None:
            record[field] = text[tokens[k][1] : tokens[end - 1][2]]
        k = end
    return record


class CrfExtractor:
    """A fitted CRF tagger: texts -> compact JSON records of `fields`."""

    train_score_note = None  # its training score is a real score: the memorization gap reads it

    def __init__(self, fields: list[str], seed: int):
        try:
            import sklearn_crfsuite
        except ImportError:
            raise ModelError("`model: crf` needs sklearn-crfsuite (pip install sklearn-crfsuite)") from None
        self.fields = fields
        # L-BFGS with elastic-net regularisation (crfsuite's defaults scaled as in its tutorial); deterministic.
        self.crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=100)
        self.seed = seed

    @classmethod
    def build(cls, setup: BaselineSetup) -> CrfExtractor:
        return cls(list(setup.fields), setup.seed)

    def state(self) -> dict:
        return {"fields": self.fields, "seed": self.seed, "crf": self.crf}

    @classmethod
    def from_state(cls, state: dict) -> CrfExtractor:
        model = cls(state["fields"], state["seed"])
        model.crf = state["crf"]
        return model

    def fit(self, train: Examples) -> CrfExtractor:
        features, labels = [], []
        for text, target in zip(train.texts, train.targets):
            tokens, tags = tag_tokens(text, json.loads(target), self.fields)
            features.append([_features(tokens, i) for i in range(len(tokens))])
            labels.append(tags)
        self.crf.fit(features, labels)
        return self

    def predict(self, texts: list[str]) -> list[str]:
        tokenized = [tokens_with_spans(text) for text in texts]
        tags = self.crf.predict([[_features(tokens, i) for i in range(len(tokens))] for tokens in tokenized])
        return [
            json.dumps(spans_to_record(text, tokens, row, self.fields), ensure_ascii=False, separators=(",", ":"))
            for text, tokens, row in zip(texts, tokenized, tags)
        ]
