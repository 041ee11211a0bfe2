"""Ingest end to end: a real paho publisher, a real broker, the collector, a real PostgreSQL."""

from __future__ import annotations

import pytest

from cloud_collector.service import Collector
from tests.collector_helpers import (
    Publisher,
    boot_id,
    eventually,
    fetch,
    fetchval,
    settings_for,
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
