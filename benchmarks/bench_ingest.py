"""Collector ingest rate against a bare paho subscriber, and publish→commit latency at half that rate.

One run, one broker (mosquitto from ``deploy/mosquitto/``), one PostgreSQL:

1. Two persistent sessions subscribe and go offline: a bare paho client (QoS1, auto-acknowledge, counts
   messages and nothing else) and the collector, each in its own shared-subscription group.
2. A publisher process queues ``--messages`` telemetry messages; the broker keeps a copy for each session.
3. The bare client reconnects and drains its copy: the *raw paho receive rate*. Then the collector
   reconnects and drains its copy: the *end-to-end rate*, counting a message only once its rows are
   committed and its PUBACK handed to paho. ratio = end-to-end / raw (target >= 0.8).
4. A paced publisher sends at half the end-to-end rate for ``--latency-seconds``; the collector's
   ``commit_lag`` histogram (device timestamp -> commit) gives p50 and p99 (target p99 <= 200 ms).

Draining a queued backlog measures each consumer alone, without the publisher competing for the CPU.

    python benchmarks/bench_ingest.py [--messages 60000] [--devices 1000] [--points 8] [--json]

The database is ``SIGNALCRAFT_BENCH_PG_ADMIN_URL`` (a superuser URL; a scratch database is created and
dropped), by default the local PostgreSQL on 127.0.0.1:5432, else an embedded one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Only what the publisher process needs at module level: it should start fast and import no collector.
from common.mqtt_url import BrokerAddress  # noqa: E402
from common.topics import fleet_filter  # noqa: E402

SITE = "bench"
BOOT = "b" * 32
_WINDOW = 20_000


def payload(device: str, seq: int, points: int, ts: datetime) -> bytes:
    values = ",".join(f'"p{i}":{20.0 + i + seq % 7 / 10:.2f}' for i in range(points))
    return (f'{{"kind":"telemetry","v":1,"site":"{SITE}","device":"{device}","boot":"{BOOT}",'
            f'"readings":[{{"seq":{seq},"ts":"{ts.isoformat()}","values":{{{values}}}}}],"model":"m1"}}'
            ).encode()


def publish(url: str, messages: int, devices: int, points: int, rate: float, start_seq: int) -> None:
    """Publisher process: ``messages`` QoS1 messages round-robin over devices, paced when rate > 0."""
    addr = BrokerAddress.parse(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(addr.host, addr.port)
    client.loop_start()
    t0 = time.monotonic()
    infos = []
    for i in range(messages):
        if rate > 0:
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        device = f"bench-{i % devices:05d}"
        seq = start_seq + i // devices
        topic = f"signalcraft/v1/{SITE}/{device}/telemetry"
        infos.append(client.publish(topic, payload(device, seq, points, datetime.now(UTC)), qos=1))
        if i >= _WINDOW:  # packet ids are 16-bit: keep fewer than 65535 messages unacknowledged
            infos[i - _WINDOW].wait_for_publish(60)
    for info in infos[-_WINDOW:]:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def run_publisher(url: str, messages: int, devices: int, points: int, rate: float, start_seq: int) -> None:
    subprocess.run([sys.executable, __file__, "_publish", url, str(messages), str(devices), str(points),
                    str(rate), str(start_seq)], check=True)


class RawSubscriber:
    """The baseline: paho with a persistent v5 session and a shared subscription, counting messages."""

    def __init__(self, url: str, group: str) -> None:
        self.addr = BrokerAddress.parse(url)
        self.group = group
        self.client_id = f"bench-raw-{uuid.uuid4().hex[:6]}"
        self.count = 0
        self.done = threading.Event()
        self.target = 0

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        client.on_message = self._on_message
        return client

    def _on_message(self, client, userdata, msg) -> None:
        self.count += 1
        if self.count >= self.target:
            self.done.set()

    def _connect(self, client: mqtt.Client, subscribe: bool) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        props.ReceiveMaximum = 2000
        client.connect(self.addr.host, self.addr.port, clean_start=False, properties=props)
        if subscribe:
            client.subscribe(fleet_filter("telemetry", self.group), options=SubscribeOptions(qos=1))

    def register(self) -> None:
        client = self._client()
        self._connect(client, subscribe=True)
        client.loop_start()
        time.sleep(0.5)
        client.disconnect()
        client.loop_stop()

    def drain(self, target: int, publish_args: tuple | None = None) -> float:
        """Connect and count ``target`` messages: a queued backlog, or (``publish_args``) a live stream."""
        self.target, self.count = target, 0
        self.done.clear()
        client = self._client()
        self._connect(client, subscribe=False)
        client.loop_start()
        t0 = time.perf_counter()
        if publish_args is not None:
            time.sleep(0.5)  # subscribed: the session is there
            t0 = time.perf_counter()
            run_publisher(*publish_args)
        if not self.done.wait(300):
            raise RuntimeError(f"raw subscriber got {self.count} of {target}")
        elapsed = time.perf_counter() - t0
        client.disconnect()
        client.loop_stop()
        return target / elapsed


async def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        await asyncio.sleep(0.01)


async def wait_quiet(counter, quiet: float, timeout: float) -> None:
    """Until ``counter()`` has not moved for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = counter(), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        await asyncio.sleep(0.05)
        if counter() != last:
            last, since = counter(), time.monotonic()


async def bench(args: argparse.Namespace, broker_url: str, pg_url: str) -> dict:
    from cloud_collector import migrate, runtime
    from cloud_collector.runtime import METRICS
    from cloud_collector.service import Collector
    from tests.collector_helpers import settings_for

    await migrate.migrate(pg_url)
    if args.no_rollups:
        runtime.ROLLUP_EVERY = 1e9
    settings = settings_for(broker_url, pg_url, ingest={
        "batch_size": args.batch_size, "flush_interval": 0.05, "queue_size": args.queue_size,
        "device_rate_limit": 0})
    raw = RawSubscriber(broker_url, f"raw-{uuid.uuid4().hex[:6]}")
    raw.register()
    async with Collector(settings) as c:  # registers the collector's persistent session
        await c.wait_subscribed()
    n, d, p = args.messages, args.devices, args.points
    await asyncio.to_thread(run_publisher, broker_url, n, d, p, 0, 0)
    backlog_raw = await asyncio.to_thread(raw.drain, n)
    # Live: the publisher runs while the consumer receives (and competes with it for the two cores).
    live_raw = await asyncio.to_thread(raw.drain, n, (broker_url, n, d, p, 0, 10**5))

    t0 = time.perf_counter()
    async with Collector(settings) as c:
        metrics = c.app[METRICS]
        await wait_for(lambda: metrics.acked >= n, 300)
        backlog_collector = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        await asyncio.to_thread(run_publisher, broker_url, n, d, p, 0, 2 * 10**5)
        await wait_for(lambda: metrics.acked >= 2 * n, 300)
        live_collector = n / (time.perf_counter() - t0)

        # Latency at half the collector's maximum rate, from an idle collector: the broker may still hold
        # copies queued for the collector's session during the raw subscriber's live run, and draining
        # them inside the latency window would measure the backlog, not the latency.
        await wait_quiet(lambda: metrics.acked, 1.0, 300)
        metrics.commit_lag.__init__()
        rate = live_collector / 2
        m = int(rate * args.latency_seconds)
        acked = metrics.acked
        await asyncio.to_thread(run_publisher, broker_url, m, d, p, rate, 3 * 10**5)
        await wait_for(lambda: metrics.acked >= acked + m, 60)
        lag = metrics.commit_lag
        stored = metrics.readings_stored
    return {
        "messages": n, "devices": d, "points_per_reading": p,
        "live_raw_paho_msgs_per_s": round(live_raw), "live_collector_msgs_per_s": round(live_collector),
        "live_ratio": round(live_collector / live_raw, 3),
        "live_data_points_per_s": round(live_collector * p),
        "backlog_raw_paho_msgs_per_s": round(backlog_raw),
        "backlog_collector_msgs_per_s": round(backlog_collector),
        "backlog_ratio": round(backlog_collector / backlog_raw, 3),
        "backlog_data_points_per_s": round(backlog_collector * p),
        "latency_rate_msgs_per_s": round(rate), "latency_messages": m,
        "p50_ms": round(lag.quantile(0.5) * 1000, 1), "p99_ms": round(lag.quantile(0.99) * 1000, 1),
        "readings_stored": stored, "rollups_in_collector": not args.no_rollups,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_publish":
        url, n, d, p, rate, start = sys.argv[2:8]
        publish(url, int(n), int(d), int(p), float(rate), int(start))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--points", type=int, default=8, help="values per reading")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--queue-size", type=int, default=5000)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--no-rollups", action="store_true",
                        help="do not run the rollup job inside the measured collector (as when a separate "
                             "process does it)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from signalcraft import embedded
    from tests import services

    admin = os.environ.get("SIGNALCRAFT_BENCH_PG_ADMIN_URL", services.MACHINE_PG)
    with tempfile.TemporaryDirectory() as tmp:
        own = admin == services.MACHINE_PG
        admin_url, server = services.admin_pg_url(Path(tmp)) if own else (admin, None)
        broker = embedded.start_broker(Path(tmp) / "broker", prefer="mosquitto")
        pg_url, name = services.create_database(admin_url)
        try:
            result = asyncio.run(bench(args, broker.url, pg_url))
        finally:
            services.drop_database(admin_url, name)
            broker.stop()
            if server is not None:
                server.stop()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
