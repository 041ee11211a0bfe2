"""The write side of PostgreSQL: a batch of validated messages in, rows out, in the caller's transaction.

Readings and states are COPYed into per-connection temporary staging tables, then moved with
``INSERT … SELECT … ON CONFLICT DO NOTHING``: COPY is the fastest way in, and the conflict clause on the
idempotency key discards redeliveries (counted per device as ``duplicates_discarded``). The caller
commits, and only then acknowledges the messages to the broker.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import msgspec

from cloud_collector.errors import storage_errors
from common.schema import Message, StateChange, Status, Telemetry

# ON COMMIT DELETE ROWS keeps the tables (no catalog churn per batch) but empties them at every commit.
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_readings (LIKE readings) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS staging_states (LIKE states) ON COMMIT DELETE ROWS;
"""
READING_COLUMNS = ("device", "boot", "seq", "ts", "received_at", "values", "missing", "score", "state",
                   "model")
STATE_COLUMNS = ("device", "boot", "seq", "ts", "received_at", "state", "previous", "score", "model",
                 "reason", "contributors")

# One statement: insert, then from exactly the rows inserted (never the duplicates) update the per-boot
# loss accounting and mark the rollup minutes to recompute. Both upserts go in (device, …) order, the same
# order in every collector, so concurrent batches queue on a row instead of deadlocking.
_MOVE_READINGS = """
WITH ins AS (
    INSERT INTO readings (device, boot, seq, ts, received_at, "values", missing, score, state, model)
    SELECT device, boot, seq, ts, received_at, "values", missing, score, state, model FROM staging_readings
    ON CONFLICT (device, boot, seq, ts) DO NOTHING
    RETURNING device, boot, seq, ts
), boots AS (
    INSERT INTO device_boots AS b (device, boot, first_seq, last_seq, stored, first_ts, last_ts)
    SELECT device, boot, min(seq), max(seq), count(*), min(ts), max(ts) FROM ins
    GROUP BY device, boot ORDER BY device, boot
    ON CONFLICT (device, boot) DO UPDATE SET
        first_seq = least(b.first_seq, EXCLUDED.first_seq),
        last_seq = greatest(b.last_seq, EXCLUDED.last_seq),
        stored = b.stored + EXCLUDED.stored,
        first_ts = least(b.first_ts, EXCLUDED.first_ts),
        last_ts = greatest(b.last_ts, EXCLUDED.last_ts)
), dirty AS (
    INSERT INTO rollup_dirty AS r (device, bucket)
    SELECT DISTINCT device, date_bin('1 minute', ts, '2000-01-01 00:00+00') FROM ins ORDER BY 1, 2
    ON CONFLICT (device, bucket) DO UPDATE SET marked_at = now()
)
SELECT device, count(*) AS stored FROM ins GROUP BY device
"""

_MOVE_STATES = """
INSERT INTO states (device, boot, seq, ts, received_at, state, previous, score, model, reason, contributors)
SELECT device, boot, seq, ts, received_at, state, previous, score, model, reason, contributors
FROM staging_states
ON CONFLICT (device, boot, seq, ts) DO NOTHING
RETURNING device, boot, seq
"""

_UPSERT_DEVICES = """
INSERT INTO devices AS d (device, site, first_seen, last_seen, last_boot, model, last_reading_at, last_values,
                          duplicates_discarded)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::jsonb[], $9::bigint[])
ON CONFLICT (device) DO UPDATE SET
    site = EXCLUDED.site,
    last_seen = GREATEST(d.last_seen, EXCLUDED.last_seen),
    last_boot = COALESCE(EXCLUDED.last_boot, d.last_boot),
    model = COALESCE(EXCLUDED.model, d.model),
    -- A replayed backlog is older than what we already have: keep the newest values.
    last_values = CASE WHEN d.last_reading_at IS NULL OR EXCLUDED.last_reading_at >= d.last_reading_at
                       THEN COALESCE(EXCLUDED.last_values, d.last_values) ELSE d.last_values END,
    last_reading_at = GREATEST(d.last_reading_at, EXCLUDED.last_reading_at),
    duplicates_discarded = d.duplicates_discarded + EXCLUDED.duplicates_discarded
"""

# Only a state newer than the one we hold becomes the device's state (and may drive alerts).
_ADVANCE_STATE = """
UPDATE devices SET last_state = $2, last_state_at = $3, last_score = $4
WHERE device = $1 AND (last_state_at IS NULL OR last_state_at <= $3)
RETURNING device
"""

_ADVANCE_STATUS = """
UPDATE devices SET online = $2, status_at = $3, status_reason = $4,
                   agent_version = COALESCE(NULLIF($5, ''), agent_version)
WHERE device = $1 AND (status_at IS NULL OR status_at <= $3)
RETURNING device
"""

_INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (received_at, topic, client_id, device, reason, payload, payload_size)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""

# Enough of a refused payload to see what was wrong with it, without storing a 1 MiB blob per mistake.
DEAD_LETTER_KEEP_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Received:
    """A validated message and when the collector received it."""

    message: Message
    received_at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: datetime
    topic: str
    client_id: str | None
    device: str | None
    reason: str
    payload: bytes


@dataclass(slots=True)
class Saved:
    """What a batch changed: the input of the alert rules and of the metrics."""

    readings_stored: int = 0
    readings_duplicate: int = 0
    states_stored: int = 0
    states_duplicate: int = 0
    current_states: list[tuple[str, StateChange]] = field(default_factory=list)  # (site, state), newest only
    current_statuses: list[Status] = field(default_factory=list)
    devices_with_data: set[str] = field(default_factory=set)  # sent telemetry, a state or a birth


async def save(conn: asyncpg.Connection, items: list[Received]) -> Saved:
    """Store a batch inside the caller's transaction."""
    out = Saved()
    with storage_errors("storing a batch"):
        await conn.execute(_STAGING)
        duplicates = await _save_readings(conn, items, out)
        await _upsert_devices(conn, items, duplicates)
        await _save_states(conn, items, out)
        await _save_statuses(conn, items, out)
    return out


async def save_dead_letters(conn: asyncpg.Connection, letters: list[DeadLetter]) -> None:
    if not letters:
        return
    rows = [
        (dl.received_at, dl.topic, dl.client_id, dl.device, dl.reason.replace("\x00", "\\0"),
         dl.payload[:DEAD_LETTER_KEEP_BYTES], len(dl.payload))
        for dl in letters
    ]
    with storage_errors("storing dead letters"):
        await conn.executemany(_INSERT_DEAD_LETTER, rows)


async def _save_readings(conn: asyncpg.Connection, items: list[Received], out: Saved) -> Counter[str]:
    records = []
    staged: Counter[str] = Counter()
    for item in items:
        msg = item.message
        if not isinstance(msg, Telemetry):
            continue
        out.devices_with_data.add(msg.device)
        for r in msg.readings:
            state = r.state.value if r.state is not None else None
            values = msgspec.json.encode(r.values).decode()
            records.append((msg.device, msg.boot, r.seq, r.ts, item.received_at, values, list(r.missing),
                            r.score, state, msg.model))
            staged[msg.device] += 1
    if not records:
        return Counter()
    await conn.copy_records_to_table("staging_readings", records=records, columns=READING_COLUMNS)
    stored = Counter({row["device"]: row["stored"] for row in await conn.fetch(_MOVE_READINGS)})
    duplicates = staged - stored
    out.readings_stored += stored.total()
    out.readings_duplicate += duplicates.total()
    return duplicates


async def _upsert_devices(conn: asyncpg.Connection, items: list[Received], duplicates: Counter[str]) -> None:
    latest: dict[str, dict] = {}
    for item in items:
        msg = item.message
        d = latest.setdefault(msg.device, {"first": item.received_at, "last": item.received_at,
                                           "model": None, "reading_at": None, "values": None})
        d["site"] = msg.site
        d["first"] = min(d["first"], item.received_at)
        d["last"] = max(d["last"], item.received_at)
        d["boot"] = msg.boot
        if isinstance(msg, Telemetry | StateChange) and msg.model:
            d["model"] = msg.model
        if isinstance(msg, Telemetry):
            newest = max(msg.readings, key=lambda r: r.ts)
            if d["reading_at"] is None or newest.ts >= d["reading_at"]:
                d["reading_at"], d["values"] = newest.ts, msgspec.json.encode(newest.values).decode()
    # Sorted, so two collectors upserting overlapping devices lock rows in the same order (no deadlock).
    names = sorted(latest)
    keys = ("site", "first", "last", "boot", "model", "reading_at", "values")
    cols = [[latest[n][k] for n in names] for k in keys]
    await conn.execute(_UPSERT_DEVICES, names, *cols, [duplicates.get(n, 0) for n in names])


async def _save_states(conn: asyncpg.Connection, items: list[Received], out: Saved) -> None:
    states = [(item, item.message) for item in items if isinstance(item.message, StateChange)]
    if not states:
        return
    records = [
        (s.device, s.boot, s.seq, s.ts, item.received_at, s.state.value,
         s.previous.value if s.previous else None, s.score, s.model, s.reason,
         msgspec.json.encode(s.contributors).decode())
        for item, s in states
    ]
    await conn.copy_records_to_table("staging_states", records=records, columns=STATE_COLUMNS)
    fresh = {(r["device"], r["boot"], r["seq"]) for r in await conn.fetch(_MOVE_STATES)}
    out.states_stored += len(fresh)
    out.states_duplicate += len(states) - len(fresh)
    new = {(s.device, s.boot, s.seq): s for _, s in states if (s.device, s.boot, s.seq) in fresh}.values()
    for s in sorted(new, key=lambda s: (s.ts, s.seq)):
        out.devices_with_data.add(s.device)
        if await conn.fetchval(_ADVANCE_STATE, s.device, s.state.value, s.ts, s.score):
            out.current_states.append((s.site, s))


async def _save_statuses(conn: asyncpg.Connection, items: list[Received], out: Saved) -> None:
    statuses = sorted((i.message for i in items if isinstance(i.message, Status)), key=lambda s: s.ts)
    for s in statuses:
        if await conn.fetchval(_ADVANCE_STATUS, s.device, s.online, s.ts, s.reason, s.agent_version):
            out.current_statuses.append(s)
            if s.online:
                out.devices_with_data.add(s.device)
