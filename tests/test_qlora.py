"""QLoRA on CPU: NF4 4-bit bases (bitsandbytes' CPU backend) with LoRA on top, through bakeoff's own code.

Every tiny architecture trains through the loop with its 4-bit base untouched; scoring the 4-bit model
matches scoring its dequantized weights; a saved adapter reloaded onto a freshly quantized base scores
the same; and `bakeoff run` takes a qlora candidate end to end.
"""

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from accelerate import Accelerator
from tiny import ARCHITECTURES, save_tiny
from torch import nn

from bakeoff.config import LoraSpec, TrainingSpec
from bakeoff.data.tickets import generate_tickets
from bakeoff.evaluation.score import label_log_probs
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.prompt import PromptEncoder, PromptFormat
from bakeoff.models.sources import resolve_source
from bakeoff.training.loop import LoopInputs, train
from bakeoff.training.lora import prepare_for_method

bnb = pytest.importorskip("bitsandbytes")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-4bit")
    return {arch: save_tiny(root / arch, arch) for arch in ARCHITECTURES}


def _load(folder, dtype=torch.float32):
    source, options = resolve_source(str(folder)), LoadOptions(dtype=dtype, load_in_4bit=True)
    return load_tokenizer(source, options), load_model(source, options)


def _inputs(tokenizer, n=16, lr=2e-2):
    data = generate_tickets(n + 8, seed=3)
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify.", sorted(set(data.labels)), show_label_list=False))
    items = encoder.encode(data.texts, data.labels)
    return LoopInputs(items[:n], items[n:], encoder.label_ids, tokenizer.pad_token_id, lr, seed=0)


def _dequantized_copy(model: nn.Module) -> nn.Module:
    """The same model with every bitsandbytes 4-bit Linear replaced by a float32 Linear holding its dequantized
    weight."""
    plain = copy.deepcopy(model)
    for name, module in list(plain.named_modules()):
        if isinstance(module, bnb.nn.Linear4bit):
            weight = bnb.functional.dequantize_4bit(module.weight.data, module.weight.quant_state).float()
            linear = nn.Linear(weight.shape[1], weight.shape[0], bias=module.bias is not None)
            with torch.no_grad():
                linear.weight.copy_(weight)
                if module.bias is not None:
                    linear.bias.copy_(module.bias.float())
            parent, _, leaf = name.rpartition(".")
            setattr(plain.get_submodule(parent), leaf, linear)
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in plain.modules())
    return plain


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_qlora_trains_adapters_on_a_4bit_base_that_does_not_change(folders, arch):
    from bakeoff.training.fused_lora import fused_lora_forward

    tokenizer, model = _load(folders[arch])
    four_bit = [n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(four_bit) >= 8 and model.is_loaded_in_4bit, "attention (and dense MLP) Linears are NF4"
    assert model.get_input_embeddings().weight.dtype == torch.float32, "embeddings stay in the compute dtype"
    base_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model = prepare_for_method(model, "qlora", LoraSpec(r=8, alpha=16), seed=0, gradient_checkpointing=False)
    adapters_before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert adapters_before and all("lora_" in n for n in adapters_before)
    with fused_lora_forward(model) as switched:
        assert switched >= len([n for n in four_bit if "attn" in n]), "float32 4-bit LoRA layers take the fused forward"
    result = train(
        model,
        _inputs(tokenizer),
        TrainingSpec(epochs=3, batch_size=8, early_stopping_patience=0),
        Accelerator(cpu=True),
    )
    assert result.steps == 6
    assert result.train_loss_per_epoch[-1] < result.train_loss_per_epoch[0] * 0.9, result.train_loss_per_epoch
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, adapters_before[n])]
    assert changed, "LoRA weights did not move"
    base_after = {
        n.replace("base_layer.", ""): p for n, p in model.get_base_model().named_parameters() if "lora_" not in n
    }
    assert base_after.keys() == base_before.keys()
    for name, before in base_before.items():
        assert torch.equal(before, base_after[name]), f"base weight {name} changed"  # packed NF4 bytes included


@pytest.mark.parametrize("arch", ["llama", "mixtral", "gemma3"])
def test_scoring_the_4bit_model_equals_scoring_its_dequantized_weights(folders, arch):
    tokenizer, model = _load(folders[arch])
    model = prepare_for_method(model, "qlora", LoraSpec(r=4, alpha=8), seed=0, gradient_checkpointing=False)
    with torch.no_grad():  # a non-zero LoRA term, so the adapters take part in the comparison
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    inputs = _inputs(tokenizer)
    items = inputs.train + inputs.validation
    four_bit = label_log_probs(model, items, inputs.label_ids, inputs.pad_id, batch_size=8)
    dequantized = label_log_probs(_dequantized_copy(model), items, inputs.label_ids, inputs.pad_id, batch_size=8)
    # On CPU a 4-bit layer dequantizes its weight to float32 and multiplies: the same numbers as the float32
    # copy, up to float32 summation order. 1e-4 nats is the bound the merged-LoRA test uses for that.
    np.testing.assert_allclose(four_bit, dequantized, atol=1e-4)
    # ... while the NF4 rounding itself is far larger: the comparison above is not between identical models.
    from transformers import AutoModelForCausalLM

    original = AutoModelForCausalLM.from_pretrained(folders[arch], dtype=torch.float32)
    plain = label_log_probs(original, items, inputs.label_ids, inputs.pad_id, batch_size=8)
    with model.disable_adapter():
        quantized_base = label_log_probs(model, items, inputs.label_ids, inputs.pad_id, batch_size=8)
    assert np.abs(quantized_base - plain).max() > 1e-2, "NF4 should visibly change a random model's scores"


@pytest.mark.parametrize("arch", ["llama", "mixtral"])
def test_saved_adapter_on_a_freshly_quantized_base_scores_the_same(folders, arch, tmp_path):
    from bakeoff.models.trained import with_adapter
    from bakeoff.recipes.trial import merge_for_inference

    tokenizer, model = _load(folders[arch])
    model = prepare_for_method(model, "qlora", LoraSpec(r=8, alpha=16), seed=0, gradient_checkpointing=False)
    inputs = _inputs(tokenizer)
    train(model, inputs, TrainingSpec(epochs=2, batch_size=8, early_stopping_patience=0), Accelerator(cpu=True))
    model.save_pretrained(tmp_path / "adapter", safe_serialization=True)
    # Only the adapters on unquantized weights merge: the fused experts of an MoE, nothing elsewhere.
    assert merge_for_inference(model) == (arch == "mixtral")
    trained = label_log_probs(model, inputs.validation, inputs.label_ids, inputs.pad_id)

    _, fresh = _load(folders[arch])
    reloaded = with_adapter(fresh, tmp_path / "adapter", merge=False)  # as serving and the judge load it
    again = label_log_probs(reloaded, inputs.validation, inputs.label_ids, inputs.pad_id)
    # NF4 quantization is deterministic and the adapter is stored in float32: the same function, bit for bit.
    np.testing.assert_array_equal(trained, again)


def test_qlora_on_an_moe_merges_its_expert_adapters_only_and_scores_the_same(folders):
    """A 4-bit Mixtral keeps its fused expert tensors unquantized: their adapters (peft `target_parameters`)
    merge exactly, as on a 16/32-bit base; the adapters on 4-bit attention layers stay unmerged."""
    from peft.tuners.lora import LoraLayer, ParamWrapper

    from bakeoff.recipes.trial import merge_for_inference

    tokenizer, model = _load(folders["mixtral"])
    model = prepare_for_method(model, "qlora", LoraSpec(r=8, alpha=16), seed=0, gradient_checkpointing=False)
    inputs = _inputs(tokenizer)
    train(model, inputs, TrainingSpec(epochs=1, batch_size=8, early_stopping_patience=0), Accelerator(cpu=True))
    experts = [m for m in model.modules() if isinstance(m, ParamWrapper)]
    on_4bit = [
        m for m in model.modules() if isinstance(m, LoraLayer) and isinstance(m.get_base_layer(), bnb.nn.Linear4bit)
    ]
    assert experts and on_4bit, "the premise: adapted expert tensors and adapted 4-bit layers"
    unmerged = label_log_probs(model, inputs.validation, inputs.label_ids, inputs.pad_id)
    assert merge_for_inference(model)
    assert all(m.merged for m in experts) and not any(m.merged for m in on_4bit)
    merged = label_log_probs(model, inputs.validation, inputs.label_ids, inputs.pad_id)
    np.testing.assert_allclose(merged, unmerged, atol=1e-4)


def test_fused_lora_on_4bit_layers_gives_peft_loss_and_gradients_in_float32_and_is_skipped_in_bf16(folders):
    from bakeoff.training.fused_lora import fused_lora_forward
    from bakeoff.training.packing import pack

    tokenizer, model = _load(folders["llama"])
    model = prepare_for_method(model, "qlora", LoraSpec(r=4, alpha=8), 0, False)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    inputs = _inputs(tokenizer)
    batch = pack(inputs.train[:6], inputs.label_ids, inputs.pad_id, torch.float32)

    def loss_and_grads():
        loss, _ = batch.loss(model)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        model.zero_grad(set_to_none=True)
        return loss.detach(), grads

    loss_peft, grads_peft = loss_and_grads()
    with fused_lora_forward(model) as switched:
        loss_fused, grads_fused = loss_and_grads()
    assert switched == 14, "all 7 projections x 2 layers"
    torch.testing.assert_close(loss_fused, loss_peft, atol=1e-6, rtol=1e-5)
    for name in grads_peft:
        torch.testing.assert_close(grads_fused[name], grads_peft[name], atol=1e-6, rtol=1e-5, msg=name)

    _, bf16_model = _load(folders["llama"], dtype=torch.bfloat16)
    bf16_model = prepare_for_method(bf16_model, "qlora", LoraSpec(r=4, alpha=8), 0, False)
    with fused_lora_forward(bf16_model) as switched:
        assert switched == 0, "in bf16 PEFT rounds the LoRA term before the sum: not the fused arithmetic"


def test_bf16_qlora_keeps_16bit_weights_and_trains_packed(folders):
    """The GPU recipe's dtypes, on CPU: bf16 compute, nothing upcast to float32 but the adapters, bf16 packing masks."""
    tokenizer, model = _load(folders["llama"], dtype=torch.bfloat16)
    model = prepare_for_method(model, "qlora", LoraSpec(r=4, alpha=8), 0, gradient_checkpointing=True)
    dtypes = {p.dtype for n, p in model.named_parameters() if "lora_" not in n and p.dtype.is_floating_point}
    assert dtypes == {torch.bfloat16}, (
        "embeddings, norms and LM head stay bf16 (no prepare_model_for_kbit_training upcast)"
    )
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}
    result = train(model, _inputs(tokenizer, n=8), TrainingSpec(epochs=1, batch_size=8), Accelerator(cpu=True))
    assert result.packed and result.steps == 1 and np.isfinite(result.train_loss_per_epoch[0])


def test_missing_bitsandbytes_is_one_clear_error(monkeypatch, tmp_path):
    from bakeoff.config import RunSpec
    from bakeoff.errors import BakeoffError
    from bakeoff.runners.local import preflight

    spec = RunSpec.model_validate(
        {
            "name": "x",
            "task": {"builtin": "support-tickets"},
            "output": {"dir": str(tmp_path / "run")},
            "candidates": [{"name": "q", "model": "smollm2-135m", "method": "qlora"}],
        }
    )
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # what find_spec reports for an absent package
    with pytest.raises(
        BakeoffError,
        match=r"candidate `q`: `method: qlora` needs bitsandbytes: `pip install "
        r"'bakeoff\[qlora\]'`",
    ):
        preflight(spec)


@pytest.mark.integration
def test_bakeoff_run_with_a_qlora_candidate_end_to_end_on_cpu(folders, tmp_path):
    config = {
        "name": "qlora-e2e",
        "task": {"builtin": "support-tickets", "builtin_examples": 200},
        "candidates": [{"name": "tiny qlora", "model": str(folders["llama"]), "method": "qlora"}],
        "training": {"epochs": 2, "batch_size": 8, "learning_rate": 2e-2, "max_validation_items": 16},
        "grid": {"train_sizes": [16]},
        "evaluation": {
            "max_test_items": 20,
            "max_train_items": 16,
            "bootstrap_samples": 100,
            "perturbations": [],
            "max_validation_items": 10,
            "max_out_of_scope_items": 10,
            "latency_repeats": 3,
        },
        "output": {"dir": str(tmp_path / "run")},
    }
    path = tmp_path / "qlora.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "bakeoff.cli", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    trials = {t["trial_id"]: t for t in json.loads((run / "results.json").read_text())["trials"]}
    assert {t["status"] for t in trials.values()} == {"done"}, trials
    qlora = trials["tiny qlora/n16/s0"]["result"]
    assert qlora["training"]["train_loss_per_epoch"][-1] < qlora["training"]["train_loss_per_epoch"][0]
    assert qlora["training"]["packed"] and qlora["timings"]["train_tokens_per_s"] > 0
    assert (run / "trials" / "tiny qlora__n16__s0" / "adapter" / "adapter_model.safetensors").is_file()
    assert qlora["metrics"]["test"]["items"] == 20

    # `bakeoff serve` loads it as the trial scored it: the adapter on a freshly quantized NF4 base.
    from bakeoff.serving.predictor import find_trial, load_served_model, run_test_texts

    served = load_served_model(find_trial(run, "tiny qlora"))
    stored = np.load(run / "trials" / "tiny qlora__n16__s0" / "predictions.npz")["probs"]
    np.testing.assert_allclose(served.predict(run_test_texts(run)), stored, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("arch", ["llama", "mixtral"])
def test_bf16_qlora_on_cuda_trains_packed_scores_and_reloads(folders, arch, tmp_path):
    from peft import PeftModel

    source, options = (
        resolve_source(str(folders[arch])),
        LoadOptions(device="cuda", dtype=torch.bfloat16, load_in_4bit=True),
    )
    tokenizer, model = load_tokenizer(source, options), load_model(source, options)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()) and next(model.parameters()).is_cuda
    model = prepare_for_method(model, "qlora", LoraSpec(r=8, alpha=16), 0, gradient_checkpointing=True)
    inputs = _inputs(tokenizer)
    result = train(model, inputs, TrainingSpec(epochs=3, batch_size=8, early_stopping_patience=0), Accelerator())
    assert result.packed == (model.config._attn_implementation == "sdpa"), "bf16 packing masks under SDPA"
    assert result.train_loss_per_epoch[-1] < result.train_loss_per_epoch[0]
    trained = label_log_probs(model, inputs.validation, inputs.label_ids, inputs.pad_id)
    model.save_pretrained(tmp_path / "adapter", safe_serialization=True)
    reloaded = PeftModel.from_pretrained(load_model(source, options), tmp_path / "adapter")
    again = label_log_probs(reloaded, inputs.validation, inputs.label_ids, inputs.pad_id)
    # bf16 kernels may pick other reduction orders per batch shape: close, not bitwise.
    np.testing.assert_allclose(trained, again, atol=5e-2)


def test_a_candidate_can_run_at_some_grid_sizes_only():
    from bakeoff.config import RunSpec
    from bakeoff.runners.grid import expand_grid

    def spec(sizes):
        return RunSpec.model_validate(
            {
                "name": "x",
                "task": {"builtin": "support-tickets"},
                "grid": {"train_sizes": [40, 120]},
                "candidates": [
                    {"name": "l", "model": "smollm2-135m"},
                    {"name": "q", "model": "smollm2-135m", "method": "qlora", "train_sizes": sizes},
                ],
            }
        )

    trials = expand_grid(spec([120]))
    assert [t.trial_id for t in trials] == ["l/n40/s0", "l/n120/s0", "q/n120/s0"]
    assert len({trial: None for trial in trials}) == 3, "trials key the Ray runner's plans, train_sizes and all"
    with pytest.raises(ValueError, match=r"candidate `q`: train_sizes \[50\] are not in grid.train_sizes \[40, 120\]"):
        spec([50])


def test_a_4bit_layer_is_multiplied_through_its_whole_dequantized_weight_and_the_estimate_counts_one(folders):
    """The estimator's `dequantized_weight` rests on how bitsandbytes multiplies a 4-bit layer here: the whole
    weight is dequantized to the compute dtype first, in forward and again in backward. Checked on a tiny Llama
    through bakeoff's loading and LoRA (if bitsandbytes starts multiplying without it, the term is stale)."""
    from bakeoff.efficiency import estimate
    from bakeoff.efficiency.hardware import Hardware
    from bakeoff.efficiency.introspect import introspect

    tokenizer, model = _load(folders["llama"])
    arch = introspect(model.config)
    shapes = {tuple(m.weight.quant_state.shape) for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)}
    model = prepare_for_method(model, "qlora", LoraSpec(r=4), seed=0, gradient_checkpointing=False)
    produced = []
    real = torch.ops.bitsandbytes.dequantize_4bit.default

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        produced.append((tuple(out.shape), out.dtype))
        return out

    try:
        torch.ops.bitsandbytes.dequantize_4bit.default = spy
        model(input_ids=torch.tensor([[1, 2, 3, 4, 5]])).logits.sum().backward()
    finally:
        torch.ops.bitsandbytes.dequantize_4bit.default = real
    assert produced, "no 4-bit layer was dequantized"
    assert {shape for shape, _ in produced} <= shapes and all(dtype == torch.float32 for _, dtype in produced)
    assert len(produced) >= 2 * len(shapes), "forward and backward each dequantize every layer"

    cpu = Hardware("local-cpu", "cpu", peak_tflops=0.1, memory_gb=24, bandwidth_gbs=20, usd_per_hour=0, measured=True)
    largest = max(a * b for a, b in shapes)
    assert estimate.largest_4bit_weight(arch) == largest
    qlora = estimate.fine_tune_memory(arch, estimate.Workload(method="qlora"), cpu)
    assert qlora["dequantized_weight"] * 1e9 == pytest.approx(largest * 4)  # one float32 copy at a time
    assert estimate.fine_tune_memory(arch, estimate.Workload(method="lora"), cpu)["dequantized_weight"] == 0.0
