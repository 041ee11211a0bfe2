"""The collector's moving parts, opened and closed by aiohttp's ``cleanup_ctx`` in this order:

    database   (migrate when asked, refuse to run behind head, asyncpg pool, partitions when owner)
    events     (in-process hub, Redis relay when ``redis.url`` is set)
    ingest     (MQTT consumer + writer task, latest-state cache when ``redis.url`` is set)
    timers     (offline rule, rollups, loss gauge, partitions ahead when owner)

and closed in reverse: timers stop, the consumer stops handing over messages, the writer drains what it
holds (commit, then PUBACK), the MQTT session is closed cleanly, then events and the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from cloud_collector import alerts, migrate, partitions, rollups, stats
from cloud_collector.cache import LatestCache
from cloud_collector.config import CollectorSettings
from cloud_collector.errors import NotMigrated, StorageError, storage_errors
from cloud_collector.events import EventBus, EventHub
from cloud_collector.ingest import Writer
from cloud_collector.metrics import Metrics
from cloud_collector.mqtt_consumer import MqttConsumer

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", CollectorSettings)
MIGRATE = web.AppKey("migrate", bool)
POOL = web.AppKey("pool", asyncpg.Pool)
BUS = web.AppKey("bus", EventBus)
METRICS = web.AppKey("metrics", Metrics)
CONSUMER = web.AppKey("consumer", MqttConsumer)
OWNER = web.AppKey("owner", bool)  # the collector's role owns the schema (may create partitions)

DRAIN_TIMEOUT = 15.0  # on shutdown, how long the writer may take to commit what it holds
PARTITION_EVERY = timedelta(hours=1)
ROLLUP_EVERY = 5.0  # seconds: how stale the 1-minute rollups may be
LOSS_EVERY = 30.0  # seconds between refreshes of the fleet's missing-readings gauge


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if app[MIGRATE]:
        db = settings.database
        applied = await migrate.migrate(db.owner_url or db.url, db.runtime_role)
        log.info("database migrated (%d applied)", len(applied))
    with storage_errors("connecting to the database"):
        pool = await asyncpg.create_pool(
            settings.database.url, min_size=1, max_size=settings.database.pool_size
        )
    try:
        async with pool.acquire() as conn:
            await migrate.require_head(conn)
            app[OWNER] = await partitions.can_manage(conn)
            if app[OWNER]:
                await partitions.ensure(conn)
            elif await partitions.months_ahead(conn) < 1:
                log.warning("no partition for next month yet: run `signalcraft-collector maintain` as the "
                            "schema owner (until then new rows go to the default partitions)")
        app[POOL] = pool
        yield
    finally:
        await _close_pool(pool)


async def _close_pool(pool: asyncpg.Pool) -> None:
    """Close gracefully; a connection a database restart left mid-protocol is terminated instead."""
    try:
        await asyncio.wait_for(pool.close(), DRAIN_TIMEOUT)
    except (TimeoutError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError) as exc:
        log.warning("closing the database pool: %s; terminating its connections", exc)
        pool.terminate()


async def events_ctx(app: web.Application) -> AsyncIterator[None]:
    url = app[SETTINGS].redis.url
    client = aioredis.Redis.from_url(url) if url else None
    bus = EventBus(EventHub(), client)
    await bus.start()
    app[BUS] = bus
    try:
        yield
    finally:
        await bus.stop()
        if client is not None:
            await client.aclose()


async def ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    consumer = MqttConsumer(settings.mqtt, settings.ingest.queue_size)
    redis = aioredis.Redis.from_url(settings.redis.url) if settings.redis.url else None
    cache = LatestCache(redis) if redis is not None else None
    writer = Writer(consumer, app[POOL], app[BUS], app[METRICS], settings.ingest, cache)
    task = asyncio.create_task(_supervise("writer", writer.run), name="ingest-writer")
    app[CONSUMER] = consumer
    await consumer.start()
    try:
        yield
    finally:
        consumer.pause()
        try:
            await asyncio.wait_for(asyncio.shield(task), DRAIN_TIMEOUT)
        except TimeoutError:
            # Unacknowledged messages are redelivered to our session when we come back.
            log.warning("writer did not drain within %.0f s; leaving the rest to redelivery", DRAIN_TIMEOUT)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await consumer.stop()
        if redis is not None:
            await redis.aclose()


async def timers_ctx(app: web.Application) -> AsyncIterator[None]:
    offline_after = app[SETTINGS].alerts.offline_after
    # Check often enough that an offline alert opens within ~1.25 x offline_after.
    every = min(max(offline_after.total_seconds() / 4, 0.1), 30.0)
    tasks = [
        asyncio.create_task(_every(every, lambda: _check_offline(app, offline_after)), name="offline-rule"),
        asyncio.create_task(_every(ROLLUP_EVERY, lambda: _rollups(app)), name="rollups"),
        asyncio.create_task(_every(LOSS_EVERY, lambda: _loss(app)), name="loss-gauge"),
    ]
    if app[OWNER]:
        tasks.append(asyncio.create_task(
            _every(PARTITION_EVERY.total_seconds(), lambda: _ensure_partitions(app)), name="partitions"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _check_offline(app: web.Application, offline_after: timedelta) -> None:
    with storage_errors("checking for silent devices"):
        async with app[POOL].acquire() as conn:
            changes = await alerts.check_offline(conn, offline_after, datetime.now(UTC))
    for change in changes:
        app[METRICS].alerts[change.event] += 1
        await app[BUS].emit(change.event, change.alert)


async def _rollups(app: web.Application) -> None:
    async with app[POOL].acquire() as conn:
        await rollups.catch_up(conn)


async def _loss(app: web.Application) -> None:
    async with app[POOL].acquire() as conn:
        app[METRICS].readings_missing = await stats.missing_total(conn)


async def _ensure_partitions(app: web.Application) -> None:
    with storage_errors("creating partitions"):
        async with app[POOL].acquire() as conn:
            await partitions.ensure(conn)


async def _every(seconds: float, job) -> None:
    """Run ``job`` periodically; a database outage is logged and the next tick tries again."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except StorageError as exc:
            log.warning("periodic job failed: %s", exc)


async def _supervise(name: str, run) -> None:
    """Top-level loop of a long-lived task: log an unexpected failure and start the task again."""
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:  # supervised top level: anything else would silently stop ingest
            log.exception("%s crashed; restarting in 1 s", name)
            await asyncio.sleep(1)


async def readiness(app: web.Application) -> list[str]:
    """Why the collector is not ready to ingest (empty when it is)."""
    reasons = []
    try:
        async with asyncio.timeout(2):
            with storage_errors("checking the schema"):
                async with app[POOL].acquire() as conn:
                    await migrate.require_head(conn)
    except TimeoutError:
        reasons.append("database: no answer within 2 s")
    except (StorageError, NotMigrated) as exc:
        reasons.append(f"database: {exc}")
    consumer = app.get(CONSUMER)
    if consumer is None or not consumer.connected:
        reasons.append(f"mqtt: {consumer.last_error if consumer else 'not started'}")
    return reasons
