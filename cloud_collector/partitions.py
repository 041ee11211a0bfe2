"""Monthly partitions of the time-series tables, created ahead of the data and dropped for retention.

``readings`` and ``states`` are partitioned by the device timestamp, the rollups ``readings_1m`` and
``readings_1h`` by their bucket. :func:`ensure` creates the previous month (a replayed backlog), the
current one and ``ahead`` months to come; anything outside lands in the table's ``…_default`` partition,
so an insert never fails. Creating a month whose rows already sit in the default partition is impossible
in PostgreSQL; that month then stays in the default partition (logged, nothing lost).

Both are DDL, so they run as the schema owner: at ``migrate``, from ``signalcraft-collector maintain``
(a daily timer), and inside ``serve`` only when the collector's own role owns the tables (one-role
deployments). A least-privilege collector never needs them: see :func:`can_manage`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

from cloud_collector.errors import storage_errors

log = logging.getLogger(__name__)

# Serialises partition creation across collectors (CREATE ... IF NOT EXISTS still races in the catalog).
LOCK_KEY = 0x5369676E616C5072
# table -> partition key column
TABLES = {"readings": "ts", "states": "ts", "readings_1m": "bucket", "readings_1h": "bucket"}
AHEAD = 3


@dataclass(frozen=True, slots=True)
class Partition:
    table: str
    name: str
    start: date
    end: date


def month_start(d: date, offset: int = 0) -> date:
    index = d.year * 12 + (d.month - 1) + offset
    return date(index // 12, index % 12 + 1, 1)


def partition_name(first_day: date, table: str = "readings") -> str:
    return f"{table}_{first_day:%Y_%m}"


async def can_manage(conn: asyncpg.Connection) -> bool:
    """Whether this connection's role owns the partitioned tables (and so may create and drop partitions)."""
    with storage_errors("checking table ownership"):
        return bool(await conn.fetchval(
            "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
            "WHERE oid = 'readings'::regclass"
        ))


async def ensure(conn: asyncpg.Connection, now: datetime | None = None, ahead: int = AHEAD) -> list[str]:
    """Create the missing monthly partitions around ``now`` for every table; return the names created."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    created = []
    for table, column in TABLES.items():
        for offset in range(-1, ahead + 1):
            start, end = month_start(today, offset), month_start(today, offset + 1)
            if await _create(conn, table, column, start, end):
                created.append(partition_name(start, table))
    if created:
        log.info("created partitions %s", ", ".join(created))
    return created


async def _create(conn: asyncpg.Connection, table: str, column: str, start: date, end: date) -> bool:
    name = partition_name(start, table)
    with storage_errors(f"creating partition {name}"):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
                return False
            if await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {table}_default WHERE {column} >= $1 AND {column} < $2)",
                _utc(start), _utc(end),
            ):
                log.warning("rows for %s already sit in %s_default; not creating %s", start, table, name)
                return False
            # Identifiers and bounds come from our constants and dates we computed, never from input.
            await conn.execute(
                f"CREATE TABLE {name} PARTITION OF {table} "
                f"FOR VALUES FROM ('{start.isoformat()} 00:00+00') TO ('{end.isoformat()} 00:00+00')"
            )
    return True


async def existing(conn: asyncpg.Connection) -> list[Partition]:
    """The monthly partitions that exist (not the default ones), oldest first."""
    with storage_errors("listing partitions"):
        rows = await conn.fetch(
            "SELECT p.relname AS parent, c.relname AS name FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = ANY($1::text[])", list(TABLES))
    out = []
    for r in rows:
        m = re.fullmatch(rf"{re.escape(r['parent'])}_(\d{{4}})_(\d{{2}})", r["name"])
        if m:
            start = date(int(m.group(1)), int(m.group(2)), 1)
            out.append(Partition(r["parent"], r["name"], start, month_start(start, 1)))
    return sorted(out, key=lambda p: (p.start, p.table))


async def drop_expired(conn: asyncpg.Connection, retention: timedelta,
                       now: datetime | None = None) -> list[str]:
    """Drop every monthly partition whose whole month is older than ``retention``: cheap, no VACUUM debt."""
    cutoff = (now or datetime.now(UTC)).astimezone(UTC) - retention
    dropped = []
    for part in await existing(conn):
        if _utc(part.end) <= cutoff:
            with storage_errors(f"dropping partition {part.name}"):
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
                    await conn.execute(f"DROP TABLE IF EXISTS {part.name}")
            dropped.append(part.name)
    if dropped:
        log.info("retention: dropped partitions %s", ", ".join(dropped))
    return dropped


async def months_ahead(conn: asyncpg.Connection, now: datetime | None = None) -> int:
    """How many whole months after the current one already have a ``readings`` partition."""
    this_month = month_start((now or datetime.now(UTC)).astimezone(UTC).date())
    names = {p.name for p in await existing(conn) if p.table == "readings"}
    n = 0
    while partition_name(month_start(this_month, n + 1)) in names:
        n += 1
    return n


def _utc(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
