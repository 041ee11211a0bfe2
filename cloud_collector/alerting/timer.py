"""The clock-driven side of alerting, opened in the app's ``cleanup_ctx`` after the database and events:

    every ``tick`` (1 s)          alerts.tick(): offline after silence, pending fires, recovering clears
    every ``notify.interval``     notify.dispatcher.dispatch_due(): grouped, rate-limited notifications

Both loops are supervised: a database outage is logged and the next round tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web

from cloud_collector import alerts
from cloud_collector.errors import StorageError, storage_errors
from cloud_collector.notify.dispatcher import dispatch_due
from cloud_collector.notify.outbox import NotifySettings
from cloud_collector.runtime import BUS, METRICS, POOL, SETTINGS

log = logging.getLogger(__name__)

ALERT_TICK = web.AppKey("alert_tick", timedelta)
NOTIFY = web.AppKey("notify_settings", NotifySettings)
DEFAULT_TICK = timedelta(seconds=1)


async def alerting_ctx(app: web.Application) -> AsyncIterator[None]:
    every = app.get(ALERT_TICK, DEFAULT_TICK).total_seconds()
    a = app[SETTINGS].alerts
    notify = app.get(NOTIFY) or NotifySettings(group_wait=a.group_wait, retry_base=a.retry_base,
                                               max_attempts=a.max_attempts, smtp_url=a.smtp_url,
                                               mail_from=a.mail_from)
    http = aiohttp.ClientSession()
    tasks = [
        asyncio.create_task(_every(every, lambda: _tick(app)), name="alert-timer"),
        asyncio.create_task(
            _every(
                notify.interval.total_seconds(),
                lambda: dispatch_due(app[POOL], http, notify, datetime.now(UTC)),
            ),
            name="notifications",
        ),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        # A task cancelled in the middle of a query may end with the driver's complaint instead of the
        # cancellation; at shutdown that is worth a line in the log, not a failed shutdown.
        for task, result in zip(tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
            if isinstance(result, Exception):
                log.warning("%s ended with %s: %s", task.get_name(), type(result).__name__, result)
        await http.close()


async def _tick(app: web.Application) -> None:
    with storage_errors("running the alert timer"):
        async with app[POOL].acquire() as conn:
            changes = await alerts.tick(conn, app[SETTINGS].alerts.offline_after, datetime.now(UTC))
    for change in changes:
        app[METRICS].alerts[change.event] += 1
        await app[BUS].emit(change.event, change.alert)


async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except StorageError as exc:
            log.warning("periodic alerting job failed: %s", exc)
