"""Live events for the SSE stream: an in-process hub, optionally fed through Redis pub/sub.

Without Redis, :meth:`EventBus.emit` hands an event straight to the local :class:`EventHub`. With
``redis.url`` set it publishes to the ``signalcraft:events`` channel instead, and every collector
process (including this one) receives it from Redis into its hub: a browser connected to collector A sees
the alert that collector B raised. Event ids are assigned by each hub on arrival, increase by one, and
index a ring buffer of recent events so a reconnecting browser's ``Last-Event-ID`` can be replayed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL = "signalcraft:events"
RING_SIZE = 1000
SUBSCRIBER_BACKLOG = 1000  # a client this far behind is disconnected; it reconnects with Last-Event-ID


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    data: bytes  # JSON, encoded once for every subscriber


class _Envelope(msgspec.Struct):
    type: str
    data: msgspec.Raw


class EventHub:
    """Fan-out to the SSE connections of this process, with replay of the last :data:`RING_SIZE` events."""

    def __init__(self, ring_size: int = RING_SIZE) -> None:
        self._ring: collections.deque[Event] = collections.deque(maxlen=ring_size)
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self._next_id = 1
        self.closed = False

    @property
    def last_id(self) -> int:
        return self._next_id - 1

    def publish(self, type_: str, data: bytes) -> Event:
        event = Event(self._next_id, type_, data)
        self._next_id += 1
        self._ring.append(event)
        for queue in list(self._subscribers):
            if queue.qsize() >= SUBSCRIBER_BACKLOG:
                self._drop(queue)
            else:
                queue.put_nowait(event)
        return event

    async def subscribe(self, last_event_id: int | None = None) -> AsyncIterator[Event]:
        """Events after ``last_event_id`` (from the ring buffer), then live ones until :meth:`close`."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._subscribers.add(queue)  # before replaying, so nothing falls between replay and live
        try:
            seen = last_event_id or 0
            if last_event_id is not None:
                for event in list(self._ring):
                    if event.id > seen:
                        seen = event.id
                        yield event
            while not self.closed:
                event = await queue.get()
                if event is None:
                    return
                if event.id > seen:
                    seen = event.id
                    yield event
        finally:
            self._subscribers.discard(queue)

    def close(self) -> None:
        """End every subscription (shutdown): SSE handlers return instead of holding the server open."""
        self.closed = True
        for queue in list(self._subscribers):
            self._drop(queue)

    def _drop(self, queue: asyncio.Queue[Event | None]) -> None:
        self._subscribers.discard(queue)
        queue.put_nowait(None)


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
                await self._redis.publish(CHANNEL, msgspec.json.encode(_Envelope(type_, msgspec.Raw(data))))
                return
            except RedisError as exc:
                # Our own browsers still get it; other processes' browsers will after a reload.
                log.warning("could not publish %s to Redis (%s); delivering locally only", type_, exc)
        self.hub.publish(type_, data)

    async def _listen(self, ready: asyncio.Event) -> None:
        """Supervised: a Redis outage is logged and retried, never fatal to the collector."""
        assert self._redis is not None
        delay = 0.5
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    ready.set()
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            env = msgspec.json.decode(message["data"], type=_Envelope)
                        except msgspec.DecodeError as exc:
                            log.warning("ignoring a malformed event on %s: %s", CHANNEL, exc)
                            continue
                        self.hub.publish(env.type, bytes(env.data))
            except (RedisError, OSError) as exc:
                log.warning("Redis event subscription lost (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
