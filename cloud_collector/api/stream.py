"""``GET /api/v1/stream``: server-sent events of alert and device-state changes.

Each event is ``id: <ms>-<n>`` (increasing; the same id in every API process when Redis is configured),
``event: alert.created`` (or ``alert.updated``, ``alert.cleared``, ``device.state``) and one ``data:``
line of JSON. A comment line is sent every :data:`HEARTBEAT` seconds so proxies keep the connection open
and a dead client is noticed. A client reconnecting with ``Last-Event-ID`` first gets what it missed.
A tenant's users only see events of their tenant's sites.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec
from aiohttp import web

from cloud_collector.api.http import scope
from cloud_collector.errors import storage_errors
from cloud_collector.events import Event, id_key
from cloud_collector.runtime import BUS, POOL

HEARTBEAT = 15.0
RETRY_MS = 3000
SITES_REFRESH = 5.0  # how stale a tenant's list of sites may be when an unknown site shows up
STREAM_HEARTBEAT = web.AppKey("stream_heartbeat", float)


class _Site(msgspec.Struct):
    site: str = ""


def format_event(event: Event) -> bytes:
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event.id.encode(), event.type.encode(), event.data)


class _TenantFilter:
    """Which events a tenant may see: those of its sites (re-read when an unknown site shows up)."""

    def __init__(self, request: web.Request, tenant: int | None) -> None:
        self._request = request
        self._tenant = tenant
        self._sites: set[str] = set()
        self._loaded = 0.0

    async def allows(self, event: Event) -> bool:
        if self._tenant is None:
            return True
        site = msgspec.json.decode(event.data, type=_Site).site
        if site not in self._sites and time.monotonic() - self._loaded > SITES_REFRESH:
            with storage_errors("reading a tenant's sites"):
                async with self._request.app[POOL].acquire() as conn:
                    rows = await conn.fetch("SELECT site FROM sites WHERE tenant_id = $1", self._tenant)
            self._sites = {r["site"] for r in rows}
            self._loaded = time.monotonic()
        return site in self._sites


async def stream(request: web.Request) -> web.StreamResponse:
    last_id = _last_event_id(request)
    heartbeat = request.app.get(STREAM_HEARTBEAT, HEARTBEAT)
    allowed = _TenantFilter(request, scope(request))
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
        }
    )
    await response.prepare(request)
    await response.write(b"retry: %d\n: connected\n\n" % RETRY_MS)
    events = request.app[BUS].subscribe(last_id).__aiter__()
    pending: asyncio.Task[Event] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(events.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=heartbeat)
            if not done:
                await response.write(b": heartbeat\n\n")
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                break  # the collector is shutting down
            pending = None
            if await allowed.allows(event):
                await response.write(format_event(event))
    except ConnectionResetError:
        pass  # the browser went away
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        await events.aclose()
    return response


def _last_event_id(request: web.Request) -> str | None:
    text = request.headers.get("Last-Event-ID") or request.query.get("lastEventId")
    if not text or id_key(text) is None:
        return None
    return text.strip()
