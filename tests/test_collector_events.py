"""The event hub behind SSE, and its fan-out across collector processes through a real Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from cloud_collector.events import EventBus, EventHub


async def _take(iterator, n: int) -> list:
    return [await asyncio.wait_for(iterator.__anext__(), 5) for _ in range(n)]


async def test_ids_increase_and_last_event_id_replays_only_what_was_missed():
    hub = EventHub(ring_size=3)
    for i in range(5):
        hub.publish("device.state", b'{"i":%d}' % i)
    replay = hub.subscribe(last_event_id=3).__aiter__()
    assert [e.id for e in await _take(replay, 2)] == [4, 5]
    hub.publish("alert.created", b"{}")
    (live,) = await _take(replay, 1)
    assert (live.id, live.type) == (6, "alert.created")
    hub.close()
    assert [e async for e in replay] == []


async def test_a_slow_subscriber_is_dropped_not_buffered_forever(monkeypatch):
    monkeypatch.setattr("cloud_collector.events.SUBSCRIBER_BACKLOG", 2)
    hub = EventHub()
    stream = hub.subscribe().__aiter__()
    first = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)
    for _ in range(5):
        hub.publish("device.state", b"{}")
    assert (await first).id == 1
    rest = [e.id async for e in stream]
    assert rest == [2]  # then the hub let go of it; the browser reconnects with Last-Event-ID


async def test_redis_delivers_events_to_every_process(redis_url):
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    buses = [EventBus(EventHub(), c) for c in clients]
    try:
        for bus in buses:
            await bus.start()
        streams = [bus.hub.subscribe().__aiter__() for bus in buses]
        pending = [asyncio.ensure_future(s.__anext__()) for s in streams]
        await asyncio.sleep(0.05)
        await buses[0].emit("alert.created", {"id": 7, "device": "d1"})
        events = await asyncio.wait_for(asyncio.gather(*pending), 5)
        assert [(e.type, e.data) for e in events] == [("alert.created", b'{"id":7,"device":"d1"}')] * 2
    finally:
        for bus in buses:
            await bus.stop()
        for c in clients:
            await c.aclose()
