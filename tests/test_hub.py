"""Hub ids fetched on first use, against a local stand-in for the Hub (tests/hub_standin.py): no network.

conftest sets HF_HUB_OFFLINE=1 for the session, and huggingface_hub reads it once at import; the `hub`
fixture turns offline off for one test (the constant and the variable), points HF_ENDPOINT at the
stand-in and HF_HUB_CACHE at a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from hub_standin import StandinHub, StandinRepo

from bakeoff.errors import BakeoffError, ModelError
from bakeoff.models.hub import fetch
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.sources import resolve_source

REPO_ID = "acme/tiny-llama"
SHA_MAIN, SHA_V1 = "a" * 40, "b" * 40
PICKLE = b"not-really-a-pickle" * 100


def who(name: str = "tiny") -> str:
    return f"candidate `{name}`"


def tiny_repo(tiny_folder: Path) -> StandinRepo:
    """The tiny model at two commits (main, tag v1), plus files loading must never fetch."""
    files = StandinRepo.from_folder(tiny_folder).commits["a" * 40]
    extra = {"pytorch_model.bin": PICKLE, "original/consolidated.00.pth": PICKLE, "README.md": b"# tiny"}
    v1 = files | {"config.json": files["config.json"].replace(b'"llama"', b'"llama" ')} | extra
    return StandinRepo({SHA_MAIN: files | extra, SHA_V1: v1}, {"main": SHA_MAIN, "v1": SHA_V1})


@pytest.fixture
def online(tmp_path, monkeypatch):
    """Offline off for this test, an empty Hugging Face cache; yields a function that serves repos."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return cache


@pytest.fixture
def hub(online, tiny_folder, monkeypatch):
    with StandinHub({REPO_ID: tiny_repo(tiny_folder)}) as standin:
        monkeypatch.setenv("HF_ENDPOINT", standin.url)
        yield standin


def test_first_use_downloads_only_what_loading_reads_then_the_cache_serves(hub, online):
    source = fetch(resolve_source(REPO_ID), False, False, who())
    assert source.commit_sha == SHA_MAIN and source.hub_id == REPO_ID
    assert source.provenance == {"hub_id": REPO_ID, "revision": None, "commit_sha": SHA_MAIN}
    names = {p.name for p in Path(source.location).iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert "pytorch_model.bin" not in names and "original" not in names  # never pickle, never the native copy
    model = load_model(source, LoadOptions())
    assert model.config.model_type == "llama" and load_tokenizer(source, LoadOptions()).eos_token == "<|im_end|>"
    assert len(hub.gets("model.safetensors")) == 1

    again = fetch(resolve_source(REPO_ID), False, False, who())
    assert again.location == source.location
    assert len(hub.gets("model.safetensors")) == 1  # the second use read the cache


def test_revision_is_fetched_and_named_by_its_commit_and_offline_then_reads_the_cache(hub, monkeypatch):
    import huggingface_hub.constants

    source = fetch(resolve_source(REPO_ID, revision="v1"), False, False, who())
    assert source.commit_sha == SHA_V1 and Path(source.location).name == SHA_V1 and source.revision == "v1"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cached = resolve_source(REPO_ID, revision="v1")
    assert cached.commit_sha == SHA_V1 and cached.location == source.location
    with pytest.raises(ModelError, match="offline mode is on"):
        resolve_source(REPO_ID)  # main was never fetched
    with pytest.raises(ModelError, match="has no revision `v9`"):
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        fetch(resolve_source(REPO_ID, revision="v9"), False, False, who())


def test_pickle_only_repo_needs_allow_pickle(online, tiny_folder, monkeypatch):
    files = StandinRepo.from_folder(tiny_folder).commits["a" * 40]
    files = {k: v for k, v in files.items() if not k.endswith(".safetensors")} | {"pytorch_model.bin": PICKLE}
    with StandinHub({"acme/pickled": StandinRepo({SHA_MAIN: files}, {"main": SHA_MAIN})}) as standin:
        monkeypatch.setenv("HF_ENDPOINT", standin.url)
        with pytest.raises(ModelError, match="only pickle weights.*allow_pickle: true"):
            fetch(resolve_source("acme/pickled"), False, False, who())
        assert not standin.gets("pytorch_model.bin")
        source = fetch(resolve_source("acme/pickled"), True, False, who())
        assert (Path(source.location) / "pytorch_model.bin").read_bytes() == PICKLE


def test_a_dropped_connection_resumes_with_a_ranged_request(hub, tiny_folder, monkeypatch):
    import huggingface_hub.constants

    # huggingface_hub writes (and can resume from) whole chunks of 10 MB; the tiny file needs small ones.
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 1024)
    hub.truncate_once.add("model.safetensors")
    source = fetch(resolve_source(REPO_ID), False, False, who())
    expected = (tiny_folder / "model.safetensors").read_bytes()
    assert (Path(source.location) / "model.safetensors").read_bytes() == expected
    first, second = [r.range for r in hub.gets("model.safetensors")]
    resumed_at = int(second.removeprefix("bytes=").removesuffix("-"))
    assert first is None and len(expected) // 2 - 1024 <= resumed_at <= len(expected) // 2  # only the rest again


def test_a_failed_download_keeps_finished_files_and_a_rerun_fetches_the_rest(hub):
    hub.fail.add("model.safetensors")
    with pytest.raises(ModelError, match="answered 500"):
        fetch(resolve_source(REPO_ID), False, False, who())
    before = {r.path for r in hub.log if r.method == "GET" and "/resolve/" in r.path}
    assert any(p.endswith("/config.json") for p in before)
    hub.fail.clear()
    hub.log.clear()
    fetch(resolve_source(REPO_ID), False, False, who())
    fetched = [r.path.rsplit("/", 1)[1] for r in hub.log if r.method == "GET" and "/resolve/" in r.path]
    assert "model.safetensors" in fetched and "config.json" not in fetched


def test_too_little_disk_is_refused_before_anything_is_written(hub, online, monkeypatch):
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=1000))
    with pytest.raises(ModelError, match=r"needs .* more in the Hugging Face cache .* 0.0 MB free"):
        fetch(resolve_source(REPO_ID), False, False, who())
    assert not [r for r in hub.log if "/resolve/" in r.path]
    assert not list(online.rglob("*.safetensors"))


def test_gated_repo_names_the_licence_page_and_uses_hf_token(online, tiny_folder, monkeypatch):
    repo = StandinRepo.from_folder(tiny_folder)
    repo.gated = True
    with StandinHub({"acme/gated": repo}, accepted_token="hf_standin_secret_0123") as standin:
        monkeypatch.setenv("HF_ENDPOINT", standin.url)
        with pytest.raises(ModelError) as refused:
            fetch(resolve_source("acme/gated"), False, False, who())
        assert str(refused.value) == (
            f"{who()}: `acme/gated` is gated (403): accept its licence at {standin.url}/acme/gated while logged "
            "in, then set HF_TOKEN to a read token of that account"
        )
        monkeypatch.setenv("HF_TOKEN", "hf_wrong")
        with pytest.raises(ModelError, match="the account of HF_TOKEN has no access yet"):
            fetch(resolve_source("acme/gated"), False, False, who())
        assert "hf_wrong" not in str(refused.value)
        monkeypatch.setenv("HF_TOKEN", "hf_standin_secret_0123")
        source = fetch(resolve_source("acme/gated"), False, False, who())
        assert source.commit_sha == SHA_MAIN
        assert standin.gets("model.safetensors")[0].authorization == "Bearer hf_standin_secret_0123"


def test_unknown_repo_and_no_network_are_one_line_each(online, monkeypatch):
    with StandinHub({}) as standin:
        monkeypatch.setenv("HF_ENDPOINT", standin.url)
        with pytest.raises(ModelError, match="`acme/nothing` is not on the Hub or is private"):
            fetch(resolve_source("acme/nothing"), False, False, who())
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ModelError, match="cannot reach the Hugging Face Hub at http://127.0.0.1:.*--offline"):
        fetch(resolve_source("acme/nothing"), False, False, who())


def test_parallel_trials_on_one_node_download_once(hub):
    results, errors = [], []

    def trial() -> None:
        try:
            results.append(fetch(resolve_source(REPO_ID), False, False, who()).location)
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=trial) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(set(results)) == 1 and len(results) == 3
    assert len(hub.gets("model.safetensors")) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed when this returns: connections are refused


def hub_config(tmp_path: Path, model: str, **candidate) -> Path:
    config = {
        "name": "hub-run",
        "task": {"builtin": "support-tickets", "builtin_examples": 200},
        "candidates": [{"name": "tiny", "model": model, "method": "zero-shot", **candidate}],
        "grid": {"train_sizes": [20]},
        "evaluation": {
            "max_test_items": 20,
            "max_train_items": 0,
            "bootstrap_samples": 100,
            "max_perturbed_items": 10,
            "max_validation_items": 10,
            "max_out_of_scope_items": 10,
            "latency_repeats": 3,
            "perturbations": [],
        },
        "efficiency": {"gpus": ["a10g"]},
        "output": {"dir": str(tmp_path / "run")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_validate_lists_sizes_without_downloading_weights(hub, tmp_path, capsys):
    from typer.testing import CliRunner

    from bakeoff.cli.main import app

    result = CliRunner().invoke(app, ["validate", str(hub_config(tmp_path, REPO_ID)), "--no-check-data"])
    assert result.exit_code == 0, result.output
    assert f"{REPO_ID} at commit {SHA_MAIN[:12]}" in result.output and "not yet in the cache" in result.output
    assert not hub.gets("model.safetensors")  # listing and one HEAD only
    assert [r.method for r in hub.log if "/resolve/" in r.path] == ["HEAD"]


def test_run_fetches_records_the_commit_and_never_stores_the_token(hub, tmp_path, monkeypatch, capsys):
    from bakeoff.cli.run import execute
    from bakeoff.config import load_spec

    token = "hf_standin_secret_0123"
    monkeypatch.setenv("HF_TOKEN", token)
    execute(load_spec(hub_config(tmp_path, REPO_ID, revision="v1"), []))
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    model = results["trials"][0]["result"]["model"]
    assert model["hub_id"] == REPO_ID and model["revision"] == "v1" and model["commit_sha"] == SHA_V1
    assert all(r.authorization == f"Bearer {token}" for r in hub.log)  # the token was used ...
    for path in (tmp_path / "run").rglob("*"):  # ... and is nowhere in the run folder
        assert not path.is_file() or token.encode() not in path.read_bytes(), path
    printed = capsys.readouterr()
    assert "downloading acme/tiny-llama" in printed.err and token not in printed.out + printed.err  # nor printed


@pytest.mark.integration
def test_validate_with_no_network_exits_2_with_one_line_within_30_s(tmp_path):
    config = hub_config(tmp_path, "mistralai/Mistral-7B-v0.1")
    env = os.environ | {
        "HF_HUB_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "0",
        "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
        "HF_HUB_CACHE": str(tmp_path / "hf-cache"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bakeoff.cli", "validate", str(config), "--no-check-data"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed_s = time.monotonic() - started
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) <= 2 and "cannot reach the Hugging Face Hub" in " ".join(lines) and "Traceback" not in done.stderr
    assert elapsed_s < 30


def test_offline_flag_keeps_the_cache_only_message(hub, tmp_path):
    from typer.testing import CliRunner

    from bakeoff.cli.main import app

    try:
        result = CliRunner().invoke(app, ["validate", str(hub_config(tmp_path, REPO_ID)), "--offline"])
    finally:
        import huggingface_hub.constants

        huggingface_hub.constants.HF_HUB_OFFLINE = True  # as conftest had it (the fixture restores it too)
    assert result.exit_code == 2 and "offline mode is on" in result.output
    assert not [r for r in hub.log]  # not one request


def test_hub_errors_pass_other_errors_through():
    from bakeoff.models.hub import hub_error

    err = ValueError("not the Hub's")
    assert hub_error(err, REPO_ID, None) is err
    assert isinstance(hub_error(ConnectionError("x"), REPO_ID, None), BakeoffError)
