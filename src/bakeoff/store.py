"""The results store: one SQLite file per run folder, one row per trial.

WAL mode and one short transaction per state change: a run killed at any point leaves a consistent
database. A trial is `running` while it works and `done` or `failed` after; re-running the same config
skips `done` trials and restarts the rest. A run folder belongs to one spec: pointing a different
config at it is refused, so results of different experiments are never mixed.
"""

from __future__ import annotations

import functools
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


class StoreDamaged(BakeoffError):
    """results.sqlite exists but SQLite cannot read it (truncated, overwritten, not a database)."""


def _damaged_store_is_a_user_error(method):
    """Every SQLite failure on a store becomes one line that says what to do, never a traceback.

    sqlite3.DatabaseError ("file is not a database", "database disk image is malformed") can surface on
    any statement, not only on open, so each public method is guarded."""

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.OperationalError as err:  # "unable to open database file", "database is locked", disk I/O
            if "no such column" in str(err) or "no such table" in str(err):  # another schema than this version's
                raise StoreDamaged(
                    f"results store {self.path} has another layout than this bakeoff writes ({err}): made by another "
                    "version, or damaged. Nothing was overwritten; run it with the version that made it, or move "
                    f"{self.path.name} away and run the same `bakeoff run` command again."
                ) from None
            raise BakeoffError(
                f"cannot use the results store {self.path} ({err}); check the folder's permissions and free space"
            ) from None
        except (sqlite3.DatabaseError, json.JSONDecodeError) as err:  # a row's JSON cut short counts as damage
            raise StoreDamaged(
                f"results store damaged: {self.path} ({err}). Nothing was overwritten: results.json, summary.md and "
                f"report.html in that folder still hold the last good results. To recompute, move {self.path.name} "
                "away and run the same `bakeoff run` command again."
            ) from None

    return guarded


DATA_FINGERPRINT = "data_fingerprint"  # run metadata key: TaskData.fingerprint() of the data the trials ran on
SERVING = "serving"  # run metadata key: per candidate, its current load test (`bakeoff loadtest --run`) + history
SERVING_HISTORY_KEPT = 20  # earlier load tests kept per candidate, oldest dropped first


class ResultStore:
    @_damaged_store_is_a_user_error
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    @_damaged_store_is_a_user_error
    def claim(self, run_dir: Path, fingerprint: str, metadata: dict) -> None:
        """Make this store the run's (`run_folder.RunFolder.claim_store`), refusing one made by a different config."""
        existing = self.get_meta("fingerprint")
        data, stored_data = metadata.get(DATA_FINGERPRINT), self.get_meta(DATA_FINGERPRINT)
        self.refuse_another_run(run_dir, fingerprint, data)
        if existing is not None and stored_data is None and data is not None:
            self.set_meta(DATA_FINGERPRINT, data)  # a folder from before data fingerprints: from now on
        if existing is None:
            with self.db:
                self.db.execute("BEGIN")
                self.db.execute("INSERT INTO run VALUES ('fingerprint', ?)", (fingerprint,))
                for key, value in metadata.items():
                    self.db.execute("INSERT OR REPLACE INTO run VALUES (?, ?)", (key, json.dumps(value)))

    @_damaged_store_is_a_user_error
    def refuse_another_run(self, run_dir: Path, fingerprint: str, data: str | None) -> None:
        """Raise if this store holds trials of another config, or of the same config on other data."""
        existing = self.get_meta("fingerprint")
        if existing is not None and existing != fingerprint:
            raise BakeoffError(
                f"{run_dir} holds results of a different config (fingerprint {existing}, this one {fingerprint}); "
                "use another `output.dir`, or delete the folder to start over"
            )
        stored_data = self.get_meta(DATA_FINGERPRINT)
        if existing is not None and data is not None and stored_data is not None and stored_data != data:
            raise BakeoffError(
                f"{run_dir} holds results on different data: the same config now reads other texts or labels "
                f"(data fingerprint {stored_data}, now {data}; an edited data file, a new dataset revision). "
                "Its trials would mix with new ones: use another `output.dir`, or delete the folder to start over"
            )

    @_damaged_store_is_a_user_error
    def set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO run VALUES (?, ?)", (key, json.dumps(value)))

    @_damaged_store_is_a_user_error
    def get_meta(self, key: str):
        row = self.db.execute("SELECT value FROM run WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return row[0] if key == "fingerprint" else json.loads(row[0])

    @_damaged_store_is_a_user_error
    def record_serving(self, candidate: str, entry: dict) -> dict:
        """Make `entry` the candidate's current load test; the one it replaces moves to the entry's `history`
        (oldest first, the last SERVING_HISTORY_KEPT). One transaction: two load tests stored at once both
        land, one in the other's history. Returns the stored entry."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT value FROM run WHERE key = ?", (SERVING,)).fetchone()
            serving = json.loads(row[0]) if row else {}
            previous = dict(serving.get(candidate) or {})
            history = list(previous.pop("history", None) or [])
            if previous:
                history.append(previous)
            stored = {key: value for key, value in entry.items() if key != "history"}
            stored["history"] = history[-SERVING_HISTORY_KEPT:]
            serving[candidate] = stored
            self.db.execute("INSERT OR REPLACE INTO run VALUES (?, ?)", (SERVING, json.dumps(serving)))
        return stored

    @_damaged_store_is_a_user_error
    def metadata(self) -> dict:
        """Everything stored about the run itself (spec, versions, data report ...)."""
        return {key: self.get_meta(key) for (key,) in self.db.execute("SELECT key FROM run ORDER BY key")}

    @_damaged_store_is_a_user_error
    def status(self, trial_id: str) -> str | None:
        row = self.db.execute("SELECT status FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
        return row[0] if row else None

    @_damaged_store_is_a_user_error
    def start(self, trial_id: str, candidate: str, method: str, train_size: int, seed: int) -> None:
        self.db.execute(
            """INSERT INTO trials (trial_id, candidate, method, train_size, seed, status, attempts, started_at)
               VALUES (?, ?, ?, ?, ?, 'running', 1, ?)
               ON CONFLICT(trial_id) DO UPDATE SET status='running', attempts=attempts+1,
               started_at=excluded.started_at,
               result=NULL, error=NULL, finished_at=NULL""",
            (trial_id, candidate, method, train_size, seed, _now()),
        )

    @_damaged_store_is_a_user_error
    def finish(self, trial_id: str, result: dict) -> None:
        self.db.execute(
            "UPDATE trials SET status='done', result=?, finished_at=? WHERE trial_id=?",
            (json.dumps(result), _now(), trial_id),
        )

    @_damaged_store_is_a_user_error
    def fail(self, trial_id: str, error: str) -> None:
        self.db.execute(
            "UPDATE trials SET status='failed', error=?, finished_at=? WHERE trial_id=?", (error, _now(), trial_id)
        )

    @_damaged_store_is_a_user_error
    def trials(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT trial_id, candidate, method, train_size, seed, status, attempts, result, error FROM trials ORDER "
            "BY rowid"
        ).fetchall()
        keys = ("trial_id", "candidate", "method", "train_size", "seed", "status", "attempts", "result", "error")
        out = []
        for row in rows:
            record = dict(zip(keys, row))
            record["result"] = json.loads(record["result"]) if record["result"] else None
            out.append(record)
        return out

    @_damaged_store_is_a_user_error
    def integrity_ok(self) -> bool:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        self.db.close()
