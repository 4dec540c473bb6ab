"""The baseline registry: one interface, one registry that refuses a duplicate name, "did you mean" for a
typo, every registered baseline fitted on a tiny task of each type it declares, and a new baseline that
config validation accepts without an edit to the config package."""

import io
import json

import joblib
import numpy as np
import pytest

from bakeoff.baselines import registry
from bakeoff.baselines.registry import BaselineEntry, BaselineSetup, baseline_names, lookup, register
from bakeoff.config import spec_from_dict
from bakeoff.data.examples import Examples
from bakeoff.errors import ConfigError
from bakeoff.runners.preflight import check_not_a_baseline_typo

LABELS = ("billing", "shipping", "login")
FIELDS = ("order", "city")

# Tiny tasks, one per type: repeated phrasings so a baseline can fit them in milliseconds.
CLASSIFICATION = Examples(
    [f"{text} {n}" for n in range(4) for text in ("refund my invoice", "where is my parcel", "reset my password")],
    [label for _ in range(4) for label in LABELS],
)
CITIES = ("Paris", "Lyon", "Nice", "Lille")
EXTRACTION = Examples(
    [f"Order A{n}{n} ships to {city} today" for n, city in enumerate(CITIES * 3)],
    ["x"] * 12,
    [json.dumps({"order": f"A{n}{n}", "city": city}, separators=(",", ":")) for n, city in enumerate(CITIES * 3)],
)
GENERATION = Examples(
    ["refund my invoice", "where is my parcel", "reset my password"] * 2,
    ["a", "b", "c"] * 2,
    ["We refunded it.", "It ships today.", "Use the reset link."] * 2,
)
TASKS = {"classification": CLASSIFICATION, "extraction": EXTRACTION, "generation": GENERATION}


@pytest.fixture
def own_registry(monkeypatch):
    """A copy of the registry for one test: what a test registers is gone after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_the_registry_refuses_a_duplicate_name(own_registry):
    with pytest.raises(ValueError, match="baseline `crf` is already registered"):
        register(BaselineEntry("crf", ("extraction",), "bakeoff.baselines.extraction_crf:CrfExtractor"))
    with pytest.raises(ValueError, match="serves no task type"):
        register(BaselineEntry("nothing", (), object))


def test_built_in_baselines_and_the_task_types_they_serve():
    assert baseline_names("classification") == ["tfidf-logreg", "minilm-logreg"]
    assert baseline_names("extraction") == ["crf"]
    assert baseline_names("generation") == ["tfidf-retrieval"]


def test_unknown_names_get_did_you_mean():
    with pytest.raises(ConfigError, match=r"unknown baseline `tfidf-logref`: did you mean `tfidf-logreg`\?"):
        lookup("tfidf-logref")
    with pytest.raises(ConfigError, match=r"unknown baseline `zzz`: \(baselines: tfidf-logreg, minilm-logreg"):
        lookup("zzz")
    spec = spec_from_dict(
        {"name": "x", "task": {"builtin": "support-tickets"}, "candidates": [{"name": "a", "model": "CRF2"}]}
    )
    with pytest.raises(ConfigError, match=r"candidate `a`: unknown model `CRF2`: did you mean the baseline `crf`\?"):
        check_not_a_baseline_typo(spec.candidates[0])


def test_a_local_folder_or_hub_id_near_a_baseline_name_is_not_a_typo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crf2").mkdir()
    for model in ("crf2", "org/crf2", "smollm2-135m", "gpt2"):
        spec = spec_from_dict(
            {"name": "x", "task": {"builtin": "support-tickets"}, "candidates": [{"name": "a", "model": model}]}
        )
        check_not_a_baseline_typo(spec.candidates[0])


def _cases():
    return [(name, kind) for kind in TASKS for name in baseline_names(kind)]


@pytest.mark.parametrize(("name", "kind"), _cases(), ids=[f"{n}-{k}" for n, k in _cases()])
def test_each_baseline_fits_predicts_and_reloads_on_a_tiny_task_of_each_type_it_serves(name, kind):
    train = TASKS[kind]
    setup = BaselineSetup(kind, seed=0, labels=LABELS, fields=FIELDS)
    entry = lookup(name)
    model = entry.build(setup).fit(train)
    predicted = model.predict(train.texts)
    if kind == "classification":
        probs, logits = predicted
        assert probs.shape == logits.shape == (len(train), len(LABELS))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)  # float32 embeddings
        assert model.predict_proba(train.texts).shape == probs.shape
    else:
        assert len(predicted) == len(train) and all(isinstance(p, str) for p in predicted)
    if kind == "extraction":
        assert all(set(json.loads(p)) == set(FIELDS) for p in predicted)
    assert model.train_score_note is None or isinstance(model.train_score_note, str)
    saved = io.BytesIO()  # what a trial writes for `bakeoff serve` (joblib, under the registered name)
    joblib.dump({"kind": name} | model.state(), saved)
    saved.seek(0)
    loaded = joblib.load(saved)
    again = lookup(loaded["kind"]).restore(loaded).predict(train.texts)
    if kind == "classification":
        np.testing.assert_allclose(again[0], predicted[0])
    else:
        assert again == predicted


class Echo:
    """A toy generation baseline: every reply is the text itself. The whole interface in a dozen lines."""

    train_score_note = None

    @classmethod
    def build(cls, setup):
        return cls()

    def fit(self, train):
        return self

    def predict(self, texts):
        return list(texts)

    def state(self):
        return {}

    @classmethod
    def from_state(cls, state):
        return cls()


def test_a_registered_toy_baseline_passes_config_validation_for_its_task_type(own_registry):
    register(BaselineEntry("echo", ("generation",), Echo))
    generation = {"type": "generation", "builtin": "support-tickets-replies", "builtin_examples": 100}
    spec = spec_from_dict({"name": "x", "task": generation, "candidates": [{"name": "e", "model": "echo"}]})
    (candidate,) = spec.candidates  # validation checks that the baseline serves the task's type
    assert candidate.is_baseline and candidate.resolved_method == "fit"
    assert lookup("echo").build(BaselineSetup("generation", seed=0)).fit(GENERATION).predict(["hi"]) == ["hi"]
    classification = {
        "name": "x",
        "task": {"builtin": "support-tickets"},
        "candidates": [{"name": "e", "model": "echo"}],
    }
    with pytest.raises(
        ConfigError,
        match=r"`echo` is a generation baseline and task.type is `classification`; use tfidf-logreg or minilm-logreg",
    ):
        spec_from_dict(classification)
    with pytest.raises(ConfigError, match="classical baseline: its method is `fit`"):
        spec_from_dict(classification | {"candidates": [{"name": "e", "model": "echo", "method": "lora"}]})


def test_a_baseline_of_another_task_type_keeps_its_message():
    config = {
        "name": "x",
        "task": {"type": "classification", "builtin": "support-tickets"},
        "candidates": [{"name": "c", "model": "crf"}],
    }
    with pytest.raises(
        ConfigError, match=r"candidate `c`: `crf` is an extraction baseline and task.type is `classification`; use "
    ):
        spec_from_dict(config)
