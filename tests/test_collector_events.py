"""The event bus behind SSE: ids, replay, slow subscribers, and Redis Streams across collector processes."""

from __future__ import annotations

import asyncio

import aiohttp
import redis.asyncio as aioredis

from cloud_collector.events import STREAM, EventBus, EventHub, id_key
from cloud_collector.service import Collector
from common.schema import HealthState
from tests.auth_helpers import bearer, make_key
from tests.collector_helpers import Publisher, boot_id, settings_for, state_change, unique


async def _take(iterator, n: int) -> list:
    return [await asyncio.wait_for(iterator.__anext__(), 5) for _ in range(n)]


async def test_ids_increase_and_last_event_id_replays_only_what_was_missed():
    bus = EventBus(EventHub(ring_size=3))
    ids = [bus.hub.publish("device.state", b'{"i":%d}' % i).id for i in range(5)]
    assert [id_key(i) for i in ids] == sorted(id_key(i) for i in ids) and len(set(ids)) == 5
    replay = bus.subscribe(last_event_id=ids[2]).__aiter__()
    assert [e.id for e in await _take(replay, 2)] == ids[3:]
    live = bus.hub.publish("alert.created", b"{}")
    (got,) = await _take(replay, 1)
    assert (got.id, got.type) == (live.id, "alert.created")
    bus.hub.close()
    assert [e async for e in replay] == []


async def test_a_slow_subscriber_is_dropped_not_buffered_forever(monkeypatch):
    monkeypatch.setattr("cloud_collector.events.SUBSCRIBER_BACKLOG", 2)
    bus = EventBus(EventHub())
    stream = bus.subscribe().__aiter__()
    first = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)
    ids = [bus.hub.publish("device.state", b"{}").id for _ in range(5)]
    assert (await first).id == ids[0]
    rest = [e.id async for e in stream]
    assert rest == [ids[1]]  # then the hub let go of it; the browser reconnects with Last-Event-ID


async def test_redis_stream_delivers_to_every_process_and_replays_after_an_id(redis_url):
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    buses = [EventBus(EventHub(), c) for c in clients]
    try:
        for bus in buses:
            await bus.start()
        streams = [bus.subscribe().__aiter__() for bus in buses]
        pending = [asyncio.ensure_future(s.__anext__()) for s in streams]
        await asyncio.sleep(0.05)
        tag = unique("t")
        await buses[0].emit("alert.created", {"id": 7, "device": tag})
        events = await asyncio.wait_for(asyncio.gather(*pending), 5)
        assert {(e.type, e.data) for e in events} == {
            ("alert.created", b'{"id":7,"device":"%s"}' % tag.encode())
        }
        assert events[0].id == events[1].id  # one id, whichever process a browser is connected to

        await buses[1].emit("alert.updated", {"n": 1})
        await buses[0].emit("alert.cleared", {"n": 2})
        # A fresh subscriber on the *other* process, resuming after the first event, gets exactly the rest.
        resumed = buses[1].subscribe(events[0].id).__aiter__()
        assert [e.type for e in await _take(resumed, 2)] == ["alert.updated", "alert.cleared"]
    finally:
        for bus in buses:
            await bus.stop()
        for c in clients:
            await c.aclose()


async def test_sse_reconnect_to_another_collector_loses_no_event(broker, pg_url, redis_url):
    """Browser on collector A, disconnects; alerts happen; it reconnects to collector B with Last-Event-ID."""
    redis = aioredis.Redis.from_url(redis_url)
    await redis.delete(STREAM)
    await redis.aclose()
    key = await make_key(pg_url, "viewer")
    a_settings = settings_for(broker.url, pg_url, redis={"url": redis_url})
    b_settings = settings_for(
        broker.url, pg_url, redis={"url": redis_url}, mqtt={"share_group": a_settings.mqtt.share_group}
    )
    site, boot = unique("site"), boot_id()
    devices = [unique("dev") for _ in range(6)]
    publisher = Publisher(broker.url)
    try:
        async with (
            Collector(a_settings, migrate=True) as a,
            Collector(b_settings) as b,
            aiohttp.ClientSession(headers=bearer(key)) as http,
        ):
            await a.wait_subscribed()
            await b.wait_subscribed()
            async with http.get(f"{a.url}/api/v1/stream") as first:
                publisher.send(state_change(site, devices[0], boot, 1, HealthState.WARNING))
                seen = await asyncio.wait_for(_events(first, lambda ev: devices[0] in _alerts(ev)), 10)
            last_id = seen[-1]["id"]
            for i, device in enumerate(devices[1:], start=2):  # while nobody is listening
                publisher.send(state_change(site, device, boot, i, HealthState.ALARM))
            await asyncio.sleep(1.0)
            async with http.get(f"{b.url}/api/v1/stream", headers={"Last-Event-ID": last_id}) as again:
                resumed = await asyncio.wait_for(
                    _events(again, lambda ev: set(devices[1:]) <= _alerts(ev)), 10
                )
    finally:
        publisher.close()
    # (Other tests' retained Last Wills may add offline alerts of their agents: only ours are counted.)
    assert devices[0] not in _alerts(resumed)
    assert all(id_key(e["id"]) > id_key(last_id) for e in resumed)
    assert len({e["id"] for e in resumed}) == len(resumed)  # nothing twice


def _alerts(events: list[dict[str, str]]) -> set[str]:
    import json

    return {json.loads(e["data"])["device"] for e in events if e["event"] == "alert.created"}


async def _events(response: aiohttp.ClientResponse, done) -> list[dict[str, str]]:
    events, current = [], {}
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if not line:
            if "event" in current:
                events.append(current)
                if done(events):
                    return events
            current = {}
        elif not line.startswith(":") and ":" in line:
            k, _, v = line.partition(":")
            current[k] = v.strip()
    return events
