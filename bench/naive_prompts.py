"""The naive prompt: the chat template's default form, one user turn holding instruction and item.

Reference only (bakeoff's own prompts are in `bakeoff.models.prompt`). SmolLM2's template inserts its
default system prompt when none is given, so every item pays for it.
"""

from __future__ import annotations

from bakeoff.models.prompt import EncodedItem


def default_chat_items(
    tokenizer, instruction: str, texts: list[str], labels: list[str], order: list[str]
) -> list[EncodedItem]:
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"{instruction}\n\n{text}"}], add_generation_prompt=True
        )
        for text in texts
    ]
    prompts = [p["input_ids"] if hasattr(p, "keys") else p for p in prompts]  # some tokenizers return a BatchEncoding
    return [EncodedItem(list(p), order.index(label)) for p, label in zip(prompts, labels)]
