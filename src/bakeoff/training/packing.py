"""Packed training batches: the shared prompt prefix once, then every item's own tokens, no padding.

Every prompt of a task starts with the same tokens (the instruction, in the chat template's system
turn if the prompt style is `chat`: 12 of ~42 tokens for SmolLM2 on the built-in tickets in plain
style). A batch is laid out as one row

    [shared prefix | item 1 suffix + label | item 2 suffix + label | ...]

with a 4-D attention mask in which each item sees the prefix and its own earlier tokens only, and
position ids that restart after the prefix for each item. That is exactly the computation of the
items run one by one after the prefix (the prefix's activations and their gradients are shared), but
the prefix is computed once per row, no pad token is ever computed, and neither is an item's last
label token (a target only: nothing attends to it and its output predicts nothing). Long batches are
split into several rows of at most `max_row_tokens`, balanced by length, each with its own copy of the
prefix. The row's mask serves every attention implementation that takes a 4-D mask; while training on
SDPA, the same attention is computed by groups of items instead (`training/grouped_attention.py`),
which skips the (query, key) pairs the mask would discard. Each batch carries the groups' mask blocks.

Logits are computed only at the positions that predict label tokens (`logits_to_keep` as a boolean
mask), never as a full [rows, tokens, vocab] tensor.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from bakeoff.models.prompt import EncodedItem, shared_prefix_length
from bakeoff.training.batches import collate
from bakeoff.training.grouped_attention import (
    GROUPED_SDPA,
    AttentionGroups,
    group_masks,
    group_spans,
    uses_grouped_attention,
)

MAX_ROW_TOKENS = 512
MASK_ATTENTION = ("sdpa", "eager", GROUPED_SDPA)  # implementations that take a custom 4-D mask as given
# Rows narrower than this attend as one block: at 8 built-in tickets per row (~245 tokens) groups were 5-8%
# faster per step, at 4 (~133 tokens) 1% slower (in-process A/B on SmolLM2; the saving grows with the row squared).
GROUP_FROM_ROW_TOKENS = 192


@dataclass
class PackedBatch:
    input_ids: torch.Tensor  # [R, T] rows, right-padded to the longest row
    position_ids: torch.Tensor  # [R, T]
    attention_mask: torch.Tensor  # [R, 1, T, T] additive: 0 where a query may attend, dtype-min elsewhere
    keep: torch.Tensor  # [R, T] bool: positions whose next token is a label token
    target_ids: torch.Tensor  # [M] those next tokens, row-major like `keep`
    real_tokens: int  # tokens of the unpacked batch (items x (prompt + label)), for tokens/s
    computed_tokens: int  # tokens actually run (prefix once per row + suffixes)
    groups: AttentionGroups | None  # the same mask by groups of items, for `grouped_sdpa` (None: rows too short)

    def to(self, device: str | torch.device) -> PackedBatch:
        moved = {
            k: v.to(device) if isinstance(v, (torch.Tensor, AttentionGroups)) else v for k, v in self.__dict__.items()
        }
        return PackedBatch(**moved)

    def loss(self, model) -> tuple[torch.Tensor, int]:
        return packed_label_loss(model, self)


def packing_supported(model, items: list[EncodedItem], label_ids: list[list[int]]) -> bool:
    """Whether packed batches compute exactly what padded ones do for this model and data."""
    config = model.config.get_text_config()
    if getattr(model.config, "_attn_implementation", None) not in MASK_ATTENTION:
        return False  # flash / flex attention build their own masks
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # under a PEFT wrapper
    if "logits_to_keep" not in inspect.signature(base.forward).parameters:
        return False
    window = getattr(config, "sliding_window", None)
    if window is not None and items:
        # The mask below has no window; identical results only while every sequence fits inside it.
        longest = max(len(item.prompt_ids) for item in items) + max(map(len, label_ids))
        return longest <= window
    return True


def batch_builder(model, items: list[EncodedItem], label_ids: list[list[int]], pad_id: int, packing: bool):
    """(make_batch, packed): make_batch turns a list of items into a packed batch when packing is asked for and
    exact for `model` on `items`, else into a left-padded one. Both kinds have `.to(device)` and `.loss(model)`."""
    if packing and packing_supported(model, items, label_ids):
        dtype = model.dtype
        return (lambda batch_items: pack(batch_items, label_ids, pad_id, dtype)), True
    return (lambda batch_items: collate(batch_items, label_ids, pad_id)), False


def pack(
    items: list[EncodedItem],
    label_ids: list[list[int]],
    pad_id: int,
    dtype: torch.dtype,
    max_row_tokens: int = MAX_ROW_TOKENS,
    group_from_tokens: int | None = None,
) -> PackedBatch:
    """Lay a batch out as rows of [prefix | suffix + label | ...] (see the module docstring)."""
    # An item's last label token is a target only, never run (one of the ~35 tokens a built-in ticket costs).
    sequences = [item.prompt_ids + label_ids[item.label_index][:-1] for item in items]
    prefix_length = shared_prefix_length([item.prompt_ids for item in items]) if len(items) > 1 else 0
    prefix = sequences[0][:prefix_length]
    rows = _balanced_rows([len(s) - prefix_length for s in sequences], max_row_tokens - prefix_length)
    width = max(prefix_length + sum(len(sequences[i]) - prefix_length for i in row) for row in rows)

    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    segment = torch.full((len(rows), width), -1, dtype=torch.long)  # 0: prefix, i + 1: item i, -1: padding
    keep = torch.zeros((len(rows), width), dtype=torch.bool)
    targets: list[int] = []  # in the row-major order of `keep`: rows in order, items left to right
    spans: list[list[tuple[int, int]]] = []  # per row, each item's [start, end)
    for r, row in enumerate(rows):
        spans.append([])
        ids[r, :prefix_length] = torch.tensor(prefix, dtype=torch.long)
        positions[r, :prefix_length] = torch.arange(prefix_length)
        segment[r, :prefix_length] = 0
        at = prefix_length
        for i in row:
            own = sequences[i][prefix_length:]
            end = at + len(own)
            ids[r, at:end] = torch.tensor(own, dtype=torch.long)
            positions[r, at:end] = torch.arange(prefix_length, prefix_length + len(own))
            segment[r, at:end] = i + 1
            label = label_ids[items[i].label_index]
            keep[r, end - len(label) : end] = True  # the positions that predict each label token
            targets.extend(label)
            spans[r].append((at, end))
            at = end
        positions[r, at:] = torch.arange(width - at)  # padding: its own dummy positions
    mask = _additive_mask(segment, dtype)
    groups = None
    if width >= (GROUP_FROM_ROW_TOKENS if group_from_tokens is None else group_from_tokens):
        groups = AttentionGroups(
            prefix_length,
            [
                group_masks(mask[r : r + 1], prefix_length, group_spans(prefix_length, row_spans))
                for r, row_spans in enumerate(spans)
            ],
        )
    return PackedBatch(
        ids,
        positions,
        mask,
        keep,
        torch.tensor(targets, dtype=torch.long),
        real_tokens=sum(len(s) + 1 for s in sequences),
        computed_tokens=int((segment >= 0).sum()),
        groups=groups,
    )


def packed_label_loss(model, batch: PackedBatch) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over the batch's label tokens, and how many there were (as `label_loss`)."""
    grouped = {"attention_groups": batch.groups} if batch.groups is not None and uses_grouped_attention(model) else {}
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=batch.keep,
        use_cache=False,
        **grouped,
    )
    logits = out.logits.reshape(-1, out.logits.shape[-1]).float()  # [M, V] already flat for a bool keep
    loss = torch.nn.functional.cross_entropy(logits, batch.target_ids, reduction="mean")
    return loss, int(batch.target_ids.numel())


def _balanced_rows(lengths: list[int], budget: int) -> list[list[int]]:
    """Split items (in their given order) into the fewest rows that fit `budget`, balanced by length."""
    count = max(1, -(-sum(lengths) // max(budget, 1)))
    while True:
        rows: list[list[int]] = [[] for _ in range(count)]
        loads = [0] * count
        for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):  # longest first into the lightest row
            r = min(range(count), key=loads.__getitem__)
            rows[r].append(i)
            loads[r] += lengths[i]
        if max(loads) <= budget or count >= len(lengths):
            return [sorted(row) for row in rows if row]
        count += 1


def _additive_mask(segment: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[R, 1, T, T]: query q attends to key k <= q when k is in the prefix or in q's own item; padding sees itself."""
    width = segment.shape[1]
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    query, key = segment[:, :, None], segment[:, None, :]
    allowed = causal & ((key == 0) | (key == query)) & (query >= 0)
    allowed |= torch.eye(width, dtype=torch.bool)  # padding rows attend to themselves (never an all-masked row)
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]
