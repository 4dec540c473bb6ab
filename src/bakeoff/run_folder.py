"""A run folder's layout: the one module that knows where a run keeps what.

    RUN_DIR/
      results.sqlite (+ -wal, -shm, -journal)  the store: trials, run metadata, load tests (`serving`)
      trials/<candidate>__n<size>__s<seed>/     one folder per trial (TrialFolder)
      summary.md, results.json, report.html     the outputs, rebuilt from the store
      whatif/                                   the same outputs for other decision answers
      progress.log, .bakeoff.lock               the run's log and its one-driver lock

Everything else asks a `RunFolder` for a path, so the layout can change in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bakeoff.errors import BakeoffError
from bakeoff.store import ResultStore

STORE = "results.sqlite"
TRIALS = "trials"
WHATIF = "whatif"
LOCK = ".bakeoff.lock"
PROGRESS_LOG = "progress.log"
WRITE_PROBE = ".write-test"  # written and removed at once by preflight: is the folder writable?
SUMMARY_MD, RESULTS_JSON, REPORT_HTML = "summary.md", "results.json", "report.html"
OUTPUTS = (SUMMARY_MD, RESULTS_JSON, REPORT_HTML)
PARTIAL = ".partial"  # suffix of an output being written (renamed over its target once whole)
# What bakeoff writes in a run folder besides the store and the outputs: what a stopped run leaves when its
# store is gone (moved away, as the damaged-store message advises) or not made yet.
OWN_FILES = frozenset({LOCK, WRITE_PROBE, PROGRESS_LOG, TRIALS, WHATIF})


def trial_folder_name(trial_id: str) -> str:
    """`tfidf/n100/s0` -> `tfidf__n100__s0`: a trial id as one folder name."""
    return trial_id.replace("/", "__")


def owns(name: str) -> bool:
    """Whether bakeoff writes a file of this name in a run folder: its lock, log, trials, what-ifs, the store and
    its WAL/journal files (also a store renamed in place, results.sqlite.bad), the `.partial` of an output."""
    return name in OWN_FILES or name.startswith(STORE) or name.endswith(PARTIAL)


@dataclass(frozen=True)
class TrialFolder:
    """One trial's files: what it predicted and the weights it trained."""

    path: Path

    @property
    def predictions(self) -> Path:
        """Classification: test (and validation) probabilities and label ids, for paired tests and costs."""
        return self.path / "predictions.npz"

    @property
    def outputs(self) -> Path:
        """Extraction and generation: text, target and output per test item (JSON lines)."""
        return self.path / "predictions.jsonl"

    @property
    def item_scores(self) -> Path:
        """Extraction and generation: per-item scores, for paired tests."""
        return self.path / "item_scores.npz"

    @property
    def baseline(self) -> Path:
        """A classical baseline's fitted state (joblib)."""
        return self.path / "baseline.joblib"

    @property
    def adapter(self) -> Path:
        """A LoRA/QLoRA trial's adapter folder."""
        return self.path / "adapter"

    @property
    def model(self) -> Path:
        """A full fine-tune's whole model folder."""
        return self.path / "model"

    def weights(self, method: str) -> Path:
        """The folder a fine-tune of `method` saves its weights to: the adapter, or the whole model."""
        return self.adapter if method in ("lora", "qlora") else self.model

    @property
    def weight_folders(self) -> tuple[Path, ...]:
        return (self.adapter, self.model)


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run folder (`output.dir/<name>`); nothing is created until written."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def store(self) -> Path:
        """The results store (SQLite; its -wal/-shm/-journal files sit beside it)."""
        return self.root / STORE

    @property
    def trials(self) -> Path:
        return self.root / TRIALS

    def trial(self, trial_id: str) -> TrialFolder:
        return TrialFolder(self.trials / trial_folder_name(trial_id))

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY_MD

    @property
    def results_json(self) -> Path:
        return self.root / RESULTS_JSON

    @property
    def report_html(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def outputs(self) -> tuple[Path, ...]:
        """summary.md, results.json and report.html, in that order."""
        return tuple(self.root / name for name in OUTPUTS)

    @property
    def whatif(self) -> Path:
        """Where `bakeoff recommend key=value` writes its outputs: the run's own keep the config's decision."""
        return self.root / WHATIF

    @property
    def progress_log(self) -> Path:
        return self.root / PROGRESS_LOG

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def write_probe(self) -> Path:
        return self.root / WRITE_PROBE

    def has_store(self) -> bool:
        return self.store.is_file()

    def open_store(self, option: str = "", hint: str = "") -> ResultStore:
        """The existing store, or a BakeoffError naming the folder (`option`: the flag that named it, e.g.
        `--run `; `hint`: what to do). Checked first: opening a store that is not there would create one."""
        if not self.has_store():
            raise BakeoffError(
                f"{option}{self.root} is not a bakeoff run folder (no {STORE})" + (f"; {hint}" if hint else "")
            )
        return ResultStore(self.store)

    def claim_store(self, fingerprint: str, metadata: dict) -> ResultStore:
        """Open (or create) the store, refusing a folder made by another config or on other data."""
        store = ResultStore(self.store)
        try:
            store.claim(self.root, fingerprint, metadata)
        except BaseException:
            store.close()
            raise
        return store

    def record_serving(self, candidate: str, entry: dict) -> dict:
        """Store a load test as the candidate's current one (`ResultStore.record_serving`); returns it."""
        store = self.open_store("--run ")
        try:
            return store.record_serving(candidate, entry)
        finally:
            store.close()
