"""A finished trial's model, loaded back from its run folder: the base it was trained on (the Hub commit the
trial recorded, when it came from the Hub) plus the saved LoRA adapter, or the whole saved model of a full
fine-tune, or the base alone for zero-shot. Serving and the local LLM judge load a trial this way.

LoRA adapters are merged into a 16/32-bit base (plain matmuls, as the trial scored them); on a 4-bit
(QLoRA) base the adapter stays unmerged, as in the trial (`recipes/trial.py::merge_for_inference`).
"""

from __future__ import annotations

from pathlib import Path

from bakeoff.errors import BakeoffError
from bakeoff.models.hub import candidate_source
from bakeoff.models.load import LoadOptions, load_model, load_tokenizer
from bakeoff.models.sources import ModelSource


def load_trained(candidate, trial: dict, folder: Path, options: LoadOptions):
    """`(model, tokenizer, base source)` of a stored trial. `candidate`: its config.CandidateSpec; `trial`:
    the stored row (method, result.model); `folder`: the trial's folder; `options.load_in_4bit` for QLoRA."""
    method, model_info = trial["method"], trial["result"]["model"]
    source = candidate_source(candidate, model_info.get("commit_sha"))  # the base the adapter was trained on
    tokenizer = load_tokenizer(source, options)
    if method == "full":
        saved = Path(folder) / "model"
        model = load_model(ModelSource("folder", str(saved), description=str(saved)), options)
    else:
        model = load_model(source, options)
        if method in ("lora", "qlora"):
            model = with_adapter(model, Path(folder) / "adapter", merge=not options.load_in_4bit)
    model.eval()
    return model, tokenizer, source


def with_adapter(model, adapter: Path, merge: bool = True):
    from peft import PeftModel

    if not (adapter / "adapter_config.json").is_file():
        raise BakeoffError(f"no LoRA adapter in {adapter}: the trial folder is incomplete; re-run the trial")
    loaded = PeftModel.from_pretrained(model, str(adapter))
    # Merged: plain matmuls instead of base + two adapter matmuls per layer (not on a 4-bit base: see above).
    return loaded.merge_and_unload() if merge else loaded
