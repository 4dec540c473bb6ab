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
