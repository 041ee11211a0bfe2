"""Monthly partitions of ``readings``, created ahead of the data.

The collector calls :func:`ensure` at start and then hourly, for the previous month (a replayed backlog),
the current one and ``ahead`` months to come. Anything outside lands in ``readings_default``, so an insert
never fails. Creating a month whose rows already sit in the default partition is impossible in PostgreSQL;
that month then stays in the default partition (logged, nothing lost).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import asyncpg

from cloud_collector.errors import storage_errors

log = logging.getLogger(__name__)

# Serialises partition creation across collectors (CREATE ... IF NOT EXISTS still races in the catalog).
LOCK_KEY = 0x5369676E616C5072


def month_start(d: date, offset: int = 0) -> date:
    index = d.year * 12 + (d.month - 1) + offset
    return date(index // 12, index % 12 + 1, 1)


def partition_name(first_day: date) -> str:
    return f"readings_{first_day:%Y_%m}"


async def ensure(conn: asyncpg.Connection, now: datetime | None = None, ahead: int = 2) -> list[str]:
    """Create the missing monthly partitions around ``now``; return the names created."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    created = []
    for offset in range(-1, ahead + 1):
        start, end = month_start(today, offset), month_start(today, offset + 1)
        name = partition_name(start)
        with storage_errors(f"creating partition {name}"):
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
                if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
                    continue
                if await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM readings_default WHERE ts >= $1 AND ts < $2)",
                    _utc(start), _utc(end),
                ):
                    log.warning("rows for %s already sit in readings_default; not creating %s", start, name)
                    continue
                # Identifiers and bounds come from dates we computed, never from input.
                await conn.execute(
                    f"CREATE TABLE {name} PARTITION OF readings "
                    f"FOR VALUES FROM ('{start.isoformat()} 00:00+00') TO ('{end.isoformat()} 00:00+00')"
                )
                created.append(name)
    if created:
        log.info("created reading partitions %s", ", ".join(created))
    return created


def _utc(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
