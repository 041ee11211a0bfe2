"""``GET /api/v1/stream``: server-sent events of alert and device-state changes.

Each event is ``id: N`` (increasing by one per collector process), ``event: alert.created`` (or
``alert.updated``, ``alert.cleared``, ``device.state``) and one ``data:`` line of JSON. A comment line is
sent every :data:`HEARTBEAT` seconds so proxies keep the connection open and a dead client is noticed.
A browser reconnecting with ``Last-Event-ID`` first gets what it missed from the in-memory ring buffer.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from cloud_collector.events import Event
from cloud_collector.runtime import BUS

HEARTBEAT = 15.0
RETRY_MS = 3000
STREAM_HEARTBEAT = web.AppKey("stream_heartbeat", float)


def format_event(event: Event) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.type.encode(), event.data)


async def stream(request: web.Request) -> web.StreamResponse:
    last_id = _last_event_id(request)
    heartbeat = request.app.get(STREAM_HEARTBEAT, HEARTBEAT)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
    })
    await response.prepare(request)
    await response.write(b"retry: %d\n: connected\n\n" % RETRY_MS)
    events = request.app[BUS].hub.subscribe(last_id).__aiter__()
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


def _last_event_id(request: web.Request) -> int | None:
    text = request.headers.get("Last-Event-ID") or request.query.get("lastEventId")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return None
