"""Plain progress lines for logs: unit checks of the line format, and `bakeoff run` piped to a file."""

import os
import re
import subprocess
import sys

import pytest
import yaml
from rich.console import Console

from bakeoff.run_folder import PROGRESS_LOG
from bakeoff.runners.log_progress import ProgressLog

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def test_lines_are_timestamped_in_the_log_and_on_a_non_terminal_console(tmp_path):
    console = Console(file=open(tmp_path / "console.txt", "w"), force_terminal=False)
    log = ProgressLog(console, tmp_path, total=2, every_s=0.0)
    log.skipped("a/0")
    log.start("b/40")
    log.step(1.25)
    log.epoch(1, 1.0, 0.5)
    log.scoring(1)  # before any phase: the trial times its latency
    log.scoring_phase("test", 72)
    log.scoring(16)
    log.scoring(16)
    log.end(None)
    console.file.close()
    lines = (tmp_path / PROGRESS_LOG).read_text().splitlines()
    assert all(re.match(STAMP + " ", line) for line in lines)
    text = "\n".join(lines)
    assert "skip a/0 (already done) [1/2]" in text
    assert "start b/40 [2/2]" in text
    assert "b/40 train step 1, loss 1.2500" in text
    assert "b/40 epoch 1: train loss 1.0000, validation loss 0.5000" in text
    assert "b/40 scored 1 item (timing latency)" in text
    assert "b/40 scored 32 of 72 items (test)" in text
    assert re.search(r"done b/40 in \d+ s \[2/2\]$", text)
    assert (tmp_path / "console.txt").read_text().splitlines() == lines


def test_a_terminal_gets_no_plain_lines_and_periodic_lines_are_rate_limited(tmp_path):
    console = Console(file=open(tmp_path / "console.txt", "w"), force_terminal=True)
    log = ProgressLog(console, tmp_path, total=3, every_s=3600.0)
    log.start("t/0")
    for _ in range(50):
        log.step(0.5)
        log.scoring(4)
    log.end("out of memory")
    console.file.close()
    assert (tmp_path / "console.txt").read_text() == ""
    lines = (tmp_path / PROGRESS_LOG).read_text().splitlines()
    assert len(lines) == 2, "no step or scoring line within the interval"
    assert re.search(r"failed \(out of memory\) t/0 in \d+ s \[1/3\]$", lines[1]), "no plan: no ETA"


def test_the_eta_predicts_each_trial_left_from_finished_trials_of_its_kind(tmp_path, monkeypatch):
    """Baselines run first and take a second; a mean over finished trials said "ETA 5 s" with minute-long LLM
    trials left. Each trial left is predicted from its own kind, its fine-tune part scaled by its size."""
    clock = [0.0]
    monkeypatch.setattr("bakeoff.runners.log_progress.time.monotonic", lambda: clock[0])
    plan = {"tfidf/n32": ("tfidf", 32), "tfidf/n100": ("tfidf", 100), "llm/n0": ("llm zero", 0)}
    plan |= {"lora/n32": ("llm lora", 32), "lora/n100": ("llm lora", 100)}
    console = Console(file=open(tmp_path / "console.txt", "w"), force_terminal=False)
    log = ProgressLog(console, tmp_path, total=5, every_s=3600.0, plan=plan)

    def trial(trial_id, seconds, fine_tune_s):
        log.start(trial_id)
        clock[0] += seconds
        log.end(None, fine_tune_s)
        return log.eta_text()

    assert trial("tfidf/n32", 1.0, 0.5) == "ETA over 2 s (not timed yet: llm zero, llm lora)"  # tfidf/n100: 1.5 s
    assert trial("tfidf/n100", 2.0, 1.0) == "no ETA yet (llm zero, llm lora not timed yet)"
    assert trial("llm/n0", 30.0, 0.0) == "no ETA yet (llm lora not timed yet)"
    # 20 s of scoring + 40 s of fine-tuning on 32 examples: on 100, 20 + 40 * 100 / 32 = 145 s
    assert trial("lora/n32", 60.0, 40.0) == "ETA 2 min 25 s"
    assert trial("lora/n100", 140.0, 120.0) == ""
    log.console.file.close()
    lines = (tmp_path / PROGRESS_LOG).read_text().splitlines()
    assert lines[-3].endswith("done lora/n32 in 1 min 00 s [4/5, ETA 2 min 25 s]")
    assert lines[-1].endswith("done lora/n100 in 2 min 20 s [5/5]")


def test_a_skipped_or_failed_trial_predicts_nothing_and_leaves_the_plan(tmp_path, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("bakeoff.runners.log_progress.time.monotonic", lambda: clock[0])
    plan = {"a/1": ("a", 10), "a/2": ("a", 10), "a/3": ("a", 20)}
    log = ProgressLog(Console(file=open(os.devnull, "w")), tmp_path, total=3, every_s=3600.0, plan=plan)
    log.skipped("a/1")
    log.start("a/2")
    clock[0] += 500.0
    log.end("out of memory")
    assert log.eta_text() == "no ETA yet (a not timed yet)", "a failed trial's time is no prediction"


@pytest.mark.integration
def test_bakeoff_run_piped_to_a_file_prints_timestamped_progress(tmp_path, tiny_folder):
    config = {
        "name": "progress",
        "task": {"builtin": "support-tickets", "builtin_examples": 200},
        "candidates": [
            {"name": "tfidf", "model": "tfidf-logreg"},
            {"name": "tiny lora", "model": str(tiny_folder), "method": "lora"},
        ],
        "training": {"epochs": 2, "batch_size": 8, "max_validation_items": 10},
        "grid": {"train_sizes": [20]},
        "evaluation": {
            "max_test_items": 30,
            "bootstrap_samples": 100,
            "max_perturbed_items": 10,
            "max_validation_items": 10,
            "max_out_of_scope_items": 10,
            "latency_repeats": 3,
        },
        "runner": {"progress_every_s": 0.001},
        "output": {"dir": str(tmp_path / "run")},
    }
    path = tmp_path / "progress.yaml"
    path.write_text(yaml.safe_dump(config))
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bakeoff.cli", "run", str(path)], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr
    logged = (tmp_path / "run" / PROGRESS_LOG).read_text()
    for pattern in (
        STAMP + r" start tiny lora/\S+ \[\d/2\]",
        STAMP + r"   tiny lora/\S+ epoch 1: train loss \d+\.\d{4}, validation loss \d+\.\d{4}",
        STAMP + r"   tiny lora/\S+ epoch 2: ",
        STAMP + r"   tiny lora/\S+ train step \d+, loss ",
        STAMP + r"   tiny lora/\S+ scored \d+ of \d+ items \((test|train subset|validation|perturbed|out-of-scope)",
        STAMP + r" done tiny lora/\S+ in \d+ s \[\d/2",
        STAMP + r" done tfidf/\S+ in \d+ s \[\d/2",
    ):
        assert re.search(pattern, logged), pattern
        assert re.search(pattern, done.stderr), f"{pattern} not on the piped console"
    assert "[1/2, no ETA yet (tiny lora not timed yet)]" in logged, "tfidf's second says nothing of a LoRA trial"


def test_a_run_on_a_terminal_draws_its_bars_with_the_eta(tmp_path, tiny_folder):
    """On a terminal the rich bars render every row (overall, train, score): each must carry the ETA field."""
    from bakeoff.config import spec_from_dict
    from bakeoff.runners.local import run_spec

    spec = spec_from_dict(
        {
            "name": "bars",
            "task": {"builtin": "support-tickets", "builtin_examples": 200},
            "candidates": [
                {"name": "tfidf", "model": "tfidf-logreg"},
                {"name": "tiny lora", "model": str(tiny_folder), "method": "lora"},
            ],
            "training": {"epochs": 1, "batch_size": 8, "max_validation_items": 10},
            "grid": {"train_sizes": [16]},
            "evaluation": {
                "max_test_items": 16,
                "bootstrap_samples": 100,
                "max_perturbed_items": 10,
                "max_validation_items": 10,
                "max_out_of_scope_items": 10,
                "latency_repeats": 3,
            },
            "output": {"dir": str(tmp_path / "run")},
        }
    )
    with open(tmp_path / "terminal.txt", "w") as screen:
        outcome = run_spec(spec, Console(file=screen, force_terminal=True, width=160))
    assert outcome.ran == 2 and outcome.failed == 0
    drawn = (tmp_path / "terminal.txt").read_text()
    assert "no ETA yet (tiny lora not timed yet)" in drawn and "tiny lora/n16/s0 train" in drawn
