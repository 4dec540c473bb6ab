"""A run folder's layout lives in `bakeoff.run_folder` only: its paths, the files it owns, and a scan of the
source that no other module spells the store's file name or joins a layout name onto a folder."""

import ast
from pathlib import Path

import pytest

from bakeoff import run_folder
from bakeoff.errors import BakeoffError
from bakeoff.run_folder import RunFolder, TrialFolder, owns, trial_folder_name
from bakeoff.runners import preflight

SRC = Path(run_folder.__file__).resolve().parent
# Names a path is built from, under the run folder or a trial folder: only run_folder.py joins them on.
LAYOUT_NAMES = {
    run_folder.STORE,
    run_folder.TRIALS,
    run_folder.WHATIF,
    run_folder.LOCK,
    run_folder.PROGRESS_LOG,
    run_folder.WRITE_PROBE,
    *run_folder.OUTPUTS,
    "predictions.npz",
    "predictions.jsonl",
    "item_scores.npz",
    "baseline.joblib",
}
# Edited by another change at the same time; remove once it asks RunFolder for the store's path.
PENDING: set[str] = set()


def test_the_layout(tmp_path):
    folder = RunFolder(tmp_path)
    assert folder.store == tmp_path / "results.sqlite"
    assert folder.trials == tmp_path / "trials"
    assert folder.outputs == (tmp_path / "summary.md", tmp_path / "results.json", tmp_path / "report.html")
    assert (folder.summary, folder.results_json, folder.report_html) == folder.outputs
    assert folder.whatif == tmp_path / "whatif"
    assert folder.progress_log == tmp_path / "progress.log"
    assert folder.lock == tmp_path / ".bakeoff.lock"
    assert RunFolder(str(tmp_path)).root == tmp_path  # a string is taken as a path


def test_a_trial_folder(tmp_path):
    assert trial_folder_name("tiny lora/n100/s0") == "tiny lora__n100__s0"
    trial = RunFolder(tmp_path).trial("tiny lora/n100/s0")
    assert trial == TrialFolder(tmp_path / "trials" / "tiny lora__n100__s0")
    assert trial.predictions == trial.path / "predictions.npz"
    assert trial.outputs == trial.path / "predictions.jsonl"
    assert trial.item_scores == trial.path / "item_scores.npz"
    assert trial.baseline == trial.path / "baseline.joblib"
    assert trial.weights("lora") == trial.weights("qlora") == trial.adapter == trial.path / "adapter"
    assert trial.weights("full") == trial.model == trial.path / "model"
    assert trial.weight_folders == (trial.adapter, trial.model)


def test_preflight_takes_the_files_a_run_folder_owns_from_run_folder(tmp_path):
    assert preflight.owns is owns and not hasattr(preflight, "OWN_FILES")
    for name in (*run_folder.OWN_FILES, "results.sqlite-wal", "results.sqlite.bad", "summary.md.partial"):
        assert owns(name), name
    for name in ("notes.txt", "summary.md", "results.json"):
        assert not owns(name), name
    for name in run_folder.OWN_FILES:
        (tmp_path / name).mkdir()
    assert preflight.is_run_folder(tmp_path)  # only what bakeoff writes: a stopped run's folder
    (tmp_path / "notes.txt").write_text("mine")
    assert not preflight.is_run_folder(tmp_path)
    RunFolder(tmp_path).store.write_bytes(b"")
    assert preflight.is_run_folder(tmp_path)  # its store says it is a run folder


def test_a_folder_without_a_store_is_refused_and_left_as_it_was(tmp_path):
    with pytest.raises(BakeoffError, match=r"^--run \S+ is not a bakeoff run folder \(no results\.sqlite\); ask$"):
        RunFolder(tmp_path).open_store("--run ", hint="ask")
    assert list(tmp_path.iterdir()) == []


def test_the_load_test_is_recorded_through_the_run_folder(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.claim_store("fp", {"spec": {"name": "x"}}).close()
    folder.record_serving("a", {"rate": 1})
    stored = folder.record_serving("a", {"rate": 2})
    assert stored["rate"] == 2 and [entry["rate"] for entry in stored["history"]] == [1]
    store = folder.open_store()
    try:
        assert store.get_meta("serving")["a"]["rate"] == 2
    finally:
        store.close()
    with pytest.raises(BakeoffError, match="different config"):
        folder.claim_store("another", {})


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _help_texts(tree: ast.AST) -> set[int]:
    """Option help shown to users (`help="A run folder (holds results.sqlite)."`): text, not a path."""
    return {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword) and node.arg == "help"
        for part in ast.walk(node.value)
        if isinstance(part, ast.Constant)
    }


def layout_spelled_outside_run_folder() -> list[str]:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative == "run_folder.py" or relative in PENDING:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        text_only = _docstrings(tree) | _help_texts(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and run_folder.STORE in node.value
                and id(node) not in text_only
            ):
                problems.append(f"{relative}:{node.lineno}: spells {run_folder.STORE}")
            if (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Div)
                and isinstance(node.right, ast.Constant)
                and node.right.value in LAYOUT_NAMES
            ):
                problems.append(f"{relative}:{node.lineno}: joins {node.right.value!r} onto a folder")
    return sorted(problems)


def test_no_other_module_knows_the_layout():
    assert layout_spelled_outside_run_folder() == []


def test_the_scan_finds_what_it_looks_for(tmp_path, monkeypatch):
    (tmp_path / "run_folder.py").write_text('STORE = "results.sqlite"\n')
    (tmp_path / "reader.py").write_text(
        '"""Reads results.sqlite."""\nfrom pathlib import Path\n\n'
        'def store(run_dir):\n    return Path(run_dir) / "results.sqlite"\n\n'
        'def trial(run_dir, name):\n    return run_dir / "trials" / name\n'
    )
    monkeypatch.setattr(f"{__name__}.SRC", tmp_path)
    assert layout_spelled_outside_run_folder() == [
        "reader.py:5: joins 'results.sqlite' onto a folder",
        "reader.py:5: spells results.sqlite",
        "reader.py:8: joins 'trials' onto a folder",
    ]
