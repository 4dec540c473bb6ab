"""Architecture facts read from a model's own config: no weights, no claims.

The model is instantiated on the meta device (shapes only, no memory), and its parameters are counted
by role: embeddings, attention, MLP (dense) or routed experts, shared experts, router, LM head, norms.
Active parameters per token count only `experts_per_token` of the routed experts. This is what settles
"is model X a mixture of experts?": Mistral-7B has no experts, Mixtral-8x7B has 8 with 2 active.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the Architecture record is used by torch-free code (decision, report); introspect() needs both
    from transformers import PretrainedConfig

KV_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "int8": 1, "int4": 0.5}
_EXPERT_COUNT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
_EXPERTS_PER_TOKEN_KEYS = ("num_experts_per_tok", "moe_top_k", "top_k")


@dataclass(frozen=True)
class Architecture:
    model_type: str
    is_moe: bool
    num_experts: int  # routed experts per layer (0 for dense)
    experts_per_token: int
    has_shared_experts: bool
    params_total: int
    params_active: int  # per token: everything but the routed experts not chosen
    params_embedding: int
    params_attention: int
    params_mlp: int  # dense MLP, or all routed + shared experts
    params_router: int
    params_lm_head: int  # 0 when tied to the embeddings
    params_other: int  # norms, biases outside the blocks
    tied_embeddings: bool
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    kv_cache_bytes_per_token: dict  # dtype -> bytes per token (all layers, K and V)
    sliding_window: int | None
    vocab_size: int
    context_length: int | None
    lora_params_per_rank: dict  # "attention" / "all" -> adapter parameters per unit of LoRA rank
    # Routed experts stored as 3-D tensors (transformers 5 fuses them: Mixtral, Qwen-MoE...). bitsandbytes'
    # 4-bit loading replaces nn.Linear only, so these stay in the load dtype under QLoRA (bitsandbytes#1849).
    params_fused_experts: int = 0

    @property
    def params_lm_head_compute(self) -> int:
        """Parameters the LM head multiplies by, tied or not (a tied head still costs its matmul)."""
        return self.params_lm_head or self.vocab_size * self.hidden_size

    def as_dict(self) -> dict:
        return asdict(self)


# config.json spellings of each architecture number (GPT-2, T5, Falcon... name them their own way).
_SIZE_KEYS = {
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads"),
    "num_key_value_heads": ("num_key_value_heads", "num_kv_heads", "multi_query_group_num"),
    "head_dim": ("head_dim", "d_kv", "kv_channels"),  # given: heads need not divide the hidden size
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_dim", "d_ff"),
    "vocab_size": ("vocab_size",),
    "max_position_embeddings": ("max_position_embeddings", "n_positions"),
}


def impossible_value(config: dict, prefix: str = "") -> str | None:
    """The first architecture number in a config.json no model can have, as "`key: value` ... why", or None.

    Checked before transformers sees the file: a negative hidden size, zero layers or heads that do not divide
    the hidden size otherwise end in a tensor-shape traceback 70 lines deep, or worse, in an estimate. Only keys
    present are checked (transformers' defaults are sane); a nested `text_config` is checked the same way."""
    nested = config.get("text_config")
    if isinstance(nested, dict):
        problem = impossible_value(nested, f"{prefix}text_config.")
        if problem:
            return problem
    found: dict[str, tuple[str, object]] = {}  # standard name -> (key as spelled in the file, value)
    for name, spellings in _SIZE_KEYS.items():
        key = next((k for k in spellings if config.get(k) is not None), None)
        if key is None or isinstance(config[key], (list, dict)):  # per-layer lists: not ours to judge
            continue
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"`{prefix}{key}: {_json(value)}` is impossible: it must be a whole number of at least 1"
        found[name] = (prefix + key, value)
    heads = found.get("num_attention_heads")
    hidden = found.get("hidden_size")
    if heads and hidden and "head_dim" not in found and hidden[1] % heads[1]:
        return (
            f"`{heads[0]}: {heads[1]}` does not divide `{hidden[0]}: {hidden[1]}`, so the heads cannot split the "
            "hidden size (set `head_dim` if the model's heads are not hidden_size / heads wide)"
        )
    kv_heads = found.get("num_key_value_heads")
    if heads and kv_heads and heads[1] % kv_heads[1]:
        return f"`{kv_heads[0]}: {kv_heads[1]}` does not divide `{heads[0]}: {heads[1]}` (each KV head serves a group)"
    return _impossible_experts(config, prefix)


def _impossible_experts(config: dict, prefix: str) -> str | None:
    experts_key = next((k for k in _EXPERT_COUNT_KEYS if config.get(k) is not None), None)
    if experts_key is None:  # dense; `top_k` alone is then a generation setting, not routing
        return None
    chosen_key = next((k for k in _EXPERTS_PER_TOKEN_KEYS if config.get(k) is not None), None)
    for key in (experts_key, chosen_key):
        value = config.get(key) if key else None
        if key and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            return f"`{prefix}{key}: {_json(value)}` is impossible: it must be a whole number of at least 0"
    experts, chosen = config[experts_key], config.get(chosen_key or "", 0)
    if experts and chosen > experts:
        return (
            f"`{prefix}{chosen_key}: {chosen}` is more than `{prefix}{experts_key}: {experts}`: a token cannot use "
            "more experts than there are"
        )
    return None


def _json(value) -> str:
    return json.dumps(value)


def _first(config: PretrainedConfig, keys: tuple[str, ...], default=0):
    for key in keys:
        value = getattr(config, key, None)
        if value:
            return value
    return default


def _role(name: str) -> str:
    if "lm_head" in name:
        return "lm_head"
    if "embed" in name or name.endswith("wte.weight") or name.endswith("wpe.weight"):
        return "embedding"
    if ".shared_expert" in name:
        return "shared_expert"
    if ".experts." in name:
        return "expert"
    if any(k in name for k in ("self_attn", ".attn.", "attention")):
        return "attention"
    if any(k in name for k in (".mlp.gate.", ".router.", "block_sparse_moe.gate.")) and ".experts" not in name:
        return "router"
    if any(k in name for k in (".mlp.", "feed_forward", ".ffn.")):
        return "mlp"
    return "other"


def introspect(config: PretrainedConfig) -> Architecture:
    """Count parameters by role from the config alone (meta-device instantiation)."""
    import torch
    from transformers import AutoModelForCausalLM

    text = config.get_text_config()
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    by_role: dict[str, int] = {}
    lora_per_rank = {"attention": 0, "all": 0}
    fused_experts = 0
    for name, param in model.named_parameters():  # tied weights appear once
        role = _role(name)
        by_role[role] = by_role.get(role, 0) + param.numel()
        if role == "expert" and param.ndim == 3:
            fused_experts += param.numel()
        if ".layers." not in name or not name.endswith(("weight", "proj")) or role in ("router", "other"):
            continue
        if param.ndim == 2 and role in ("attention", "mlp", "shared_expert"):
            fan = param.shape[0] + param.shape[1]  # LoRA on [out, in] adds r * (in + out)
        elif param.ndim == 3 and role == "expert":
            fan = param.shape[0] * (param.shape[1] + param.shape[2])  # peft ParamWrapper: r * experts * (in + out)
        else:
            continue
        lora_per_rank["all"] += fan
        if role == "attention":
            lora_per_rank["attention"] += fan
    num_experts = int(_first(text, _EXPERT_COUNT_KEYS))
    experts_per_token = int(_first(text, _EXPERTS_PER_TOKEN_KEYS)) if num_experts else 0
    is_moe = num_experts > 1 and by_role.get("expert", 0) > 0
    routed = by_role.get("expert", 0)
    active_routed = routed * experts_per_token // num_experts if is_moe else routed
    total = sum(by_role.values())
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    layers = text.num_hidden_layers
    kv_elements = 2 * layers * kv_heads * head_dim
    window = getattr(text, "sliding_window", None) if getattr(text, "use_sliding_window", True) is not False else None
    return Architecture(
        model_type=text.model_type,
        is_moe=is_moe,
        num_experts=num_experts if is_moe else 0,
        experts_per_token=experts_per_token if is_moe else 0,
        has_shared_experts=by_role.get("shared_expert", 0) > 0,
        params_total=total,
        params_active=total - routed + active_routed,
        params_embedding=by_role.get("embedding", 0),
        params_attention=by_role.get("attention", 0),
        params_mlp=by_role.get("mlp", 0) + routed + by_role.get("shared_expert", 0),
        params_router=by_role.get("router", 0),
        params_lm_head=by_role.get("lm_head", 0),
        params_other=by_role.get("other", 0),
        tied_embeddings=by_role.get("lm_head", 0) == 0,
        num_layers=layers,
        hidden_size=text.hidden_size,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        kv_cache_bytes_per_token={dtype: kv_elements * size for dtype, size in KV_DTYPE_BYTES.items()},
        sliding_window=window,
        vocab_size=text.vocab_size,
        context_length=getattr(text, "max_position_embeddings", None),
        lora_params_per_rank=lora_per_rank,
        params_fused_experts=fused_experts,
    )
