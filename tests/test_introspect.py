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
