"""Attention over packed rows by groups of items, instead of over the whole row under its 4-D mask.

In a packed row `[prefix | item 1 | item 2 | ...]` (`training/packing.py`) each item may attend to the
prefix and to itself only, but SDPA given the row's mask still scores every (query, key) pair: ~12% of a
SmolLM2 training step went to pairs the mask then discards. Items sit side by side, so the row splits
into groups of consecutive items: the first group, with the prefix, is a leading block of the row and
attends within it; every later group's queries attend to the prefix's keys and the group's own. Each
group is one SDPA call on slices of the row (its mask is the matching block of the row's mask), so the
result is the same and nothing is gathered: an earlier per-item version that gathered with advanced
indexing was slower, its backward (`index_put_`) costing more than the skipped scores
(docs/footguns.md). In-process A/B on SmolLM2-135M packed batches of 8 tickets (~245-token rows):
+5-8% per step for groups of 30-60 query tokens; rows of 4 (~133 tokens) were 1% slower, so `pack()`
gives groups only to rows of at least `GROUP_FROM_ROW_TOKENS`.

`grouped_attention(model)` registers this as the model's attention implementation while training, only
where it was SDPA; calls without groups (padded batches, a KV cache) go to transformers' SDPA function.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

GROUPED_SDPA = "bakeoff_grouped_sdpa"
GROUP_QUERY_TOKENS = 40  # items are added to a group while its own tokens stay within this (30-60: same speed)


@dataclass
class AttentionGroups:
    """Per row of a packed batch: (start, end, mask) for each group of consecutive positions.

    The first group starts at 0 and holds the prefix: its keys are positions [0, end). A later group's keys
    are the prefix's positions then [start, end). `mask` is the additive [1, 1, end - start, keys] block."""

    prefix: int
    rows: list[list[tuple[int, int, torch.Tensor]]]

    def to(self, device: str | torch.device) -> AttentionGroups:
        return AttentionGroups(self.prefix, [[(a, b, m.to(device)) for a, b, m in row] for row in self.rows])


def group_spans(
    prefix: int, item_spans: list[tuple[int, int]], budget: int = GROUP_QUERY_TOKENS
) -> list[tuple[int, int]]:
    """Consecutive items (given as [start, end) in the row) joined into groups of at most `budget` own
    tokens (an item longer than that is a group of its own); the first group also covers the prefix."""
    groups: list[list[int]] = []
    for start, end in item_spans:
        if groups and end - groups[-1][0] <= budget:
            groups[-1][1] = end
        else:
            groups.append([start, end])
    if groups:
        groups[0][0] = 0
    else:
        groups = [[0, prefix]]
    return [(a, b) for a, b in groups]


def group_masks(mask: torch.Tensor, prefix: int, spans: list[tuple[int, int]]) -> list[tuple[int, int, torch.Tensor]]:
    """The blocks of one row's additive mask [1, 1, T, T] that each group's SDPA call needs."""
    blocks = []
    for a, b in spans:
        block = mask[:, :, a:b, :b] if a == 0 else torch.cat([mask[:, :, a:b, :prefix], mask[:, :, a:b, a:b]], dim=-1)
        blocks.append((a, b, block.contiguous()))
    return blocks


def grouped_sdpa(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    attention_groups: AttentionGroups | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """An AttentionInterface function: query [R, H, T, D], key/value [R, KV heads, T, D] -> [R, T, H, D]."""
    unsupported = kwargs.get("softcap") is not None or kwargs.get("s_aux") is not None
    if attention_groups is None or unsupported or key.shape[2] != query.shape[2]:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    prefix, width = attention_groups.prefix, query.shape[2]
    gqa = key.shape[1] != query.shape[1]
    rows = []
    for r, groups in enumerate(attention_groups.rows):
        q, k, v = query[r : r + 1], key[r : r + 1], value[r : r + 1]
        parts = []
        for a, b, mask in groups:
            if a == 0:
                group_k, group_v = k[:, :, :b], v[:, :, :b]
            else:
                group_k = torch.cat([k[:, :, :prefix], k[:, :, a:b]], dim=2)
                group_v = torch.cat([v[:, :, :prefix], v[:, :, a:b]], dim=2)
            parts.append(
                torch.nn.functional.scaled_dot_product_attention(
                    q[:, :, a:b], group_k, group_v, attn_mask=mask, dropout_p=dropout, scale=scaling, enable_gqa=gqa
                )
            )
        covered = groups[-1][1]
        if covered < width:  # the row's right padding: its output reaches nothing
            parts.append(q.new_zeros(1, q.shape[1], width - covered, q.shape[3]))
        rows.append(torch.cat(parts, dim=2))
    return torch.cat(rows).transpose(1, 2).contiguous(), None


AttentionInterface.register(GROUPED_SDPA, grouped_sdpa)
AttentionMaskInterface.register(GROUPED_SDPA, sdpa_mask)  # 2-D masks (padded batches) get SDPA's 4-D mask


def _base(model: nn.Module) -> nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model  # under a PEFT wrapper


def uses_grouped_attention(model: nn.Module) -> bool:
    return getattr(_base(model).config, "_attn_implementation", None) == GROUPED_SDPA


@contextmanager
def grouped_attention(model: nn.Module) -> Iterator[bool]:
    """Inside the block, a model on SDPA attention uses `grouped_sdpa`; yields whether it was switched.

    CPU only, where it was measured. On CUDA a masked SDPA call with grouped-query heads (Mistral, Llama-3,
    Mixtral) can use neither the flash kernel (no mask) nor the memory-efficient one (no GQA) and falls back
    to the math kernel, once per group: there the model keeps its own SDPA path."""
    base = _base(model)
    first = next(base.parameters(), None)
    on_cpu = first is None or first.device.type == "cpu"
    switch = getattr(base.config, "_attn_implementation", None) == "sdpa" and on_cpu
    if switch:
        base.set_attn_implementation(GROUPED_SDPA)
    try:
        yield switch
    finally:
        if switch:
            base.set_attn_implementation("sdpa")
