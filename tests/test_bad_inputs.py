"""The bad-input probe: every case in tests/bad_inputs.py through the real CLI (in process, for speed).

For each: the expected exit code, at most 3 lines, never a traceback, the expected message, and, where a
run folder is involved, its outputs byte-for-byte unchanged. Then the run-folder lock, label merging
warnings, and a hypothesis fuzz of overrides, YAML documents and CSV bytes through `validate`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest
import yaml
from bad_inputs import CASES, LABELS, Case, base_config, records, rows, validate_data, write_config, write_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bakeoff.cli.main import app
from bakeoff.runners.lock import run_folder_lock

OUTPUTS = ("results.json", "summary.md", "report.html")


def invoke(argv: list[str]):
    return CliRunner().invoke(app, argv, catch_exceptions=True, env={"COLUMNS": "200", "HF_HUB_OFFLINE": "1"})


def assert_no_traceback(result) -> None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"traceback instead of a message:\n{trace}\noutput:\n{result.output}")


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A real finished run (TF-IDF on a small CSV): config.yaml, train.csv and run/ in one folder."""
    folder = tmp_path_factory.mktemp("finished")
    result = invoke(["run", str(write_config(folder, base_config(folder)))])
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    return folder


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_clear_message(case: Case, tmp_path, request):
    if case.needs_run:
        shutil.copytree(request.getfixturevalue("finished_run"), tmp_path, dirs_exist_ok=True)
        for name in OUTPUTS:
            shutil.copyfile(tmp_path / "run" / name, tmp_path / f"{name}.orig")
    result = invoke(case.make(tmp_path))
    assert_no_traceback(result)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == case.exit_code, result.output
    assert len(lines) <= 3, f"{len(lines)} lines:\n{result.output}"
    assert re.search(case.message, flat(result.output)), f"expected /{case.message}/ in:\n{result.output}"
    if case.check is not None:
        case.check(tmp_path)


VALIDATE_CASES = [c for c in CASES if not c.needs_run and c.id.split(":")[0] not in ("run", "report", "recommend")]


@pytest.mark.parametrize("case", VALIDATE_CASES, ids=[c.id for c in VALIDATE_CASES])
def test_run_refuses_what_validate_refuses_with_the_same_message_before_any_trial(case: Case, tmp_path):
    argv = case.make(tmp_path)
    if argv[0] != "validate":
        pytest.skip("not a validate case")
    said = {}
    for command in ("validate", "run"):
        result = invoke([command, *argv[1:]])
        assert_no_traceback(result)
        assert result.exit_code == 2, result.output
        said[command] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert said["run"] == said["validate"]
    assert not (tmp_path / "run" / "results.sqlite").exists()


def test_the_probe_has_at_least_100_cases():
    assert len(CASES) >= 100


def test_labels_differing_by_spaces_are_merged_with_a_warning(tmp_path):
    make = validate_data(records(lambda d: [r | {"label": r["label"] + " "} if i % 2 else r for i, r in enumerate(d)]))
    result = invoke(make(tmp_path))
    assert result.exit_code == 0, result.output
    said = flat(result.output)
    assert "differ only by surrounding spaces; merged into 'billing'" in said
    assert "'labels': 3" in said  # three classes, not six


def test_json_array_of_records_loads(tmp_path):
    import json

    (tmp_path / "train.json").write_text(json.dumps(rows()), encoding="utf-8")
    result = invoke(["validate", str(write_config(tmp_path, base_config(tmp_path, tmp_path / "train.json")))])
    assert result.exit_code == 0, result.output


def test_a_second_driver_is_refused_with_the_holders_pid(tmp_path):
    config = write_config(tmp_path, base_config(tmp_path))
    with run_folder_lock(tmp_path / "run"):
        result = invoke(["run", str(config)])
    assert_no_traceback(result)
    assert result.exit_code == 2
    assert f"is in use by PID {os.getpid()} (started " in flat(result.output)
    assert not (tmp_path / "run" / "results.sqlite").exists()


def test_a_lock_left_by_a_killed_driver_never_blocks(tmp_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from bakeoff.runners.lock import "
            "run_folder_lock\n"
            f"with run_folder_lock({str(run_dir)!r}):\n    print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match=f"in use by PID {holder.pid}"):
            with run_folder_lock(run_dir):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert (run_dir / ".bakeoff.lock").read_text().split()[0] == str(holder.pid)  # the stale file is still there
    with run_folder_lock(run_dir):
        assert (run_dir / ".bakeoff.lock").read_text().split()[0] == str(os.getpid())


@pytest.mark.integration
def test_two_real_drivers_on_one_folder_one_is_refused(tmp_path):
    """Two `bakeoff run` processes at once: exactly one runs the trials."""
    config = write_config(tmp_path, base_config(tmp_path))
    env = os.environ | {"HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    command = [sys.executable, "-m", "bakeoff.cli", "run", str(config)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (tmp_path / "run" / "results.sqlite").exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    first.communicate(timeout=300)
    assert first.returncode == 0
    if second.returncode == 0:  # the first finished before the second started: it must then have skipped everything
        assert "0 trials run" in second.stderr
    else:
        assert second.returncode == 2 and "is in use by PID" in flat(second.stderr) and "Traceback" not in second.stderr


# ----- fuzz: whatever a user types, `validate` answers ok or one short error -----


def _assert_clean_exit(result) -> None:
    assert_no_traceback(result)
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert len([line for line in result.output.splitlines() if line.strip()]) <= 3, result.output


KEYS = [
    "name",
    "training.epochs",
    "training.lora.r",
    "grid.train_sizes",
    "grid.seeds",
    "task.data.label_column",
    "task.data.labels",
    "evaluation.perturbations",
    "efficiency.gpus",
    "decision.gpu",
    "candidates.0.model",
    "candidates.0.method",
    "candidates.1.name",
    "output.dir",
    "task.split.test_fraction",
    "training.epochs.x",
    "x.y.z",
    "task",
    "candidates",
]
VALUES = st.one_of(
    st.sampled_from(
        [
            "1",
            "-1",
            "0.5",
            "[",
            "]",
            "{a: 1}",
            "[6, 12]",
            "null",
            "''",
            "true",
            "[/INST]",
            "a10g",
            "lora",
            "../x",
            "~",
            "- a",
            ": :",
            "[[1]]",
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
)
FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=3))
def test_fuzzed_overrides_never_raise_a_traceback(tmp_path, pairs):
    config = write_config(tmp_path, base_config(tmp_path))
    _assert_clean_exit(invoke(["validate", str(config), "--no-check-data", *[f"{k}={v}" for k, v in pairs]]))


YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 500), st.floats(allow_nan=True), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            ["name", "task", "candidates", "training", "grid", "evaluation", "efficiency", "decision", "output", "junk"]
        ),
        YAML_VALUES,
        max_size=6,
    )
)
def test_fuzzed_yaml_documents_never_raise_a_traceback(tmp_path, document):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    _assert_clean_exit(invoke(["validate", str(path)]))


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["train.csv", "train.jsonl", "train.json", "train.parquet"]))
def test_fuzzed_data_bytes_never_raise_a_traceback(tmp_path, content, name):
    data = tmp_path / name
    data.write_bytes(content)
    _assert_clean_exit(invoke(["validate", str(write_config(tmp_path, base_config(tmp_path, data)))]))


@FUZZ
@given(
    st.lists(
        st.tuples(st.text(max_size=30), st.sampled_from([*LABELS, " billing", "x", "[b]", ""])), min_size=0, max_size=40
    )
)
def test_fuzzed_csv_rows_never_raise_a_traceback(tmp_path, pairs):
    data = write_csv(tmp_path / "train.csv", [{"text": t, "label": label} for t, label in pairs] + rows(8))
    _assert_clean_exit(invoke(["validate", str(write_config(tmp_path, base_config(tmp_path, data)))]))
