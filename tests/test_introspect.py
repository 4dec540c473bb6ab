"""Architecture facts from configs: exact on tiny models, within 0.5% of published counts on the catalog."""

import pytest
from tiny import ARCHITECTURES, tiny_model

from bakeoff.config import LoraSpec
from bakeoff.efficiency.catalog import architecture_of, catalog
from bakeoff.efficiency.introspect import introspect
from bakeoff.training.lora import prepare_for_method


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_counts_are_exact_on_instantiated_tiny_models(arch):
    model = tiny_model(arch, vocab_size=600)
    facts = introspect(model.config)
    assert facts.params_total == sum(p.numel() for p in model.parameters())
    parts = (
        facts.params_embedding
        + facts.params_attention
        + facts.params_mlp
        + facts.params_router
        + facts.params_lm_head
        + facts.params_other
    )
    assert parts == facts.params_total
    for scope in ("attention", "all"):
        peft_model = prepare_for_method(tiny_model(arch, 600), "lora", LoraSpec(r=4, targets=scope), 0, False)
        trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        assert 4 * facts.lora_params_per_rank[scope] == trainable


def test_moe_verdicts_and_active_parameters_on_tiny_models():
    mixtral = introspect(tiny_model("mixtral", 600).config)
    assert mixtral.is_moe and mixtral.num_experts == 4 and mixtral.experts_per_token == 2
    routed = mixtral.params_mlp  # no shared experts in Mixtral
    assert mixtral.params_active == mixtral.params_total - routed + routed // 2
    llama = introspect(tiny_model("llama", 600).config)
    assert not llama.is_moe and llama.params_active == llama.params_total


@pytest.mark.parametrize("name", list(catalog()))
def test_catalog_matches_published_parameter_counts(name):
    facts = architecture_of(name)
    published = catalog()[name]["published_params"]
    assert facts.params_total == pytest.approx(published["total"], rel=0.005)
    if "active" in published:
        assert facts.params_active == pytest.approx(published["active"], rel=0.005)


def test_mistral_7b_is_dense_and_mixtral_is_the_moe():
    mistral, mixtral = architecture_of("mistral-7b"), architecture_of("mixtral-8x7b")
    assert not mistral.is_moe and mistral.params_active == mistral.params_total
    assert mixtral.is_moe and (mixtral.num_experts, mixtral.experts_per_token) == (8, 2)
    assert mistral.sliding_window == 4096 and mistral.num_kv_heads == 8 and mistral.num_heads == 32


def test_kv_cache_and_tied_embeddings_by_hand():
    llama = architecture_of("llama-3-8b")
    # 2 (K and V) x 32 layers x 8 KV heads x 128 head dim x 2 bytes = 131,072 bytes per token in bf16
    assert llama.kv_cache_bytes_per_token["bfloat16"] == 131072
    assert not llama.tied_embeddings and llama.params_lm_head == 128256 * 4096
    small = architecture_of("smollm2-135m")
    assert small.tied_embeddings and small.params_lm_head == 0 and small.params_lm_head_compute == 49152 * 576


# ----- config.json numbers no model can have (issue 42): named before transformers sees them -----

GOOD = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 9}


@pytest.mark.parametrize("name", list(catalog()))
def test_every_catalog_config_is_possible(name):
    from bakeoff.efficiency.catalog import catalog_config
    from bakeoff.efficiency.introspect import impossible_value

    assert impossible_value(catalog()[name]["config"]) is None
    assert impossible_value(catalog_config(name).to_dict()) is None


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_tiny_config_is_possible(arch):
    from tiny import COMMON

    from bakeoff.efficiency.introspect import impossible_value

    config_class, _, extra = ARCHITECTURES[arch]
    assert impossible_value(config_class(vocab_size=600, **COMMON, **extra).to_dict()) is None


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"hidden_size": -64}, "`hidden_size: -64` is impossible"),
        ({"num_hidden_layers": 0}, "`num_hidden_layers: 0` is impossible"),
        ({"num_hidden_layers": True}, "`num_hidden_layers: true` is impossible"),
        ({"vocab_size": "many"}, '`vocab_size: "many"` is impossible'),
        ({"hidden_size": 64.0}, "`hidden_size: 64.0` is impossible"),
        ({"num_attention_heads": 5}, "`num_attention_heads: 5` does not divide `hidden_size: 64`"),
        ({"num_key_value_heads": 3}, "`num_key_value_heads: 3` does not divide `num_attention_heads: 4`"),
        ({"num_key_value_heads": 8}, "`num_key_value_heads: 8` does not divide `num_attention_heads: 4`"),
        ({"max_position_embeddings": -1}, "`max_position_embeddings: -1` is impossible"),
        ({"intermediate_size": 0}, "`intermediate_size: 0` is impossible"),
        ({"num_local_experts": 2, "num_experts_per_tok": 3}, "`num_experts_per_tok: 3` is more than"),
        ({"num_local_experts": -1}, "`num_local_experts: -1` is impossible"),
        ({"text_config": GOOD | {"num_hidden_layers": -1}}, "`text_config.num_hidden_layers: -1` is impossible"),
    ],
)
def test_an_impossible_config_value_is_named_with_its_key_and_value(change, expected):
    from bakeoff.efficiency.introspect import impossible_value

    assert expected in impossible_value(GOOD | change)


@pytest.mark.parametrize(
    "change",
    [
        {
            "num_attention_heads": 5,
            "num_key_value_heads": 5,
            "head_dim": 16,
        },  # explicit head_dim: heads need not divide the hidden size
        {"num_key_value_heads": None, "head_dim": None},  # null: the class default
        {"intermediate_size": [128, 256]},  # per-layer lists are not judged
        {"top_k": 50},  # a generation setting in old configs, not routing
        {"num_local_experts": 8, "num_experts_per_tok": 2},
    ],
)
def test_possible_configs_pass(change):
    from bakeoff.efficiency.introspect import impossible_value

    assert impossible_value(GOOD | change) is None


def test_other_spellings_of_the_numbers_are_checked_too():
    from bakeoff.efficiency.introspect import impossible_value

    gpt2 = {"model_type": "gpt2", "n_embd": 64, "n_head": 5, "n_layer": 2, "vocab_size": 9}
    assert "`n_head: 5` does not divide `n_embd: 64`" in impossible_value(gpt2)


def test_a_folder_whose_config_no_model_can_have_is_refused_naming_the_file(tmp_path):
    import json

    from bakeoff.errors import ModelError

    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 9} | GOOD
    for name, change, expected in [
        ("negative", {"hidden_size": -64}, "`hidden_size: -64` is impossible"),
        # consistent in the file, impossible with transformers' default of 32 heads: caught while loading
        ("defaults", {"hidden_size": 16, "num_attention_heads": None, "num_key_value_heads": None}, "32"),
        ("overflow", {"hidden_size": 10**12}, "transformers cannot build the model it describes"),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({k: v for k, v in (config | change).items() if v is not None}))
        with pytest.raises(ModelError, match=expected) as err:
            architecture_of(str(folder))
        assert str(folder / "config.json") in str(err.value) and "\n" not in str(err.value)
