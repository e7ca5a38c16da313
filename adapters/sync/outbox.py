"""The outbox: adapter outputs waiting on disk (SQLite, WAL) to reach the hub, and what became
of each.

A row is one record of a hospital's input: its Bundle (or the adapter's Rejection), keyed on
where it came from and on a digest of its content, so that enqueuing the same file again adds
nothing while a corrected record (same place, new content) is sent again. States:
`pending` (to send), `sent` (the hub answered 2xx), `rejected` (the adapter could not map it),
`refused` (the hub answered 4xx; its OperationOutcome is kept).
"""

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PENDING = "pending"
SENT = "sent"
REJECTED = "rejected"
REFUSED = "refused"
STATES = (PENDING, SENT, REJECTED, REFUSED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    record_key TEXT NOT NULL,
    digest TEXT NOT NULL,
    source TEXT NOT NULL,
    payload TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    http_status INTEGER,
    last_error TEXT,
    outcome TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (record_key, digest)
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, id);
"""


@dataclass(frozen=True)
class Row:
    """One pending record, as the sender needs it."""

    id: int
    source: str
    payload: str
    attempts: int


def digest(text: str) -> str:
    """Return the content digest that tells a record's new version from a repeat."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Outbox:
    """A SQLite outbox file; one connection, used from one thread."""

    def __init__(self, path: Path, durable: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL survives a killed process; FULL also a power cut (for ACKs given on enqueue).
        self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the file."""
        self.db.close()

    def enqueue_bundle(self, key: str, source: str, bundle: dict[str, Any]) -> bool:
        """Add a Bundle to send unless this record with this content is already in; tell if new."""
        payload = json.dumps(bundle, ensure_ascii=False, separators=(",", ":"))
        return self._insert(key, digest(payload), source, payload, PENDING, None)

    def enqueue_rejection(self, key: str, source: str, reason: str) -> bool:
        """Record an adapter's rejection unless already recorded; tell if new."""
        return self._insert(key, digest(f"{source}\n{reason}"), source, None, REJECTED, reason)

    def _insert(
        self, key: str, hashed: str, source: str, payload: str | None, state: str, error: str | None
    ) -> bool:
        now = time.time()
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO outbox (record_key, digest, source, payload, state, last_error,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, hashed, source, payload, state, error, now, now),
        )
        return cursor.rowcount == 1

    def transaction(self) -> "_Transaction":
        """Return a context manager grouping writes into one commit (far fewer disk syncs)."""
        return _Transaction(self.db)

    def due(self, limit: int, now: float | None = None) -> list[Row]:
        """Return up to `limit` pending rows whose next attempt is due, oldest first."""
        rows = self.db.execute(
            "SELECT id, source, payload, attempts FROM outbox"
            " WHERE state = ? AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (PENDING, time.time() if now is None else now, limit),
        ).fetchall()
        return [Row(*row) for row in rows]

    def next_due_at(self) -> float | None:
        """Return when the earliest pending row is due, or None if nothing is pending."""
        (when,) = self.db.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE state = ?", (PENDING,)
        ).fetchone()
        return None if when is None else float(when)

    def mark_sent(self, row_id: int, status: int) -> None:
        """Record the hub's 2xx; the Bundle itself is no longer needed."""
        self._update(row_id, state=SENT, http_status=status, payload=None, last_error=None)

    def mark_refused(self, row_id: int, status: int, reason: str, outcome: Any) -> None:
        """Record the hub's 4xx with its OperationOutcome (the Bundle is kept, to resend)."""
        self._update(
            row_id,
            state=REFUSED,
            http_status=status,
            last_error=reason,
            outcome=None if outcome is None else json.dumps(outcome, ensure_ascii=False),
        )

    def mark_retry(
        self, row_id: int, attempts: int, at: float, error: str, status: int | None
    ) -> None:
        """Record a failed attempt and when to try again."""
        self._update(
            row_id, attempts=attempts, next_attempt_at=at, last_error=error, http_status=status
        )

    def _update(self, row_id: int, **values: Any) -> None:
        names = ", ".join(f"{name} = ?" for name in values)
        self.db.execute(
            f"UPDATE outbox SET {names}, updated_at = ? WHERE id = ?",
            (*values.values(), time.time(), row_id),
        )

    def requeue_refused(self) -> int:
        """Put every refused record back to pending (after the hub or the data was fixed)."""
        cursor = self.db.execute(
            "UPDATE outbox SET state = ?, attempts = 0, next_attempt_at = 0, updated_at = ?"
            " WHERE state = ?",
            (PENDING, time.time(), REFUSED),
        )
        return cursor.rowcount

    def counts(self) -> dict[str, int]:
        """Return the number of rows in each state (every state named, zero included)."""
        found = dict(self.db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"))
        return {state: int(found.get(state, 0)) for state in STATES}

    def last_error(self) -> str | None:
        """Return the latest failure of a pending row, if any."""
        row = self.db.execute(
            "SELECT last_error FROM outbox WHERE state = ? AND last_error IS NOT NULL"
            " ORDER BY updated_at DESC LIMIT 1",
            (PENDING,),
        ).fetchone()
        return None if row is None else str(row[0])

    def problems(self) -> Iterator[dict[str, Any]]:
        """Yield every rejected or refused record: where, what state, the hub's status, why."""
        rows = self.db.execute(
            "SELECT source, state, http_status, last_error, outcome, updated_at FROM outbox"
            " WHERE state IN (?, ?) ORDER BY id",
            (REJECTED, REFUSED),
        )
        for source, state, status, reason, outcome, updated in rows:
            yield {
                "source": source,
                "state": state,
                "http_status": status,
                "reason": reason or "",
                "outcome": json.loads(outcome) if outcome else None,
                "updated_at": updated,
            }


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
