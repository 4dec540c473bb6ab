"""Bad inputs of reliability round 3 (issue 42), tools: cases in the form of tests/bad_inputs.py.

bad_inputs.py adds these to its CASES at its end (import bad_inputs, not this module, first).
`bakeoff estimate` on model folders whose config.json no model can have, models written as web addresses,
near misses of catalog names, and workloads a model cannot run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bad_inputs import Case, llm_candidate, model_folder, validate_with

# A small but complete Llama config: every number the estimate reads is present and consistent.
SMALL_LLAMA = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
    "max_position_embeddings": 512,
}


def estimate_folder(**changes) -> Callable[[Path], list[str]]:
    """`bakeoff estimate` on a model folder whose config.json is SMALL_LLAMA with `changes`."""

    def make(tmp: Path) -> list[str]:
        return ["estimate", model_folder(tmp, {"config.json": SMALL_LLAMA | changes})]

    return make


def estimate(*args: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["estimate", *args]


def small_llama_folder(**changes) -> Callable[[Path], str]:
    return lambda tmp: model_folder(tmp, {"config.json": SMALL_LLAMA | changes, "model.safetensors": b"x"})


FIX_CONFIG = "fix the number in config.json (or re-download the model), or use another model"

CASES: list[Case] = [
    # --- config.json numbers no model can have: one line naming the file, the key and the value ---
    Case(
        "estimate: negative hidden size",
        estimate_folder(hidden_size=-64),
        r"model/config\.json: `hidden_size: -64` is impossible",
        fix=FIX_CONFIG,
    ),
    Case(
        "estimate: zero layers",
        estimate_folder(num_hidden_layers=0),
        r"model/config\.json: `num_hidden_layers: 0` is impossible",
        fix=FIX_CONFIG,
    ),
    Case(
        "estimate: heads do not divide the hidden size",
        estimate_folder(num_attention_heads=5),
        r"model/config\.json: `num_attention_heads: 5` does not divide `hidden_size: 64`",
        fix=FIX_CONFIG,
    ),
    Case(
        "estimate: KV heads do not divide the heads",
        estimate_folder(num_key_value_heads=3),
        r"model/config\.json: `num_key_value_heads: 3` does not divide `num_attention_heads: 4`",
        fix=FIX_CONFIG,
    ),
    Case(
        "estimate: zero heads",
        estimate_folder(num_attention_heads=0),
        r"`num_attention_heads: 0` is impossible",
        fix=FIX_CONFIG,
    ),
    Case(
        "estimate: hidden size as text",
        estimate_folder(hidden_size="big"),
        r'`hidden_size: "big"` is impossible: it must be a whole number',
        fix=FIX_CONFIG,
    ),
    Case(
        "estimate: fractional hidden size",
        estimate_folder(hidden_size=64.5),
        r"`hidden_size: 64.5` is impossible",
        fix=FIX_CONFIG,
    ),
    Case(
        "estimate: boolean layer count",
        estimate_folder(num_hidden_layers=True),
        r"`num_hidden_layers: true` is impossible",
        fix=FIX_CONFIG,
    ),
    Case(
        "estimate: zero vocabulary",
        estimate_folder(vocab_size=0),
        r"`vocab_size: 0` is impossible",
        fix=FIX_CONFIG,
    ),
    Case(
        "estimate: negative context",
        estimate_folder(max_position_embeddings=-1),
        r"`max_position_embeddings: -1` is impossible",
        fix=FIX_CONFIG,
    ),
    Case(
        "estimate: more experts per token than experts",
        estimate_folder(model_type="mixtral", num_local_experts=2, num_experts_per_tok=4),
        r"`num_experts_per_tok: 4` is more than `num_local_experts: 2`",
        fix=FIX_CONFIG,
    ),
    Case(
        "estimate: hidden size beyond any tensor",
        estimate_folder(hidden_size=10**12, num_attention_heads=4),
        r"model/config\.json: transformers cannot build the model it describes",
        fix=FIX_CONFIG,
    ),
    Case(
        "estimate: null hidden size",
        estimate_folder(hidden_size=None),
        r"model/config\.json: .*hidden_size.*None",
        fix=FIX_CONFIG,
    ),
    Case(
        "model: impossible config.json in a candidate's folder",
        validate_with(llm_candidate(small_llama_folder(num_hidden_layers=-2))),
        r"model/config\.json: `num_hidden_layers: -2` is impossible",
        fix=FIX_CONFIG,
    ),
    # --- a Hub web address instead of ORG/NAME ---
    Case(
        "estimate: Hub URL",
        estimate("https://huggingface.co/mistralai/Mistral-7B-v0.1"),
        r"is a web address: write the Hub id as ORG/NAME, here `mistralai/Mistral-7B-v0.1`",
        fix="write the Hub id as ORG/NAME (the part of the address after huggingface.co/)",
    ),
    Case(
        "estimate: Hub URL of a branch",
        estimate("https://huggingface.co/mistralai/Mistral-7B-v0.1/tree/main"),
        r"write the Hub id as ORG/NAME, here `mistralai/Mistral-7B-v0.1`$",
        fix="write the Hub id as ORG/NAME",
    ),
    Case(
        "model: Hub URL",
        validate_with(llm_candidate(lambda t: "https://huggingface.co/HuggingFaceTB/SmolLM2-135M/tree/v1.0")),
        r"write the Hub id as ORG/NAME, here `HuggingFaceTB/SmolLM2-135M`, with `revision: v1.0`",
        fix="write `model: ORG/NAME`, and a branch, tag or commit as `revision:`",
    ),
    Case(
        "model: Hub URL without scheme",
        validate_with(llm_candidate(lambda t: "huggingface.co/HuggingFaceTB/SmolLM2-135M")),
        r"write the Hub id as ORG/NAME, here `HuggingFaceTB/SmolLM2-135M`",
        fix="write `model: ORG/NAME`",
    ),
    Case(
        "model: Hub dataset URL",
        validate_with(llm_candidate(lambda t: "https://huggingface.co/datasets/org/tickets")),
        r"is a Hugging Face dataset, not a model",
        fix="point `model` at a model; datasets go in `task.data.hub`",
    ),
    Case(
        "model: other web address",
        validate_with(llm_candidate(lambda t: "https://example.com/models/llama.safetensors")),
        r"is a web address; bakeoff loads Hugging Face ids \(written ORG/NAME\), local folders and \.gguf files",
        fix="download it and point `model` at the folder",
    ),
    # --- near misses of catalog and short names ---
    Case(
        "estimate: near miss of a catalog name",
        estimate("mistral-8b"),
        r"^error: unknown model `mistral-8b`: did you mean `mistral-7b`\?",
        fix="use the catalog name (`bakeoff estimate --help`), a local folder or a cached ORG/NAME",
    ),
    Case(
        "estimate: catalog name in capitals",
        estimate("Mistral-7B"),
        r"did you mean `mistral-7b`\?",
        fix="catalog names are lower case",
    ),
    Case(
        "estimate: bare unknown name",
        estimate("no-such-model-anywhere"),
        r"unknown model `no-such-model-anywhere`: .*Hub ids are written ORG/NAME. Catalog models: mistral-7b",
        fix="use a catalog name, a local folder, or a cached Hub id written ORG/NAME",
    ),
    Case(
        "estimate: empty model name",
        estimate(""),
        r"the model name is empty",
        fix="name a model",
    ),
    Case(
        "model: near miss of a short name",
        validate_with(llm_candidate(lambda t: "smollm2-136m")),
        r"unknown model `smollm2-136m`: did you mean `smollm2-135m`\?",
        fix="use the short name as listed",
    ),
    # --- workloads the model cannot run, options that mean nothing together ---
    Case(
        "estimate: prompt beyond the context",
        estimate("mistral-7b", "--prompt-tokens", "10000000"),
        r"--prompt-tokens 10000000 is longer than mistral-7b's context window of 32768 tokens",
        fix="use a prompt length within the model's context (max_position_embeddings)",
    ),
    Case(
        "estimate: output beyond the context",
        estimate("mistral-7b", "--output-tokens", "40000"),
        r"--prompt-tokens 64 plus --output-tokens 40000 is 40064 tokens, more than mistral-7b's context window",
        fix="keep prompt plus output within the model's context",
    ),
    Case(
        "estimate: prompt leaves no room for labels",
        estimate("mistral-7b", "--prompt-tokens", "32768"),
        r"plus 3 label tokens is 32771 tokens, more than mistral-7b's context window of 32768",
        fix="shorten the prompt",
    ),
    Case(
        "estimate: more GPUs per replica than heads",
        estimate("mistral-7b", "--gpus-per-replica", "64"),
        r"--gpus-per-replica 64: mistral-7b has 32 attention heads and 8 KV heads.*use one of 1, 2, 4, 8, 16, 32",
        fix="use a number of GPUs that divides the attention heads",
    ),
    Case(
        "estimate: GPUs per replica not dividing the heads",
        estimate("mistral-7b", "--gpus-per-replica", "3"),
        r"--gpus-per-replica 3: .*tensor parallelism splits them evenly",
        fix="use a number of GPUs that divides the attention heads",
    ),
    Case(
        "estimate: GPUs per replica on the local CPU",
        estimate("mistral-7b", "--gpu", "local-cpu", "--gpus-per-replica", "2"),
        r"local-cpu is this one machine",
        fix="drop --gpus-per-replica, or pick a GPU with --gpu",
    ),
    Case(
        "estimate: LoRA rank with full fine-tuning",
        estimate("mistral-7b", "--method", "full", "--lora-rank", "8"),
        r"--lora-rank has no meaning with --method full",
        fix="drop --lora-rank, or use --method lora",
    ),
    Case(
        "estimate: LoRA rank above the hidden size",
        estimate("mistral-7b", "--lora-rank", "100000"),
        r"--lora-rank 100000 is above mistral-7b's hidden size \(4096\)",
        fix="use a rank below the hidden size (8-64 is usual)",
    ),
    Case(
        "estimate: labels with generation",
        estimate("mistral-7b", "--output-tokens", "20", "--num-labels", "4"),
        r"--num-labels has no meaning with --output-tokens",
        fix="drop --num-labels for extraction/generation",
    ),
    Case(
        "estimate: batch larger than the training set",
        estimate("mistral-7b", "--batch-size", "100000"),
        r"--batch-size 100000 is more than the 500 training examples",
        fix="use a batch no larger than --train-examples",
    ),
]
