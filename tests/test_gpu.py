"""The GPU path: bf16 weights, SDPA attention, LoRA training and label scoring on CUDA. Skipped without CUDA."""

import pytest
import torch
from accelerate import Accelerator

from bakeoff.config import LoraSpec, TrainingSpec
from bakeoff.data.tickets import generate_tickets
from bakeoff.evaluation.score import label_log_probs
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.prompt import PromptEncoder, PromptFormat
from bakeoff.models.sources import resolve_source
from bakeoff.recipes.trial import resolve_dtype
from bakeoff.training.loop import LoopInputs, train
from bakeoff.training.lora import prepare_for_method

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_bf16_lora_training_and_scoring_on_cuda(tiny_folder):
    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    source = resolve_source(str(tiny_folder))
    options = LoadOptions(device="cuda", dtype=torch.bfloat16)
    tokenizer, model = load_tokenizer(source, options), load_model(source, options)
    assert next(model.parameters()).dtype == torch.bfloat16 and model.config._attn_implementation in (
        "sdpa",
        "flash_attention_2",
    )
    data = generate_tickets(40, seed=0)
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify.", sorted(set(data.labels)), False))
    items = encoder.encode(data.texts, data.labels)
    model = prepare_for_method(model, "lora", LoraSpec(r=4), 0, False)
    result = train(
        model,
        LoopInputs(items[:32], items[32:], encoder.label_ids, tokenizer.pad_token_id, 1e-3, 0),
        TrainingSpec(epochs=1, batch_size=8),
        Accelerator(),
    )
    assert result.steps == 4 and torch.isfinite(torch.tensor(result.train_loss_per_epoch)).all()
    assert result.packed == (model.config._attn_implementation == "sdpa")  # packed rows with a bf16 mask under SDPA
    scores = label_log_probs(model, items[32:], encoder.label_ids, tokenizer.pad_token_id)
    assert scores.shape == (8, len(encoder.label_ids))
