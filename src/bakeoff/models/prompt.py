"""Prompts and label continuations, identical for training and scoring.

A classification item becomes `prompt ids` + `label ids`. Two prompt styles:
- `chat`: the tokenizer's chat template, instruction as the system turn, item as the user turn; the
  label continuation is the label's words + EOS. An instruct model answers zero-shot in this form.
- `plain`: "{instruction}\nMessage: {item}\nCategory:", label continuation " {words}\n". Each item adds
  only its text and ~3 tokens, against ~5 for the chat turn markers (`<|im_end|>`, assistant header):
  for SmolLM2 on the built-in tickets, 30 tokens per ticket after the shared prefix instead of 33.
The end marker makes labels that are prefixes of one another ("refund" / "refund status") distinct.

Fine-tuned models get the shortest prompt that works: plain style, no label list (they learn the
labels), unless the user asks for `chat`. Zero-shot models get the chat template when the tokenizer has
one, and the label list, or they could not know the answer space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class PromptFormat:
    instruction: str
    labels: list[str]  # class order
    show_label_list: bool  # True for zero-shot
    max_prompt_tokens: int = 192
    style: Literal["chat", "plain"] = "chat"  # chat falls back to plain for tokenizers without a template

    @property
    def label_words(self) -> list[str]:
        """Labels as the model reads and writes them: `card_arrival` -> `card arrival` (when unambiguous)."""
        words = [label.replace("_", " ").strip() for label in self.labels]
        return words if len(set(words)) == len(words) else list(self.labels)


@dataclass(frozen=True)
class EncodedItem:
    prompt_ids: list[int]
    label_index: int  # -1 when unknown (out-of-scope items)


class PromptEncoder:
    """Turns texts into prompt ids and labels into continuation ids for one tokenizer."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat):
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.uses_chat_template = fmt.style == "chat" and bool(getattr(tokenizer, "chat_template", None))
        end = tokenizer.eos_token if self.uses_chat_template and tokenizer.eos_token else "\n"
        lead = "" if self.uses_chat_template else " "
        self.label_ids: list[list[int]] = [
            tokenizer(f"{lead}{word}{end}", add_special_tokens=False)["input_ids"] for word in fmt.label_words
        ]

    @property
    def style(self) -> str:
        """The prompt style in effect: `chat` only when asked for and the tokenizer has a template."""
        return "chat" if self.uses_chat_template else "plain"

    def _instruction(self) -> str:
        if not self.fmt.show_label_list:
            return self.fmt.instruction
        return f"{self.fmt.instruction} Answer with one of: {', '.join(self.fmt.label_words)}."

    def _render(self, text: str) -> str:
        if not self.uses_chat_template:
            return f"{self._instruction()}\nMessage: {text}\nCategory:"
        messages = [{"role": "system", "content": self._instruction()}, {"role": "user", "content": text}]
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # templates that reject a system turn (some raise TemplateError): fold it in
            merged = [{"role": "user", "content": f"{self._instruction()}\n\n{text}"}]
            return self.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)

    def _ids(self, rendered: str) -> list[int]:
        # Chat templates write their own BOS into the text; plain prompts need the tokenizer's.
        return self.tokenizer(rendered, add_special_tokens=not self.uses_chat_template)["input_ids"]

    def prompt_ids(self, text: str) -> list[int]:
        """Prompt token ids; an over-long item text is cut at its end (the opening states the request)."""
        ids = self._ids(self._render(text))
        overflow = len(ids) - self.fmt.max_prompt_tokens
        if overflow > 0:
            text_ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            keep = max(1, len(text_ids) - overflow - 2)
            ids = self._ids(self._render(self.tokenizer.decode(text_ids[:keep])))
        return ids

    def encode(self, texts: list[str], labels: list[str] | None = None) -> list[EncodedItem]:
        index = {label: i for i, label in enumerate(self.fmt.labels)}
        return [
            EncodedItem(self.prompt_ids(text), index[labels[i]] if labels is not None else -1)
            for i, text in enumerate(texts)
        ]


def prompt_style(setting: Literal["auto", "chat", "plain"], fine_tuned: bool) -> Literal["chat", "plain"]:
    """`auto`: plain (fewest tokens) for a model that is fine-tuned on the format, chat for zero-shot."""
    if setting != "auto":
        return setting
    return "plain" if fine_tuned else "chat"


def shared_prefix_length(prompts: list[list[int]]) -> int:
    """Tokens every prompt starts with, leaving each prompt at least one token of its own."""
    first = prompts[0]
    limit = min(len(p) for p in prompts) - 1
    length = 0
    while length < limit and all(p[length] == first[length] for p in prompts):
        length += 1
    return length
