"""Bad inputs of reliability round 3 (issue 42), serving: cases in the form of tests/bad_inputs.py.

bad_inputs.py adds these to its CASES at its end (import bad_inputs, not this module, first).
Cases that need a live server (a server killed mid-test, a server of another run, text/plain POSTs) are in
tests/test_serving_reliability.py.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from bad_inputs import Case

DEAD_URL = "http://127.0.0.1:9"  # nothing is sent: each case is refused before the first request


def texts_file(data: bytes) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        (tmp / "texts.txt").write_bytes(data)
        return ["loadtest", DEAD_URL, "--rate", "1", "--texts", str(tmp / "texts.txt")]

    return make


def trial_folder(tmp: Path) -> Path:
    return next((tmp / "run" / "trials").glob("tfidf__*"))


def truncated_baseline(tmp: Path) -> list[str]:
    path = trial_folder(tmp) / "baseline.joblib"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return ["serve", str(tmp / "run"), "--candidate", "tfidf", "--port", "0"]


def overwritten_baseline(tmp: Path) -> list[str]:
    (trial_folder(tmp) / "baseline.joblib").write_bytes(b"not a pickle at all")
    return ["serve", str(tmp / "run"), "--candidate", "tfidf", "--port", "0"]


def deleted_trial_folder(tmp: Path) -> list[str]:
    shutil.rmtree(trial_folder(tmp))
    return ["serve", str(tmp / "run"), "--candidate", "tfidf", "--port", "0"]


def set_task_type(tmp: Path, task_type: str) -> None:
    """Rewrite the finished run's stored task type (a stand-in for a run of another task)."""
    with sqlite3.connect(tmp / "run" / "results.sqlite") as db:
        (spec,) = db.execute("SELECT value FROM run WHERE key = 'spec'").fetchone()
        spec = json.loads(spec)
        spec["task"]["type"] = task_type
        db.execute("UPDATE run SET value = ? WHERE key = 'spec'", (json.dumps(spec),))


def texts_of_extraction_run(tmp: Path) -> list[str]:
    set_task_type(tmp, "extraction")
    return ["loadtest", DEAD_URL, "--rate", "1", "--run", str(tmp / "run")]


def loadtest_into_run(candidate: str, task_type: str | None = None) -> Callable[[Path], list[str]]:
    """`loadtest --run RUN --candidate NAME`; `task_type` rewrites the run's stored task type first."""

    def make(tmp: Path) -> list[str]:
        if task_type is not None:
            set_task_type(tmp, task_type)
        (tmp / "texts.txt").write_text("hello\n", encoding="utf-8")
        argv = ["loadtest", DEAD_URL, "--rate", "1", "--texts", str(tmp / "texts.txt")]
        return argv + ["--run", str(tmp / "run"), "--candidate", candidate]

    return make


def loadtest_texts_of(run: str) -> Callable[[Path], list[str]]:
    """`loadtest --run RUN` for its test texts only (no --candidate: nothing to store)."""

    def make(tmp: Path) -> list[str]:
        return ["loadtest", DEAD_URL, "--rate", "1", "--run", run.replace("TMP", str(tmp))]

    return make


def no_folder_made(tmp: Path) -> None:
    assert not (tmp / "typo").exists(), "a mistyped --run must not create a run folder"


def nothing_stored(tmp: Path) -> None:
    with sqlite3.connect(tmp / "run" / "results.sqlite") as db:
        assert db.execute("SELECT value FROM run WHERE key = 'serving'").fetchone() is None, "a test was stored"


CASES: list[Case] = [
    Case(
        "loadtest: texts file not UTF-8",
        texts_file(b"my card is late\n\xff\xfe caf\xe9 \xe0 la carte\n"),
        r"--texts \S*texts\.txt is not UTF-8 text \(byte 0xff at offset 16\)",
        fix="save the file as UTF-8, one text per line",
    ),
    Case(
        "loadtest: texts file with no text",
        texts_file(b"\n   \n\n"),
        r"--texts \S*texts\.txt has no text",
        fix="write one text per line",
    ),
    Case(
        "serve: baseline file cut short",
        truncated_baseline,
        r"baseline\.joblib is damaged, cut short or overwritten \(\w+ reading it\): re-run the trial",
        fix="re-run the trial: `bakeoff run` its config with a new `output.dir`",
        needs_run=True,
    ),
    Case(
        "serve: baseline file overwritten",
        overwritten_baseline,
        r"baseline\.joblib is damaged",
        fix="re-run the trial: `bakeoff run` its config with a new `output.dir`",
        needs_run=True,
    ),
    Case(
        "serve: trial folder deleted",
        deleted_trial_folder,
        r"trial folder \S*trials/tfidf__\S* is missing \(deleted or moved\): put it back, or re-run the trial",
        fix="restore the trial folder, or re-run the trial with a new `output.dir`",
        needs_run=True,
    ),
    Case(
        "loadtest: --candidate the run does not have",
        loadtest_into_run("tfidf-logreg"),
        r"--candidate `tfidf-logreg` has no finished trial in \S*; choose one of: tfidf",
        fix="pass a candidate name from the run's results (not the model name)",
        needs_run=True,
        check=nothing_stored,
    ),
    Case(
        "loadtest: --run is not a run folder",
        loadtest_texts_of("TMP/typo/run"),
        r"--run \S*typo/run is not a bakeoff run folder \(no results\.sqlite\)",
        fix="pass the folder `bakeoff run` wrote",
        check=no_folder_made,
    ),
    Case(
        "loadtest: texts from the run of an extraction task",
        texts_of_extraction_run,
        r"--run \S* holds a `extraction` task: its test texts are not for a classifier; pass --texts FILE",
        fix="pass --texts FILE",
        needs_run=True,
    ),
    Case(
        "loadtest: --run of an extraction task",
        loadtest_into_run("tfidf", task_type="extraction"),
        r"--run \S* holds a `extraction` task: `bakeoff serve` serves classification trials only",
        fix="drop --run and --candidate to load-test without storing",
        needs_run=True,
        check=nothing_stored,
    ),
]
