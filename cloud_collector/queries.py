"""The read side of PostgreSQL: what the API, the dashboard and ``stats`` ask for.

Every query that returns fleet data takes ``tenant``: None for the platform operator (everything), or a
tenant id, which limits it to the sites assigned to that tenant (``sites.tenant_id``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from cloud_collector.errors import storage_errors
from cloud_collector.views import (
    AlertView,
    BucketView,
    DeviceStats,
    DeviceView,
    ReadingView,
    StateView,
    Stats,
    alert_from_row,
    device_from_row,
    reading_from_row,
    state_from_row,
)

# $1 is always the tenant (NULL: every tenant).
_IN_TENANT = "($1::bigint IS NULL OR {site} IN (SELECT site FROM sites WHERE tenant_id = $1))"

_DEVICES = f"""
SELECT d.*,
       (SELECT count(*) FROM alerts a WHERE a.device = d.device AND a.status = 'active')::int
           AS active_alerts,
       EXISTS (SELECT 1 FROM alerts a WHERE a.device = d.device AND a.status = 'active'
               AND a.rule IN (SELECT name FROM alert_rules WHERE kind = 'offline')) AS offline,
       m.type AS device_type
FROM devices d LEFT JOIN device_meta m USING (device)
WHERE {_IN_TENANT.format(site="d.site")} {{where}}
ORDER BY d.site, d.device
"""

_READINGS = """
SELECT boot, seq, ts, received_at, "values", missing, score, state
FROM readings
WHERE device = $1 AND ts >= $2 AND ts < $3
ORDER BY ts DESC, seq DESC
LIMIT $4
"""

# Averages per bucket from the rollup tables of ingest (readings_1m, readings_1h: per point n, min, max,
# avg); the anomaly score is not rolled up, so its mean and max come from the raw readings of the window.
_BUCKETS = """
WITH s AS (
    SELECT date_bin($4::interval, ts, TIMESTAMPTZ '2000-01-01') AS bucket, avg(score) AS score,
           max(score) AS max_score
    FROM readings WHERE device = $1 AND ts >= $2 AND ts < $3 GROUP BY 1
)
SELECT m.bucket AS ts, m.n AS count, s.score, s.max_score,
       coalesce((SELECT jsonb_object_agg(kv.key, (kv.value->>'avg')::float8) FROM jsonb_each(m."values") kv),
                '{{}}') AS "values"
FROM {table} m LEFT JOIN s ON s.bucket = m.bucket
WHERE m.device = $1 AND m.bucket >= $2 AND m.bucket < $3
ORDER BY m.bucket DESC
LIMIT $5
"""
_ROLLUP_TABLES = {"1m": "readings_1m", "1h": "readings_1h"}

_STATES = """
SELECT ts, state, previous, score, model, reason, contributors
FROM states WHERE device = $1 AND ts >= $2 AND ts < $3
ORDER BY ts DESC, seq DESC LIMIT $4
"""

_ALERT_COLUMNS = "a.*, f.verdict AS feedback"
_ALERTS = f"""
SELECT {_ALERT_COLUMNS} FROM alerts a LEFT JOIN alert_feedback f ON f.alert_id = a.id
WHERE {_IN_TENANT.format(site="a.site")}
  AND ($2::text IS NULL OR a.status = $2) AND ($3::text IS NULL OR a.device = $3)
  AND ($4::text IS NULL OR a.site = $4) AND ($5::text IS NULL OR a.rule = $5)
  AND ($6::text IS NULL OR a.severity = $6)
  AND ($7::boolean IS NULL OR (a.acknowledged_at IS NOT NULL) = $7)
  AND ($8::bigint IS NULL OR a.id < $8)
ORDER BY a.id DESC
LIMIT $9
"""

_FALSE_ALARMS = """
SELECT {key} AS key, count(*)::int AS alerts, count(f.alert_id)::int AS with_feedback,
       count(*) FILTER (WHERE f.verdict = 'false_alarm')::int AS false_alarms,
       count(*) FILTER (WHERE f.verdict = 'confirmed_fault')::int AS confirmed,
       count(*) FILTER (WHERE f.verdict = 'maintenance')::int AS maintenance
FROM alerts a LEFT JOIN alert_feedback f ON f.alert_id = a.id
WHERE {in_tenant} AND a.opened_at >= $2
GROUP BY {key}
ORDER BY {key}
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

RESOLUTIONS = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1)}
RAW_UP_TO = timedelta(hours=6)  # auto: raw readings up to this window, 1-minute buckets up to a week
MINUTES_UP_TO = timedelta(days=7)


def auto_resolution(start: datetime, end: datetime) -> str:
    span = end - start
    return "raw" if span <= RAW_UP_TO else "1m" if span <= MINUTES_UP_TO else "1h"


async def devices(conn: asyncpg.Connection, tenant: int | None = None) -> list[DeviceView]:
    with storage_errors("listing devices"):
        rows = await conn.fetch(_DEVICES.format(where=""), tenant)
    return [device_from_row(r) for r in rows]


async def device(conn: asyncpg.Connection, name: str, tenant: int | None = None) -> DeviceView | None:
    with storage_errors("reading a device"):
        row = await conn.fetchrow(_DEVICES.format(where="AND d.device = $2"), tenant, name)
    return device_from_row(row) if row else None


async def readings(
    conn: asyncpg.Connection, name: str, start: datetime, end: datetime, limit: int
) -> list[ReadingView]:
    with storage_errors("reading readings"):
        rows = await conn.fetch(_READINGS, name, start, end, limit)
    return [reading_from_row(r) for r in rows]


async def buckets(
    conn: asyncpg.Connection, name: str, start: datetime, end: datetime, resolution: str, limit: int
) -> list[BucketView]:
    with storage_errors("reading aggregated readings"):
        rows = await conn.fetch(
            _BUCKETS.format(table=_ROLLUP_TABLES[resolution]),
            name,
            start,
            end,
            RESOLUTIONS[resolution],
            limit,
        )
    return [
        BucketView(
            ts=r["ts"],
            count=r["count"],
            score=r["score"],
            max_score=r["max_score"],
            values=_decode(r["values"]),
        )
        for r in rows
    ]


async def states(
    conn: asyncpg.Connection, name: str, start: datetime, end: datetime, limit: int
) -> list[StateView]:
    with storage_errors("reading health states"):
        rows = await conn.fetch(_STATES, name, start, end, limit)
    return [state_from_row(r) for r in rows]


async def alerts(
    conn: asyncpg.Connection,
    status: str | None,
    device_name: str | None,
    limit: int,
    *,
    tenant: int | None = None,
    site: str | None = None,
    rule: str | None = None,
    severity: str | None = None,
    acknowledged: bool | None = None,
    before_id: int | None = None,
) -> list[AlertView]:
    """Newest first; ``before_id`` is the keyset cursor (the id of the last alert of the previous page)."""
    with storage_errors("listing alerts"):
        rows = await conn.fetch(
            _ALERTS, tenant, status, device_name, site, rule, severity, acknowledged, before_id, limit
        )
    return [alert_from_row(r) for r in rows]


async def alert(conn: asyncpg.Connection, alert_id: int, tenant: int | None = None) -> AlertView | None:
    with storage_errors("reading an alert"):
        row = await conn.fetchrow(
            f"SELECT {_ALERT_COLUMNS} FROM alerts a LEFT JOIN alert_feedback f ON f.alert_id = a.id "
            f"WHERE {_IN_TENANT.format(site='a.site')} AND a.id = $2",
            tenant,
            alert_id,
        )
    return alert_from_row(row) if row else None


async def false_alarm_report(
    conn: asyncpg.Connection, by: str, since: datetime, tenant: int | None = None
) -> list[dict[str, object]]:
    """Per rule or device: alerts, how many got feedback, and the false-alarm rate among those."""
    key = {"rule": "a.rule", "device": "a.device"}[by]
    with storage_errors("computing the false-alarm report"):
        rows = await conn.fetch(
            _FALSE_ALARMS.format(key=key, in_tenant=_IN_TENANT.format(site="a.site")), tenant, since
        )
    return [
        {
            by: r["key"],
            "alerts": r["alerts"],
            "with_feedback": r["with_feedback"],
            "false_alarms": r["false_alarms"],
            "confirmed_faults": r["confirmed"],
            "maintenance": r["maintenance"],
            "false_alarm_rate": r["false_alarms"] / r["with_feedback"] if r["with_feedback"] else None,
        }
        for r in rows
    ]


async def site_in_tenant(conn: asyncpg.Connection, site: str, tenant: int | None) -> bool:
    if tenant is None:
        return True
    with storage_errors("checking a site"):
        return bool(
            await conn.fetchval("SELECT 1 FROM sites WHERE site = $1 AND tenant_id = $2", site, tenant)
        )


async def stats(conn: asyncpg.Connection) -> Stats:
    """Per device and fleet: readings, first/last timestamp, sequence gaps, duplicates, dead letters."""
    with storage_errors("computing stats"):
        rows = await conn.fetch(_STATS)
        all_letters = await conn.fetchval("SELECT count(*) FROM dead_letters")
    return Stats.of([DeviceStats(**dict(r)) for r in rows], all_letters)


def _decode(value: Any) -> dict[str, float]:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else dict(value or {})
