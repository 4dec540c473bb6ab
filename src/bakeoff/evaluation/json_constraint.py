"""Constrained decoding of extraction records: only tokens that keep the output a valid JSON prefix of
`{"field1":<value>,"field2":<value>,...}` with exactly the declared fields, in order, each value a JSON
string or `null`, compact separators (what fine-tuned models are trained to write), then EOS.

Written by hand: none of the kept libraries does this for transformers 5.24 without new installs (outlines,
lm-format-enforcer, xgrammar are not installed). The grammar is small enough for a character-level state
machine, `RecordGrammar.advance`, and the processor checks a token by running its text through it.

For greedy decoding, masking every invalid token and taking the argmax equals taking the highest-scoring
valid token, so `GreedyRecordProcessor` checks candidates in descending score order and stops at the first
valid one (usually the first or second), instead of checking all ~49k vocabulary entries at every step.
Only when none of the top candidates fits is the state's whole valid set computed (once, then cached).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor

# Phases of the state machine. A state is (phase, field index, position): small, hashable, cacheable.
LITERAL, VALUE, NULL, STRING, ESCAPE, UNICODE, DONE = range(7)
State = tuple[int, int, int]
_ESCAPABLE = set('"\\/bfnrt')
_HEX = set("0123456789abcdefABCDEF")
TOP_CANDIDATES = 64  # candidates checked before falling back to the whole vocabulary in score order


@dataclass(frozen=True)
class RecordGrammar:
    """The compact JSON record of `fields`, character by character."""

    fields: tuple[str, ...]

    def __post_init__(self):
        if not self.fields:
            raise ValueError("a record needs at least one field")

    def literal(self, index: int) -> str:
        """The fixed text before field `index`'s value (index == len(fields): the closing brace)."""
        if index == len(self.fields):
            return "}"
        return ("{" if index == 0 else ",") + json.dumps(self.fields[index], ensure_ascii=False) + ":"

    @property
    def start(self) -> State:
        return (LITERAL, 0, 0)

    def advance(self, state: State | None, text: str) -> State | None:
        """The state after reading `text` from `state`, or None if the text leaves the grammar."""
        for char in text:
            if state is None:
                return None
            state = self._step(state, char)
        return state

    def _step(self, state: State, char: str) -> State | None:
        phase, index, pos = state
        if phase == LITERAL:
            literal = self.literal(index)
            if char != literal[pos]:
                return None
            if pos + 1 < len(literal):
                return (LITERAL, index, pos + 1)
            return (DONE, index, 0) if index == len(self.fields) else (VALUE, index, 0)
        if phase == VALUE:
            if char == '"':
                return (STRING, index, 0)
            if char == "n":
                return (NULL, index, 1)
            return None
        if phase == NULL:
            if char != "null"[pos]:
                return None
            return (NULL, index, pos + 1) if pos + 1 < 4 else (LITERAL, index + 1, 0)
        if phase == STRING:
            if char == '"':
                return (LITERAL, index + 1, 0)
            if char == "\\":
                return (ESCAPE, index, 0)
            return None if ord(char) < 0x20 else state  # raw control characters are not allowed in JSON strings
        if phase == ESCAPE:
            if char == "u":
                return (UNICODE, index, 0)
            return (STRING, index, 0) if char in _ESCAPABLE else None
        if phase == UNICODE:
            if char not in _HEX:
                return None
            return (UNICODE, index, pos + 1) if pos + 1 < 4 else (STRING, index, 0)
        return None  # DONE: nothing may follow the closing brace

    def is_done(self, state: State | None) -> bool:
        return state is not None and state[0] == DONE


def token_texts(tokenizer) -> list[str | None]:
    """Each vocabulary id's text as it reads after other text (None for special tokens and empty pieces).

    Decoded after an anchor token and cut from its text, because tokenizers that mark word starts (SentencePiece's
    `▁`) drop a leading space when a token is decoded alone."""
    anchor = tokenizer("a", add_special_tokens=False)["input_ids"][-1]
    anchor_text = tokenizer.decode([anchor])
    size = len(tokenizer)
    decoded = tokenizer.batch_decode([[anchor, i] for i in range(size)], clean_up_tokenization_spaces=False)
    special = set(tokenizer.all_special_ids)
    texts: list[str | None] = []
    for i, text in enumerate(decoded):
        piece = text[len(anchor_text) :] if text.startswith(anchor_text) else None
        texts.append(None if i in special or not piece else piece)
    return texts


class GreedyRecordProcessor(LogitsProcessor):
    """Leaves only the best-scoring grammar-valid token per row (EOS once the record is closed).

    Keeps one grammar state per row, advanced by the token generate() appended since the last call."""

    def __init__(self, grammar: RecordGrammar, texts: list[str | None], eos_id: int, prompt_length: int):
        self.grammar = grammar
        self.texts = texts
        self.eos_id = eos_id
        self.prompt_length = prompt_length  # of the (left-padded) input: tokens after it are generated
        self.states: list[State | None] | None = None
        self.cache: dict[tuple[State, int], State | None] = {}
        self.valid_cache: dict[State | None, torch.Tensor] = {}

    def _next(self, state: State, token: int) -> State | None:
        key = (state, token)
        if key not in self.cache:
            text = self.texts[token] if token < len(self.texts) else None
            self.cache[key] = None if text is None else self.grammar.advance(state, text)
        return self.cache[key]

    def allowed(self, state: State | None, token: int) -> bool:
        if state is None:
            return token == self.eos_id
        if self.grammar.is_done(state):
            return token == self.eos_id
        return token != self.eos_id and self._next(state, token) is not None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = input_ids.shape[0]
        if self.states is None:
            self.states = [self.grammar.start] * rows
        elif input_ids.shape[1] > self.prompt_length:
            last = input_ids[:, -1].tolist()
            for r in range(rows):
                state = self.states[r]
                if state is not None and not self.grammar.is_done(state):
                    self.states[r] = self._next(state, last[r])
        chosen = [self._best(self.states[r], scores[r]) for r in range(rows)]
        masked = torch.full_like(scores, float("-inf"))
        masked[torch.arange(rows, device=scores.device), torch.tensor(chosen, device=scores.device)] = 0.0
        return masked

    def _best(self, state: State | None, row_scores: torch.Tensor) -> int:
        top = torch.topk(row_scores, min(TOP_CANDIDATES, row_scores.shape[0])).indices.tolist()
        for token in top:
            if self.allowed(state, token):
                return token
        valid = self._valid_ids(state)
        if valid.numel() == 0:
            return self.eos_id  # no token continues the record (cannot happen with a byte-level vocabulary)
        return int(valid[row_scores[valid.to(row_scores.device)].argmax()])

    def _valid_ids(self, state: State | None) -> torch.Tensor:
        """Every token allowed in `state`, scanned once per state: a model that ignores the format (untrained,
        or zero-shot) would otherwise scan the whole vocabulary in score order at every step."""
        if state not in self.valid_cache:
            ids = [token for token in range(len(self.texts)) if self.allowed(state, token)]
            if self.allowed(state, self.eos_id) and self.eos_id not in ids:
                ids.append(self.eos_id)
            self.valid_cache[state] = torch.tensor(ids, dtype=torch.long)
        return self.valid_cache[state]
