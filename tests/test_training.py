"""LoRA and full fine-tuning on tiny real architectures: what should change changes, what should not does not."""

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from tiny import ARCHITECTURES, tiny_model, tiny_tokenizer

from bakeoff.config import LoraSpec, TrainingSpec
from bakeoff.data.tickets import generate_tickets
from bakeoff.models.prompt import PromptEncoder, PromptFormat
from bakeoff.training.batches import LabelBatch, collate, label_loss
from bakeoff.training.loop import LoopInputs, TrainingDiverged, train
from bakeoff.training.lora import find_targets, prepare_for_method


def _inputs(tokenizer, n=24, lr=5e-3):
    data = generate_tickets(n + 8, seed=3)
    labels = sorted(set(data.labels))
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify.", labels, show_label_list=False))
    items = encoder.encode(data.texts, data.labels)
    return LoopInputs(items[:n], items[n:], encoder.label_ids, tokenizer.pad_token_id, lr, seed=0)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_lora_changes_adapters_not_base(arch):
    tokenizer = tiny_tokenizer()
    model = tiny_model(arch, len(tokenizer))
    base_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    peft_model = prepare_for_method(model, "lora", LoraSpec(r=4, alpha=8), seed=0, gradient_checkpointing=False)
    adapters_before = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    assert adapters_before and all("lora_" in n for n in adapters_before)
    spec = TrainingSpec(epochs=2, batch_size=8, early_stopping_patience=0)
    result = train(peft_model, _inputs(tokenizer), spec, Accelerator(cpu=True))
    assert result.steps == 6 and len(result.validation_loss_per_epoch) == 2
    changed = [
        n for n, p in peft_model.named_parameters() if p.requires_grad and not torch.equal(p, adapters_before[n])
    ]
    assert changed, "LoRA weights did not move"
    # peft nests wrapped weights under `base_layer` (twice for MoE expert tensors): strip it to match names.
    base_after = {
        n.replace("base_layer.", ""): p for n, p in peft_model.get_base_model().named_parameters() if "lora_" not in n
    }
    assert base_after.keys() == base_before.keys()
    for name, before in base_before.items():
        assert torch.equal(before, base_after[name]), f"base weight {name} changed"


def test_moe_experts_are_adapted_through_target_parameters():
    tokenizer = tiny_tokenizer()
    modules, parameters = find_targets(tiny_model("mixtral", len(tokenizer)), "all")
    assert set(modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}, "router (mlp.gate) must stay frozen"
    assert parameters == ["mlp.experts.down_proj", "mlp.experts.gate_up_proj"]
    dense_modules, dense_parameters = find_targets(tiny_model("llama", len(tokenizer)), "all")
    assert set(dense_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert dense_parameters == []
    assert find_targets(tiny_model("llama", len(tokenizer)), "attention") == (
        ["k_proj", "o_proj", "q_proj", "v_proj"],
        [],
    )


def test_loss_falls_and_best_epoch_is_kept():
    tokenizer = tiny_tokenizer()
    model = prepare_for_method(tiny_model("llama", len(tokenizer)), "lora", LoraSpec(r=8, alpha=16), 0, False)
    result = train(
        model,
        _inputs(tokenizer, lr=2e-2),
        TrainingSpec(epochs=6, batch_size=4, early_stopping_patience=0),
        Accelerator(cpu=True),
    )
    assert result.train_loss_per_epoch[-1] < result.train_loss_per_epoch[0] * 0.8
    assert result.best_epoch == 1 + min(range(6), key=lambda e: result.validation_loss_per_epoch[e])
    assert (
        result.validation_loss_per_epoch[result.best_epoch - 1] < result.validation_loss_per_epoch[0]
        or result.best_epoch == 1
    )


def test_full_fine_tune_moves_base_weights():
    tokenizer = tiny_tokenizer()
    model = prepare_for_method(tiny_model("qwen2", len(tokenizer)), "full", LoraSpec(), 0, False)
    before = model.model.layers[0].mlp.up_proj.weight.detach().clone()
    train(model, _inputs(tokenizer, lr=1e-3), TrainingSpec(epochs=1, batch_size=8), Accelerator(cpu=True))
    assert not torch.equal(before, model.model.layers[0].mlp.up_proj.weight)


def test_label_only_logits_give_the_same_loss_as_full_logits():
    tokenizer = tiny_tokenizer()
    model = tiny_model("llama", len(tokenizer))
    inputs = _inputs(tokenizer)
    batch: LabelBatch = collate(inputs.train[:6], inputs.label_ids, inputs.pad_id)
    fast, count = label_loss(model, batch)
    logits = model(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids
    ).logits
    width = batch.target_ids.shape[1]
    reference = torch.nn.functional.cross_entropy(
        logits[:, -width - 1 : -1].transpose(1, 2), batch.target_ids, reduction="none"
    )
    expected = (reference * batch.target_mask).sum() / batch.target_mask.sum()
    assert count == int(batch.target_mask.sum())
    torch.testing.assert_close(fast, expected, atol=1e-5, rtol=1e-5)
    assert batch.real_tokens == int(batch.attention_mask.sum())


def test_non_finite_loss_stops_with_a_reason():
    tokenizer = tiny_tokenizer()
    model = prepare_for_method(tiny_model("llama", len(tokenizer)), "lora", LoraSpec(r=4), 0, False)
    with pytest.raises(TrainingDiverged, match="learning_rate"):
        train(
            model,
            _inputs(tokenizer, lr=1e9),
            TrainingSpec(epochs=3, batch_size=8, warmup_fraction=0),
            Accelerator(cpu=True),
        )


def test_lm_head_never_sees_more_than_the_label_positions():
    """No [batch, seq, vocab] logits tensor: the LM head gets only the positions the loss needs."""
    tokenizer = tiny_tokenizer()
    model = tiny_model("llama", len(tokenizer))
    inputs = _inputs(tokenizer)
    batch = collate(inputs.train[:6], inputs.label_ids, inputs.pad_id)
    seen = []
    handle = model.lm_head.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    label_loss(model, batch)
    handle.remove()
    assert seen == [(6, batch.target_ids.shape[1] + 1, len(tokenizer))]
    assert batch.input_ids.shape[1] > 3 * seen[0][1], "the sequence is much longer than the scored window"


@pytest.mark.parametrize("arch", ["llama", "mixtral"])
def test_merged_lora_scores_like_the_unmerged_adapter(arch):
    from bakeoff.evaluation.score import label_log_probs
    from bakeoff.recipes.trial import merge_for_inference

    tokenizer = tiny_tokenizer()
    model = prepare_for_method(tiny_model(arch, len(tokenizer)), "lora", LoraSpec(r=8, alpha=16), 0, False)
    inputs = _inputs(tokenizer, lr=2e-2)
    train(model, inputs, TrainingSpec(epochs=2, batch_size=4, early_stopping_patience=0), Accelerator(cpu=True))
    before = label_log_probs(model, inputs.validation, inputs.label_ids, inputs.pad_id)
    assert merge_for_inference(model)
    after = label_log_probs(model, inputs.validation, inputs.label_ids, inputs.pad_id)
    np.testing.assert_allclose(before, after, atol=1e-4)


def test_a_loaded_models_adapted_weights_get_their_own_memory_before_the_merge(tiny_folder):
    """A CPU model loaded from safetensors views the file's memory map; the merge writes into a copy of each
    adapted weight (bench/merge_speed.py: 20x faster on the README's VM), leaves the other weights where they
    are, and merges to the same function."""
    from bakeoff.models.load import LoadOptions, load_model
    from bakeoff.models.sources import ModelSource
    from bakeoff.recipes.trial import merge_for_inference

    model = load_model(ModelSource("folder", str(tiny_folder), description="tiny"), LoadOptions())
    model = prepare_for_method(model, "lora", LoraSpec(r=4, alpha=8), 0, False)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    adapted = {n for n, _ in model.named_parameters() if n.endswith("base_layer.weight")}
    where = {n: p.data_ptr() for n, p in model.named_parameters()}
    ids = torch.arange(1, 17).unsqueeze(0)
    with torch.no_grad():
        before = model(input_ids=ids).logits
    assert merge_for_inference(model)
    moved = {n for n, p in model.named_parameters() if p.data_ptr() != where[n]}
    assert adapted and moved == adapted
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, before, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "arch,dtype", [("llama", torch.float32), ("mixtral", torch.float32), ("llama", torch.bfloat16)]
)
def test_fused_lora_forward_gives_peft_loss_and_gradients_and_is_removed_after(arch, dtype):
    from unittest import mock

    from bakeoff.training.fused_lora import AddmmLora, fused_lora_forward
    from bakeoff.training.packing import pack

    tokenizer = tiny_tokenizer()
    # In bf16, PEFT keeps the adapters in fp32: the fused sum must follow its dtype promotion.
    model = prepare_for_method(tiny_model(arch, len(tokenizer)).to(dtype), "lora", LoraSpec(r=4, alpha=8), 0, False)
    inputs = _inputs(tokenizer)
    # Non-zero B (PEFT starts it at 0), so the LoRA term and its scaling matter.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    batch = pack(inputs.train[:6], inputs.label_ids, inputs.pad_id, dtype)

    def loss_and_grads():
        loss, _ = batch.loss(model)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        model.zero_grad(set_to_none=True)
        return loss.detach(), grads

    loss_peft, grads_peft = loss_and_grads()
    with (
        mock.patch.object(AddmmLora, "forward", wraps=AddmmLora.forward) as fused,
        fused_lora_forward(model) as switched,
    ):
        loss_fused, grads_fused = loss_and_grads()
    linears = [m for n, m in model.named_modules() if n.endswith(("q_proj", "v_proj")) and hasattr(m, "lora_variant")]
    assert switched >= len(linears) > 0 and fused.call_count == switched, (
        "every plain LoRA Linear ran the fused forward"
    )
    assert all(not m.lora_variant for m in linears), "the variant is gone after the block"
    tolerance = {"atol": 1e-6, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 2e-2, "rtol": 2e-2}
    torch.testing.assert_close(loss_fused, loss_peft, **tolerance)
    assert grads_fused.keys() == grads_peft.keys()
    for name in grads_peft:
        torch.testing.assert_close(grads_fused[name], grads_peft[name], **tolerance, msg=name)
