"""Padded batches for the label-token loss: left-padded, LM head only on label positions.

Used where packed batches (`training/packing.py`) are not exact: flash/flex attention, or sequences
longer than a sliding window.

Left padding puts every sequence's label tokens at the end, so `logits_to_keep = longest label + 1`
computes LM-head logits only where the loss needs them. The full [batch, seq, vocab] logits tensor is
never built: for SmolLM2 (49k vocab) that tensor is most of the step's memory, and for Gemma-3 (262k
vocab) most of its compute.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from bakeoff.models.lm_head import contiguous_lm_head
from bakeoff.models.padding import left_pad
from bakeoff.models.prompt import EncodedItem


@dataclass
class LabelBatch:
    input_ids: torch.Tensor  # [B, T] left-padded prompt + label tokens
    attention_mask: torch.Tensor  # [B, T]
    position_ids: torch.Tensor  # [B, T] counted from each sequence's first real token
    target_ids: torch.Tensor  # [B, L] the last L tokens of input_ids (L = longest label)
    target_mask: torch.Tensor  # [B, L] True where the target is a real label token
    real_tokens: int  # non-pad tokens in the batch (for tokens/s)

    @property
    def computed_tokens(self) -> int:
        return self.input_ids.numel()

    def loss(self, model) -> tuple[torch.Tensor, int]:
        return label_loss(model, self)

    @property
    def logits_to_keep(self) -> int:
        return self.target_ids.shape[1] + 1

    def to(self, device: str | torch.device) -> LabelBatch:
        moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.__dict__.items()}
        return LabelBatch(**moved)


def collate(items: list[EncodedItem], label_ids: list[list[int]], pad_id: int) -> LabelBatch:
    targets = [label_ids[item.label_index] for item in items]
    ids, mask, positions = left_pad([item.prompt_ids + target for item, target in zip(items, targets)], pad_id)
    width = max(len(t) for t in targets)
    target_ids = ids[:, -width:]
    target_mask = torch.zeros((len(items), width), dtype=torch.bool)
    for row, target in enumerate(targets):
        target_mask[row, width - len(target) :] = True
    return LabelBatch(ids, mask, positions, target_ids, target_mask, int(mask.sum()))


def label_loss(model, batch: LabelBatch) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over real label tokens, and how many there were."""
    with contiguous_lm_head(model):
        out = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            logits_to_keep=batch.logits_to_keep,
            use_cache=False,
        )
    # logits[:, j] predicts the token after position j: drop the last one, align with the targets.
    logits = out.logits[:, :-1].float()
    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch.target_ids, reduction="none")
    count = int(batch.target_mask.sum())
    return (losses * batch.target_mask).sum() / max(count, 1), count


def batches(items: list[EncodedItem], batch_size: int, seed: int, shuffle: bool = True) -> list[list[EncodedItem]]:
    """Shuffled batches for training; for evaluation (`shuffle=False`), batches of similar length (less padding).

    Training batches are not grouped by length: when length correlates with the label (it does on the
    built-in tickets), length-grouped batches hold few labels each. Packing (`training/packing.py`)
    removes the padding without grouping."""
    order = list(range(len(items)))
    if shuffle:
        random.Random(seed).shuffle(order)
    else:
        order.sort(key=lambda i: len(items[i].prompt_ids))
    return [[items[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]
