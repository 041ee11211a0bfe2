"""Faults under load: SIGKILL, a PostgreSQL restart, a shared subscription losing a member, hostile payloads.

Each test publishes a known set of readings with QoS1 (every one PUBACKed by the broker) while the fault
happens, then checks the database holds exactly that set: nothing lost, nothing twice, no gap. The
collectors are real processes (``signalcraft-collector serve``) where a process dies; timing only decides
how much is in flight when the fault hits, never whether a test passes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_collector import migrate
from cloud_collector.runtime import METRICS
from cloud_collector.service import Collector
from common.mqtt_url import BrokerAddress
from common.schema import encode
from signalcraft import embedded
from tests.collector_helpers import boot_id, eventually, fetch, fetchval, settings_for, telemetry, unique

pytestmark = pytest.mark.e2e


class SteadyPublisher:
    """Publishes one reading per message, round-robin over devices, until stopped; remembers what it sent."""

    def __init__(self, broker_url: str, site: str, devices: int, rate: float) -> None:
        addr = BrokerAddress.parse(broker_url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("pub"), protocol=mqtt.MQTTv5)
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()
        self.site, self.rate = site, rate
        self.devices = [unique("dev") for _ in range(devices)]
        self.boot = boot_id()
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SteadyPublisher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        t0, infos = time.monotonic(), []
        while not self._stop.is_set():
            device = self.devices[self.sent % len(self.devices)]
            seq = self.sent // len(self.devices)
            msg = telemetry(self.site, device, self.boot, [seq])
            topic = f"signalcraft/v1/{self.site}/{device}/telemetry"
            infos.append(self.client.publish(topic, encode(msg), 1))
            self.sent += 1
            delay = t0 + self.sent / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        for info in infos:
            info.wait_for_publish(30)

    def stop(self) -> int:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self.client.disconnect()
            self.client.loop_stop()
        return self.sent


async def assert_exactly_once(pg_url: str, pub: SteadyPublisher, timeout: float = 60) -> None:
    count = "SELECT count(*) FROM readings r JOIN devices d USING (device) WHERE d.site = $1"
    await eventually(lambda: fetchval(pg_url, count, pub.site), lambda n: n >= pub.sent, timeout=timeout)
    rows = await fetch(pg_url, "SELECT r.device, r.seq FROM readings r JOIN devices d USING (device) "
                               "WHERE d.site = $1", pub.site)
    got = Counter((r["device"], r["seq"]) for r in rows)
    per_device = len(pub.devices)
    expected = {(pub.devices[i % per_device], i // per_device) for i in range(pub.sent)}
    assert set(got) == expected, (len(expected - set(got)), "missing;", len(set(got) - expected), "extra")
    assert max(got.values()) == 1
    gaps = "SELECT coalesce(sum(last_seq - first_seq + 1 - stored), 0) FROM device_boots WHERE boot = $1"
    assert await fetchval(pg_url, gaps, pub.boot) == 0


class CollectorProcess:
    """``signalcraft-collector serve`` as a child process with a stable client id."""

    def __init__(self, broker_url: str, pg_url: str, client_id: str, group: str, tmp: Path) -> None:
        self.port = embedded.free_port()
        self.env = {**os.environ, "SIGNALCRAFT_MQTT_URL": broker_url, "SIGNALCRAFT_DATABASE_URL": pg_url,
                    "SIGNALCRAFT_MQTT_CLIENT_ID": client_id, "SIGNALCRAFT_MQTT_SHARE_GROUP": group,
                    "SIGNALCRAFT_API_PORT": str(self.port), "SIGNALCRAFT_INGEST_FLUSH_INTERVAL": "50ms",
                    "SIGNALCRAFT_INGEST_DEVICE_RATE_LIMIT": "0", "SIGNALCRAFT_ALERTS_OFFLINE_AFTER": "1h"}
        self.log = tmp / f"{client_id}.log"
        self.proc: subprocess.Popen | None = None
        self.acked_before = 0  # messages acknowledged by earlier incarnations

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from cloud_collector.cli import app; app()", "serve"],
                env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not self._ready():
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "collector not ready within 30 s"
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def acked(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("signalcraft_collector_messages_acked_total "):
                    return int(float(line.split()[1]))
        return 0

    def kill(self) -> None:
        assert self.proc is not None
        self.acked_before += self.acked()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture
def migrated(pg_url):
    asyncio.run(migrate.migrate(pg_url))
    return pg_url


async def test_sigkill_ten_times_under_load_loses_and_duplicates_nothing(broker, migrated, tmp_path):
    collector = CollectorProcess(broker.url, migrated, unique("killed"), unique("g"), tmp_path)
    try:
        collector.start()
        with SteadyPublisher(broker.url, unique("site"), devices=20, rate=400) as pub:
            for _ in range(10):
                await asyncio.sleep(0.6)  # messages are in flight: queued, half-written, uncommitted
                collector.kill()
                collector.start()  # same client id: the broker redelivers the session's unacked messages
            pub.stop()
        await assert_exactly_once(migrated, pub)
        assert pub.sent > 2000
    finally:
        collector.stop()


async def test_three_collectors_share_the_fleet_and_one_is_killed(broker, migrated, tmp_path):
    group = unique("g")
    collectors = [CollectorProcess(broker.url, migrated, unique(f"c{i}"), group, tmp_path) for i in range(3)]
    try:
        for c in collectors:
            c.start()
        with SteadyPublisher(broker.url, unique("site"), devices=30, rate=600) as pub:
            await asyncio.sleep(2)
            collectors[0].kill()
            await asyncio.sleep(2)  # the survivors carry the load; the broker holds c0's share for it
            collectors[0].start()
            await asyncio.sleep(1)
            pub.stop()
        await assert_exactly_once(migrated, pub)
        per_process = [c.acked_before + c.acked() for c in collectors]
        print(f"messages acknowledged per collector: {per_process} (published {pub.sent})")
        assert all(n > 0 for n in per_process)
        assert sum(per_process) >= pub.sent
    finally:
        for c in collectors:
            c.stop()


@pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR is not set")  # pgserver's import on a bare server
async def test_postgres_restart_under_load_recovers_by_itself(broker, tmp_path):
    pg = embedded.start_postgres(tmp_path / "pgdata")
    try:
        await migrate.migrate(pg.url)
        async with Collector(settings_for(broker.url, pg.url)) as c:
            await c.wait_subscribed()
            with SteadyPublisher(broker.url, unique("site"), devices=10, rate=300) as pub:
                await asyncio.sleep(1)
                await asyncio.to_thread(pg.stop)  # fast shutdown: every connection is cut
                await asyncio.sleep(2)  # the writer retries with backoff; the broker keeps the rest
                pg = await asyncio.to_thread(embedded.start_postgres, tmp_path / "pgdata")
                await asyncio.sleep(1)
                pub.stop()
            await assert_exactly_once(pg.url, pub)
            assert c.app[METRICS].batch_retries > 0  # it did see the outage
    finally:
        pg.stop()


async def test_a_writer_crash_mid_batch_loses_nothing(broker, migrated, monkeypatch):
    """An unexpected failure while storing (a bug, a driver state error) restarts the writer; the batch it
    held, not yet acknowledged, must be stored by the restarted writer rather than dropped."""
    from cloud_collector import ingest

    real_save, calls = ingest.store.save, {"n": 0}

    async def save_that_crashes_once(conn, received):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected crash while storing a batch")
        return await real_save(conn, received)

    monkeypatch.setattr(ingest.store, "save", save_that_crashes_once)
    async with Collector(settings_for(broker.url, migrated)) as c:
        await c.wait_subscribed()
        with SteadyPublisher(broker.url, unique("site"), devices=10, rate=200) as pub:
            await asyncio.sleep(3)
            pub.stop()
        await assert_exactly_once(migrated, pub, timeout=30)
        assert calls["n"] > 3


def hostile_payloads(site: str, device: str, n: int) -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected fragment of the reason), cycling through every kind of bad input."""
    good = telemetry(site, device, "0" * 32, [1])
    base = f"signalcraft/v1/{site}/{device}"
    body = encode(good)
    kinds = [
        (f"{base}/telemetry", b"\x00\xff\xfe garbage", "not valid JSON"),
        (f"{base}/telemetry", b"", "not valid JSON"),
        (f"{base}/telemetry", body.replace(b'"current":4.0', b'"current":"4"'), "Expected `float`"),
        (f"{base}/telemetry", body.replace(b'"current":4.0', b'"current":NaN'), "not valid JSON"),
        (f"{base}/telemetry", body.replace(b'"current":4.0', b'"current":1e999'), "Number out of range"),
        (f"{base}/telemetry", body.replace(b'"current":4.0', b'"current":-1e999'), "Number out of range"),
        (f"{base}/telemetry", body.replace(b'"v":1', b'"v":7'), "unsupported schema version 7"),
        (f"{base}/telemetry", body.replace(device.encode(), b"impostor"), "but was published on the topic"),
        (f"{base}/state", body, "Invalid value 'telemetry' - at `$.kind`"),
        (f"signalcraft/v1/-bad/{device}/telemetry", body, "bad topic"),
        (f"{base}/telemetry", b'{"v":1}', "Object missing required field"),
        (f"{base}/telemetry", b"[" * 100_000, "not valid JSON"),
    ]
    out = [kinds[i % len(kinds)] for i in range(n)]
    huge = (f"{base}/telemetry", b" " * (1 << 20) + body, "exceeds")
    return out[:-10] + [huge] * 10


async def test_ten_thousand_hostile_payloads_all_become_dead_letters(broker, migrated):
    site, device = unique("site"), unique("dev")
    payloads = hostile_payloads(site, device, 10_000)
    settings = settings_for(broker.url, migrated, ingest={"batch_size": 1000, "queue_size": 2000})
    async with Collector(settings) as c:
        await c.wait_subscribed()
        addr = BrokerAddress.parse(broker.url)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("hostile"), protocol=mqtt.MQTTv5)
        client.connect(addr.host, addr.port)
        client.loop_start()
        try:
            infos = [client.publish(t, p, qos=1) for t, p, _ in payloads]
            await asyncio.to_thread(lambda: [i.wait_for_publish(60) for i in infos])
            good = telemetry(site, device, boot_id(), [1])
            client.publish(f"signalcraft/v1/{site}/{device}/telemetry", encode(good), 1).wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()
        total = "SELECT count(*) FROM dead_letters"
        await eventually(lambda: fetchval(migrated, total), lambda n: n >= len(payloads), timeout=120)
        stored = "SELECT count(*) FROM readings WHERE device = $1"
        await eventually(lambda: fetchval(migrated, stored, device), lambda n: n == 1)
    rows = await fetch(migrated, "SELECT topic, reason, payload_size FROM dead_letters ORDER BY id")
    assert len(rows) == len(payloads)
    expected = Counter((t, len(p), fragment) for t, p, fragment in payloads)
    got: Counter = Counter()
    for row in rows:
        fragment = next((f for (t, size, f) in expected if t == row["topic"] and size == row["payload_size"]
                         and f in row["reason"]), None)
        assert fragment is not None, (row["topic"], row["payload_size"], row["reason"][:200])
        got[(row["topic"], row["payload_size"], fragment)] += 1
    assert got == expected
