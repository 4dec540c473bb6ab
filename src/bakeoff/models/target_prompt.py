"""Prompts and target continuations for extraction and generation, identical for training and decoding.

The classification prompt (`models/prompt.py`) ends in `Category:` and its continuations are label words;
here the continuation is each item's own target text: a compact JSON record (extraction) or a reference
reply (generation), then EOS, which ends decoding. Plain style: "{instruction}\\nMessage: {item}\\n{cue}"
with the continuation " {target}<eos>"; chat style: the tokenizer's chat template, target + EOS as the
assistant turn. Items become `EncodedItem`s whose `label_index` points into a per-item list of target ids,
so the packed training loop (`training/packing.py`) trains on them unchanged: loss on target tokens only.
"""

from __future__ import annotations

from typing import Literal

from transformers import PreTrainedTokenizerBase

from bakeoff.models.prompt import EncodedItem, PromptEncoder, PromptFormat

CUES = {"extraction": "JSON:", "generation": "Reply:"}


class TargetEncoder(PromptEncoder):
    """Texts to prompt ids, targets to continuation ids, for one tokenizer and task type. The classification
    encoder's rendering and truncation, with this task's cue after the item and no label list."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        instruction: str,
        task_type: str,
        max_prompt_tokens: int,
        style: Literal["chat", "plain"],
    ):
        self.cue = CUES[task_type]
        super().__init__(tokenizer, PromptFormat(instruction, [], False, max_prompt_tokens, style))

    def _render(self, text: str) -> str:
        rendered = super()._render(text)
        return rendered if self.uses_chat_template else rendered.removesuffix("Category:") + self.cue

    def target_ids(self, target: str) -> list[int]:
        lead = "" if self.uses_chat_template else " "
        return self.tokenizer(f"{lead}{target}", add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]

    def encode_targets(self, texts: list[str], targets: list[str]) -> tuple[list[EncodedItem], list[list[int]]]:
        """(items, per-item target ids): item i's `label_index` is i, its target the i-th list."""
        items = [EncodedItem(self.prompt_ids(text), i) for i, text in enumerate(texts)]
        return items, [self.target_ids(target) for target in targets]

    def encode_prompts(self, texts: list[str]) -> list[list[int]]:
        return [self.prompt_ids(text) for text in texts]
