"""GPU check: bf16 LoRA training throughput of a Mistral-7B-shaped model (random weights) and label scoring.

    python bench/gpu_throughput.py                       # on a CUDA machine (one H100/H200-class GPU)
    python bench/gpu_throughput.py --shape tiny --device cpu   # smoke test of the script itself

Random weights are enough: speed depends on shapes, not values. The model is built on the meta device
and materialised directly on the GPU in bf16 (no 14 GB CPU copy). Reports train tokens/s and the
useful TFLOP/s (4N per token for LoRA) against the GPU's datasheet peak, and label-scoring items/s
(full and first-token) at several batch sizes. Writes JSON for the README.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import AutoModelForCausalLM, MistralConfig

from bakeoff.config import LoraSpec, TrainingSpec
from bakeoff.efficiency.introspect import introspect
from bakeoff.evaluation.score import label_log_probs
from bakeoff.models.prompt import EncodedItem
from bakeoff.training.loop import LoopInputs, train
from bakeoff.training.lora import apply_lora

SHAPES = {
    "mistral-7b": dict(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        sliding_window=4096,
    ),
    "tiny": dict(
        vocab_size=1000,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=4096,
    ),
}


def build(shape: str, device: str, dtype: torch.dtype):
    config = MistralConfig(**SHAPES[shape], torch_dtype=dtype)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model = model.to_empty(device=device)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.02)
    return model


def main(shape: str, device: str, out: Path) -> None:
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = build(shape, device, dtype)
    arch = introspect(model.config)
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    labels = [[int(t) for t in torch.randint(10, vocab, (3,), generator=generator)] for _ in range(10)]
    items = [
        EncodedItem([int(t) for t in torch.randint(10, vocab, (96,), generator=generator)], i % 10) for i in range(256)
    ]
    lora = apply_lora(model, LoraSpec(r=16, targets="all", dropout=0.0), 0)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    result = train(
        lora,
        LoopInputs(items[:192], items[192:208], labels, 0, 1e-4, 0),
        TrainingSpec(epochs=1, batch_size=16, early_stopping_patience=0),
        Accelerator(cpu=device == "cpu"),
    )
    tokens_per_s = result.train_tokens / result.step_time_s
    body = arch.params_active - arch.params_embedding
    scoring = {}
    for first in (False, True):
        for batch in (16, 64):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            started = time.perf_counter()
            label_log_probs(lora, items[:128], labels, 0, batch, first_token_only=first)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            scoring[f"{'first-token' if first else 'full'} b{batch}"] = 128 / (time.perf_counter() - started)
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "shape": shape,
        "dtype": str(dtype),
        "params": arch.params_total,
        "train_tokens_per_s": tokens_per_s,
        "useful_train_tflops": 4 * body * tokens_per_s / 1e12,
        "scoring_items_per_s": scoring,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else None,
    }
    print(json.dumps(payload, indent=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="mistral-7b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu_throughput.json"))
    args = parser.parse_args()
    main(args.shape, args.device, args.out)
