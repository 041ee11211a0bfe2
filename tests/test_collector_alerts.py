"""Alert lifecycle through real MQTT messages, and the one-active-alert guarantee under concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from cloud_collector import alerts
from cloud_collector.alerting.rules import Target
from cloud_collector.runtime import METRICS
from cloud_collector.service import Collector
from common.schema import HealthState, encode
from common.topics import topic
from tests.collector_helpers import (
    Publisher,
    boot_id,
    eventually,
    fetch,
    settings_for,
    state_change,
    status,
    telemetry,
    unique,
)

H, W, A, F = HealthState.HEALTHY, HealthState.WARNING, HealthState.ALARM, HealthState.SENSOR_FAULT
ALERTS = "SELECT rule, severity, status, occurrences, details FROM alerts WHERE device = $1 ORDER BY id"


@pytest.fixture
async def collector(broker, pg_url):
    async with Collector(settings_for(broker.url, pg_url), migrate=True) as c:
        await c.wait_subscribed()
        yield c


@pytest.fixture
def publisher(broker):
    p = Publisher(broker.url)
    yield p
    p.close()


async def test_warning_opens_alarm_escalates_healthy_clears(collector, publisher, pg_url):
    site, device, boot = unique("site"), unique("dev"), boot_id()
    publisher.send(state_change(site, device, boot, 1, W, previous=H))
    rows = await eventually(lambda: fetch(pg_url, ALERTS, device), lambda r: len(r) == 1)
    assert (rows[0]["rule"], rows[0]["severity"], rows[0]["status"]) == ("health", "warning", "active")
    assert '"band_500_2000"' in rows[0]["details"] and '"went WARNING"' in rows[0]["details"]

    publisher.send(state_change(site, device, boot, 2, A, previous=W))
    rows = await eventually(lambda: fetch(pg_url, ALERTS, device), lambda r: r[0]["severity"] == "critical")
    assert len(rows) == 1 and rows[0]["occurrences"] == 2

    publisher.send(state_change(site, device, boot, 3, H, previous=A))
    rows = await eventually(lambda: fetch(pg_url, ALERTS, device), lambda r: r[0]["status"] == "cleared")
    assert len(rows) == 1


async def test_sensor_fault_is_its_own_lower_severity_alert(collector, publisher, pg_url):
    site, device, boot = unique("site"), unique("dev"), boot_id()
    publisher.send(state_change(site, device, boot, 1, F, previous=H))
    rows = await eventually(lambda: fetch(pg_url, ALERTS, device), lambda r: len(r) == 1)
    assert (rows[0]["rule"], rows[0]["severity"]) == ("sensor_fault", "info")
    publisher.send(state_change(site, device, boot, 2, H, previous=F))
    await eventually(lambda: fetch(pg_url, ALERTS, device), lambda r: r[0]["status"] == "cleared")


async def test_a_late_older_state_does_not_reopen_a_cleared_alert(collector, publisher, pg_url):
    site, device, boot = unique("site"), unique("dev"), boot_id()
    publisher.send(state_change(site, device, boot, 5, H, previous=W))
    await eventually(lambda: fetch(pg_url, "SELECT seq FROM states WHERE device = $1", device))
    publisher.send(state_change(site, device, boot, 4, W, previous=H))  # replayed after the newer one
    await eventually(lambda: fetch(pg_url, "SELECT seq FROM states WHERE device = $1", device),
                     lambda r: len(r) == 2)
    assert await fetch(pg_url, ALERTS, device) == []


async def test_fifty_concurrent_triggers_make_one_active_alert(broker, pg_url):
    """Two collectors on one shared subscription, 50 WARNING/ALARM messages, then 50 direct racers."""
    settings = settings_for(broker.url, pg_url)
    other = settings_for(broker.url, pg_url, mqtt={"share_group": settings.mqtt.share_group})
    site, device, boot = unique("site"), unique("dev"), boot_id()
    async with Collector(settings, migrate=True) as a, Collector(other) as b:
        await a.wait_subscribed()
        await b.wait_subscribed()
        publisher = Publisher(broker.url)
        try:
            for seq in range(50):
                msg = state_change(site, device, boot, seq, A if seq % 2 else W, at=datetime.now(UTC))
                publisher.client.publish(topic(site, device, "state"), encode(msg), qos=1)
            await eventually(lambda: fetch(pg_url, "SELECT 1 FROM states WHERE device = $1", device),
                             lambda r: len(r) == 50)
        finally:
            publisher.close()
        # The shared subscription split the load: both collectors really raced on the alert.
        assert a.app[METRICS].received["state"] > 0 and b.app[METRICS].received["state"] > 0
    rows = await fetch(pg_url, ALERTS, device)
    assert [(r["status"], r["severity"]) for r in rows] == [("active", "critical")]

    # And 50 transactions racing on the same fingerprint at the database itself.
    pool = await asyncpg.create_pool(pg_url, min_size=10, max_size=20)
    try:
        async def race(i: int):
            async with pool.acquire() as conn, conn.transaction():
                return await alerts.raise_alert(conn, Target("racer", site, None, ""), "health", "warning",
                                                datetime.now(UTC), {"i": i})

        changes = await asyncio.gather(*(race(i) for i in range(50)))
    finally:
        await pool.close()
    assert sorted(c.event for c in changes).count("alert.created") == 1
    rows = await fetch(pg_url, "SELECT status, occurrences FROM alerts WHERE device = 'racer'")
    assert [(r["status"], r["occurrences"]) for r in rows] == [("active", 50)]


async def test_last_will_opens_offline_and_data_clears_it(collector, publisher, pg_url):
    site, device, boot = unique("site"), unique("dev"), boot_id()
    publisher.send(status(site, device, boot, online=False, reason="lost"))
    rows = await eventually(lambda: fetch(pg_url, ALERTS, device), lambda r: len(r) == 1)
    assert (rows[0]["rule"], rows[0]["status"], rows[0]["severity"]) == ("offline", "active", "warning")
    publisher.send(telemetry(site, device, boot, [1]))
    await eventually(lambda: fetch(pg_url, ALERTS, device), lambda r: r[0]["status"] == "cleared")


async def test_silence_opens_offline_on_the_timer(broker, publisher, pg_url):
    site, device, boot = unique("site"), unique("dev"), boot_id()
    async with Collector(settings_for(broker.url, pg_url, alerts={"offline_after": 0.5}), migrate=True) as c:
        await c.wait_subscribed()
        publisher.send(telemetry(site, device, boot, [1]))
        rows = await eventually(lambda: fetch(pg_url, ALERTS, device), lambda r: len(r) == 1, timeout=5)
        assert (rows[0]["rule"], rows[0]["status"]) == ("offline", "active")
        assert '"no data"' in rows[0]["details"]
        publisher.send(telemetry(site, device, boot, [2]))
        await eventually(lambda: fetch(pg_url, ALERTS, device), lambda r: r[0]["status"] == "cleared")


async def test_collector_receives_what_was_published_while_it_was_down(broker, pg_url):
    """The persistent session (clean_start=False, stable client id) keeps QoS1 messages for us."""
    settings = settings_for(broker.url, pg_url)
    site, device, boot = unique("site"), unique("dev"), boot_id()
    async with Collector(settings, migrate=True) as c:
        await c.wait_subscribed()
    publisher = Publisher(broker.url)
    try:
        publisher.send(telemetry(site, device, boot, [1, 2, 3]))
    finally:
        publisher.close()
    async with Collector(settings) as c:
        await eventually(lambda: fetch(pg_url, "SELECT seq FROM readings WHERE device = $1", device),
                         lambda r: len(r) == 3)
