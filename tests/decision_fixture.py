"""A recorded-results fixture for decision and report tests: three candidates with known trade-offs.

- big-llm: best quality with data, 4x the serving cost, slow, poor at spotting out-of-scope items;
- small-llm: a little worse, cheap, fast, good out-of-scope detection, learns faster at small sizes;
- tfidf: a CPU baseline, cheap, weakest.
"""

from copy import deepcopy


def _trial(candidate, kind, size, f1, ci, oos_auroc, perturbed, items_per_s=50.0, p95=2.0, method="lora"):
    metrics = {
        "test": {
            "accuracy": f1,
            "accuracy_ci": ci,
            "macro_f1": f1,
            "macro_f1_ci": ci,
            "items": 200,
            "per_class": {"a": {"precision": f1, "recall": f1, "f1": f1, "support": 100}},
            "confusion": [[90, 10], [12, 88]],
        },
        "train": {"accuracy": 1.0, "macro_f1": 1.0, "accuracy_ci": [1, 1], "macro_f1_ci": [1, 1]},
        "robustness": {
            "mean_perturbed_accuracy": perturbed,
            "worst_perturbation": "typos",
            "items": 50,
            "clean": {"accuracy": f1, "macro_f1": f1},
            "perturbations": {
                "typos": {
                    "accuracy": perturbed,
                    "accuracy_ci": [perturbed - 0.05, perturbed + 0.05],
                    "macro_f1_drop": f1 - perturbed,
                    "macro_f1_drop_ci": [0, 0.1],
                    "accuracy_drop": f1 - perturbed,
                    "mcnemar_p": 0.2,
                    "macro_f1": perturbed,
                    "macro_f1_ci": [0, 1],
                    "params": {},
                    "changed_texts": 50,
                }
            },
        },
        "out_of_scope": {
            "by_score": {
                "max_prob": {
                    "auroc": oos_auroc,
                    "aupr": 0.5,
                    "fpr_at_95_tpr": 0.5,
                    "roc": {"fpr": [0, 0.5, 1], "tpr": [0, 0.8, 1]},
                }
            },
            "confidently_wrong_rate": 1 - oos_auroc,
            "risk_coverage": {"coverage": [0.5, 1], "risk": [0.05, 0.1], "aurc": 0.07},
            "mean_confidence_in_scope": 0.9,
            "mean_confidence_out_of_scope": 0.7,
            "items_in_scope": 200,
            "items_out_of_scope": 50,
        },
        "calibration": {
            "ece": 0.1,
            "brier": 0.2,
            "nll": 0.4,
            "after_scaling": {"ece": 0.05, "reliability": []},
            "reliability": [
                {"low": 0.0, "high": 0.5, "count": 10, "confidence": 0.4, "accuracy": 0.3},
                {"low": 0.5, "high": 1.0, "count": 190, "confidence": 0.9, "accuracy": 0.85},
            ],
        },
        "memorization": {"flag": False, "gap": 0.05},
    }
    timings = {
        "latency_ms_p50": p95 / 2,
        "latency_ms_p95": p95,
        "latency_ms_p99": p95 * 1.2,
        "latency_ms_repeats": [p95 / 2] * 6,
        "items_per_s_at_best": items_per_s,
        "best_batch": 16,
        "fine_tune_s": 10.0,
        "peak_memory_mb": 500.0,
        "items_per_s_by_batch": {"1": items_per_s / 4, "16": items_per_s},
    }
    result = {
        "metrics": metrics,
        "timings": timings,
        "model_name": candidate,
        "model": {"kind": kind, "architecture": {"model_type": "llama", "is_moe": False, "params_total": 1e9}}
        if kind == "llm"
        else {"kind": kind},
        "training": None,
        "efficiency": None,
    }
    return {
        "trial_id": f"{candidate}/n{size}/s0",
        "candidate": candidate,
        "method": method if kind == "llm" else "fit",
        "train_size": size,
        "seed": 0,
        "status": "done",
        "attempts": 1,
        "result": result,
        "error": None,
    }


def _estimate(model, usd_hour, latency_b1, latency_b16, tune_usd, memory_gb):
    return {
        "model": model,
        "hardware": {"key": "a10g", "name": "NVIDIA A10G (AWS)", "usd_per_hour": usd_hour},
        "workload": {"train_examples": 200},
        "architecture": {
            "is_moe": False,
            "params_total": 1e9,
            "params_active": 1e9,
            "num_experts": 0,
            "experts_per_token": 0,
            "kv_cache_bytes_per_token": {"bfloat16": 65536},
        },
        "fine_tune": {
            "cost_usd": tune_usd,
            "tokens": 200 * 3 * 64,
            "time_s": 600,
            "memory_gb": {"total": memory_gb},
            "gpus_needed": 1,
        },
        "inference": {
            "latency_ms_by_batch": {"1": latency_b1, "16": latency_b16},
            "cost_usd_per_1k_items": 0.01,
            "items_per_s_at_best": 16 / latency_b16 * 1000,
        },
        "capacity": {"gpus_per_replica": 1, "meets_sla": True, "gpus": 1, "usd_per_month": 700},
    }


def results() -> dict:
    curves = {
        "big-llm": [(50, 0.60, [0.52, 0.68]), (200, 0.93, [0.90, 0.96])],
        "small-llm": [(50, 0.78, [0.71, 0.85]), (200, 0.86, [0.82, 0.89])],
        "tfidf": [(50, 0.55, [0.47, 0.63]), (200, 0.74, [0.69, 0.79])],
    }
    oos = {"big-llm": 0.62, "small-llm": 0.95, "tfidf": 0.70}
    trials = []
    for name, points in curves.items():
        kind = "baseline" if name == "tfidf" else "llm"
        for size, f1, ci in points:
            trials.append(_trial(name, kind, size, f1, ci, oos[name], f1 - 0.04))
    analysis = {  # curves in the format before `quality` (`macro_f1`): RunMeta reads them as today's
        "learning_curves": {
            name: {
                "curve": [
                    {"train_size": s, "macro_f1": f, "ci": c, "seeds": 1, "seed_min": f, "seed_max": f}
                    for s, f, c in pts
                ],
                "best_macro_f1": max(f for _, f, _ in pts),
                "to_share_of_best": {"share": 0.9, "examples": 150, "how": "interpolated"},
                "fit": None,
            }
            for name, pts in curves.items()
        },
        "paired_comparisons": [
            {
                "train_size": 200,
                "seed": 0,
                "a": "big-llm",
                "b": "small-llm",
                "tie": False,
                "macro_f1": {"difference": 0.07, "ci": [0.02, 0.12], "p_b_at_least_a": 0.01},
                "mcnemar": {"only_a_correct": 20, "only_b_correct": 6, "p_value": 0.01},
            }
        ],
        "gpu_estimates": [
            _estimate("big-llm", 1.0, 60.0, 400.0, 2.0, 20.0),
            _estimate("small-llm", 1.0, 8.0, 40.0, 0.3, 6.0),
        ],
    }
    spec = {
        "name": "fixture",
        "grid": {"train_sizes": [50, 200], "seeds": [0]},
        "efficiency": {"load_items_per_s": 50.0, "gpus": ["a10g"]},
        "decision": {"gpu": "a10g", "cpu_usd_per_hour": 0.1, "out_of_scope_share": 0.0},
        "training": {"epochs": 3},
    }
    return deepcopy(
        {
            "schema": "bakeoff.results/1",
            "run": {
                "spec": spec,
                "analysis": analysis,
                "labels": ["a", "b"],
                "device": "cpu",
                "versions": {"bakeoff": "0.1.0"},
                "data_report": {},
            },
            "trials": trials,
        }
    )


def typed(stored: dict):
    """Stored results (results.json's shape, as the fixtures build them) as the typed records decision and
    report read."""
    from bakeoff.results import RunResults

    return RunResults.from_stored(stored)


# Per-item probabilities for `decision.costs`: how each candidate's confidence sits on its right and wrong items.
# big-llm is the most accurate but sure of its mistakes (no threshold separates them); small-llm is less accurate
# but unsure exactly where it is wrong, so a person can take those items; tfidf is in between.
CONFIDENCE = {  # candidate: ((low, high) on right items, (low, high) on wrong items)
    "big-llm": ((0.6, 1.0), (0.85, 1.0)),
    "small-llm": ((0.75, 1.0), (0.5, 0.7)),
    "tfidf": ((0.55, 1.0), (0.5, 0.9)),
}
COSTS = {"error": 10.0, "review": 1.0, "volume": 100_000}  # $ per wrong answer, $ per review, items per month


def _probabilities(rng, truth, accuracy: float, right: tuple, wrong: tuple):
    """Two-label probabilities [N, 2] with exactly round(accuracy * N) right answers, confidences as given."""
    import numpy as np

    n = len(truth)
    is_wrong = np.zeros(n, dtype=bool)
    is_wrong[rng.permutation(n)[: round((1 - accuracy) * n)]] = True
    confidence = np.where(is_wrong, rng.uniform(*wrong, n), rng.uniform(*right, n))
    predicted = np.where(is_wrong, 1 - truth, truth)
    probs = np.empty((n, 2))
    probs[np.arange(n), predicted] = confidence
    probs[np.arange(n), 1 - predicted] = 1 - confidence
    return probs


def item_scores(stored: dict, n_test: int = 400, n_val: int = 300) -> dict:
    """Per done trial of `stored` (results()), synthetic stored probabilities: accuracy = the trial's macro-F1,
    confidences by CONFIDENCE; every trial on the same test and validation items (paired comparisons apply)."""
    import numpy as np

    from bakeoff.decision.costs import ItemScores

    truth_rng = np.random.default_rng(0)
    test_true, val_true = truth_rng.integers(0, 2, n_test), truth_rng.integers(0, 2, n_val)
    out = {}
    for number, trial in enumerate(stored["trials"]):
        accuracy = trial["result"]["metrics"]["test"]["macro_f1"]
        right, wrong = CONFIDENCE[trial["candidate"]]
        rng = np.random.default_rng(100 + number)
        out[trial["trial_id"]] = ItemScores(
            _probabilities(rng, test_true, accuracy, right, wrong),
            test_true,
            _probabilities(rng, val_true, accuracy, right, wrong),
            val_true,
        )
    return out


def with_costs(stored: dict, **costs) -> dict:
    """`stored` with `decision.costs` set (COSTS, updated by `costs`)."""
    stored["run"]["spec"]["decision"]["costs"] = COSTS | costs
    return stored
