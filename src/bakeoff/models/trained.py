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
from bakeoff.run_folder import TrialFolder


def load_trained(candidate, trial: dict, folder: TrialFolder, options: LoadOptions):
    """`(model, tokenizer, base source)` of a stored trial. `candidate`: its config.CandidateSpec; `trial`:
    the stored row (method, result.model); `folder`: the trial's files; `options.load_in_4bit` for QLoRA."""
    method, model_info = trial["method"], trial["result"]["model"]
    source = candidate_source(candidate, model_info.get("commit_sha"))  # the base the adapter was trained on
    tokenizer = load_tokenizer(source, options)
    if method == "full":
        saved = folder.model
        model = load_model(ModelSource("folder", str(saved), description=str(saved)), options)
    else:
        model = load_model(source, options)
        if method in ("lora", "qlora"):
            model = with_adapter(model, folder.adapter, merge=not options.load_in_4bit)
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
    own_adapted_weights(loaded)
    return loaded.merge_and_unload()


def own_adapted_weights(model) -> int:
    """Give every CPU base weight that a LoRA merge will write its own memory first; returns how many.

    Weights loaded from safetensors on CPU are a copy-on-write view of the file's memory map, so the merge's
    in-place add faults and copies each page as it writes. On the 2-core Firecracker VM of the README that
    took 3.95 s for SmolLM2-135M's adapted weights; copying them first and then merging in place took
    0.17 s (`bench/merge_speed.py`). Same values: the copy is exact and the merge adds the same update.
    A tied weight is one Parameter shared by two modules, so both keep sharing the copy. GPU weights are
    never memory-mapped and are left as they are."""
    from peft.tuners.lora import LoraLayer

    seen: set[int] = set()
    for module in model.modules():
        if not isinstance(module, LoraLayer) or module.merged:
            continue
        for param in module.get_base_layer().parameters(recurse=False):
            if param.device.type == "cpu" and param.is_floating_point() and id(param) not in seen:
                seen.add(id(param))
                param.data = param.data.clone()
    return len(seen)


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
            own_adapted_weights(module)
            module.merge()
            merged += 1
    return merged
