"""Read-only ingest statistics from the loss-accounting table: cheap at any fleet size.

``device_boots`` holds one row per (device, boot), maintained by ingest from the rows it really
inserted, so per-device gaps (readings that never arrived) and counts cost one row per boot instead of
a scan of ``readings``. Same shapes as the API (:mod:`cloud_collector.views`).
"""

from __future__ import annotations

import asyncpg

from cloud_collector.errors import storage_errors
from cloud_collector.views import DeviceStats, Stats

_PER_DEVICE = """
WITH per_device AS (
    SELECT device, sum(stored)::bigint AS readings, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
           sum(last_seq - first_seq + 1 - stored)::bigint AS gaps
    FROM device_boots GROUP BY device
), letters AS (
    SELECT device, count(*) AS n FROM dead_letters WHERE device IS NOT NULL GROUP BY device
)
SELECT d.device, d.site, coalesce(p.readings, 0) AS readings, p.first_ts, p.last_ts,
       coalesce(p.gaps, 0) AS gaps, d.duplicates_discarded AS duplicates, coalesce(l.n, 0) AS dead_letters
FROM devices d
LEFT JOIN per_device p USING (device)
LEFT JOIN letters l USING (device)
{where}
ORDER BY d.site, d.device
"""


async def missing_total(conn: asyncpg.Connection) -> int:
    """Readings that never arrived, over the fleet (the ``readings_missing`` gauge)."""
    with storage_errors("summing sequence gaps"):
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(last_seq - first_seq + 1 - stored), 0) FROM device_boots"
            )
            or 0
        )


async def device_stats(conn: asyncpg.Connection, device: str) -> DeviceStats | None:
    with storage_errors("reading device stats"):
        row = await conn.fetchrow(_PER_DEVICE.format(where="WHERE d.device = $1"), device)
    return DeviceStats(**dict(row)) if row else None


async def fleet_stats(conn: asyncpg.Connection) -> Stats:
    """Per device and for the fleet: readings, first/last timestamp, gaps, duplicates, dead letters."""
    with storage_errors("computing stats"):
        rows = await conn.fetch(_PER_DEVICE.format(where=""))
        all_letters = await conn.fetchval("SELECT count(*) FROM dead_letters")
    return Stats.of([DeviceStats(**dict(r)) for r in rows], all_letters)
