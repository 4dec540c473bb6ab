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


def _tiny_gguf(path: Path) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_token_list([f"t{i}" for i in range(50)])
    writer.add_tensor("token_embd.weight", np.arange(8, dtype=np.float32).reshape(2, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_gguf_conversion_parses_each_file_once(tmp_path):
    """transformers opens a GGUF three times per conversion; inside `_gguf_parsed_once` they share one reader,
    which holds the memory map as a plain array and reads every field as gguf's own reader does."""
    import gguf
    import numpy as np

    from bakeoff.models.load import _gguf_parsed_once

    path = _tiny_gguf(tmp_path / "tiny.gguf")
    parse = gguf.GGUFReader
    plain = parse(path)
    llama = gguf.MODEL_ARCH.LLAMA
    with _gguf_parsed_once():
        first, again = gguf.GGUFReader(path), gguf.GGUFReader(str(path))
        assert first is again
        assert gguf.get_tensor_name_map(llama, 2) is gguf.get_tensor_name_map(llama, 2), "built once"
        assert np.array_equal(np.asarray(first.tensors[0].data).ravel(), np.arange(8, dtype=np.float32))
    assert type(first.data) is np.ndarray and isinstance(plain.data, np.memmap)
    assert list(first.fields) == list(plain.fields)
    for name, field in plain.fields.items():
        assert field.data == first.fields[name].data and field.types == first.fields[name].types
        assert all(np.array_equal(a, b) for a, b in zip(field.parts, first.fields[name].parts, strict=True))
    assert first.fields["tokenizer.ggml.tokens"].contents()[:3] == ["t0", "t1", "t2"]
    assert gguf.GGUFReader is parse, "the reader class is restored after the conversion"
    assert gguf.get_tensor_name_map(llama, 2) is not gguf.get_tensor_name_map(llama, 2), "restored"
    assert gguf.GGUFReader(path) is not first


def test_a_gguf_metadata_is_read_into_python_once(tmp_path, monkeypatch):
    """The tokenizer's and the model's config calls to `load_gguf_checkpoint(path, return_tensors=False)` share
    one read; each caller gets its own copy, and the weights call still goes through."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    from bakeoff.models.load import _gguf_parsed_once

    path = _tiny_gguf(tmp_path / "tiny.gguf")
    load_checkpoint, calls = gguf_utils.load_gguf_checkpoint, []

    def recorded(path, return_tensors=False, **kwargs):
        calls.append(return_tensors)
        return "weights" if return_tensors else load_checkpoint(path, return_tensors=False)

    monkeypatch.setattr(gguf_utils, "load_gguf_checkpoint", recorded)
    with _gguf_parsed_once():
        first = gguf_utils.load_gguf_checkpoint(str(path), return_tensors=False)
        first["config"]["model_type"] = "changed by a caller"
        second = gguf_utils.load_gguf_checkpoint(str(path), return_tensors=False)
        assert len(calls) == 1
        assert second["config"]["model_type"] == "llama"
        assert second["tokenizer"]["tokens"] == [f"t{i}" for i in range(50)]
        assert gguf_utils.load_gguf_checkpoint(str(path), return_tensors=True, model_to_load=None) == "weights"
        assert calls == [False, True]
    assert second == load_checkpoint(str(path), return_tensors=False)
    gguf_utils.load_gguf_checkpoint(str(path), return_tensors=False)
    assert len(calls) == 3, "outside the context every call reads the file"


@pytest.mark.integration
def test_converting_the_real_smollm2_gguf_parses_it_once(tmp_path, monkeypatch):
    import gguf

    monkeypatch.setenv("BAKEOFF_CACHE", str(tmp_path))  # a cold cache: this load converts
    parses = []
    init = gguf.GGUFReader.__init__
    monkeypatch.setattr(gguf.GGUFReader, "__init__", lambda self, *a, **k: parses.append(a) or init(self, *a, **k))
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


def test_a_tokenizer_is_loaded_once_per_folder_and_again_when_its_files_change(tmp_path, tiny_folder, monkeypatch):
    import transformers

    folder = tmp_path / "model"
    shutil.copytree(tiny_folder, folder)
    source = resolve_source(str(folder))
    loads = []
    real = transformers.AutoTokenizer.from_pretrained
    monkeypatch.setattr(
        transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: loads.append(a[0]) or real(*a, **k)
    )
    first = load_tokenizer(source, LoadOptions())
    assert load_tokenizer(source, LoadOptions()) is first and len(loads) == 1, "a grid's trials share one load"
    config = folder / "tokenizer_config.json"
    config.write_text(config.read_text().replace("<|im_end|>", "<|endoftext|>"))
    again = load_tokenizer(source, LoadOptions())
    assert again is not first and len(loads) == 2 and again.eos_token == "<|endoftext|>"
    (folder / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelError, match="tokenizer"):
        load_tokenizer(source, LoadOptions())


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://huggingface.co/mistralai/Mistral-7B-v0.1", "here `mistralai/Mistral-7B-v0.1`$"),
        ("https://huggingface.co/mistralai/Mistral-7B-v0.1/tree/main", "here `mistralai/Mistral-7B-v0.1`$"),
        ("https://huggingface.co/acme/tiny/tree/v2", r"here `acme/tiny`, with `revision: v2`"),
        ("https://huggingface.co/acme/tiny/blob/main/config.json", "here `acme/tiny`$"),
        ("http://www.huggingface.co/acme/tiny?library=transformers", "here `acme/tiny`$"),
        ("huggingface.co/acme/tiny", "here `acme/tiny`$"),
        ("https://hf.co/acme/tiny/", "here `acme/tiny`$"),
        ("hf://acme/tiny", "here `acme/tiny`$"),
        ("https://huggingface.co/acme/tiny.git", "here `acme/tiny`$"),
        ("https://huggingface.co/gpt2/tree/main", "here `gpt2`$"),
        ("https://huggingface.co/datasets/acme/tickets", "is a Hugging Face dataset, not a model"),
        ("https://huggingface.co/spaces/acme/demo", "is a Hugging Face space, not a model"),
        ("https://huggingface.co/", "write a Hub id as ORG/NAME"),
        ("https://example.com/llama.safetensors", r"never URLs: download it and point at the folder"),
        ("s3://bucket/models/llama", r"Hugging Face ids \(written ORG/NAME\)"),
    ],
)
def test_a_web_address_is_refused_with_the_hub_id_to_write(url, expected):
    with pytest.raises(ModelError, match=expected) as err:
        resolve_source(url)
    assert "model path not found" not in str(err.value) and "\n" not in str(err.value)


def test_a_folder_named_like_a_hub_host_is_still_a_folder(tmp_path, tiny_folder, monkeypatch):
    shutil.copytree(tiny_folder, tmp_path / "huggingface.co" / "acme" / "tiny")
    monkeypatch.chdir(tmp_path)
    assert resolve_source("huggingface.co/acme/tiny").kind == "folder"


def test_a_near_miss_of_a_short_name_gets_did_you_mean():
    with pytest.raises(ModelError, match=r"^unknown model `smollm2-136m`: did you mean `smollm2-135m`\?"):
        resolve_source("smollm2-136m")
    with pytest.raises(ModelError, match="the model name is empty"):
        resolve_source("  ")


def test_closest_names_rank_by_edit_distance():
    from bakeoff.models.sources import closest_names

    known = ["smollm2-135m", "smollm2-360m", "mistral-7b", "mixtral-8x7b", "mistral-7b-v0.3"]
    assert closest_names("smollm2-136m", known) == ["smollm2-135m"]
    assert closest_names("mistral-8b", known) == ["mistral-7b"]
    assert closest_names("Mistral-7B", known) == ["mistral-7b"]
    assert closest_names("gpt2", known) == []


def test_a_folder_or_cached_snapshot_whose_config_no_model_can_have_is_refused(tmp_path, tiny_folder, monkeypatch):
    import json

    folder = tmp_path / "broken"
    shutil.copytree(tiny_folder, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"num_hidden_layers": 0}))
    with pytest.raises(ModelError, match=r"broken/config.json: `num_hidden_layers: 0` is impossible"):
        resolve_source(str(folder))
    repo = tmp_path / "hub" / "models--acme--broken"
    shutil.copytree(folder, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match=r"the config.json of `acme/broken` .*`num_hidden_layers: 0` is impossible"):
        resolve_source("acme/broken")
