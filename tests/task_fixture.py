"""Recorded results of extraction and generation runs, built by hand, for decision and report tests.

Metric keys are those `extraction_summary` / `generation_summary` / `out_of_scope_generation` produce
(`tests/test_task_decision.py` checks they still match), with chosen numbers:

- extraction: `smol-lora` (record exact match 0.80) against the `crf` baseline (0.78), tied by the paired
  bootstrap at n=200, so "no LLM needed";
- generation: `dense-llm` (chrF 0.55, holds up under perturbation, falls back on 90% of out-of-scope
  items), `moe-llm` (chrF 0.68, worse under perturbation, falls back on 30%) and the `retrieval` baseline
  (chrF 0.35), with equal serving costs for the two LLMs, so the weights alone decide between them.
"""

from copy import deepcopy

from decision_fixture import _estimate

FIELDS = ["order_id", "amount"]


def _ci(value, half=0.04):
    return [value - half, value + half]


def extraction_test(exact, f1):
    per_field = {
        f: {"precision": f1, "recall": f1, "f1": f1, "tp": 80, "fp": 20, "fn": 20, "support": 100, "predicted": 100}
        for f in FIELDS
    }
    return {
        "items": 100,
        "fields": FIELDS,
        "valid_output_rate": 0.98,
        "valid_output_rate_ci": _ci(0.98, 0.02),
        "record_exact_match": exact,
        "record_exact_match_ci": _ci(exact),
        "field_precision": f1,
        "field_precision_ci": _ci(f1),
        "field_recall": f1,
        "field_recall_ci": _ci(f1),
        "field_f1": f1,
        "field_f1_ci": _ci(f1),
        "field_f1_macro": f1,
        "field_f1_macro_ci": _ci(f1),
        "copied_values": 160,
        "hallucination_rate": 0.02,
        "hallucination_rate_ci": [0.0, 0.04],
        "per_field": per_field,
    }


def generation_test(chrf, rouge_l=0.4, refusal=0.05):
    return {
        "items": 100,
        "chrf": chrf,
        "chrf_ci": _ci(chrf, 0.03),
        "chrf_sentence_mean": chrf - 0.02,
        "rouge_l": rouge_l,
        "rouge_l_ci": _ci(rouge_l, 0.03),
        "output_words_mean": 30.0,
        "output_words_mean_ci": [28.0, 32.0],
        "output_tokens_mean": 40.0,
        "output_tokens_mean_ci": [37.0, 43.0],
        "refusal_rate": refusal,
        "refusal_rate_ci": [0.0, 0.1],
        "empty_rate": 0.0,
    }


def _trial(candidate, kind, size, metrics, items_per_s=20.0, p95=50.0):
    timings = {"inference_items_per_s": items_per_s, "fine_tune_s": 10.0, "peak_memory_mb": 500.0}
    if kind == "llm":  # batch-1 decoding, as the generation trial times it
        timings |= {
            "latency_ms_p50": p95 / 2,
            "latency_ms_p95": p95,
            "ttft_ms_p50": 5.0,
            "ttft_ms_p95": 6.0,
            "decode_tokens_per_s": 40.0,
            "latency_items": 6,
        }
    else:  # baselines: batch-1 latency and throughput by batch
        timings |= {
            "latency_ms_p50": 1.0,
            "latency_ms_p95": 2.0,
            "latency_ms_p99": 2.5,
            "items_per_s_by_batch": {"1": items_per_s / 2, "16": items_per_s},
            "best_batch": 16,
            "items_per_s_at_best": items_per_s,
        }
    model = (
        {"kind": "llm", "architecture": {"model_type": "llama", "is_moe": False, "params_total": 1e9}}
        if kind == "llm"
        else {"kind": kind}
    )
    return {
        "trial_id": f"{candidate}/n{size}/s0",
        "candidate": candidate,
        "method": "lora" if kind == "llm" else "fit",
        "train_size": size,
        "seed": 0,
        "status": "done",
        "attempts": 1,
        "result": {
            "metrics": metrics,
            "timings": timings,
            "model_name": candidate,
            "model": model,
            "training": None,
            "efficiency": None,
        },
        "error": None,
    }


def _curves(points: dict, metric: str) -> dict:
    return {
        name: {
            "curve": [
                {"train_size": s, "quality": v, "ci": c, "seeds": 1, "seed_min": v, "seed_max": v} for s, v, c in pts
            ],
            "best_quality": max(v for _, v, _ in pts),
            "to_share_of_best": {"share": 0.9, "examples": 150, "how": "interpolated"},
            "fit": None,
            "metric": metric,
        }
        for name, pts in points.items()
    }


def _spec(task_type: str) -> dict:
    return {
        "name": f"{task_type}-fixture",
        "task": {"type": task_type, "builtin": "support-tickets"},
        "grid": {"train_sizes": [50, 200], "seeds": [0]},
        "efficiency": {"load_items_per_s": 20.0, "gpus": ["a10g"]},
        "decision": {"gpu": "a10g", "cpu_usd_per_hour": 0.1, "out_of_scope_share": 0.0},
        "training": {"epochs": 3},
    }


def _results(spec: dict, trials: list[dict], analysis: dict) -> dict:
    run = {"spec": spec, "analysis": analysis, "labels": [], "device": "cpu", "versions": {"bakeoff": "0.1.0"}}
    return deepcopy({"schema": "bakeoff.results/1", "run": run | {"data_report": {}}, "trials": trials})


def extraction_results() -> dict:
    points = {"smol-lora": [(50, 0.60), (200, 0.80)], "crf": [(50, 0.70), (200, 0.78)]}
    trials = []
    for name, pts in points.items():
        for size, exact in pts:
            metrics = {
                "task_type": "extraction",
                "main_metric": "record_exact_match",
                "test": extraction_test(exact, exact + 0.1),
                "test_clean": extraction_test(exact, exact + 0.1) | {"removed_near_duplicates": 0},
                "train": extraction_test(min(1.0, exact + 0.15), min(1.0, exact + 0.2)),
                "robustness": {
                    "items": 50,
                    "clean": {"record_exact_match": exact},
                    "perturbations": {
                        "typos": {"params": {}, "record_exact_match": exact - 0.1, "record_exact_match_ci": _ci(0.5)}
                    },
                    "skipped": {"entities": "changes the values the record copies"},
                    "mean_perturbed_record_exact_match": exact - 0.1,
                    "worst_perturbation": "typos",
                },
                "memorization": {"metric": "record_exact_match", "flag": False, "gap": 0.1},
            }
            trials.append(_trial(name, "baseline" if name == "crf" else "llm", size, metrics))
    analysis = {
        "task_type": "extraction",
        "main_metric": "record_exact_match",
        "learning_curves": _curves(
            {n: [(s, v, _ci(v)) for s, v in pts] for n, pts in points.items()}, "record_exact_match"
        ),
        "paired_comparisons": [
            {
                "train_size": 200,
                "seed": 0,
                "a": "crf",
                "b": "smol-lora",
                "record_exact_match": {"difference": -0.02, "ci": [-0.07, 0.03], "p_b_at_least_a": 0.8},
                "field_f1": {"difference": -0.02, "ci": [-0.06, 0.02], "p_b_at_least_a": 0.8},
                "main_metric": "record_exact_match",
                "tie": True,
            }
        ],
        "gpu_estimates": [_estimate("smol-lora", 1.0, 20.0, 100.0, 0.3, 6.0)],
    }
    return _results(_spec("extraction"), trials, analysis)


def generation_results(judge: bool = False) -> dict:
    points = {"dense-llm": [(50, 0.45), (200, 0.55)], "moe-llm": [(50, 0.60), (200, 0.68)], "retrieval": [(200, 0.35)]}
    perturbed = {"dense-llm": 0.50, "moe-llm": 0.40, "retrieval": 0.30}
    fallback = {"dense-llm": 0.90, "moe-llm": 0.30, "retrieval": 0.10}
    trials = []
    for name, pts in points.items():
        for size, chrf in pts:
            metrics = {
                "task_type": "generation",
                "main_metric": "chrf",
                "test": generation_test(chrf),
                "test_clean": generation_test(chrf) | {"removed_near_duplicates": 0},
                "robustness": {
                    "items": 50,
                    "clean": {"chrf": chrf},
                    "perturbations": {"typos": {"params": {}, "chrf": perturbed[name], "chrf_ci": _ci(0.4)}},
                    "skipped": {},
                    "mean_perturbed_chrf": perturbed[name],
                    "worst_perturbation": "typos",
                },
                "out_of_scope": {
                    "items": 40,
                    "scored_against": "fallback_detector",
                    "output_words_mean": 20.0,
                    "output_words_mean_ci": [18.0, 22.0],
                    "output_tokens_mean": None,
                    "output_tokens_mean_ci": [0.0, 0.0],
                    "empty_rate": 0.0,
                    "fallback_detection_rate": fallback[name],
                    "fallback_detection_rate_ci": _ci(fallback[name], 0.1),
                },
                "memorization": {"metric": "chrf", "flag": False, "gap": 0.05},
            }
            trials.append(_trial(name, "baseline" if name == "retrieval" else "llm", size, metrics))
    comparisons = [
        {
            "train_size": 200,
            "seed": 0,
            "a": a,
            "b": b,
            "chrf": {"difference": d, "ci": [d - 0.04, d + 0.04], "p_b_at_least_a": 0.0},
            "rouge_l": {"difference": d, "ci": [d - 0.04, d + 0.04], "p_b_at_least_a": 0.0},
            "main_metric": "chrf",
            "tie": False,
        }
        for a, b, d in (
            ("dense-llm", "moe-llm", -0.13),
            ("dense-llm", "retrieval", 0.2),
            ("moe-llm", "retrieval", 0.33),
        )
    ]
    analysis = {
        "task_type": "generation",
        "main_metric": "chrf",
        "learning_curves": _curves({n: [(s, v, _ci(v, 0.03)) for s, v in pts] for n, pts in points.items()}, "chrf"),
        "paired_comparisons": comparisons,
        "gpu_estimates": [
            _estimate("dense-llm", 1.0, 20.0, 100.0, 0.3, 6.0),
            _estimate("moe-llm", 1.0, 20.0, 100.0, 0.3, 6.0),
        ],
    }
    if judge:
        record = {"items": 100, "wins": 60, "ties": 20, "losses": 20, "position_consistency": 0.8}
        analysis["judge"] = {
            "baseline": "retrieval",
            "records": [
                {"train_size": 200, "seed": 0, "candidate": "dense-llm", "win_rate": 0.8, "win_rate_ci": [0.72, 0.88]}
                | record
                | {"first_position_rate": 0.55, "unparsed_verdicts": 0, "baseline": "retrieval"},
                {"train_size": 200, "seed": 0, "candidate": "moe-llm", "win_rate": 0.6, "win_rate_ci": [0.52, 0.68]}
                | record
                | {"first_position_rate": 0.5, "unparsed_verdicts": 0, "baseline": "retrieval"},
            ],
        }
    return _results(_spec("generation"), trials, analysis)
