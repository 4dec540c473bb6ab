"""Export one LLM trial for GPU serving stacks (vLLM, TGI, plain transformers): files, not a server.

Written into the target folder:
- `adapter/`: the PEFT LoRA adapter as trained (LoRA trials), for `vllm serve BASE --enable-lora`;
- `merged/`: base + adapter folded into one model, safetensors, with its tokenizer: loads anywhere;
- `labels.json`: label order (class index -> label), the words the model writes for each, their token ids;
- `prompt.json`: the prompt template (style, instruction, a rendered example), the scoring mode and the
  abstention threshold, so another stack reproduces the same classifier.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from bakeoff.errors import BakeoffError
from bakeoff.serving.predictor import TrialRecord, check_saved_files

EXAMPLE_TEXT = "{text}"


def export_trial(record: TrialRecord, target: Path) -> dict:
    """Write the export folder; returns what was written and the serving commands."""
    from bakeoff.config import RunSpec
    from bakeoff.models.load import LoadOptions, model_folder
    from bakeoff.models.trained import load_trained

    result, method, name = record.trial["result"], record.trial["method"], record.trial["candidate"]
    _refuse_unexportable(record, result, method, name)
    spec = RunSpec.model_validate(record.spec)
    candidate = next(c for c in spec.candidates if c.name == name)
    target = Path(target)
    _refuse_used_target(target)
    check_saved_files(record)  # a deleted or cut-short trial folder: one line, before the base model loads
    options = LoadOptions(trust_remote_code=candidate.trust_remote_code, allow_pickle=candidate.allow_pickle)
    model, tokenizer, source = load_trained(candidate, record.trial, record.files, options)  # adapter merged
    partial = target.with_name(target.name + ".partial")
    _write_model(partial, model, tokenizer, record, method)
    labels, prompt = _labels_and_prompt(spec, record, result, method, tokenizer)
    (partial / "labels.json").write_text(json.dumps(labels, indent=1))
    (partial / "prompt.json").write_text(json.dumps(prompt, indent=1))
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.rmdir()
    os.replace(partial, target)  # atomic: a killed export leaves only a .partial folder
    return _written(target, model_folder(source), name, method)


def _refuse_unexportable(record: TrialRecord, result: dict, method: str, name: str) -> None:
    """Only LLM trials are exported, and not QLoRA ones yet."""
    if result["model"]["kind"] != "llm":
        raise BakeoffError(
            f"`{name}` is a classical baseline (a scikit-learn pipeline): serve it with `bakeoff "
            "serve`; "
            "--candidate must name an LLM to export"
        )
    if method == "qlora":
        raise BakeoffError(
            f"`{name}` is a QLoRA trial: export does not write it yet (a merged model would re-round the 4-bit "
            f"base). Serve it with `bakeoff serve` (its adapter on a fresh NF4 base, as the trial scored it), or "
            f"give its adapter, {record.files.adapter}, to vLLM on the base model with "
            "`--quantization bitsandbytes --enable-lora`"
        )


def _refuse_used_target(target: Path) -> None:
    """The export goes into a new (or empty) folder, never over a file or another folder's contents."""
    if target.exists() and not target.is_dir():
        raise BakeoffError(f"--to {target} is a file; give a new folder")
    if target.exists() and any(target.iterdir()):
        raise BakeoffError(f"--to {target} exists and is not empty; pick a new folder")


def _write_model(partial: Path, model, tokenizer, record: TrialRecord, method: str) -> None:
    """A fresh `partial` folder with the adapter (LoRA trials) and the merged model with its tokenizer."""
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    if method == "lora":
        shutil.copytree(record.files.adapter, partial / "adapter")
    model.save_pretrained(partial / "merged", safe_serialization=True)
    tokenizer.save_pretrained(partial / "merged")


def _labels_and_prompt(spec, record: TrialRecord, result: dict, method: str, tokenizer) -> tuple[list[dict], dict]:
    """`labels.json` (label order, words, token ids) and `prompt.json` (template, scoring, threshold)."""
    from bakeoff.models.prompt import PromptEncoder, PromptFormat

    fmt = PromptFormat(
        spec.task.instruction,
        list(record.labels),
        show_label_list=method == "zero-shot",
        max_prompt_tokens=spec.training.max_prompt_tokens,
        style=result["model"]["prompt_style"],
    )
    encoder = PromptEncoder(tokenizer, fmt)
    threshold = ((result["metrics"].get("out_of_scope") or {}).get("threshold") or {}).get("max_prob")
    labels = [
        {"index": i, "label": label, "words": word, "token_ids": ids}
        for i, (label, word, ids) in enumerate(zip(record.labels, fmt.label_words, encoder.label_ids))
    ]
    prompt = {
        "style": encoder.style,
        "instruction": spec.task.instruction,
        "show_label_list": fmt.show_label_list,
        "max_prompt_tokens": fmt.max_prompt_tokens,
        "template": tokenizer.decode(encoder.prompt_ids(EXAMPLE_TEXT)),
        "scoring": result["model"].get("scoring", "full"),
        "abstain_threshold_max_prob": threshold,
        "how_to_classify": "score each label's token_ids as the continuation of the rendered prompt; the label "
        "with the "
        "highest total log-probability wins; probabilities are a softmax over the labels' "
        "totals",
        "trial_id": record.trial["trial_id"],
    }
    return labels, prompt


def _written(target: Path, base: str, name: str, method: str) -> dict:
    """What the export wrote, and the vLLM commands that serve it (the adapter on `base` for LoRA trials)."""
    adapter_name = name.replace(" ", "-")
    commands = {"merged": f"vllm serve {target / 'merged'}"}
    if method == "lora":
        commands["lora"] = f"vllm serve {base} --enable-lora --lora-modules {adapter_name}={target / 'adapter'}"
    return {
        "folder": str(target),
        "files": sorted(str(p.relative_to(target)) for p in target.iterdir()),
        "base": base,
        "commands": commands,
    }
