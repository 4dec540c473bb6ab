"""Perturbations: small, deterministic rewrites of an input that should not change its label.

Each is a function `perturb(text, rng, **params) -> text`, seeded per item (HELM style), registered by
name. Users select them in YAML (`evaluation.perturbations: [{name: typos, params: {rate: 0.05}}]`) and
add their own with `@register("name")` in a module listed under `evaluation.plugins`.
A model that holds up in production loses little on these; one that memorized its training phrasings
drops, and the drop (with a paired CI) is what the report shows.
"""

from __future__ import annotations

import hashlib
import inspect
import random
import re
from collections.abc import Callable

from bakeoff.data.ticket_templates import SLOTS
from bakeoff.errors import BakeoffError, ConfigError

Perturbation = Callable[..., str]
REGISTRY: dict[str, Perturbation] = {}

KEYBOARD_NEIGHBOURS = {
    "a": "qwsz",
    "b": "vghn",
    "c": "xdfv",
    "d": "serfcx",
    "e": "wsdr",
    "f": "drtgvc",
    "g": "ftyhbv",
    "h": "gyujnb",
    "i": "ujko",
    "j": "huikmn",
    "k": "jiolm",
    "l": "kop",
    "m": "njk",
    "n": "bhjm",
    "o": "iklp",
    "p": "ol",
    "q": "wa",
    "r": "edft",
    "s": "awedxz",
    "t": "rfgy",
    "u": "yhji",
    "v": "cfgb",
    "w": "qase",
    "x": "zsdc",
    "y": "tghu",
    "z": "asx",
}
CONTRACTIONS = {
    "I am": "I'm",
    "do not": "don't",
    "can not": "can't",
    "cannot": "can't",
    "it is": "it's",
    "I have": "I've",
    "does not": "doesn't",
    "is not": "isn't",
    "I would": "I'd",
    "you are": "you're",
    "did not": "didn't",
    "I will": "I'll",
    "what is": "what's",
    "that is": "that's",
    "was not": "wasn't",
    "have not": "haven't",
}
SYNONYMS = {
    "charged": "billed",
    "refund": "reimbursement",
    "cancel": "terminate",
    "order": "purchase",
    "package": "parcel",
    "broken": "damaged",
    "help": "assist",
    "account": "profile",
    "card": "bank card",
    "money": "funds",
    "arrived": "came",
    "want": "would like",
    "need": "require",
    "problem": "issue",
    "app": "application",
    "fix": "resolve",
    "delivery": "shipment",
    "password": "passcode",
    "transfer": "payment",
    "send": "ship",
}
GREETINGS = ["Hi team,", "Hello there!", "Good afternoon,", "Hey,", "Dear customer service,"]
SIGN_OFFS = [
    "Thanks in advance!",
    "Best regards, Alex",
    "Cheers, Sam",
    "Thank you so much for your help.",
    "Kind regards.",
]
NAMES = ["Alex", "Jordan", "Robin", "Mei", "Tariq", "Elena", "Sven", "Grace"]
_NAME_RE = re.compile(r"\b(" + "|".join(SLOTS["name"]) + r")\b")  # the names the built-in tickets plant
_AMOUNT_RE = re.compile(r"([$€£])\s?(\d+(?:[.,]\d+)?)|(\d+(?:[.,]\d+)?)\s?(USD|EUR|GBP|dollars|pounds|euros)")
_NUMBER_RE = re.compile(r"\b\d{4,}\b")
_DATE_RE = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December) "
    r"\d{1,2}\b|\b\d{1,2}/\d{1,2}\b"
)


def register(name: str):
    """Decorator: make a perturbation selectable by `name` in YAML."""

    def add(fn: Perturbation) -> Perturbation:
        REGISTRY[name] = fn
        return fn

    return add


def item_rng(seed: int, name: str, index: int, text: str) -> random.Random:
    """One RNG per (seed, perturbation, item): the same item is perturbed the same way every run."""
    digest = hashlib.sha256(f"{seed}/{name}/{index}/{text}".encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def _letters(text: str) -> list[int]:
    return [i for i, ch in enumerate(text) if ch.isalpha()]


@register("typos")
def typos(text: str, rng: random.Random, rate: float = 0.04) -> str:
    """Replace letters with a keyboard neighbour (about `rate` of letters, at least one)."""
    chars = list(text)
    positions = _letters(text)
    if not positions:
        return text
    for i in rng.sample(positions, max(1, round(rate * len(positions)))):
        neighbours = KEYBOARD_NEIGHBOURS.get(chars[i].lower())
        if neighbours:
            swap = rng.choice(neighbours)
            chars[i] = swap.upper() if chars[i].isupper() else swap
    return "".join(chars)


@register("drop_double")
def drop_or_double(text: str, rng: random.Random, rate: float = 0.04) -> str:
    """Drop or double letters, as fast typing does."""
    positions = set(rng.sample(_letters(text), max(1, round(rate * len(_letters(text)))))) if _letters(text) else set()
    out = []
    for i, ch in enumerate(text):
        if i in positions:
            out.append("" if rng.random() < 0.5 else ch * 2)
        else:
            out.append(ch)
    return "".join(out)


@register("lowercase")
def lowercase(text: str, rng: random.Random) -> str:
    return text.lower()


@register("uppercase")
def uppercase(text: str, rng: random.Random) -> str:
    return text.upper()


@register("punctuation")
def punctuation_noise(text: str, rng: random.Random) -> str:
    """Strip all punctuation, or add repeated !/? and stray spaces."""
    if rng.random() < 0.5:
        return re.sub(r"[^\w\s$€£#/-]", "", text)
    return re.sub(r"([.?!])", lambda m: m.group(1) * rng.randint(2, 4), text).replace(", ", " , ")


@register("whitespace")
def whitespace_noise(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    return "".join(w + (" " * rng.randint(1, 3) if rng.random() < 0.3 else " ") for w in words).strip() + rng.choice(
        ["", "\n", "  "]
    )


@register("contractions")
def contractions(text: str, rng: random.Random) -> str:
    """Contract what can be contracted, or expand contractions if there are none to make."""
    out = text
    for long, short in CONTRACTIONS.items():
        out = re.sub(rf"\b{long}\b", short, out, flags=re.IGNORECASE)
    if out == text:
        for long, short in CONTRACTIONS.items():
            out = out.replace(short, long)
    return out


@register("synonyms")
def synonyms(text: str, rng: random.Random, rate: float = 0.5) -> str:
    """Swap words for synonyms from a small built-in table."""

    def swap(match: re.Match) -> str:
        word = match.group(0)
        if rng.random() > rate:
            return word
        replacement = SYNONYMS[word.lower()]
        return replacement.capitalize() if word[0].isupper() else replacement

    return re.sub(r"\b(" + "|".join(SYNONYMS) + r")\b", swap, text, flags=re.IGNORECASE)


@register("padding")
def padding(text: str, rng: random.Random) -> str:
    """Wrap in a greeting and a sign-off, as real tickets often are."""
    return f"{rng.choice(GREETINGS)} {text} {rng.choice(SIGN_OFFS)}"


@register("entities")
def entity_swap(text: str, rng: random.Random) -> str:
    """Replace names, amounts, long numbers (order ids) and dates with other values."""
    out = _NAME_RE.sub(lambda m: rng.choice(NAMES), text)
    out = _AMOUNT_RE.sub(lambda m: f"{rng.choice(['$', '€', '£'])}{rng.randint(5, 900)}.{rng.randint(0, 99):02d}", out)
    out = _NUMBER_RE.sub(lambda m: str(rng.randint(10 ** (len(m.group(0)) - 1), 10 ** len(m.group(0)) - 1)), out)
    return _DATE_RE.sub(lambda m: f"{rng.choice(['May', 'July', 'December'])} {rng.randint(1, 28)}", out)


@register("truncate")
def truncate(text: str, rng: random.Random, keep: float = 0.6) -> str:
    """Keep the first `keep` share of the words (messages cut off mid-way)."""
    words = text.split()
    return " ".join(words[: max(1, round(keep * len(words)))])


def resolve(name: str) -> Perturbation:
    if name not in REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        raise ConfigError(
            f"evaluation.perturbations: unknown perturbation `{name}`; {hint}known: "
            f"{', '.join(sorted(REGISTRY))}, paraphrase"
        )
    return REGISTRY[name]


def changed(texts: list[str], perturbed: list[str]) -> list[int]:
    """Indices of the texts a perturbation changed: only those need scoring again (same input, same score)."""
    return [i for i, (a, b) in enumerate(zip(texts, perturbed)) if a != b]


class PerturbationFailed(BakeoffError):
    """A perturbation (a user's plugin, usually) raised or returned no text: the trial fails, the run goes on."""


def apply(name: str, params: dict, texts: list[str], seed: int) -> list[str]:
    fn = resolve(name)
    try:
        inspect.signature(fn).bind("text", random.Random(0), **params)
    except TypeError as err:
        raise ConfigError(f"evaluation.perturbations `{name}`: bad params {params}: {err}") from None
    out = []
    for i, text in enumerate(texts):
        try:
            perturbed = fn(text, item_rng(seed, name, i, text), **params)
        except Exception as err:  # noqa: BLE001 (a plugin is the user's code: any error fails this trial only)
            raise PerturbationFailed(
                f"perturbation `{name}` ({fn.__module__}.{fn.__qualname__}) raised {type(err).__name__}: "
                f"{str(err)[:200]} (on item {i} of {len(texts)})"
            ) from None
        if not isinstance(perturbed, str):
            raise PerturbationFailed(
                f"perturbation `{name}` ({fn.__module__}.{fn.__qualname__}) returned {type(perturbed).__name__}, "
                f"not a string (on item {i} of {len(texts)})"
            )
        out.append(perturbed)
    return out


def load_plugins(modules: list[str]) -> None:
    """Import user modules so their @register perturbations exist."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"evaluation.plugins: cannot import `{module}`: {err}") from None
