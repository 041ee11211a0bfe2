"""1-minute and 1-hour rollups of readings for the dashboard, recomputed from what ingest marked.

Ingest marks every (device, minute) it inserted readings into in ``rollup_dirty`` (same statement, same
transaction). :func:`run_once` takes marks with ``FOR UPDATE SKIP LOCKED`` and deletes them, then - in a
later statement, so with a fresh snapshot - recomputes those minutes from ``readings`` and the hours
that contain them from ``readings_1m``. Why this never misses a row:

* a batch that committed before the marks were taken is visible to the recompute;
* a batch still in flight holds the row lock on its mark (every batch rewrites ``marked_at``), so the
  mark is skipped and recomputed on a later run;
* a batch that touches a taken mark waits for this transaction, then re-inserts the mark.

Recomputing rather than adding makes the rollups exact under redelivery, late backlogs and several
collectors; one job runs at a time across collectors (a try-lock: the others skip the tick). Only DML,
so the least-privilege runtime role runs it. Each point's rollup is ``{"n", "min", "max", "avg"}``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import asyncpg

from cloud_collector.errors import storage_errors

log = logging.getLogger(__name__)

LOCK_KEY = 0x5369676E616C526F
BATCH = 1000  # small transactions: a batch touching a taken mark waits for at most one of them
# A minute still receiving data is marked again by every batch; waiting until it has been quiet this long
# computes it about once (instead of once per batch) and keeps the job off the rows ingest is writing.
QUIET = timedelta(seconds=5)
ORIGIN = "2000-01-01 00:00+00"

_TAKE = """
WITH picked AS (
    SELECT device, bucket FROM rollup_dirty WHERE marked_at < now() - $2::interval
    ORDER BY device, bucket LIMIT $1 FOR UPDATE SKIP LOCKED
)
DELETE FROM rollup_dirty d USING picked p WHERE d.device = p.device AND d.bucket = p.bucket
RETURNING d.device, d.bucket
"""

_MINUTES = f"""
WITH b AS (SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS b(device, bucket)),
r AS (
    SELECT b.device, b.bucket, r."values" FROM b
    JOIN readings r ON r.device = b.device AND r.ts >= b.bucket AND r.ts < b.bucket + interval '1 minute'
),
pts AS (
    SELECT device, bucket, kv.key, count(*) AS n, min(kv.value::float8) AS mn, max(kv.value::float8) AS mx,
           avg(kv.value::float8) AS av
    FROM r CROSS JOIN LATERAL jsonb_each_text(r."values") kv GROUP BY 1, 2, 3
),
agg AS (
    SELECT device, bucket,
           jsonb_object_agg(key, jsonb_build_object('n', n, 'min', mn, 'max', mx, 'avg', av)) AS v
    FROM pts GROUP BY 1, 2
),
cnt AS (SELECT device, bucket, count(*) AS n FROM r GROUP BY 1, 2)
INSERT INTO readings_1m AS m (device, bucket, n, "values")
SELECT c.device, c.bucket, c.n, coalesce(a.v, '{{}}') FROM cnt c LEFT JOIN agg a USING (device, bucket)
ORDER BY 1, 2
ON CONFLICT (device, bucket) DO UPDATE SET n = EXCLUDED.n, "values" = EXCLUDED."values"
RETURNING device, date_bin('1 hour', bucket, '{ORIGIN}') AS hour
"""

_HOURS = """
WITH h AS (SELECT DISTINCT * FROM unnest($1::text[], $2::timestamptz[]) AS h(device, hour)),
m AS (
    SELECT h.device, h.hour, m.n, m."values" FROM h
    JOIN readings_1m m ON m.device = h.device AND m.bucket >= h.hour AND m.bucket < h.hour + interval '1 hour'
),
pts AS (
    SELECT device, hour, kv.key, sum((kv.value->>'n')::bigint) AS n, min((kv.value->>'min')::float8) AS mn,
           max((kv.value->>'max')::float8) AS mx,
           sum((kv.value->>'avg')::float8 * (kv.value->>'n')::bigint) / sum((kv.value->>'n')::bigint) AS av
    FROM m CROSS JOIN LATERAL jsonb_each(m."values") kv GROUP BY 1, 2, 3
),
agg AS (
    SELECT device, hour,
           jsonb_object_agg(key, jsonb_build_object('n', n, 'min', mn, 'max', mx, 'avg', av)) AS v
    FROM pts GROUP BY 1, 2
),
cnt AS (SELECT device, hour, sum(n) AS n FROM m GROUP BY 1, 2)
INSERT INTO readings_1h AS x (device, bucket, n, "values")
SELECT c.device, c.hour, c.n, coalesce(a.v, '{}') FROM cnt c LEFT JOIN agg a USING (device, hour)
ORDER BY 1, 2
ON CONFLICT (device, bucket) DO UPDATE SET n = EXCLUDED.n, "values" = EXCLUDED."values"
"""


async def run_once(conn: asyncpg.Connection, batch: int = BATCH, quiet: timedelta = QUIET) -> int:
    """Recompute up to ``batch`` marked minutes and their hours; return how many minutes (0: none, or
    another collector holds the job)."""
    with storage_errors("computing rollups"):
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK_KEY):
                return 0
            taken = await conn.fetch(_TAKE, batch, quiet)
            if not taken:
                return 0
            hours = await conn.fetch(_MINUTES, [r["device"] for r in taken], [r["bucket"] for r in taken])
            if hours:
                await conn.execute(_HOURS, [r["device"] for r in hours], [r["hour"] for r in hours])
    return len(taken)


async def catch_up(conn: asyncpg.Connection, batch: int = BATCH, limit: int = 100,
                   quiet: timedelta = QUIET) -> int:
    """Run until nothing (quiet enough) is marked, or ``limit`` rounds; return the minutes recomputed."""
    total = 0
    for _ in range(limit):
        n = await run_once(conn, batch, quiet)
        total += n
        if n < batch:
            break
    return total
