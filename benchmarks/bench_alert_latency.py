"""Alert latency: from an edge health change published over MQTT to its ``alert.*`` event on the SSE stream,
at nominal fleet load.

One run, real processes: mosquitto (``deploy/mosquitto/``), PostgreSQL, Redis (when one answers: events
then go through the Redis Stream, as with several API processes), ``signalcraft-collector serve``.

1. A load process publishes telemetry for ``--devices`` devices, one reading each per second (the
   nominal fleet load), QoS 1, for the whole run.
2. This process holds an SSE connection (viewer API key) and, every ``--every`` seconds, publishes a
   state change for one device (WARNING, then HEALTHY for the same device next time round), stamping
   the wall-clock time of the publish.
3. The time from that publish to the ``alert.created`` / ``alert.cleared`` event of that device on the
   stream is one sample; p50, p95, p99 and max are printed (target: p99 <= 500 ms).

    python benchmarks/bench_alert_latency.py [--devices 1000] [--alerts 200] [--every 0.25] [--json]

The database is ``SIGNALCRAFT_BENCH_PG_ADMIN_URL`` (a superuser URL; a scratch database is created and
dropped), by default the local PostgreSQL on 127.0.0.1:5432, else an embedded one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.mqtt_url import BrokerAddress  # noqa: E402

SITE = "bench"
BOOT = "c" * 32
BIN = Path(sys.executable).parent


def load(broker_url: str, devices: int, seconds: float) -> None:
    """The load process: one telemetry reading per device per second, spread over the second."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    addr = BrokerAddress.parse(broker_url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"load-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(1000)
    client.connect(addr.host, addr.port)
    client.loop_start()
    start, seq = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        tick = time.monotonic()
        for i in range(devices):
            ts = datetime.now(UTC).isoformat()
            body = (
                f'{{"kind":"telemetry","v":1,"site":"{SITE}","device":"load-{i}","boot":"{BOOT}",'
                f'"readings":[{{"seq":{seq},"ts":"{ts}","values":{{"discharge_temp":60.0,"current":4.1}}}}],'
                f'"model":"m1"}}'
            )
            client.publish(f"signalcraft/v1/{SITE}/load-{i}/telemetry", body, qos=1)
            if i % 50 == 49:  # spread the fleet over the second, as real agents are
                time.sleep(max(0.0, tick + (i + 1) / devices - time.monotonic()))
        seq += 1
        time.sleep(max(0.0, tick + 1.0 - time.monotonic()))
    client.disconnect()
    client.loop_stop()


async def measure(api: str, key: str, broker_url: str, alerts: int, every: float) -> list[float]:
    import aiohttp
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from common.schema import HealthState, StateChange, encode
    from common.topics import topic

    addr = BrokerAddress.parse(broker_url)
    pub = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"edge-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    pub.connect(addr.host, addr.port)
    pub.loop_start()
    sent: dict[tuple[str, str], float] = {}
    samples: list[float] = []
    done = asyncio.Event()

    async def read(response: aiohttp.ClientResponse) -> None:
        event = ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("alert.created", "alert.cleared"):
                device = json.loads(line[5:])["device"]
                t0 = sent.pop((device, event), None)
                if t0 is not None:
                    samples.append(time.time() - t0)
                    if len(samples) >= alerts:
                        done.set()
                        return

    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http,
        http.get(f"{api}/api/v1/stream", timeout=aiohttp.ClientTimeout(total=None)) as response,
    ):
        reader = asyncio.create_task(read(response))
        healthy: dict[str, bool] = {}
        for n in range(alerts):
            device = f"load-{n % 40}"  # 40 devices take turns: WARNING, later HEALTHY
            going_bad = healthy.get(device, True)
            state = HealthState.WARNING if going_bad else HealthState.HEALTHY
            healthy[device] = not going_bad
            change = StateChange(
                v=1,
                site=SITE,
                device=device,
                boot=BOOT,
                seq=n,
                ts=datetime.now(UTC),
                state=state,
                previous=None,
                score=0.9,
                model="m1",
                reason="bench",
                contributors=[],
            )
            sent[(device, "alert.created" if going_bad else "alert.cleared")] = time.time()
            pub.publish(topic(SITE, device, "state"), encode(change), qos=1)
            await asyncio.sleep(every)
        try:
            await asyncio.wait_for(done.wait(), 30)
        except TimeoutError:
            print(f"warning: {len(sent)} events never arrived", file=sys.stderr)
        reader.cancel()
    pub.disconnect()
    pub.loop_stop()
    return samples


def _admin_pg() -> tuple[str, object]:
    from signalcraft import embedded

    url = os.environ.get("SIGNALCRAFT_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
    if embedded.port_open("127.0.0.1", 5432) or "SIGNALCRAFT_BENCH_PG_ADMIN_URL" in os.environ:
        return url, None
    pg = embedded.start_postgres(Path(tempfile.mkdtemp()) / "pg")
    return pg.url, pg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--every", type=float, default=0.25)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--flush-interval", default="200ms", help="ingest.flush_interval (the default)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--load", nargs=3, metavar=("BROKER", "DEVICES", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load(args.load[0], int(args.load[1]), float(args.load[2]))
        return

    from signalcraft import embedded

    work = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    broker = embedded.start_broker(work / "broker")
    admin, pg = _admin_pg()
    db = f"bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_sql(admin, f'CREATE DATABASE "{db}"'))
    db_url = admin.rsplit("/", 1)[0] + f"/{db}"
    redis = "redis://127.0.0.1:6379/0" if embedded.port_open("127.0.0.1", 6379) else ""
    port = embedded.free_port()
    config = work / "collector.toml"
    config.write_text(
        f'[mqtt]\nurl = "{broker.url}"\nclient_id = "bench-alerts"\n[database]\nurl = "{db_url}"\n'
        f'[redis]\nurl = "{redis}"\n[api]\nport = {port}\n[ingest]\n'
        f'flush_interval = "{args.flush_interval}"\n'
    )
    log = open(work / "collector.log", "wb")  # noqa: SIM115 - owned by the child
    collector = subprocess.Popen(
        [str(BIN / "signalcraft-collector"), "serve", "--migrate", "--config", str(config)],
        stdout=log,
        stderr=log,
    )
    loader = None
    try:
        embedded.wait_for_port("127.0.0.1", port, timeout=60, proc=collector)
        key = subprocess.run(
            [
                str(BIN / "signalcraft-collector"),
                "apikeys",
                "create",
                "--role",
                "viewer",
                "--config",
                str(config),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        seconds = args.warmup + args.alerts * args.every + 40
        loader = subprocess.Popen(
            [sys.executable, __file__, "--load", broker.url, str(args.devices), str(seconds)]
        )
        time.sleep(args.warmup)  # the fleet is known and the load is steady
        samples = asyncio.run(measure(f"http://127.0.0.1:{port}", key, broker.url, args.alerts, args.every))
    finally:
        if loader is not None:
            loader.terminate()
            loader.wait()
        collector.terminate()
        collector.wait(30)
        log.close()
        broker.stop()
        asyncio.run(_sql(admin, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        if pg is not None:
            pg.stop()  # type: ignore[attr-defined]
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=100) if len(ms) >= 2 else ms * 99
    result = {
        "devices": args.devices,
        "readings_per_s": args.devices,
        "alerts": len(ms),
        "events_via": "redis stream" if redis else "in-process hub",
        "p50_ms": round(q[49], 1),
        "p95_ms": round(q[94], 1),
        "p99_ms": round(q[98], 1),
        "max_ms": round(ms[-1], 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"fleet: {args.devices} devices at 1 reading/s each; {len(ms)} health changes; "
            f"events via {result['events_via']}; ingest.flush_interval {args.flush_interval}"
        )
        print(
            f"edge state change -> SSE event: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
            f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms (target p99 <= 500 ms)"
        )


async def _sql(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
