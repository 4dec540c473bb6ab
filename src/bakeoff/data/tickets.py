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


def _fill(template: str, rng: random.Random) -> str:
    def value(match: re.Match) -> str:
        slot = match.group(1)
        if slot == "amount":
            return _amount(rng)
        if slot == "order":
            return _order(rng)
        if slot == "date":
            return _date(rng)
        if slot == "digits":
            return str(rng.randrange(10, 99))
        if slot == "name_lower":
            return rng.choice(SLOTS["name"]).lower()
        return rng.choice(SLOTS[slot])

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


def _dress(core: str, rng: random.Random) -> str:
    """Wrap a request in the things real tickets carry: greetings, asides, sign-offs, typos, casing."""
    parts = [rng.choice(GREETINGS), core]
    if rng.random() < 0.35:
        parts.append(_fill(rng.choice(DISTRACTORS), rng))
    parts.append(_fill(rng.choice(CLOSINGS), rng))
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
    rng = random.Random(f"support-tickets/{phrasings}/{seed}")
    texts, labels = [], []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        core = _fill(rng.choice(CATEGORIES[label][phrasings]), rng)
        if rng.random() < MIXED_SHARE:
            # Routing rule of the task: a ticket with two requests belongs to the first one.
            other = rng.choice([c for c in LABELS if c != label])
            second = _fill(rng.choice(CATEGORIES[other][phrasings]), rng)
            core = f"{core} {rng.choice(SECOND_REQUEST)} {second[0].lower()}{second[1:]}"
        texts.append(_dress(core, rng))
        labels.append(label)
    order = list(range(n))
    rng.shuffle(order)
    return Examples([texts[i] for i in order], [labels[i] for i in order])


def generate_out_of_scope(n: int, seed: int = 0) -> list[str]:
    """Tickets that none of the categories covers, dressed like real ones."""
    rng = random.Random(f"support-tickets/out-of-scope/{seed}")
    return [_dress(_fill(rng.choice(OUT_OF_SCOPE), rng), rng) for _ in range(n)]
