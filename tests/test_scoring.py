"""Label scoring with a shared prompt KV cache must equal the naive full-sequence computation."""

import numpy as np
import pytest
import torch
from tiny import ARCHITECTURES, tiny_model, tiny_tokenizer

from bakeoff.evaluation.score import LabelTrie, label_log_probs, length_batches, probabilities
from bakeoff.models.prompt import PromptEncoder, PromptFormat, prompt_style, shared_prefix_length

LABELS = ["billing", "refund", "refund_status", "account_access", "shipping"]
TEXTS = [
    "I was charged twice for my Pro plan.",
    "Where is my refund? It has been two weeks since I sent the blender back, please check order 1234.",
    "cant log in",
    "Hi, my package never arrived. Thanks!",
    "Please cancel.",
]


def naive_log_probs(model, prompts, label_ids):
    """Reference: one full forward pass per (item, label), summing the label tokens' log-probs."""
    out = np.zeros((len(prompts), len(label_ids)))
    with torch.no_grad():
        for i, prompt in enumerate(prompts):
            for k, label in enumerate(label_ids):
                ids = torch.tensor([prompt + label])
                log_probs = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
                out[i, k] = sum(log_probs[len(prompt) - 1 + j, token].item() for j, token in enumerate(label))
    return out


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("chat", [True, False])
def test_cached_scoring_equals_naive(arch, chat):
    tokenizer = tiny_tokenizer(chat)
    model = tiny_model(arch, len(tokenizer))
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify the message.", LABELS, show_label_list=not chat))
    items = encoder.encode(TEXTS)
    assert len({len(i.prompt_ids) for i in items}) > 1, "prompts of different lengths exercise the padding"
    assert any(len(label) > 2 for label in encoder.label_ids), "multi-token labels exercise the continuation path"
    fast = label_log_probs(model, items, encoder.label_ids, tokenizer.pad_token_id, batch_size=3)
    slow = naive_log_probs(model, [i.prompt_ids for i in items], encoder.label_ids)
    np.testing.assert_allclose(fast, slow, atol=2e-4)


def test_shared_prefix_path_is_taken_and_matches_the_plain_path(monkeypatch):
    tokenizer = tiny_tokenizer()
    model = tiny_model("llama", len(tokenizer))
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify the message.", LABELS, show_label_list=True))
    items = encoder.encode(TEXTS)
    from bakeoff.models.prompt import shared_prefix_length

    assert shared_prefix_length([i.prompt_ids for i in items]) >= 20, "system turn + label list are shared"
    with_prefix = label_log_probs(model, items, encoder.label_ids, tokenizer.pad_token_id, batch_size=2)
    monkeypatch.setattr("bakeoff.evaluation.score.MIN_SHARED_PREFIX", 10**6)
    without = label_log_probs(model, items, encoder.label_ids, tokenizer.pad_token_id, batch_size=2)
    np.testing.assert_allclose(with_prefix, without, atol=1e-4)


def _tokens_run(model):
    """A list that gets every forward pass's input token count while the hook is on."""
    counts = []

    def count(_, args, kwargs):
        counts.append(kwargs["input_ids"].numel())

    return counts, model.register_forward_pre_hook(count, with_kwargs=True)


@pytest.mark.parametrize("arch", ["llama", "gemma3", "qwen2"])
@pytest.mark.parametrize("chat, first_token", [(True, False), (False, True), (False, False)])
def test_a_cached_prefix_scores_like_the_naive_way_and_batch_1_skips_it(arch, chat, first_token):
    """The format's shared prefix run once (`cached_prefix`, as the server and the latency measurement use
    it): batch-1 and batched scores equal the naive full-sequence ones, and a batch-1 call runs only the
    item's own tokens (without it: the whole prompt, in two passes)."""
    from bakeoff.evaluation.score import cached_prefix

    tokenizer = tiny_tokenizer(chat)
    model = tiny_model(arch, len(tokenizer))
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify the message.", LABELS, show_label_list=chat))
    if first_token:
        encoder.label_ids = [[k + 3] for k in range(len(LABELS))]  # distinct one-token labels
    items = encoder.encode(TEXTS)
    prefix = cached_prefix(model, encoder)
    assert prefix is not None and prefix.starts(items)
    assert len(prefix.ids) >= shared_prefix_length([i.prompt_ids for i in items]) - 1, "the probes find it all"
    reference = naive_log_probs(model, [i.prompt_ids for i in items], encoder.label_ids)
    counts, handle = _tokens_run(model)
    try:
        one_by_one = np.vstack(
            [
                label_log_probs(model, [item], encoder.label_ids, tokenizer.pad_token_id, 1, None, first_token, prefix)
                for item in items
            ]
        )
        if first_token:
            assert counts == [len(item.prompt_ids) - len(prefix.ids) for item in items]
        counts.clear()
        label_log_probs(model, items[:1], encoder.label_ids, tokenizer.pad_token_id, 1, None, first_token)
        if first_token:
            assert counts == [len(items[0].prompt_ids) - 1, 1], "without it, the whole prompt runs"
    finally:
        handle.remove()
    batched = label_log_probs(model, items, encoder.label_ids, tokenizer.pad_token_id, 2, None, first_token, prefix)
    np.testing.assert_allclose(one_by_one, reference, atol=2e-4)
    np.testing.assert_allclose(batched, reference, atol=2e-4)


def test_items_that_do_not_start_with_the_cached_prefix_fall_back_to_their_own():
    from bakeoff.evaluation.score import CachedPrefix, cached_prefix

    tokenizer = tiny_tokenizer(False)
    model = tiny_model("llama", len(tokenizer))
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify the message.", LABELS, show_label_list=True))
    items = encoder.encode(TEXTS)
    prefix = cached_prefix(model, encoder)
    wrong = CachedPrefix([i + 1 for i in prefix.ids], prefix.cache)  # a prefix these prompts do not have
    assert not wrong.starts(items)
    expected = naive_log_probs(model, [i.prompt_ids for i in items], encoder.label_ids)
    got = label_log_probs(model, items, encoder.label_ids, tokenizer.pad_token_id, 2, None, False, wrong)
    np.testing.assert_allclose(got, expected, atol=2e-4)


def test_label_chunking_does_not_change_scores(monkeypatch):
    tokenizer = tiny_tokenizer()
    model = tiny_model("llama", len(tokenizer))
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify.", LABELS, show_label_list=False))
    items = encoder.encode(TEXTS)
    whole = label_log_probs(model, items, encoder.label_ids, tokenizer.pad_token_id)
    monkeypatch.setattr("bakeoff.evaluation.score.LOGITS_BUDGET_BYTES", 1)  # one label per continuation pass
    chunked = label_log_probs(model, items, encoder.label_ids, tokenizer.pad_token_id)
    np.testing.assert_allclose(whole, chunked, atol=1e-6)


def test_probabilities_normalise_over_labels():
    probs = probabilities(np.log(np.array([[0.2, 0.2], [0.01, 0.03]])))
    np.testing.assert_allclose(probs, [[0.5, 0.5], [0.25, 0.75]])


def test_prompt_truncates_long_items_at_the_end():
    tokenizer = tiny_tokenizer()
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify.", LABELS, show_label_list=False, max_prompt_tokens=40))
    long_text = "I was charged twice. " + "More details follow here. " * 50
    ids = encoder.prompt_ids(long_text)
    assert len(ids) <= 40
    assert "charged" in tokenizer.decode(ids), "the opening of the item (its request) is kept"


def test_zero_shot_prompt_lists_the_labels_and_fine_tuned_prompt_does_not():
    tokenizer = tiny_tokenizer()
    zero = tokenizer.decode(PromptEncoder(tokenizer, PromptFormat("Classify.", LABELS, True)).prompt_ids("hi"))
    tuned = tokenizer.decode(PromptEncoder(tokenizer, PromptFormat("Classify.", LABELS, False)).prompt_ids("hi"))
    assert "account access" in zero and "account access" not in tuned


def test_plain_style_is_shorter_than_the_chat_template_and_auto_picks_it_for_fine_tuning():
    tokenizer = tiny_tokenizer()
    chat = PromptEncoder(tokenizer, PromptFormat("Classify.", LABELS, False, style="chat"))
    plain = PromptEncoder(tokenizer, PromptFormat("Classify.", LABELS, False, style="plain"))
    text = "my card has not arrived"
    assert plain.tokenizer.decode(plain.prompt_ids(text)).endswith("Message: my card has not arrived\nCategory:")
    assert len(plain.prompt_ids(text)) < len(chat.prompt_ids(text))
    assert tokenizer.decode(plain.label_ids[LABELS.index("account_access")]) == " account access\n"
    assert tokenizer.decode(chat.label_ids[0]).endswith(tokenizer.eos_token)
    assert prompt_style("auto", fine_tuned=True) == "plain"
    assert prompt_style("auto", fine_tuned=False) == "chat"
    assert prompt_style("chat", fine_tuned=True) == "chat"


def test_first_token_fast_path_scores_only_first_tokens():
    tokenizer = tiny_tokenizer()
    model = tiny_model("llama", len(tokenizer))
    labels = ["billing", "shipping", "refund_status"]
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify.", labels, show_label_list=False))
    assert len({ids[0] for ids in encoder.label_ids}) == 3
    items = encoder.encode(TEXTS)
    fast = label_log_probs(model, items, encoder.label_ids, tokenizer.pad_token_id, first_token_only=True)
    first_only = naive_log_probs(model, [i.prompt_ids for i in items], [ids[:1] for ids in encoder.label_ids])
    np.testing.assert_allclose(fast, first_only, atol=2e-4)
    with pytest.raises(ValueError, match="distinct"):
        label_log_probs(model, items, [[5, 6], [5, 7]], tokenizer.pad_token_id, first_token_only=True)


def test_length_batches_cover_every_item_in_length_order_with_equal_padded_size():
    lengths = [30, 5, 12, 60, 7, 9, 31, 8, 10, 6, 58, 11]
    batches = length_batches(lengths, batch_size=4)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)
    budget = 4 * sum(lengths) / len(lengths)
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= budget
    assert len(batches[0]) > 4 > len(batches[-1]), "more short items per batch, fewer long ones"
    assert length_batches([], 4) == []


@pytest.mark.parametrize("first_token", [True, False])
def test_lm_head_gets_contiguous_rows_while_scoring(first_token):
    """`logits_to_keep` slices are strided views; the LM head must see a contiguous copy (one GEMM, not a GEMV per
    item), and the hook doing it must be gone afterwards."""
    tokenizer = tiny_tokenizer(False)
    model = tiny_model("llama", len(tokenizer))
    labels = ["billing", "shipping", "refund_status"] if first_token else LABELS  # first token: distinct first tokens
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify the message.", labels, False, style="plain"))
    head = model.get_output_embeddings()
    items = encoder.encode(TEXTS)
    seen = []
    head.register_forward_hook(lambda module, args, output: seen.append((args[0].shape[0], args[0].is_contiguous())))
    scores = label_log_probs(
        model, items, encoder.label_ids, tokenizer.pad_token_id, batch_size=4, first_token_only=first_token
    )
    assert any(rows > 1 for rows, _ in seen), "batched passes went through the head"
    assert all(contiguous for _, contiguous in seen)
    assert not head._forward_pre_hooks
    scored = [label[:1] for label in encoder.label_ids] if first_token else encoder.label_ids
    np.testing.assert_allclose(scores, naive_log_probs(model, [item.prompt_ids for item in items], scored), atol=1e-4)


# Labels whose continuations share multi-token prefixes, with equal first tokens (so first-token scoring
# cannot apply), one label a prefix of another, and a one-token label: the trie's cases.
SHARED_PREFIX_LABELS = [[40, 41, 42], [40, 41, 43], [40, 41, 42, 44], [40, 45], [46], [47, 41, 42]]


@pytest.mark.parametrize("arch", ["llama", "gemma3", "qwen2"])
def test_trie_scoring_of_shared_label_prefixes_equals_naive_per_label_scoring(arch, monkeypatch):
    tokenizer = tiny_tokenizer()
    model = tiny_model(arch, len(tokenizer))
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify the message.", LABELS, show_label_list=True))
    items = encoder.encode(TEXTS)

    def per_label_path(*args, **kwargs):
        raise AssertionError("the trie should have scored these labels")

    monkeypatch.setattr("bakeoff.evaluation.score._continuations", per_label_path)
    fast = label_log_probs(model, items, SHARED_PREFIX_LABELS, tokenizer.pad_token_id, batch_size=2)
    slow = naive_log_probs(model, [i.prompt_ids for i in items], SHARED_PREFIX_LABELS)
    np.testing.assert_allclose(fast, slow, atol=2e-4)


def test_label_trie_runs_each_shared_prefix_once():
    trie = LabelTrie.of(SHARED_PREFIX_LABELS)
    # Nodes: 40, 40-41, 40-41-42, 47, 47-41 (a label's last token is never run; [46] runs nothing).
    assert sorted(zip(trie.depths, trie.tokens)) == [(0, 40), (0, 47), (1, 41), (1, 41), (2, 42)]
    per_label_tokens = sum(len(label) - 1 for label in SHARED_PREFIX_LABELS)
    assert len(trie.tokens) == 5 < per_label_tokens == 10
    assert trie.steps[4] == []  # one-token label: scored from the prompt's last position only
    assert [target for _, target in trie.steps[2]] == [41, 42, 44]
    deepest = trie.depths.index(2)
    assert trie.ancestors[deepest].sum() == 3  # itself, 40-41 and 40


def test_trie_and_per_label_continuations_agree_where_both_apply(monkeypatch):
    tokenizer = tiny_tokenizer()
    model = tiny_model("llama", len(tokenizer))
    encoder = PromptEncoder(tokenizer, PromptFormat("Classify.", LABELS, show_label_list=False))
    items = encoder.encode(TEXTS)
    trie = label_log_probs(model, items, encoder.label_ids, tokenizer.pad_token_id)
    monkeypatch.setattr("bakeoff.evaluation.score.TREE_ATTENTION", ())  # forces the per-label continuations
    per_label = label_log_probs(model, items, encoder.label_ids, tokenizer.pad_token_id)
    np.testing.assert_allclose(trie, per_label, atol=1e-5)
