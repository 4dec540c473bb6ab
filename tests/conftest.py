import os
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[1]
BANKING77 = Path(os.environ.get("BAKEOFF_BANKING77", REPO.parent / "shared" / "datasets" / "banking77"))


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    from tiny import save_tiny

    return save_tiny(tmp_path_factory.mktemp("tiny-llama") / "model", "llama", chat=True)


@dataclass(frozen=True)
class EndToEndData:
    """Real labeled data for the end-to-end tests: files, the labels kept, the labels held out of scope."""

    train: Path
    test: Path
    labels: list[str]
    out_of_scope: list[str]
    source: str


BANKING77_LABELS = [
    "card_arrival",
    "lost_or_stolen_card",
    "exchange_rate",
    "change_pin",
    "top_up_failed",
    "declined_transfer",
    "pending_card_payment",
    "card_not_working",
    "atm_support",
    "age_limit",
]


@pytest.fixture(scope="session")
def banking77(tmp_path_factory) -> EndToEndData:
    """BANKING77 where it lies beside the clone; elsewhere the built-in ticket generator written as CSV files of
    the same shape, so the end-to-end tests run (not skip) on a fresh clone."""
    if (BANKING77 / "train.csv").is_file():
        return EndToEndData(
            BANKING77 / "train.csv",
            BANKING77 / "test.csv",
            BANKING77_LABELS,
            ["apple_pay_or_google_pay", "country_support"],
            "banking77",
        )
    import pandas as pd

    from bakeoff.data.tickets import LABELS, generate_tickets

    folder = tmp_path_factory.mktemp("tickets-as-banking77")
    for name, seed in (("train.csv", 0), ("test.csv", 1)):
        tickets = generate_tickets(1200, seed=seed)
        pd.DataFrame({"text": tickets.texts, "category": tickets.labels}).to_csv(folder / name, index=False)
    return EndToEndData(
        folder / "train.csv", folder / "test.csv", list(LABELS[:8]), list(LABELS[8:]), "built-in tickets"
    )
