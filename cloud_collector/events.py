"""Live events for the SSE stream: an in-process hub, fed through a Redis Stream when Redis is configured.

Without Redis, :meth:`EventBus.emit` hands an event straight to the local :class:`EventHub`, which numbers
it and keeps the last :data:`RING_SIZE` for replay. With ``redis.url`` set, ``emit`` appends to the Redis
Stream ``signalcraft:events`` (capped at about :data:`STREAM_LEN` entries) and every collector process,
this one included, reads the stream into its hub. The stream's entry id (``<ms>-<n>``) is the SSE event
id, the same in every process, so a browser that reconnects to *another* API process with
``Last-Event-ID`` is replayed exactly what it missed (``XRANGE`` after that id), then continues live.
Ids look the same without Redis (``<ms>-<n>`` from the local clock) and always increase.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

STREAM = "signalcraft:events"
STREAM_LEN = 10_000  # entries kept in Redis for replay (approximate trimming)
RING_SIZE = 1000  # events kept in memory for replay without Redis
XREAD_BLOCK_MS = 1000
SUBSCRIBER_BACKLOG = 1000  # a client this far behind is disconnected; it reconnects with Last-Event-ID
_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")


def id_key(event_id: str) -> tuple[int, int] | None:
    """``"1700000000000-3"`` -> (1700000000000, 3); None when it is not an event id."""
    m = _ID.match(event_id.strip())
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    data: bytes  # JSON, encoded once for every subscriber

    @property
    def key(self) -> tuple[int, int]:
        return id_key(self.id) or (0, 0)


class EventHub:
    """Fan-out to the SSE connections of this process, with a ring buffer of recent events."""

    def __init__(self, ring_size: int = RING_SIZE) -> None:
        self._ring: deque[Event] = deque(maxlen=ring_size)
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self._last = (0, 0)
        self.closed = False

    def publish(self, type_: str, data: bytes, event_id: str | None = None) -> Event:
        event_id = event_id or self._next_id()
        event = Event(event_id, type_, data)
        self._last = max(self._last, event.key)
        self._ring.append(event)
        for queue in list(self._subscribers):
            if queue.qsize() >= SUBSCRIBER_BACKLOG:
                self._drop(queue)
            else:
                queue.put_nowait(event)
        return event

    def recent(self, after: tuple[int, int]) -> list[Event]:
        return [e for e in self._ring if e.key > after]

    def attach(self) -> asyncio.Queue[Event | None]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        if self.closed:
            queue.put_nowait(None)
        else:
            self._subscribers.add(queue)
        return queue

    def detach(self, queue: asyncio.Queue[Event | None]) -> None:
        self._subscribers.discard(queue)

    def close(self) -> None:
        """End every subscription (shutdown): SSE handlers return instead of holding the server open."""
        self.closed = True
        for queue in list(self._subscribers):
            self._drop(queue)

    def _drop(self, queue: asyncio.Queue[Event | None]) -> None:
        self._subscribers.discard(queue)
        queue.put_nowait(None)

    def _next_id(self) -> str:
        ms = int(time.time() * 1000)
        key = (ms, 0) if ms > self._last[0] else (self._last[0], self._last[1] + 1)
        return f"{key[0]}-{key[1]}"


class EventBus:
    """What the rest of the collector calls: ``await bus.emit("alert.created", view)``."""

    def __init__(self, hub: EventHub, redis: aioredis.Redis | None = None) -> None:
        self.hub = hub
        self._redis = redis
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._redis is not None:
            ready = asyncio.Event()
            self._listener = asyncio.create_task(self._listen(ready), name="redis-events")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), 5)

    async def stop(self) -> None:
        self.hub.close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def emit(self, type_: str, payload: Any) -> None:
        data = msgspec.json.encode(payload)
        if self._redis is not None:
            try:
                await self._redis.xadd(STREAM, {"type": type_, "data": data}, maxlen=STREAM_LEN,
                                       approximate=True)
                return
            except RedisError as exc:
                # Our own browsers still get it; other processes' browsers will after a reload.
                log.warning("could not append %s to Redis (%s); delivering locally only", type_, exc)
        self.hub.publish(type_, data)

    async def subscribe(self, last_event_id: str | None = None) -> AsyncIterator[Event]:
        """What came after ``last_event_id`` (replayed), then live events until shutdown."""
        queue = self.hub.attach()  # before replaying, so nothing falls between replay and live
        try:
            seen = id_key(last_event_id) if last_event_id else None
            if seen is not None:
                for event in await self._replay(seen):
                    if event.key > seen:
                        seen = event.key
                        yield event
            while True:
                event = await queue.get()
                if event is None:
                    return
                if seen is None or event.key > seen:
                    seen = event.key
                    yield event
        finally:
            self.hub.detach(queue)

    async def _replay(self, after: tuple[int, int]) -> list[Event]:
        if self._redis is None:
            return self.hub.recent(after)
        try:
            entries = await self._redis.xrange(STREAM, min=f"({after[0]}-{after[1]}", count=STREAM_LEN)
        except RedisError as exc:
            log.warning("could not replay events from Redis (%s); using this process's memory", exc)
            return self.hub.recent(after)
        return [_event(entry_id, fields) for entry_id, fields in entries]

    async def _listen(self, ready: asyncio.Event) -> None:
        """Supervised: a Redis outage is logged and retried (from where it stopped), never fatal."""
        assert self._redis is not None
        delay, last = 0.5, None
        while True:
            try:
                if last is None:
                    newest = await self._redis.xrevrange(STREAM, count=1)
                    last = _text(newest[0][0]) if newest else "0-0"
                ready.set()
                delay = 0.5
                while True:
                    # Block well under the client's socket timeout (redis-py: 5 s by default), or an
                    # idle stream would look like a lost connection.
                    batches = await self._redis.xread({STREAM: last}, count=500, block=XREAD_BLOCK_MS)
                    for _, entries in batches:
                        for entry_id, fields in entries:
                            event = _event(entry_id, fields)
                            self.hub.publish(event.type, event.data, event.id)
                            last = event.id
            except (RedisError, OSError) as exc:
                log.warning("Redis event stream lost (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _event(entry_id: bytes | str, fields: dict[Any, Any]) -> Event:
    type_ = fields.get(b"type", fields.get("type", b"unknown"))
    data = fields.get(b"data", fields.get("data", b"{}"))
    return Event(_text(entry_id), _text(type_), data if isinstance(data, bytes) else data.encode())
