"""The JSON-record grammar of constrained extraction decoding, character by character and token by token."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny import tiny_model, tiny_tokenizer

from bakeoff.config import DecodingSpec
from bakeoff.data.targets import record_json
from bakeoff.evaluation.decode import Decoder, decode
from bakeoff.evaluation.json_constraint import DONE, GreedyRecordProcessor, RecordGrammar, token_texts

FIELDS = ("order_id", "amount")
GRAMMAR = RecordGrammar(FIELDS)


def run(text: str):
    return GRAMMAR.advance(GRAMMAR.start, text)


@pytest.mark.parametrize(
    "record",
    [
        '{"order_id":"A123","amount":null}',
        '{"order_id":null,"amount":null}',
        '{"order_id":"say \\"hi\\"","amount":"C:\\\\x"}',  # escaped quotes and backslashes
        '{"order_id":"\\u00e9\\n","amount":"€9.99"}',  # \\u escape, \\n escape, non-ASCII
        '{"order_id":"","amount":"}{,:"}',  # structure characters inside a string are content
    ],
)
def test_valid_records_are_accepted_at_every_prefix_and_complete(record):
    assert json.loads(record).keys() == set(FIELDS)
    state = GRAMMAR.start
    for i, char in enumerate(record):
        state = GRAMMAR.advance(state, char)
        assert state is not None, f"rejected at {i}: {record[: i + 1]!r}"
        assert GRAMMAR.is_done(state) == (i == len(record) - 1)
    assert state[0] == DONE


@pytest.mark.parametrize(
    "text",
    [
        '{"order_id": "A1"',  # a space after the colon (compact only)
        '{"amount":',  # keys out of order
        '{"order_id":"A1"}',  # a missing key
        '{"order_id":"A1","amount":null,"x":1}',  # an extra key
        '{"order_id":12',  # a number value
        '{"order_id":nul"',  # broken null
        '{"order_id":"a\\q"',  # invalid escape
        '{"order_id":"\\u12g4"',  # invalid hex digit
        '{"order_id":"line\nbreak"',  # a raw control character inside a string
        '{"order_id":null,"amount":null}x',  # text after the closing brace
        '["order_id"]',
    ],
)
def test_invalid_text_is_rejected(text):
    assert run(text) is None


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(FIELDS),
        st.one_of(st.none(), st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)),
    )
)
def test_every_record_the_training_targets_use_is_in_the_grammar(record):
    text = record_json(record, list(FIELDS))  # the exact form fine-tuned models learn to write
    assert GRAMMAR.is_done(run(text))


def test_token_texts_keep_leading_spaces_and_drop_special_tokens():
    tokenizer = tiny_tokenizer()
    texts = token_texts(tokenizer)
    assert len(texts) == len(tokenizer)
    assert all(texts[i] is None for i in tokenizer.all_special_ids)
    space_word = tokenizer(" order", add_special_tokens=False)["input_ids"]
    assert "".join(texts[i] for i in space_word) == " order"


def test_processor_forces_a_valid_record_against_adversarial_scores():
    """Scores that prefer spaces, digits and the closing brace everywhere: the processor still yields, token by
    token, a record with exactly the declared keys, then EOS."""
    tokenizer = tiny_tokenizer()
    texts = token_texts(tokenizer)
    eos = tokenizer.eos_token_id
    processor = GreedyRecordProcessor(GRAMMAR, texts, eos, prompt_length=1)
    generator = torch.Generator().manual_seed(0)
    bias = torch.zeros(len(texts))
    for i, text in enumerate(texts):
        if text and any(c in text for c in ' 0123456789}"'):
            bias[i] = 3.0  # tempting: spaces, numbers, a premature close; quotes end strings soon
    ids = torch.tensor([[tokenizer.bos_token_id]])
    for _ in range(200):
        scores = torch.randn(1, len(texts), generator=generator) + bias
        kept = processor(ids, scores)
        token = int(kept.argmax())
        assert torch.isfinite(kept).sum() == 1  # exactly one token left: the best valid one
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        if token == eos:
            break
    assert ids[0, -1] == eos, "the record never closed"
    record = json.loads(tokenizer.decode(ids[0, 1:-1].tolist()))
    assert list(record) == list(FIELDS)
    assert all(v is None or isinstance(v, str) for v in record.values())


def test_constrained_decoding_of_a_random_model_gives_valid_records():
    tokenizer = tiny_tokenizer()
    model = tiny_model("llama", len(tokenizer))
    prompts = [tokenizer(f"Message: refund order #{n} now\nJSON:")["input_ids"] for n in (123, 4567, 89)]
    grammar = RecordGrammar(FIELDS)
    settings_ = DecodingSpec(max_new_tokens=60, batch_size=2)
    constrained = decode(Decoder(model, tokenizer, settings_, grammar, token_texts(tokenizer)), prompts)
    for text in constrained.texts:
        assert list(json.loads(text)) == list(FIELDS)
    free = decode(Decoder(model, tokenizer, settings_, None, None), prompts)
    assert not any(_parses(text) for text in free.texts)  # the same model unconstrained writes no record


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_decode_speed_times_batch_1_items_and_stops_at_its_budget():
    from bakeoff.evaluation.decode import decode_speed

    tokenizer = tiny_tokenizer()
    model = tiny_model("llama", len(tokenizer))
    prompts = [tokenizer(f"Message: where is order #{n}\nReply:")["input_ids"] for n in range(8)]
    decoder = Decoder(model, tokenizer, DecodingSpec(max_new_tokens=6), None, None)
    full = decode_speed(decoder, prompts, repeats=8)
    assert full["latency_items"] == 8 and full["ttft_ms_p50"] > 0 and full["decode_tokens_per_s"] > 0
    assert full["latency_ms_p50"] > full["ttft_ms_p50"]  # five more tokens after the first
    budgeted = decode_speed(decoder, prompts, repeats=8, budget_s=1e-6)
    assert budgeted["latency_items"] == 3  # the minimum kept, then the budget stops it
