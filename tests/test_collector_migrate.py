"""Migrations: fresh, idempotent, safe when several collectors start at once, refuse edited files."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import asyncpg
import pytest

from cloud_collector import migrate, partitions
from cloud_collector.errors import MigrationError, NotMigrated
from tests.collector_helpers import fetch, fetchval


async def test_fresh_database_reaches_head(pg_url):
    ran = await migrate.migrate(pg_url)
    assert [m.label for m in ran] == [m.label for m in migrate.available()]
    rows = await fetch(pg_url, "SELECT version, name, checksum, applied_at FROM schema_migrations")
    expected = [(m.version, m.checksum) for m in migrate.available()]
    assert [(r["version"], r["checksum"]) for r in rows] == expected
    kind = await fetchval(pg_url, "SELECT relkind FROM pg_class WHERE relname = 'readings'")
    assert kind == b"p" or kind == "p"  # partitioned table


async def test_migrate_twice_applies_nothing_the_second_time(pg_url):
    await migrate.migrate(pg_url)
    assert await migrate.migrate(pg_url) == []


async def test_four_concurrent_migrations_apply_each_file_once(pg_url):
    results = await asyncio.gather(*(migrate.migrate(pg_url) for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, len(migrate.available())]
    assert await fetchval(pg_url, "SELECT count(*) FROM schema_migrations") == len(migrate.available())


async def test_require_head_names_the_pending_migrations(pg_url):
    conn = await asyncpg.connect(pg_url)
    try:
        with pytest.raises(NotMigrated, match=r"0001_initial.*signalcraft-collector migrate"):
            await migrate.require_head(conn)
        await migrate.migrate(pg_url)
        await migrate.require_head(conn)
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(pg_url):
    await migrate.migrate(pg_url)
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1")
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match="0001_initial was changed after it was applied"):
        await migrate.migrate(pg_url)


async def test_partitions_are_created_ahead_and_concurrently(pg_url):
    await migrate.migrate(pg_url)
    now = datetime(2025, 12, 10, tzinfo=UTC)
    conns = [await asyncpg.connect(pg_url) for _ in range(3)]
    try:
        created = await asyncio.gather(*(partitions.ensure(c, now) for c in conns))
    finally:
        for c in conns:
            await c.close()
    months = [partitions.partition_name(date(y, m, 1), t) for t in partitions.TABLES
              for y, m in ((2025, 11), (2025, 12), (2026, 1), (2026, 2), (2026, 3))]
    assert sorted(name for names in created for name in names) == sorted(months)
    # A reading of December lands in its partition, one from 1999 in the default partition.
    await fetchval(pg_url, """INSERT INTO readings (device, boot, seq, ts, received_at, "values")
                              VALUES ('d', 'b', 1, '2025-12-24T10:00Z', now(), '{}'),
                                     ('d', 'b', 2, '1999-12-24T10:00Z', now(), '{}')""")
    rows = await fetch(pg_url, "SELECT seq, tableoid::regclass::text AS part FROM readings ORDER BY seq")
    assert [(r["seq"], r["part"]) for r in rows] == [(1, "readings_2025_12"), (2, "readings_default")]
