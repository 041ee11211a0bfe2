"""Ingest end to end: a real paho publisher, a real broker, the collector, a real PostgreSQL."""

from __future__ import annotations

import aiohttp
import msgspec
import pytest
from paho.mqtt.client import MQTTv311

from cloud_collector import queries
from cloud_collector.runtime import CONSUMER
from cloud_collector.service import Collector
from common.schema import HealthState
from signalcraft import embedded
from tests.collector_helpers import (
    Publisher,
    boot_id,
    eventually,
    fetch,
    fetchval,
    settings_for,
    state_change,
    telemetry,
    unique,
)


@pytest.fixture
async def collector(broker, pg_url):
    c = Collector(settings_for(broker.url, pg_url), migrate=True)
    await c.start()
    await c.wait_subscribed()
    yield c
    await c.stop()


@pytest.fixture
def publisher(broker):
    p = Publisher(broker.url)
    yield p
    p.close()


async def test_readings_stored_once_when_published_twice(collector, publisher, pg_url):
    site, device, boot = unique("site"), unique("dev"), boot_id()
    message = telemetry(site, device, boot, [0, 1, 2])
    publisher.send(message)
    publisher.send(message)  # a redelivery: same boot, same sequence numbers
    publisher.send(telemetry(site, device, boot, [5]))  # 3 and 4 never arrive

    dups = "SELECT duplicates_discarded FROM devices WHERE device = $1"
    await eventually(lambda: fetchval(pg_url, dups, device), lambda v: v == 3)
    rows = await fetch(pg_url, "SELECT seq FROM readings WHERE device = $1 ORDER BY seq", device)
    assert [r["seq"] for r in rows] == [0, 1, 2, 5]


async def test_gaps_are_counted_per_boot(collector, publisher, pg_url):
    site, device = unique("site"), unique("dev")
    first, second = boot_id(), boot_id()
    publisher.send(telemetry(site, device, first, [0, 1, 4]))  # 2 and 3 lost
    publisher.send(telemetry(site, device, second, [10, 12]))  # 11 lost; a new boot restarts the count

    async def device_stats():
        async with collector.pool.acquire() as conn:
            return [d for d in (await queries.stats(conn)).devices if d.device == device]

    stats = await eventually(device_stats, lambda s: bool(s) and s[0].readings == 5)
    assert stats[0].gaps == 3


GOOD_BOOT = "0" * 32


def _garbage_cases(site: str, device: str) -> list[tuple[str, str, bytes, str]]:
    """(label, topic, payload, expected fragment of the dead-letter reason)."""
    base = f"signalcraft/v1/{site}/{device}"
    good = (b'{"v":1,"site":"%s","device":"%s","boot":"%s","readings":[{"seq":1,"ts":"2025-01-15T12:00:00Z",'
            b'"values":{"p":VALUE}}]}')

    def tele(value: bytes, v: bytes = b"1", dev: str = device) -> bytes:
        return good.replace(b"VALUE", value).replace(b'"v":1', b'"v":' + v) % (
            site.encode(), dev.encode(), GOOD_BOOT.encode())

    return [
        ("garbage", f"{base}/telemetry", b"\x00\xffnot json", "not valid JSON"),
        ("wrong type", f"{base}/telemetry", tele(b'"high"'), "Expected `float`, got `str`"),
        ("huge", f"{base}/telemetry", b" " * (1 << 20) + tele(b"1"), "exceeds"),
        ("infinite", f"{base}/telemetry", tele(b"1e999"), "Number out of range - at `$.readings[0].values"),
        ("schema version", f"{base}/telemetry", tele(b"1", v=b"2"), "unsupported schema version 2"),
        ("device mismatch", f"{base}/telemetry", tele(b"1", dev="someone-else"), "topic of"),
    ]


async def test_malformed_payloads_become_dead_letters_and_ingest_continues(collector, publisher, pg_url):
    site, device = unique("site"), unique("dev")
    cases = _garbage_cases(site, device)
    for _, topic_name, payload, _ in cases:
        publisher.raw(topic_name, payload)
    publisher.send(telemetry(site, device, boot_id(), [7]))

    await eventually(lambda: fetchval(pg_url, "SELECT count(*) FROM readings WHERE device = $1", device),
                     lambda n: n == 1)
    rows = await eventually(
        lambda: fetch(pg_url, "SELECT reason, payload_size, device FROM dead_letters ORDER BY id"),
        lambda rows: len(rows) == len(cases))
    for (label, _, payload, fragment), row in zip(cases, rows, strict=True):
        assert fragment in row["reason"], (label, row["reason"])
        assert row["payload_size"] == len(payload)
        assert row["device"] == device


async def test_amqtt_fallback_to_mqtt_311(tmp_path, pg_url):
    broker = embedded.start_broker(tmp_path / "amqtt", prefer="amqtt")
    publisher = None
    try:
        async with Collector(settings_for(broker.url, pg_url), migrate=True) as c:
            await c.wait_subscribed(15)
            assert c.app[CONSUMER].protocol == "3.1.1"
            publisher = Publisher(broker.url, protocol=MQTTv311)
            site, device, boot = unique("site"), unique("dev"), boot_id()
            publisher.send(telemetry(site, device, boot, [0, 1]))
            publisher.send(telemetry(site, device, boot, [1, 2]))
            count = "SELECT count(*) FROM readings WHERE device = $1"
            await eventually(lambda: fetchval(pg_url, count, device), lambda n: n == 3)
    finally:
        if publisher is not None:
            publisher.close()
        broker.stop()


async def test_a_message_postgres_refuses_is_isolated_into_a_dead_letter(collector, publisher, pg_url):
    """PostgreSQL text cannot hold NUL: that message becomes a dead letter, its batch-mates are stored."""
    site, device, boot = unique("site"), unique("dev"), boot_id()
    poisoned = msgspec.structs.replace(state_change(site, device, boot, 1, HealthState.WARNING),
                                       reason="bad\x00byte")
    publisher.send(poisoned)
    publisher.send(telemetry(site, device, boot, [1, 2]))
    publisher.send(state_change(site, device, boot, 2, HealthState.ALARM))

    reasons = "SELECT reason FROM dead_letters WHERE device = $1"
    letters = await eventually(lambda: fetch(pg_url, reasons, device))
    assert letters[0]["reason"].startswith("database refused the message")
    await eventually(lambda: fetchval(pg_url, "SELECT count(*) FROM readings WHERE device = $1", device),
                     lambda n: n == 2)
    states = await eventually(lambda: fetch(pg_url, "SELECT seq FROM states WHERE device = $1", device))
    assert [r["seq"] for r in states] == [2]


async def test_readiness_follows_the_broker(tmp_path, pg_url):
    """A broker outage makes /readyz say why; paho reconnects and ingest resumes on the same session."""
    broker = embedded.start_broker(tmp_path / "private", prefer="mosquitto")
    try:
        settings = settings_for(broker.url, pg_url)
        async with Collector(settings, migrate=True) as c, aiohttp.ClientSession() as http:
            await c.wait_subscribed()

            async def ready():
                async with http.get(f"{c.url}/readyz") as response:
                    return response.status, await response.json()

            assert (await ready())[0] == 200
            broker.pause()
            _, body = await eventually(ready, lambda r: r[0] == 503)
            assert any(reason.startswith("mqtt:") for reason in body["reasons"])
            broker.resume()
            await eventually(ready, lambda r: r[0] == 200, timeout=15)
            publisher = Publisher(broker.url)
            try:
                site, device = unique("site"), unique("dev")
                publisher.send(telemetry(site, device, boot_id(), [1]))
                count = "SELECT count(*) FROM readings WHERE device = $1"
                await eventually(lambda: fetchval(pg_url, count, device), lambda n: n == 1)
            finally:
                publisher.close()
    finally:
        broker.stop()
