"""Label scoring: P(label | prompt) for every label, from one prompt pass per item.

For each item the prompt is run once with the KV cache kept; the first token of every label is read
from the prompt's last position, and the remaining label tokens are run as one continuation on that
cache: the labels' tokens laid out as a trie (`LabelTrie`), so a prefix that several labels share
(`card` in `card arrival` and `card delivery estimate`) is run once,
with a tree attention mask in which each node sees the prompt and its own ancestors. Cost ~ prompt +
distinct label prefixes, not K x prompt, nor K x longest label. Items are length-sorted and
batched by padded size (`length_batches`), so padding stays small; logits are computed only at scored
positions.

All prompts of a run begin with the same tokens (instruction, chat-template system turn if any, and
for zero-shot the label list: often more than half the prompt). That shared prefix is run once, and its
cache is copied under every batch, so each item pays only for its own suffix. A caller that scores many
small batches (a server, the batch-1 latency measurement) runs the prefix once for all of them
(`cached_prefix`), as a serving stack with prefix caching does; a batch whose prompts do not all start
with it falls back to its own shared prefix.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from bakeoff.models.lm_head import contiguous_lm_head
from bakeoff.models.padding import left_pad
from bakeoff.models.prompt import EncodedItem, shared_prefix_length

LOGITS_BUDGET_BYTES = 256 * 2**20  # cap on one continuation pass's float32 logits
MIN_SHARED_PREFIX = 8  # shorter shared prefixes are not worth a separate pass
TREE_ATTENTION = ("sdpa", "eager")  # implementations that take a custom 4-D mask with a KV cache as given


# Item texts that begin differently (letter cases, digit, punctuation, space, non-ASCII): where their
# prompts part is where an item's own tokens may start, however the tokenizer merges at the boundary.
PREFIX_PROBES = ("hello there", "Hello", "42", "?!", " x", "\u00e9t\u00e9", "\u4f60\u597d")


@dataclass(frozen=True)
class CachedPrefix:
    """The prompt tokens every item of one prompt format starts with, and the model's KV cache of them."""

    ids: list[int]
    cache: object

    def starts(self, items: list[EncodedItem]) -> bool:
        n = len(self.ids)
        return all(len(item.prompt_ids) > n and item.prompt_ids[:n] == self.ids for item in items)


@torch.inference_mode()
def cached_prefix(model, encoder) -> CachedPrefix | None:
    """Run once the tokens that every prompt of `encoder` starts with (None if under MIN_SHARED_PREFIX), so
    that many later calls of `label_log_probs` skip them. Call it on the final weights: the cache holds
    this model's keys and values."""
    prompts = [item.prompt_ids for item in encoder.encode(list(PREFIX_PROBES))]
    length = shared_prefix_length(prompts)
    if length < MIN_SHARED_PREFIX:
        return None
    model.eval()
    ids = prompts[0][:length]
    device = next(model.parameters()).device
    cache = model(input_ids=torch.tensor([ids], device=device), use_cache=True, logits_to_keep=1).cache
    return CachedPrefix(ids, cache)


def distinct_first_tokens(label_ids: list[list[int]]) -> bool:
    return len({label[0] for label in label_ids}) == len(label_ids)


@torch.inference_mode()
def label_log_probs(
    model,
    items: list[EncodedItem],
    label_ids: list[list[int]],
    pad_id: int,
    batch_size: int = 16,
    progress=None,
    first_token_only: bool = False,
    prefix: CachedPrefix | None = None,
) -> np.ndarray:
    """log P(label tokens | prompt), summed over each label's tokens: [items, labels] float64.

    `first_token_only`: score only each label's first token (labels must start with distinct tokens).
    One prompt pass per batch and no continuation pass; for a model fine-tuned on these labels the
    remaining tokens are near-certain once the first is chosen, so the ranking and probabilities match.
    `prefix`: the format's shared prefix already run (`cached_prefix`), used when every item starts with it.
    """
    if first_token_only and not distinct_first_tokens(label_ids):
        raise ValueError("first-token scoring needs labels that start with distinct tokens")
    with contiguous_lm_head(model):
        return _label_log_probs(model, items, label_ids, pad_id, batch_size, progress, first_token_only, prefix)


def _label_log_probs(
    model,
    items: list[EncodedItem],
    label_ids: list[list[int]],
    pad_id: int,
    batch_size: int,
    progress,
    first_token_only: bool,
    cached: CachedPrefix | None,
) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    scores = np.zeros((len(items), len(label_ids)), dtype=np.float64)
    if not items:
        return scores
    shared = shared_prefix_length([item.prompt_ids for item in items])
    prefix = None
    # Sliding-window attention counts its window in cache slots: padding between the prefix and a suffix
    # would shrink the window, so share a prefix only when whole sequences fit inside the window.
    window = getattr(model.config.get_text_config(), "sliding_window", None)
    longest = max(len(item.prompt_ids) for item in items) + max(map(len, label_ids))
    fits_window = window is None or longest <= window
    # The cached prefix saves its tokens on every item; this call's own (maybe longer) shared prefix saves
    # its tokens on all items but the one pass that runs it. Take whichever skips more.
    own_saving = (len(items) - 1) * shared if shared >= MIN_SHARED_PREFIX else 0
    if cached is not None and fits_window and cached.starts(items) and len(items) * len(cached.ids) >= own_saving:
        shared, prefix = len(cached.ids), cached.cache
    elif shared >= MIN_SHARED_PREFIX and fits_window:
        ids = torch.tensor([items[0].prompt_ids[:shared]], device=device)
        prefix = model(input_ids=ids, use_cache=True, logits_to_keep=1).cache
    else:
        shared = 0
    trie = None
    if not first_token_only and any(len(label) > 1 for label in label_ids):
        # The tree mask has no window: exact only while every sequence fits inside it (as for the prefix).
        if getattr(model.config, "_attn_implementation", None) in TREE_ATTENTION and fits_window:
            trie = LabelTrie.of(label_ids)
    # Rows per pass so that one pass's continuation logits [rows, nodes, vocab] stay within the budget.
    vocab = model.config.get_text_config().vocab_size
    max_rows = max(1, LOGITS_BUDGET_BYTES // (len(trie.tokens) * vocab * 4)) if trie is not None else len(items)
    lengths = [len(item.prompt_ids) - shared for item in items]
    for batch in length_batches(lengths, batch_size):
        for start in range(0, len(batch), max_rows):
            rows = batch[start : start + max_rows]
            suffixes = [items[i].prompt_ids[shared:] for i in rows]
            scores[rows] = _score_batch(
                model, suffixes, label_ids, pad_id, device, first_token_only, prefix, shared, trie
            )
            if progress is not None:
                progress(len(rows))
    return scores


@dataclass(frozen=True)
class LabelTrie:
    """The label tokens that are run after the prompt, as a trie of shared prefixes laid out flat.

    Node n feeds one token at depth `depths[n]` after the prompt (depth 0: a label's first token) and
    attends to the prompt and to its ancestors (`ancestors[n]`, itself included). A label of L tokens
    passes through L - 1 nodes (its last token is only a target, never fed); `steps[k]` lists label k's
    (node, next token) pairs: the node's output predicts that token."""

    tokens: list[int]
    depths: list[int]
    ancestors: torch.Tensor  # [N, N] bool: ancestors[n, m] = m is n or above it
    steps: list[list[tuple[int, int]]]

    @classmethod
    def of(cls, label_ids: list[list[int]]) -> LabelTrie:
        node_of: dict[tuple[int, ...], int] = {}
        tokens, depths, parents, steps = [], [], [], []
        for label in label_ids:
            path = []
            for depth in range(len(label) - 1):
                key = tuple(label[: depth + 1])
                if key not in node_of:
                    node_of[key] = len(tokens)
                    tokens.append(label[depth])
                    depths.append(depth)
                    parents.append(node_of.get(key[:-1], -1))
                path.append((node_of[key], label[depth + 1]))
            steps.append(path)
        ancestors = torch.eye(len(tokens), dtype=torch.bool)
        for node, parent in enumerate(parents):  # parents come before children
            if parent >= 0:
                ancestors[node] |= ancestors[parent]
        return cls(tokens, depths, ancestors, steps)


def length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Item indices in length order, cut into batches of about equal padded size: `batch_size` items of
    average length, more of the short ones, fewer of the long ones. Equal-volume batches keep padding
    small and each batch's activations a similar size (2-core CPU, SmolLM2, 96 tickets, 4 interleaved
    rounds: 23.7 items/s against 23.2 for fixed batches of 8)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    budget = batch_size * sum(lengths) / max(len(lengths), 1)
    batches, batch = [], []
    for i in order:  # ascending, so the newcomer is the batch's longest
        if batch and (len(batch) + 1) * lengths[i] > budget:
            batches.append(batch)
            batch = []
        batch.append(i)
    return batches + [batch] if batch else batches


def _score_batch(
    model,
    prompts: list[list[int]],
    label_ids: list[list[int]],
    pad_id: int,
    device,
    first_token_only: bool,
    prefix=None,
    prefix_length: int = 0,
    trie: LabelTrie | None = None,
) -> np.ndarray:
    """Score a batch of prompts (or of prompt suffixes after a shared prefix whose cache is given)."""
    ids, mask, positions = left_pad(prompts, pad_id)
    ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
    cache = None
    if prefix is not None:
        # Row layout: [shared prefix | left padding | suffix]; the mask hides the padding, positions continue the
        # prefix.
        cache = copy.deepcopy(prefix)
        cache.batch_repeat_interleave(len(prompts))
        mask = torch.cat([torch.ones((len(prompts), prefix_length), dtype=mask.dtype, device=device), mask], dim=1)
        positions = positions + prefix_length
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        cache=cache,
        use_cache=not first_token_only or prefix is not None,
        logits_to_keep=1,
    )
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # [B, V]
    firsts = torch.tensor([label[0] for label in label_ids], device=device)
    total = first[:, firsts].double()  # [B, K]

    longer = [k for k, label in enumerate(label_ids) if len(label) > 1]
    if longer and not first_token_only:
        if trie is not None:
            total += _trie_continuations(model, out.cache, mask, trie)
        else:
            total[:, longer] += _continuations(model, out.cache, mask, [label_ids[k] for k in longer], pad_id)
    return total.cpu().numpy()


def _trie_continuations(model, cache, prompt_mask: torch.Tensor, trie: LabelTrie) -> torch.Tensor:
    """Sum of log-probs of tokens 2.. of every label, given each prompt's cache: [B, K] (0 for 1-token labels).

    One pass of the trie's N nodes per prompt, under a [B, 1, N, prompt + N] mask: a node attends to its
    prompt's real tokens and to its ancestors in the trie. The cache is extended in place (it is not used
    again)."""
    device = prompt_mask.device
    batch, nodes = prompt_mask.shape[0], len(trie.tokens)
    lengths = prompt_mask.sum(dim=1)  # [B] real prompt tokens, shared prefix included
    feed = torch.tensor(trie.tokens, device=device).expand(batch, nodes)
    positions = lengths.unsqueeze(1) + torch.tensor(trie.depths, device=device).unsqueeze(0)
    allowed = torch.cat(
        [prompt_mask.bool()[:, None, :].expand(batch, nodes, -1), trie.ancestors.to(device).expand(batch, -1, -1)],
        dim=2,
    )
    dtype = model.dtype
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, torch.finfo(dtype).min)
    out = model(input_ids=feed, attention_mask=mask[:, None], position_ids=positions, cache=cache, use_cache=True)
    log_probs = torch.log_softmax(out.logits.float(), dim=-1)  # [B, N, V]
    result = torch.zeros((batch, len(trie.steps)), dtype=torch.float64, device=device)
    for k, steps in enumerate(trie.steps):
        if steps:
            node_index = torch.tensor([node for node, _ in steps], device=device)
            targets = torch.tensor([token for _, token in steps], device=device)
            result[:, k] = log_probs[:, node_index, targets].double().sum(dim=1)
    return result


def _continuations(model, cache, prompt_mask: torch.Tensor, labels: list[list[int]], pad_id: int) -> torch.Tensor:
    """Sum of log-probs of tokens 2.. of each label, given each prompt's cache: [B, len(labels)]."""
    device = prompt_mask.device
    batch = prompt_mask.shape[0]
    width = max(len(label) for label in labels) - 1
    vocab = model.config.get_text_config().vocab_size
    per_chunk = max(1, LOGITS_BUDGET_BYTES // (batch * width * vocab * 4))
    lengths = prompt_mask.sum(dim=1)  # [B] real prompt tokens
    result = torch.zeros((batch, len(labels)), dtype=torch.float64, device=device)
    for start in range(0, len(labels), per_chunk):
        chunk = labels[start : start + per_chunk]
        k = len(chunk)
        feed = torch.full((k, width), pad_id, dtype=torch.long)
        target = torch.full((k, width), pad_id, dtype=torch.long)
        valid = torch.zeros((k, width), dtype=torch.bool)
        for row, label in enumerate(chunk):
            n = len(label) - 1
            feed[row, :n] = torch.tensor(label[:-1])
            target[row, :n] = torch.tensor(label[1:])
            valid[row, :n] = True
        feed, target, valid = (
            feed.to(device).repeat(batch, 1),
            target.to(device).repeat(batch, 1),
            valid.to(device).repeat(batch, 1),
        )
        # Row b*k + j continues prompt b with label j. The cache is copied: the forward appends to it.
        expanded = copy.deepcopy(cache)
        expanded.batch_repeat_interleave(k)
        attention = torch.cat([prompt_mask.repeat_interleave(k, dim=0), valid.long()], dim=1)
        positions = lengths.repeat_interleave(k).unsqueeze(1) + torch.arange(width, device=device).unsqueeze(0)
        out = model(input_ids=feed, attention_mask=attention, position_ids=positions, cache=expanded, use_cache=True)
        log_probs = torch.log_softmax(out.logits.float(), dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
        summed = (log_probs.double() * valid).sum(dim=1).view(batch, k)
        result[:, start : start + k] = summed
    return result


def probabilities(log_probs: np.ndarray) -> np.ndarray:
    """Normalise label log-probs over the labels: [items, labels], rows sum to 1."""
    shifted = log_probs - log_probs.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)
