"""Ingest at fleet scale: loss accounting, rollups, per-device rate limit, Redis cache, least privilege."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import pytest
import redis.asyncio as aioredis

from cloud_collector import cache, migrate, queries, rollups, stats
from cloud_collector.runtime import METRICS
from cloud_collector.service import Collector
from tests import services
from tests.collector_helpers import (
    T0,
    Publisher,
    boot_id,
    eventually,
    fetch,
    fetchval,
    settings_for,
    telemetry,
    unique,
)


@pytest.fixture
def publisher(broker):
    p = Publisher(broker.url)
    yield p
    p.close()


async def _count(pg_url: str, device: str) -> int:
    return await fetchval(pg_url, "SELECT count(*) FROM readings WHERE device = $1", device)


async def test_loss_accounting_matches_a_full_scan_and_ignores_redeliveries(broker, pg_url, publisher):
    site, device = unique("site"), unique("dev")
    first, second = boot_id(), boot_id()
    async with Collector(settings_for(broker.url, pg_url), migrate=True) as c:
        await c.wait_subscribed()
        publisher.send(telemetry(site, device, first, [0, 1, 4]))  # 2, 3 lost
        publisher.send(telemetry(site, device, first, [0, 1, 4]))  # redelivered: changes nothing
        publisher.send(telemetry(site, device, second, [10, 12]))  # 11 lost
        publisher.send(telemetry(site, device, first, [3]))  # late: closes one gap
        await eventually(lambda: _count(pg_url, device), lambda n: n == 6)
        async with c.pool.acquire() as conn:
            fast = await stats.fleet_stats(conn)
            scanned = await queries.stats(conn)
            assert await stats.missing_total(conn) == 2
            one = await stats.device_stats(conn, device)
    assert fast == scanned
    assert one is not None and (one.readings, one.gaps, one.duplicates) == (6, 2, 3)
    boots = await fetch(pg_url, "SELECT first_seq, last_seq, stored FROM device_boots WHERE boot = $1", first)
    assert [tuple(r) for r in boots] == [(0, 4, 4)]


async def test_rollups_per_minute_and_hour(broker, pg_url, publisher):
    site, device, boot = unique("site"), unique("dev"), boot_id()
    async with Collector(settings_for(broker.url, pg_url), migrate=True) as c:
        await c.wait_subscribed()
        # Seconds 0..89 after T0: 60 readings in the first minute, 30 in the second.
        for start in range(0, 90, 30):
            publisher.send(telemetry(site, device, boot, list(range(start, start + 30)),
                                     values={"p": 1.0}))
        await eventually(lambda: _count(pg_url, device), lambda n: n == 90)
        # A redelivery and a late reading with another value must leave the rollup exact.
        publisher.send(telemetry(site, device, boot, [0, 1], values={"p": 1.0}))
        publisher.send(telemetry(site, device, boot, [95], values={"p": 4.0}))
        await eventually(lambda: _count(pg_url, device), lambda n: n == 91)
        async with c.pool.acquire() as conn:
            await rollups.catch_up(conn, quiet=timedelta(0))
    minutes = await fetch(pg_url, 'SELECT bucket, n, "values" FROM readings_1m WHERE device = $1 '
                                  "ORDER BY bucket", device)
    assert [(r["bucket"], r["n"]) for r in minutes] == [(T0, 60), (T0 + timedelta(minutes=1), 31)]
    second = msgspec_json(minutes[1]["values"])["p"]
    assert (second["n"], second["min"], second["max"]) == (31, 1.0, 4.0)
    assert second["avg"] == pytest.approx((30 * 1.0 + 4.0) / 31)
    hour = await fetch(pg_url, 'SELECT bucket, n, "values" FROM readings_1h WHERE device = $1', device)
    assert [(r["bucket"], r["n"]) for r in hour] == [(T0, 91)]
    assert msgspec_json(hour[0]["values"])["p"]["avg"] == pytest.approx((90 + 4.0) / 91)
    assert await fetchval(pg_url, "SELECT count(*) FROM rollup_dirty WHERE device = $1", device) == 0


def msgspec_json(text: str) -> dict:
    import msgspec

    return msgspec.json.decode(text)


async def test_a_runaway_device_is_rate_limited_into_dead_letters(broker, pg_url, publisher):
    site, noisy, quiet, boot = unique("site"), unique("noisy"), unique("quiet"), boot_id()
    settings = settings_for(broker.url, pg_url, ingest={"device_rate_limit": 0.001, "device_burst": 3})
    async with Collector(settings, migrate=True) as c:
        await c.wait_subscribed()
        for seq in range(8):
            publisher.send(telemetry(site, noisy, boot, [seq]))
        publisher.send(telemetry(site, quiet, boot, [0]))
        letters = "SELECT reason FROM dead_letters WHERE device = $1"
        rows = await eventually(lambda: fetch(pg_url, letters, noisy), lambda r: len(r) == 5)
        assert all("exceeded its rate limit" in r["reason"] for r in rows)
        assert await eventually(lambda: _count(pg_url, noisy)) == 3
        await eventually(lambda: _count(pg_url, quiet), lambda n: n == 1)
        assert c.app[METRICS].rate_limited == 5


async def test_latest_state_is_cached_in_redis(broker, pg_url, publisher, redis_url):
    site, device, boot = unique("site"), unique("dev"), boot_id()
    client = aioredis.Redis.from_url(redis_url)
    try:
        async with Collector(settings_for(broker.url, pg_url, redis={"url": redis_url}), migrate=True) as c:
            await c.wait_subscribed()
            publisher.send(telemetry(site, device, boot, [5], values={"p": 5.0}))
            publisher.send(telemetry(site, device, boot, [1], values={"p": 1.0}))  # older: not cached
            await eventually(lambda: _count(pg_url, device), lambda n: n == 2)
            latest = await eventually(lambda: cache.LatestCache(client).latest(device),
                                      lambda v: v is not None and "values" in v)
        assert latest["site"] == site
        assert msgspec_json(latest["values"]) == {"p": 5.0}
    finally:
        await client.delete(cache.key(device))
        await client.aclose()


async def test_cache_reader_without_redis_says_none():
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        assert await cache.LatestCache(client).latest("x") is None
    finally:
        await client.aclose()


@pytest.fixture
async def runtime_role(pg_admin_url, pg_url):
    name = f"sc_rt_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute(f"CREATE ROLE {name} LOGIN")
    finally:
        await conn.close()
    yield name
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f"DROP OWNED BY {name}")
    finally:
        await conn.close()
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute(f"DROP ROLE {name}")
    finally:
        await conn.close()


async def test_runtime_role_ingests_but_cannot_change_the_schema(broker, pg_url, runtime_role, publisher):
    await migrate.migrate(pg_url, runtime_role)
    runtime_url = services.with_user(pg_url, runtime_role)
    conn = await asyncpg.connect(runtime_url)
    try:
        for ddl in ("CREATE TABLE sneaky (x int)", "ALTER TABLE readings ADD COLUMN x int",
                    "DROP TABLE dead_letters", "CREATE TABLE readings_2099_01 PARTITION OF readings "
                    "FOR VALUES FROM ('2099-01-01') TO ('2099-02-01')",
                    "DELETE FROM schema_migrations"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(ddl)
    finally:
        await conn.close()

    site, device = unique("site"), unique("dev")
    settings = settings_for(broker.url, runtime_url)
    async with Collector(settings) as c:
        await c.wait_subscribed()
        publisher.send(telemetry(site, device, boot_id(), [0, 1, 2]))
        await eventually(lambda: _count(pg_url, device), lambda n: n == 3)
        async with c.pool.acquire() as rc:
            assert await rollups.catch_up(rc, quiet=timedelta(0)) >= 1  # rollups are plain DML
