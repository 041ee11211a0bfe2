"""Running the collector from Python: what ``serve`` and ``signalcraft demo`` use.

    collector = Collector(settings, migrate=True)
    await collector.start()          # migrated, subscribed, HTTP listening
    print(collector.url)             # http://127.0.0.1:8080 (the real port when api.port = 0)
    ...
    await collector.stop()           # drain: commit and acknowledge what is held, then close

or ``await run_collector(settings, migrate=True, ready=event, stop=other_event)``, which returns after
``stop`` is set (or when cancelled), shutting down gracefully either way.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from cloud_collector.api.app import make_app
from cloud_collector.config import CollectorSettings, validate
from cloud_collector.runtime import CONSUMER, POOL

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 5.0  # open HTTP requests (other than SSE, which ends at once) get this long


class Collector:
    """The collector process: ingest, alert rules, HTTP API and dashboard on ``api.host:api.port``."""

    def __init__(self, settings: CollectorSettings, *, migrate: bool = False) -> None:
        validate(settings)
        self.settings = settings
        self.app = make_app(settings, migrate=migrate)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        """Connect everything and start listening; raises (and cleans up) when something is missing."""
        runner = web.AppRunner(self.app, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.settings.api.host, self.settings.api.port)
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        log.info("collector listening on %s (MQTT v%s)", self.url, self.app[CONSUMER].protocol)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def wait_subscribed(self, timeout: float = 10.0) -> None:
        """Until the MQTT subscription is in place (tests and the demo publish only after this)."""
        await self.app[CONSUMER].wait_subscribed(timeout)

    @property
    def pool(self):
        """The collector's asyncpg pool (for callers that want to look at what was stored)."""
        return self.app[POOL]

    async def __aenter__(self) -> Collector:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()


async def run_collector(
    settings: CollectorSettings,
    *,
    migrate: bool,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until ``stop`` is set or the task is cancelled; ``ready`` is set once listening."""
    collector = Collector(settings, migrate=migrate)
    await collector.start()
    try:
        if ready is not None:
            ready.set()
        await (stop or asyncio.Event()).wait()
    finally:
        # Also on cancellation: the CancelledError was delivered once, so this await runs to the end.
        await collector.stop()
