"""Time budgets for evaluation: the perturbed subset sized by `perturbation_budget_s`, latency repeats by
`latency_budget_s`."""

import time

import pytest

from bakeoff.baselines.registry import BaselineSetup, lookup
from bakeoff.config import EvaluationSpec, PerturbationSpec, TaskSpec
from bakeoff.data.task import prepare_task
from bakeoff.efficiency.latency import MIN_REPEATS, measure_scoring
from bakeoff.evaluation.suite import MIN_PERTURBED_ITEMS, perturbed_items, run_suite


@pytest.mark.parametrize(
    ("budget_s", "expected"),
    [(None, 100), (1000.0, 100), (6.0, 50), (0.5, MIN_PERTURBED_ITEMS)],  # 3 perturbations at 0.04 s an item
)
def test_perturbed_items_fit_the_budget_within_bounds(budget_s, expected):
    spec = EvaluationSpec(max_perturbed_items=100, perturbation_budget_s=budget_s)
    assert perturbed_items(spec, perturbations=3, seconds_per_item=0.04) == expected


def test_the_suite_perturbs_fewer_items_under_a_budget_and_reports_wider_cis():
    task = prepare_task(TaskSpec(builtin="support-tickets", builtin_examples=600))
    perturbations = [PerturbationSpec(name="typos"), PerturbationSpec(name="lowercase")]

    setup = BaselineSetup("classification", seed=0, labels=tuple(task.labels))
    model = lookup("tfidf-logreg").build(setup)  # imperfect at 60 examples: CIs of some width
    model.fit(task.train_pool.subset(list(range(60))))

    def noisy(texts):
        time.sleep(0.0005 * len(texts))  # a per-item time for the budget
        return model.predict(texts)

    def robustness(budget_s):
        spec = EvaluationSpec(
            bootstrap_samples=200,
            max_perturbed_items=80,
            max_out_of_scope_items=10,
            perturbations=perturbations,
            perturbation_budget_s=budget_s,
        )
        return run_suite(noisy, task, spec, None, seed=0, builtin_task=True).metrics["robustness"]

    whole, budgeted = robustness(None), robustness(1e-6)
    assert whole["items"] == 80 and budgeted["items"] == MIN_PERTURBED_ITEMS
    assert budgeted["items_wanted"] == MIN_PERTURBED_ITEMS and budgeted["budget_s"] == 1e-6
    for name in ("typos", "lowercase"):
        assert budgeted["perturbations"][name]["accuracy_ci_width"] > whole["perturbations"][name]["accuracy_ci_width"]
        assert whole["perturbations"][name]["macro_f1_drop_ci_width"] >= 0


def test_latency_repeats_stop_at_the_time_budget_but_keep_the_minimum():
    def slow(items, batch_size):
        time.sleep(0.02 * len(items))

    items = list(range(40))
    capped = measure_scoring(slow, items, repeats=30, batch_sizes=(4,), budget_s=0.05)
    assert len(capped["latency_ms_repeats"]) == MIN_REPEATS
    unbounded = measure_scoring(slow, items, repeats=6, batch_sizes=(4,), budget_s=None)
    assert len(unbounded["latency_ms_repeats"]) == 6
    roomy = measure_scoring(slow, items, repeats=6, batch_sizes=(4,), budget_s=60.0)
    assert len(roomy["latency_ms_repeats"]) == 6


def test_extraction_perturbs_fewer_items_under_the_same_budget(tmp_path):
    from bakeoff.config import spec_from_dict
    from bakeoff.evaluation.target_suite import run_target_suite

    def spec(budget_s):
        return spec_from_dict(
            {
                "name": "budget",
                "task": {"type": "extraction", "builtin": "support-tickets-extraction", "builtin_examples": 400},
                "candidates": [{"name": "crf", "model": "crf"}],
                "evaluation": {
                    "bootstrap_samples": 100,
                    "max_perturbed_items": 60,
                    "perturbations": [{"name": "padding"}, {"name": "synonyms"}],  # kept for extraction
                    "perturbation_budget_s": budget_s,
                },
            }
        )

    task = prepare_task(spec(None).task)

    def write(texts):  # a valid empty record per text, with a per-item time for the budget
        time.sleep(0.0005 * len(texts))
        return ['{"customer":null,"order_id":null,"amount":null,"date":null,"product":null}'] * len(texts)

    def robustness(budget_s):
        return run_target_suite(write, task, spec(budget_s), None, 0, tmp_path).metrics["robustness"]

    whole, budgeted = robustness(None), robustness(1e-6)
    assert whole["items"] == 60 and whole["items_wanted"] == 60
    assert budgeted["items"] == MIN_PERTURBED_ITEMS and budgeted["budget_s"] == 1e-6


def test_a_perturbation_scores_only_the_texts_it_changed():
    task = prepare_task(TaskSpec(builtin="support-tickets", builtin_examples=400))
    model = lookup("tfidf-logreg").build(BaselineSetup("classification", seed=0, labels=tuple(task.labels)))
    model.fit(task.train_pool.subset(list(range(80))))
    calls = []

    def recording(texts):
        calls.append(list(texts))
        return model.predict(texts)

    spec = EvaluationSpec(
        bootstrap_samples=100,
        max_perturbed_items=40,
        max_out_of_scope_items=10,
        perturbations=[PerturbationSpec(name="entities")],
    )
    entities = run_suite(recording, task, spec, None, seed=0, builtin_task=True).metrics["robustness"]
    entities = entities["perturbations"]["entities"]
    # calls: test, validation, then the perturbation, then out-of-scope
    assert 0 < entities["changed_texts"] < 40, "entities leaves tickets without names or amounts as they were"
    assert len(calls[2]) == entities["changed_texts"]
    assert not set(calls[2]) & set(calls[0]), "only changed texts are scored again"


def test_a_fixed_batch_trial_takes_its_throughput_from_the_test_pass():
    from bakeoff.efficiency.latency import with_pass_throughput

    batches = []

    def slow(items, batch_size):
        batches.append(batch_size)
        time.sleep(0.002 * len(items))

    serving = measure_scoring(slow, list(range(40)), repeats=3, batch_sizes=())
    assert set(batches) == {1}, "no second scoring of a sample at other batch sizes"
    assert list(serving["items_per_s_by_batch"]) == ["1"] and serving["best_batch"] == 1
    passed = with_pass_throughput(serving, 16, items=120, seconds=0.01)  # 12,000/s: above batch 1's ~500/s
    assert passed["items_per_s_by_batch"]["16"] == 12_000 and passed["best_batch"] == 16
    assert passed["items_per_s_at_best"] == 12_000 and passed["latency_ms_p50"] == serving["latency_ms_p50"]
    slower = with_pass_throughput(serving, 16, items=1, seconds=100.0)
    assert slower["best_batch"] == 1, "batch 1 stays best when the pass was slower"


def test_a_generation_perturbation_writes_only_the_texts_it_changed(tmp_path, monkeypatch):
    from bakeoff.config import spec_from_dict
    from bakeoff.evaluation.target_suite import run_target_suite

    spec = spec_from_dict(
        {
            "name": "changed",
            "task": {"type": "generation", "builtin": "support-tickets-replies", "builtin_examples": 300},
            "candidates": [{"name": "retrieval", "model": "tfidf-retrieval"}],
            "evaluation": {
                "bootstrap_samples": 100,
                "max_perturbed_items": 30,
                "max_out_of_scope_items": 10,
                "perturbations": [{"name": "entities"}],
            },
        }
    )
    task = prepare_task(spec.task)
    calls = []

    def write(texts):  # the reply depends on the text, so an unchanged text must keep its clean scores
        calls.append(list(texts))
        return [f"Thanks for writing about {text[:30]}" for text in texts]

    robustness = run_target_suite(write, task, spec, None, 0, tmp_path).metrics["robustness"]
    entities = robustness["perturbations"]["entities"]
    perturbed_call = next(c for c in calls if not set(c) & set(calls[0]))
    assert 0 < entities["changed_texts"] < 30 and len(perturbed_call) == entities["changed_texts"]
    # writing every perturbed text again, changed or not, gives the same numbers
    from bakeoff.evaluation import perturb

    monkeypatch.setattr(perturb, "changed", lambda texts, perturbed: list(range(len(texts))))
    everything = run_target_suite(write, task, spec, None, 0, tmp_path / "all").metrics["robustness"]
    rewritten = everything["perturbations"]["entities"]
    assert rewritten["changed_texts"] == 30
    assert {k: v for k, v in rewritten.items() if k != "changed_texts"} == {
        k: v for k, v in entities.items() if k != "changed_texts"
    }
