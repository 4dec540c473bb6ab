"""Deterministic generator of the built-in `support-tickets` task.

A ticket = optional greeting + one request phrasing (slots filled with names, amounts, order numbers,
dates, products) + optional distractor sentence from another category's vocabulary + optional closing,
with occasional casing changes and keyboard typos. Some tickets carry a second request after the first;
the routing rule is that the first request decides the category, so word order matters and a
bag-of-words model cannot be perfect. Same seed, same tickets, on every machine.
"""

from __future__ import annotations

import random
import re

from bakeoff.data.examples import Examples
from bakeoff.data.ticket_templates import CATEGORIES, CLOSINGS, DISTRACTORS, GREETINGS, OUT_OF_SCOPE, SLOTS

LABELS: list[str] = list(CATEGORIES)
_SLOT = re.compile(r"\{(\w+)\}")
_ORDER_ID = re.compile(r"ORD-\d+|A\d+|\d+")  # the identifier inside "order #123456", "ORD-123456", "#A123456"
# Extraction variant: slots of the request recorded as fields, and the customer's name from the sign-off.
REQUEST_FIELDS = {"order": "order_id", "amount": "amount", "date": "date", "product": "product"}
SIGNATURE_FIELDS = {"name": "customer"}
RECORD_FIELDS = ["customer", "order_id", "amount", "date", "product"]
MIXED_SHARE = 0.15  # tickets carrying a second, later request (labelled by the first)
SECOND_REQUEST = ["Also,", "Separately,", "And while I'm here:", "One more thing:", "Unrelated, but"]


def _amount(rng: random.Random) -> str:
    value = rng.choice([9.99, 12.5, 19, 23.4, 29.99, 49.99, 59, 79.95, 99, 120, 149.99, 249, 310.2])
    style = rng.randrange(4)
    if style == 0:
        return f"${value:.2f}"
    if style == 1:
        return f"{value:.2f} USD"
    if style == 2:
        return f"€{value:g}"
    return f"£{value:.2f}"


def _order(rng: random.Random) -> str:
    number = rng.randrange(10000, 999999)
    return rng.choice([f"order #{number}", f"order {number}", f"ORD-{number}", f"#A{number}"])


def _date(rng: random.Random) -> str:
    month = rng.choice(["March", "April", "June", "September", "October", "November"])
    return rng.choice(
        [
            f"{month} {rng.randrange(1, 29)}",
            "last Tuesday",
            "yesterday",
            "two weeks ago",
            f"{rng.randrange(1, 13)}/{rng.randrange(1, 29)}",
            "the 3rd",
            "last month",
        ]
    )


def _fill(template: str, rng: random.Random, found: dict[str, str] | None = None, fields: dict | None = None) -> str:
    """The template with its slots filled; the first value of each slot named in `fields` ({slot: field}) is
    recorded in `found` under its field name (recording draws no random numbers: same seed, same tickets)."""

    def value(match: re.Match) -> str:
        slot = match.group(1)
        if slot == "amount":
            text = _amount(rng)
        elif slot == "order":
            text = _order(rng)
        elif slot == "date":
            text = _date(rng)
        elif slot == "digits":
            text = str(rng.randrange(10, 99))
        elif slot == "name_lower":
            text = rng.choice(SLOTS["name"]).lower()
        else:
            text = rng.choice(SLOTS[slot])
        if found is not None and fields and slot in fields and fields[slot] not in found:
            found[fields[slot]] = _ORDER_ID.search(text).group(0) if slot == "order" else text
        return text

    return _SLOT.sub(value, template)


def _typo(text: str, rng: random.Random) -> str:
    """One keyboard-style typo: swap two neighbouring letters, or drop one."""
    positions = [i for i in range(len(text) - 1) if text[i].isalpha() and text[i + 1].isalpha()]
    if not positions:
        return text
    i = rng.choice(positions)
    if rng.random() < 0.5:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text[:i] + text[i + 1 :]


def _dress(core: str, rng: random.Random, found: dict[str, str] | None = None) -> str:
    """Wrap a request in the things real tickets carry: greetings, asides, sign-offs, typos, casing."""
    parts = [rng.choice(GREETINGS), core]
    if rng.random() < 0.35:
        parts.append(_fill(rng.choice(DISTRACTORS), rng))  # its values are asides, never recorded
    parts.append(_fill(rng.choice(CLOSINGS), rng, found, SIGNATURE_FIELDS))
    text = " ".join(p for p in parts if p)
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        text = _typo(text, rng)
    roll = rng.random()
    if roll < 0.15:
        text = text.lower()
    elif roll < 0.18:
        text = text.upper()
    return text


def generate_tickets(n: int, seed: int = 0, phrasings: str = "seen") -> Examples:
    """`n` labeled tickets, classes balanced; `phrasings` is "seen" or "held_out" (never in training)."""
    texts, labels, _ = _generate(n, seed, phrasings)
    return Examples(texts, labels)


def generate_ticket_records(n: int, seed: int = 0, phrasings: str = "seen") -> tuple[Examples, list[dict]]:
    """The same tickets as `generate_tickets(n, seed, phrasings)` (labels = categories) and, per ticket, the
    record of what it names: `RECORD_FIELDS`, each the value as written in the ticket, or None.

    Values come from the request(s) (a second request fills only fields the first left empty) and the
    customer's name from the sign-off; a distractor's order number or amount is an aside, not the request's,
    so it is not a target. Where casing or a typo changed a value in the text, the value as it now reads is
    taken (case-insensitive match); a value a typo broke stays as planted."""
    texts, labels, records = _generate(n, seed, phrasings)
    return Examples(texts, labels), records


def _as_written(value: str, text: str) -> str:
    at = text.lower().find(value.lower())
    return value if at < 0 else text[at : at + len(value)]


def _generate(n: int, seed: int, phrasings: str) -> tuple[list[str], list[str], list[dict]]:
    rng = random.Random(f"support-tickets/{phrasings}/{seed}")
    texts, labels, records = [], [], []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        found: dict[str, str] = {}
        core = _fill(rng.choice(CATEGORIES[label][phrasings]), rng, found, REQUEST_FIELDS)
        if rng.random() < MIXED_SHARE:
            # Routing rule of the task: a ticket with two requests belongs to the first one.
            other = rng.choice([c for c in LABELS if c != label])
            second = _fill(rng.choice(CATEGORIES[other][phrasings]), rng, found, REQUEST_FIELDS)
            core = f"{core} {rng.choice(SECOND_REQUEST)} {second[0].lower()}{second[1:]}"
        text = _dress(core, rng, found)
        texts.append(text)
        labels.append(label)
        records.append({f: _as_written(found[f], text) if f in found else None for f in RECORD_FIELDS})
    order = list(range(n))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order], [records[i] for i in order]


def generate_out_of_scope(n: int, seed: int = 0) -> list[str]:
    """Tickets that none of the categories covers, dressed like real ones."""
    rng = random.Random(f"support-tickets/out-of-scope/{seed}")
    return [_dress(_fill(rng.choice(OUT_OF_SCOPE), rng), rng) for _ in range(n)]
