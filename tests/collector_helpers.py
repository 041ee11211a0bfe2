"""Shared pieces of the collector tests: settings, a real paho publisher, message builders, polling."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud_collector.config import CollectorSettings
from common.mqtt_url import BrokerAddress
from common.schema import Contributor, HealthState, Reading, StateChange, Status, Telemetry, encode
from common.topics import topic

T = TypeVar("T")
T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def settings_for(broker_url: str, pg_url: str, **sections: dict[str, Any]) -> CollectorSettings:
    """Settings isolated per test: own client id and share group (the broker is shared by the session)."""
    raw: dict[str, Any] = {
        "mqtt": {"url": broker_url, "client_id": unique("collector"), "share_group": unique("g")},
        "database": {"url": pg_url, "pool_size": 4},
        "api": {"host": "127.0.0.1", "port": 0},
        "ingest": {"batch_size": 200, "flush_interval": 0.05, "queue_size": 500},
        "alerts": {"offline_after": 3600.0},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return msgspec.convert(raw, CollectorSettings, strict=False)


class Publisher:
    """A real MQTT client publishing QoS1, waiting for each PUBACK (what an edge agent does)."""

    def __init__(self, broker_url: str, protocol: int = mqtt.MQTTv5) -> None:
        addr = BrokerAddress.parse(broker_url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("pub"), protocol=protocol)
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()

    def raw(self, topic_name: str, payload: bytes, qos: int = 1) -> None:
        info = self.client.publish(topic_name, payload, qos=qos)
        info.wait_for_publish(10)

    def send(self, message: Telemetry | StateChange | Status, kind: str | None = None) -> None:
        kind = kind or type(message).__struct_config__.tag
        self.raw(topic(message.site, message.device, kind), encode(message))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def boot_id() -> str:
    return uuid.uuid4().hex


def telemetry(site: str, device: str, boot: str, seqs: list[int], start: datetime = T0,
              values: dict[str, float] | None = None) -> Telemetry:
    readings = [
        Reading(seq=s, ts=start + timedelta(seconds=s),
                values=values or {"suction_p": 2.5 + s / 100, "current": 4.0})
        for s in seqs
    ]
    return Telemetry(v=1, site=site, device=device, boot=boot, readings=readings, model="m1")


def state_change(site: str, device: str, boot: str, seq: int, state: HealthState,
                 previous: HealthState | None = None, at: datetime | None = None) -> StateChange:
    return StateChange(
        v=1, site=site, device=device, boot=boot, seq=seq, ts=at or T0 + timedelta(seconds=seq), state=state,
        previous=previous, score=0.9 if state != HealthState.HEALTHY else 0.1, model="m1",
        reason=f"went {state.value}", contributors=[Contributor(feature="band_500_2000", value=3.2, z=4.1)],
    )


def status(site: str, device: str, boot: str, online: bool, reason: str = "") -> Status:
    return Status(v=1, site=site, device=device, boot=boot, ts=datetime.now(UTC), online=online,
                  reason=reason or ("birth" if online else "lost"))


async def eventually(probe: Callable[[], Awaitable[T]], check: Callable[[T], bool] = bool,
                     timeout: float = 10.0) -> T:
    """Poll ``probe`` until ``check`` accepts its value; the last value is in the assertion message."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not check(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value: {value!r}")
        await asyncio.sleep(0.05)
        value = await probe()
    return value


async def fetchval(pg_url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(pg_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def fetch(pg_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(pg_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()
