"""Packed batches (shared prefix once, no padding) compute exactly what padded batches compute."""

import contextlib
from unittest import mock

import pytest
import torch
from tiny import ARCHITECTURES, tiny_model, tiny_tokenizer

from bakeoff.config import LoraSpec
from bakeoff.data.tickets import generate_tickets
from bakeoff.models.prompt import PromptEncoder, PromptFormat, shared_prefix_length
from bakeoff.training.batches import collate, label_loss
from bakeoff.training.grouped_attention import group_spans, grouped_attention, uses_grouped_attention
from bakeoff.training.lora import prepare_for_method
from bakeoff.training.packing import pack, packed_label_loss, packing_supported


def _items(tokenizer, n=8):
    data = generate_tickets(n, seed=11)
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify the customer message.", sorted(set(data.labels)), False))
    return encoder.encode(data.texts, data.labels), encoder.label_ids


def _lora_model(arch, tokenizer):
    model = prepare_for_method(
        tiny_model(arch, len(tokenizer)), "lora", LoraSpec(r=4, alpha=8), seed=0, gradient_checkpointing=False
    )
    # Non-zero B matrices, so the adapters change activations (and the prefix's gradients matter).
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    model.train()
    for module in model.modules():  # dropout off: the two passes must see the same function
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def _loss_and_grads(model, loss_fn, batch):
    model.zero_grad()
    loss, count = loss_fn(model, batch)
    loss.backward()
    return loss.detach(), count, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if a != "mistral"])
@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("grouped", [False, True], ids=["row-mask", "grouped"])
def test_packed_loss_and_gradients_equal_the_padded_batch(arch, rows, grouped):
    tokenizer = tiny_tokenizer()
    items, label_ids = _items(tokenizer)
    model = _lora_model(arch, tokenizer)
    assert packing_supported(model, items, label_ids)
    total = sum(len(i.prompt_ids) + len(label_ids[i.label_index]) for i in items)
    packed = pack(
        items,
        label_ids,
        tokenizer.pad_token_id,
        torch.float32,
        max_row_tokens=total if rows == 1 else total // 3,
        group_from_tokens=0,
    )
    padded = collate(items, label_ids, tokenizer.pad_token_id)
    assert packed.input_ids.shape[0] >= rows
    with grouped_attention(model) if grouped else contextlib.nullcontext(False) as switched:
        assert switched == grouped and uses_grouped_attention(model) == grouped
        loss_p, count_p, grads_p = _loss_and_grads(model, packed_label_loss, packed)
        # Padded batches under the grouped implementation fall back to SDPA over their 2-D mask.
        loss_r, count_r, grads_r = _loss_and_grads(model, label_loss, padded)
    assert not uses_grouped_attention(model)
    assert count_p == count_r
    torch.testing.assert_close(loss_p, loss_r, atol=1e-5, rtol=1e-5)
    assert grads_p.keys() == grads_r.keys() and grads_p
    for name in grads_p:
        torch.testing.assert_close(grads_p[name], grads_r[name], atol=1e-5, rtol=1e-4, msg=name)


def test_grouped_attention_switches_cpu_models_only():
    """On CUDA a masked GQA SDPA call per group would run the math kernel: only a CPU model switches. The meta
    device stands in for a GPU (the switch reads where the weights are, nothing runs)."""
    model = tiny_model("llama", len(tiny_tokenizer()))
    with grouped_attention(model) as switched:
        assert switched and uses_grouped_attention(model)
    model.to("meta")
    with grouped_attention(model) as switched:
        assert not switched and not uses_grouped_attention(model)
    assert model.config._attn_implementation == "sdpa"


def test_packing_computes_no_padding_the_prefix_once_per_row_and_no_final_label_token():
    tokenizer = tiny_tokenizer()
    items, label_ids = _items(tokenizer)
    prefix = shared_prefix_length([item.prompt_ids for item in items])
    assert prefix >= 5, "chat turn + instruction are shared"
    packed = pack(items, label_ids, tokenizer.pad_token_id, torch.float32, max_row_tokens=4096)
    sequences = [item.prompt_ids + label_ids[item.label_index] for item in items]
    # Each item runs its own prompt tokens and all its label tokens but the last (which is only a target).
    assert packed.input_ids.shape == (1, prefix + sum(len(s) - prefix - 1 for s in sequences))
    assert packed.computed_tokens == packed.input_ids.numel()
    assert packed.real_tokens == sum(map(len, sequences))
    padded = collate(items, label_ids, tokenizer.pad_token_id)
    assert packed.computed_tokens < 0.8 * padded.input_ids.numel()


def test_lm_head_sees_only_label_predicting_positions_when_packed():
    tokenizer = tiny_tokenizer()
    items, label_ids = _items(tokenizer)
    model = tiny_model("llama", len(tokenizer))
    packed = pack(items, label_ids, tokenizer.pad_token_id, torch.float32, max_row_tokens=128)
    seen = []
    handle = model.lm_head.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    packed_label_loss(model, packed)
    handle.remove()
    assert seen == [(sum(len(label_ids[i.label_index]) for i in items), len(tokenizer))]


def test_packing_is_refused_where_it_would_change_results():
    tokenizer = tiny_tokenizer()
    items, label_ids = _items(tokenizer)
    mistral = tiny_model("mistral", len(tokenizer))  # sliding window of 16 tokens: the prompts are longer
    assert not packing_supported(mistral, items, label_ids)
    llama = tiny_model("llama", len(tokenizer))
    llama.config._attn_implementation = "flash_attention_2"
    assert not packing_supported(llama, items, label_ids)


def test_packed_batches_in_bfloat16_match_padded_ones():
    """The GPU path: the additive mask takes the model's dtype (bf16 here; run on CPU, tiny model)."""
    tokenizer = tiny_tokenizer()
    items, label_ids = _items(tokenizer)
    model = tiny_model("llama", len(tokenizer)).to(torch.bfloat16)
    packed = pack(items, label_ids, tokenizer.pad_token_id, model.dtype)
    assert packed.attention_mask.dtype == torch.bfloat16
    with torch.no_grad():
        loss_p, _ = packed_label_loss(model, packed)
        loss_r, _ = label_loss(model, collate(items, label_ids, tokenizer.pad_token_id))
    torch.testing.assert_close(loss_p, loss_r, atol=0.05, rtol=0.02)


def test_grouped_attention_scores_each_group_against_the_prefix_and_itself_only():
    tokenizer = tiny_tokenizer()
    items, label_ids = _items(tokenizer, n=12)
    model = _lora_model("llama", tokenizer)
    packed = pack(items, label_ids, tokenizer.pad_token_id, torch.float32, max_row_tokens=4096, group_from_tokens=0)
    prefix, width = shared_prefix_length([item.prompt_ids for item in items]), packed.input_ids.shape[1]
    spans = [(a, b) for a, b, _ in packed.groups.rows[0]]
    assert len(spans) > 1 and spans[0][0] == 0 and spans[-1][1] == width, "groups tile the row"
    assert all(b0 == a1 for (_, b0), (a1, _) in zip(spans, spans[1:]))
    sdpa = torch.nn.functional.scaled_dot_product_attention
    with (
        grouped_attention(model),
        mock.patch.object(torch.nn.functional, "scaled_dot_product_attention", wraps=sdpa) as spy,
    ):
        packed_label_loss(model, packed)
    layers = model.config.num_hidden_layers
    assert spy.call_count == layers * len(spans)
    keys = [call.args[1].shape[2] for call in spy.call_args_list[: len(spans)]]
    assert keys == [spans[0][1]] + [prefix + b - a for a, b in spans[1:]]
    assert max(keys) < width, "no call scores the whole row"


def test_group_spans_join_consecutive_items_within_the_budget():
    assert group_spans(5, [(5, 15), (15, 30), (30, 60), (60, 61)], budget=25) == [(0, 30), (30, 60), (60, 61)]
    assert group_spans(5, [(5, 100)], budget=25) == [(0, 100)], "a long item is a group of its own"
    assert group_spans(3, [], budget=25) == [(0, 3)]


def test_training_packs_and_attends_by_groups_then_restores_sdpa(monkeypatch):
    from accelerate import Accelerator

    from bakeoff.config import TrainingSpec
    from bakeoff.training.loop import LoopInputs, train

    tokenizer = tiny_tokenizer()
    items, label_ids = _items(tokenizer, n=12)
    model = _lora_model("qwen2", tokenizer)
    inputs = LoopInputs(items[:8], items[8:], label_ids, tokenizer.pad_token_id, 1e-3, seed=0)
    monkeypatch.setattr("bakeoff.training.packing.GROUP_FROM_ROW_TOKENS", 0)  # the tiny rows are short
    sdpa = torch.nn.functional.scaled_dot_product_attention
    with mock.patch.object(torch.nn.functional, "scaled_dot_product_attention", wraps=sdpa) as spy:
        result = train(model, inputs, TrainingSpec(epochs=1, batch_size=4), Accelerator(cpu=True))
    assert result.packed, "the grouped implementation still counts as one that takes a 4-D mask"
    forwards = result.steps + 1  # 2 training steps and 1 validation batch, one packed row each
    assert spy.call_count > model.config.num_hidden_layers * forwards, "rows were split into groups"
    assert model.get_base_model().config._attn_implementation == "sdpa"


def test_short_rows_attend_as_one_block():
    tokenizer = tiny_tokenizer()
    items, label_ids = _items(tokenizer)
    short = pack(items[:2], label_ids, tokenizer.pad_token_id, torch.float32, group_from_tokens=10_000)
    assert short.groups is None
    grouped = pack(items[:2], label_ids, tokenizer.pad_token_id, torch.float32, group_from_tokens=0)
    assert grouped.groups is not None and len(grouped.groups.rows[0]) == 2
