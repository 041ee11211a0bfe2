"""The on-disk outbox: every outgoing message waits here until the broker acknowledges it.

SQLite in WAL mode. A record is written before anything is published and deleted only when the
broker's PUBACK for the message that carried it arrives, so a crash, a reboot or an outage loses
nothing that was produced. The files (database, log, index) stay under ``max_bytes``: when full, the
oldest records are dropped, counted and reported (the cloud sees the gap in sequence numbers) — never
a crash, never an unbounded file.

``synchronous=NORMAL`` in WAL mode survives ``kill -9`` of the agent (the OS has the pages); a power
cut may lose the last commits before the last checkpoint. ``fsync = "full"`` makes every commit durable
against power loss at the cost of one fsync per commit (measured in docs/PERFORMANCE.md).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# Of ``max_bytes``, record bodies may take this share; the rest is SQLite's page overhead (~25 % for
# readings of a few hundred bytes), the write-ahead log and its index, so the files on disk stay under it.
PAYLOAD_SHARE = 0.6

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,      -- telemetry (one reading) | state (a whole message)
    boot    TEXT NOT NULL,
    body    BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Record:
    id: int
    kind: str
    boot: str
    body: bytes


class Buffer:
    """Thread-safe outbox; the poll loop appends, the uplink takes and deletes."""

    def __init__(self, path: Path, max_bytes: int, fsync: str = "normal") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self.budget = int(max_bytes * PAYLOAD_SHARE)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync == 'full' else 'NORMAL'}")
        # Keep the log to an eighth of the cap: checkpoint early and truncate it back afterwards.
        page = self._db.execute("PRAGMA page_size").fetchone()[0]
        wal_pages = max(16, max_bytes // 8 // page)
        self._db.execute(f"PRAGMA wal_autocheckpoint={wal_pages}")
        self._db.execute(f"PRAGMA journal_size_limit={wal_pages * page}")
        self._db.executescript(SCHEMA)
        self._bytes, self._count = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(body)), 0), COUNT(*) FROM outbox"
        ).fetchone()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def count(self) -> int:
        return self._count

    @property
    def bytes(self) -> int:
        return self._bytes

    def add(self, kind: str, boot: str, body: bytes) -> int:
        """Store one record durably; drops the oldest first if the cap would be exceeded."""
        with self._lock:
            dropped = 0
            while self._count and self._bytes + len(body) > self.budget:
                dropped += self._drop_oldest_locked()
            self._db.execute("BEGIN")
            cur = self._db.execute(
                "INSERT INTO outbox (kind, boot, body, created) VALUES (?, ?, ?, ?)",
                (kind, boot, body, time.time()),
            )
            if dropped:
                self._bump_locked("dropped_full", dropped)
            self._db.execute("COMMIT")
            self._bytes += len(body)
            self._count += 1
            return int(cur.lastrowid or 0)

    def _drop_oldest_locked(self, n: int = 64) -> int:
        rows = self._db.execute("SELECT id, LENGTH(body) FROM outbox ORDER BY id LIMIT ?", (n,)).fetchall()
        # Drop just enough: one batch of up to n, oldest first.
        self._db.execute("DELETE FROM outbox WHERE id <= ?", (rows[-1][0],))
        self._bytes -= sum(r[1] for r in rows)
        self._count -= len(rows)
        return len(rows)

    def take(self, after_id: int, limit: int) -> list[Record]:
        """The oldest records with an id above ``after_id`` (those not yet handed to the uplink)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, boot, body FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            ).fetchall()
        return [Record(*r) for r in rows]

    def delete(self, ids: list[int]) -> None:
        """Forget records the broker acknowledged."""
        if not ids:
            return
        with self._lock:
            self._db.execute("BEGIN")
            sizes = self._db.execute(
                f"SELECT COALESCE(SUM(LENGTH(body)), 0), COUNT(*) FROM outbox WHERE id IN "
                f"({','.join('?' * len(ids))})",
                ids,
            ).fetchone()
            self._db.execute(f"DELETE FROM outbox WHERE id IN ({','.join('?' * len(ids))})", ids)
            self._db.execute("COMMIT")
            self._bytes -= sizes[0]
            self._count -= sizes[1]

    def max_id(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(id) FROM outbox").fetchone()
        return int(row[0] or 0)

    def oldest_age(self) -> float:
        with self._lock:
            row = self._db.execute("SELECT MIN(created) FROM outbox").fetchone()
        return max(0.0, time.time() - row[0]) if row and row[0] else 0.0

    def _bump_locked(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def counter(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0
