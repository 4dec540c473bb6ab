"""A finished trial's model, loaded back from its run folder: the base it was trained on (the Hub commit the
trial recorded, when it came from the Hub) plus the saved LoRA adapter, or the whole saved model of a full
fine-tune, or the base alone for zero-shot. Serving and the local LLM judge load a trial this way.

LoRA adapters are merged into a 16/32-bit base (plain matmuls, as the trial scored them); on a 4-bit
(QLoRA) base only the adapters on weights left unquantized (fused MoE experts) are merged, and those on the
4-bit layers stay unmerged, as in the trial (`merge_unquantized_adapters`).
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
    # Merged: plain matmuls instead of base + two adapter matmuls per layer (on a 4-bit base: see above).
    if not merge:
        merge_unquantized_adapters(loaded)
        return loaded
    return loaded.merge_and_unload()


def merge_unquantized_adapters(model) -> int:
    """Fold into their base weights the LoRA adapters of a 4-bit (QLoRA) model whose base weight is not
    4-bit (peft `target_parameters` on fused MoE expert tensors, which 4-bit loading leaves in the compute
    dtype); returns how many. Exact, as merging into a 16/32-bit base is, and these are the costly ones:
    unmerged, each adapted expert stack is formed at full size (`W + scaling * B @ A`) on every forward.

    The adapters on 4-bit layers stay unmerged: peft would dequantize each weight, add the update and
    quantize the sum again, so the model would differ from the trained one (and from the saved adapter
    reloaded on a 4-bit base, which is what anyone serving it runs) by a fresh NF4 rounding of every layer;
    dequantizing the whole base instead would give up QLoRA's memory saving."""
    from bitsandbytes.nn import Linear4bit
    from peft.tuners.lora import LoraLayer

    merged = 0
    for module in model.modules():
        if isinstance(module, LoraLayer) and not module.merged and not isinstance(module.get_base_layer(), Linear4bit):
            module.merge()
            merged += 1
    return merged
