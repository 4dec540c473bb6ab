"""Model sources: a hub id from the local cache (offline), a local folder, GGUF short names."""

import shutil
from pathlib import Path

import pytest

from bakeoff.errors import ModelError
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.sources import SHORT_NAMES, resolve_source


def test_hub_id_resolves_from_the_local_cache_offline(tmp_path, tiny_folder, monkeypatch):
    # Lay the tiny model out exactly as huggingface_hub's cache does: models--org--name/snapshots/<rev>/...
    repo = tmp_path / "hub" / "models--acme--tiny-llama"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_folder, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    source = resolve_source("acme/tiny-llama")
    assert source.kind == "hub"
    model = load_model(source, LoadOptions())
    tokenizer = load_tokenizer(source, LoadOptions())
    assert model.config.model_type == "llama" and tokenizer.eos_token == "<|im_end|>"


def test_local_folder_and_wrong_paths(tmp_path, tiny_folder):
    assert resolve_source(str(tiny_folder)).kind == "folder"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_source(str(tmp_path / "empty"))
    with pytest.raises(ModelError, match="GGUF file not found"):
        resolve_source(str(tmp_path / "missing.gguf"))


@pytest.mark.parametrize(
    "name",
    # Gemma-3's GGUF conversion takes seconds: with the end-to-end tests, not in the quick check.
    [pytest.param(n, marks=pytest.mark.integration) if n.startswith("gemma") else n for n in sorted(SHORT_NAMES)],
)
def test_short_names_point_at_gguf_files_shipped_by_pypi_packages(name, tmp_path, monkeypatch):
    monkeypatch.setenv("BAKEOFF_CACHE", str(tmp_path))  # gemma's parts are assembled here, not in the user's cache
    source = resolve_source(name)
    assert source.kind == "gguf" and (Path(source.location) / source.gguf_file).stat().st_size > 50e6


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("name, params", [("smollm2-135m", 134_515_008), ("gemma3-270m", 268_098_176)])
def test_real_pretrained_models_load_and_score(name, params):
    """Loads the real weights (first time converts the GGUF: minutes) and scores two tickets."""
    from bakeoff.evaluation.score import label_log_probs, probabilities
    from bakeoff.models.prompt import PromptEncoder, PromptFormat

    source = resolve_source(name)
    tokenizer, model = load_tokenizer(source, LoadOptions()), load_model(source, LoadOptions())
    assert sum(p.numel() for p in model.parameters()) == params
    encoder = PromptEncoder(
        tokenizer, PromptFormat("Classify the customer message.", ["billing", "shipping"], show_label_list=True)
    )
    probs = probabilities(
        label_log_probs(
            model,
            encoder.encode(["I was charged twice", "Where is my parcel?"]),
            encoder.label_ids,
            tokenizer.pad_token_id,
        )
    )
    assert probs.shape == (2, 2)


def test_a_gguf_conversion_parses_each_file_once(tmp_path):
    """transformers opens a GGUF three times per conversion; inside `_gguf_parsed_once` they share one reader."""
    import gguf
    import numpy as np

    from bakeoff.models.load import _gguf_parsed_once

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_token_list([f"t{i}" for i in range(50)])
    writer.add_tensor("token_embd.weight", np.arange(8, dtype=np.float32).reshape(2, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    parse = gguf.GGUFReader
    with _gguf_parsed_once():
        first, again = gguf.GGUFReader(path), gguf.GGUFReader(str(path))
        assert first is again
        assert np.array_equal(np.asarray(first.tensors[0].data).ravel(), np.arange(8, dtype=np.float32))
    assert gguf.GGUFReader is parse, "the reader class is restored after the conversion"
    assert gguf.GGUFReader(path) is not first


@pytest.mark.integration
def test_converting_the_real_smollm2_gguf_parses_it_once(tmp_path, monkeypatch):
    import gguf

    monkeypatch.setenv("BAKEOFF_CACHE", str(tmp_path))  # a cold cache: this load converts
    parses = []
    parse = gguf.GGUFReader
    monkeypatch.setattr(gguf, "GGUFReader", lambda *a, **k: parses.append(a) or parse(*a, **k))
    source = resolve_source("smollm2-135m")
    tokenizer = load_tokenizer(source, LoadOptions())
    assert len(parses) == 1 and tokenizer.eos_token == "<|im_end|>"
    assert (tmp_path / "converted").is_dir()


def test_parallel_trials_convert_a_gguf_once(tmp_path, monkeypatch):
    """Two trials on one machine (the Ray runner) reaching the same GGUF: one converts, the other waits."""
    import threading
    import time

    from bakeoff.models import load
    from bakeoff.models.sources import ModelSource

    monkeypatch.setenv("BAKEOFF_CACHE", str(tmp_path / "cache"))
    (tmp_path / "m.gguf").write_bytes(b"GGUF not really")
    source = ModelSource("gguf", str(tmp_path), "m.gguf", "test")
    conversions = []

    def slow_convert(source, target):
        conversions.append(target)
        time.sleep(0.3)
        target.mkdir(parents=True)
        (target / "config.json").write_text("{}")

    monkeypatch.setattr(load, "_convert_gguf", slow_convert)
    folders = []
    threads = [threading.Thread(target=lambda: folders.append(load.converted_folder(source))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(conversions) == 1 and len(set(folders)) == 1 and (folders[0] / "config.json").is_file()
