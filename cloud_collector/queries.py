"""The read side of PostgreSQL: what the API, the dashboard and ``stats`` ask for."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from cloud_collector.errors import storage_errors
from cloud_collector.views import (
    AlertView,
    DeviceStats,
    DeviceView,
    FleetStats,
    ReadingView,
    Stats,
    alert_from_row,
    device_from_row,
    reading_from_row,
)

_DEVICES = """
SELECT d.*,
       (SELECT count(*) FROM alerts a WHERE a.device = d.device AND a.status = 'active')::int
           AS active_alerts,
       EXISTS (SELECT 1 FROM alerts a WHERE a.fingerprint = d.device || ':offline' AND a.status = 'active')
           AS offline
FROM devices d
{where}
ORDER BY d.site, d.device
"""

_READINGS = """
SELECT boot, seq, ts, received_at, "values", missing, score, state
FROM readings
WHERE device = $1 AND ts >= $2 AND ts < $3
ORDER BY ts DESC, seq DESC
LIMIT $4
"""

_ALERTS = """
SELECT * FROM alerts
WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR device = $2)
ORDER BY opened_at DESC, id DESC
LIMIT $3
"""

# Gaps per (device, boot): the sequence numbers between the first and last reading that never arrived.
_STATS = """
WITH per_boot AS (
    SELECT device, count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts,
           max(seq) - min(seq) + 1 - count(DISTINCT seq) AS gaps
    FROM readings GROUP BY device, boot
), per_device AS (
    SELECT device, sum(n)::bigint AS readings, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
           sum(gaps)::bigint AS gaps
    FROM per_boot GROUP BY device
), letters AS (
    SELECT device, count(*) AS n FROM dead_letters WHERE device IS NOT NULL GROUP BY device
)
SELECT d.device, d.site, coalesce(p.readings, 0) AS readings, p.first_ts, p.last_ts,
       coalesce(p.gaps, 0) AS gaps, d.duplicates_discarded AS duplicates, coalesce(l.n, 0) AS dead_letters
FROM devices d
LEFT JOIN per_device p USING (device)
LEFT JOIN letters l USING (device)
ORDER BY d.site, d.device
"""


async def devices(conn: asyncpg.Connection) -> list[DeviceView]:
    with storage_errors("listing devices"):
        rows = await conn.fetch(_DEVICES.format(where=""))
    return [device_from_row(r) for r in rows]


async def device(conn: asyncpg.Connection, name: str) -> DeviceView | None:
    with storage_errors("reading a device"):
        row = await conn.fetchrow(_DEVICES.format(where="WHERE d.device = $1"), name)
    return device_from_row(row) if row else None


async def readings(
    conn: asyncpg.Connection, name: str, start: datetime, end: datetime, limit: int
) -> list[ReadingView]:
    with storage_errors("reading readings"):
        rows = await conn.fetch(_READINGS, name, start, end, limit)
    return [reading_from_row(r) for r in rows]


async def alerts(
    conn: asyncpg.Connection, status: str | None, device_name: str | None, limit: int
) -> list[AlertView]:
    with storage_errors("listing alerts"):
        rows = await conn.fetch(_ALERTS, status, device_name, limit)
    return [alert_from_row(r) for r in rows]


async def alert(conn: asyncpg.Connection, alert_id: int) -> AlertView | None:
    with storage_errors("reading an alert"):
        row = await conn.fetchrow("SELECT * FROM alerts WHERE id = $1", alert_id)
    return alert_from_row(row) if row else None


async def stats(conn: asyncpg.Connection) -> Stats:
    """Per device and fleet: readings, first/last timestamp, sequence gaps, duplicates, dead letters."""
    with storage_errors("computing stats"):
        rows = await conn.fetch(_STATS)
        all_letters = await conn.fetchval("SELECT count(*) FROM dead_letters")
    per_device = [DeviceStats(**dict(r)) for r in rows]
    firsts = [d.first_ts for d in per_device if d.first_ts]
    lasts = [d.last_ts for d in per_device if d.last_ts]
    fleet = FleetStats(
        devices=len(per_device),
        readings=sum(d.readings for d in per_device),
        first_ts=min(firsts) if firsts else None,
        last_ts=max(lasts) if lasts else None,
        gaps=sum(d.gaps for d in per_device),
        duplicates=sum(d.duplicates for d in per_device),
        dead_letters=all_letters,
    )
    return Stats(fleet=fleet, devices=per_device)
