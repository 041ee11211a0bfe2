"""The buffer file (``<state_dir>/buffer.sqlite3``, see :mod:`edge_agent.buffer`), read-only.

Opened with ``mode=ro``: SQLite's WAL lets a reader look while the agent writes, and a reader never
blocks the agent's commits; works as well when the agent is stopped (the data a dead uplink left
behind is exactly what a technician wants to export).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FILE = "buffer.sqlite3"


class OutboxMissing(FileNotFoundError):
    """No buffer file where the config says; the message names the path."""


def _open(state_dir: Path) -> sqlite3.Connection:
    path = state_dir / FILE
    if not path.exists():
        raise OutboxMissing(f"no buffer at {path}: has the agent ever run with this state_dir?")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)
        db.execute("SELECT 1 FROM outbox LIMIT 1")
    except sqlite3.OperationalError as exc:
        raise PermissionError(
            f"cannot read {path} ({exc}): run as the agent's user or root (`sudo -u signalcraft …`)"
        ) from None
    return db


def inspect(state_dir: Path) -> dict[str, Any]:
    """Counts, sizes and ages by kind and boot, and the loss counters."""
    db = _open(state_dir)
    try:
        now = time.time()
        kinds = {
            kind: {"records": n, "bytes": b, "oldest_age_s": round(now - oldest, 1)}
            for kind, n, b, oldest in db.execute(
                "SELECT kind, COUNT(*), SUM(LENGTH(body)), MIN(created) FROM outbox GROUP BY kind"
            )
        }
        boots = [
            {"boot": boot, "records": n, "first_id": lo, "last_id": hi}
            for boot, n, lo, hi in db.execute(
                "SELECT boot, COUNT(*), MIN(id), MAX(id) FROM outbox GROUP BY boot ORDER BY MIN(id)"
            )
        ]
        counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
    finally:
        db.close()
    files = {p.name: p.stat().st_size for p in state_dir.glob(FILE + "*") if p.is_file()}
    return {
        "ok": True,
        "path": str(state_dir / FILE),
        "records": sum(k["records"] for k in kinds.values()),
        "bytes": sum(k["bytes"] for k in kinds.values()),
        "file_bytes": sum(files.values()),
        "kinds": kinds,
        "boots": boots,
        "dropped": counters.get("dropped_full", 0),
        "counters": counters,
    }


def export(state_dir: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Every buffered record, oldest first, body decoded from JSON (as it would be published)."""
    db = _open(state_dir)
    try:
        sql = "SELECT id, kind, boot, created, body FROM outbox ORDER BY id"
        rows = db.execute(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
        for rid, kind, boot, created, body in rows:
            try:
                decoded: Any = json.loads(body)
            except ValueError:
                decoded = {"undecodable": bytes(body).hex()}
            yield {"id": rid, "kind": kind, "boot": boot, "created": created, "body": decoded}
    finally:
        db.close()
