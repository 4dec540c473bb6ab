"""The results store: one SQLite file per run folder, one row per trial.

WAL mode and one short transaction per state change: a run killed at any point leaves a consistent
database. A trial is `running` while it works and `done` or `failed` after; re-running the same config
skips `done` trials and restarts the rest. A run folder belongs to one spec: pointing a different
config at it is refused, so results of different experiments are never mixed.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from bakeoff.errors import BakeoffError

SCHEMA = """
CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY,
    candidate TEXT NOT NULL,
    method TEXT NOT NULL,
    train_size INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    finished_at TEXT,
    result TEXT,
    error TEXT
);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ResultStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    @classmethod
    def for_run(cls, run_dir: Path, fingerprint: str, metadata: dict) -> ResultStore:
        """Open (or create) the store of a run folder, refusing a folder made by a different config."""
        store = cls(Path(run_dir) / "results.sqlite")
        existing = store.get_meta("fingerprint")
        if existing is not None and existing != fingerprint:
            raise BakeoffError(
                f"{run_dir} holds results of a different config (fingerprint {existing}, this one {fingerprint}); "
                "use another `output.dir`, or delete the folder to start over"
            )
        if existing is None:
            with store.db:
                store.db.execute("BEGIN")
                store.db.execute("INSERT INTO run VALUES ('fingerprint', ?)", (fingerprint,))
                for key, value in metadata.items():
                    store.db.execute("INSERT OR REPLACE INTO run VALUES (?, ?)", (key, json.dumps(value)))
        return store

    def set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO run VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str):
        row = self.db.execute("SELECT value FROM run WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return row[0] if key == "fingerprint" else json.loads(row[0])

    def metadata(self) -> dict:
        """Everything stored about the run itself (spec, versions, data report ...)."""
        return {key: self.get_meta(key) for (key,) in self.db.execute("SELECT key FROM run ORDER BY key")}

    def status(self, trial_id: str) -> str | None:
        row = self.db.execute("SELECT status FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
        return row[0] if row else None

    def start(self, trial_id: str, candidate: str, method: str, train_size: int, seed: int) -> None:
        self.db.execute(
            """INSERT INTO trials (trial_id, candidate, method, train_size, seed, status, attempts, started_at)
               VALUES (?, ?, ?, ?, ?, 'running', 1, ?)
               ON CONFLICT(trial_id) DO UPDATE SET status='running', attempts=attempts+1, started_at=excluded.started_at,
               result=NULL, error=NULL, finished_at=NULL""",
            (trial_id, candidate, method, train_size, seed, _now()),
        )

    def finish(self, trial_id: str, result: dict) -> None:
        self.db.execute(
            "UPDATE trials SET status='done', result=?, finished_at=? WHERE trial_id=?",
            (json.dumps(result), _now(), trial_id),
        )

    def fail(self, trial_id: str, error: str) -> None:
        self.db.execute("UPDATE trials SET status='failed', error=?, finished_at=? WHERE trial_id=?", (error, _now(), trial_id))

    def trials(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT trial_id, candidate, method, train_size, seed, status, attempts, result, error FROM trials ORDER BY rowid"
        ).fetchall()
        keys = ("trial_id", "candidate", "method", "train_size", "seed", "status", "attempts", "result", "error")
        out = []
        for row in rows:
            record = dict(zip(keys, row))
            record["result"] = json.loads(record["result"]) if record["result"] else None
            out.append(record)
        return out

    def integrity_ok(self) -> bool:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        self.db.close()
