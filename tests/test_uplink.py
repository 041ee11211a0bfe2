"""The uplink against a real mosquitto: nothing leaves the buffer before the broker's PUBACK."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt

from common import schema
from edge_agent.buffer import Buffer
from edge_agent.uplink import Uplink
from signalcraft import embedded
from tests.agent_helpers import agent_settings


class Collector:
    """A persistent-session QoS1 subscriber that records every reading seq it receives."""

    def __init__(self, port: int, device: str) -> None:
        self.seqs: list[int] = []
        self.batches: list[int] = []
        self.status: list[schema.Status] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{device}", protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(f"signalcraft/v1/+/{device}/#", qos=1)
        self.client.connect("127.0.0.1", port, clean_start=False, properties=_session_expiry())
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        kind = msg.topic.rsplit("/", 1)[-1]
        decoded = schema.decode(kind, msg.payload)
        with self._lock:
            if isinstance(decoded, schema.Telemetry):
                self.seqs.extend(r.seq for r in decoded.readings)
                self.batches.append(len(decoded.readings))
            elif isinstance(decoded, schema.Status):
                self.status.append(decoded)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _session_expiry():
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    return props


def _produce(buf: Buffer, boot: str, seqs: range) -> None:
    for seq in seqs:
        reading = schema.Reading(seq=seq, ts=datetime.now(UTC), values={"cabinet_temp": -19.5})
        buf.add("telemetry", boot, schema.encode(reading))


def _wait(predicate, timeout: float = 20.0, what=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in time {what() if what else ''}")
        time.sleep(0.05)


def test_backlog_is_batched_delivered_and_deleted(broker: embedded.Broker, tmp_path: Path) -> None:
    device = f"dev-{uuid.uuid4().hex[:6]}"
    sub = Collector(broker.port, device)
    settings = agent_settings(tmp_path, broker.url, device=device, mqtt={"batch_max": 100})
    buf = Buffer(tmp_path / "buffer.sqlite3", 1 << 24)
    boot = uuid.uuid4().hex
    _produce(buf, boot, range(1000))
    up = Uplink(settings, buf, boot, "test")
    up.start()
    try:
        _wait(lambda: buf.count == 0)
        _wait(lambda: len(sub.seqs) >= 1000)
    finally:
        up.stop()
        sub.close()
    assert sorted(set(sub.seqs)) == list(range(1000))
    assert max(sub.batches) == 100  # replay goes in batches, not one message per reading
    assert up.counters.acked == 1000
    assert [s.reason for s in sub.status][:1] == ["birth"]


def test_outage_loses_nothing(tmp_path: Path) -> None:
    b = embedded.start_broker(tmp_path / "broker")
    device = f"dev-{uuid.uuid4().hex[:6]}"
    sub = Collector(b.port, device)
    settings = agent_settings(tmp_path, b.url, device=device)
    buf = Buffer(tmp_path / "buffer.sqlite3", 1 << 24)
    boot = uuid.uuid4().hex
    up = Uplink(settings, buf, boot, "test")
    up.start()
    try:
        _produce(buf, boot, range(0, 50))
        up.notify()
        _wait(lambda: buf.count == 0)
        b.pause()
        _produce(buf, boot, range(50, 120))
        up.notify()
        time.sleep(1.0)
        assert buf.count == 70  # nothing acknowledged while the broker is down, so nothing deleted
        b.resume()
        _wait(lambda: buf.count == 0, timeout=40)
        _wait(
            lambda: set(range(120)) <= set(sub.seqs), timeout=20, what=lambda: set(range(120)) - set(sub.seqs)
        )
    finally:
        up.stop()
        sub.close()
        b.stop()
    assert up.counters.reconnects >= 1


def test_mqtt_311_broker(tmp_path: Path) -> None:
    """The embedded Python broker speaks MQTT 3.1.1 only."""
    b = embedded.start_broker(tmp_path / "broker", prefer="amqtt")
    settings = agent_settings(tmp_path, b.url, mqtt={"protocol": "3.1.1"})
    buf = Buffer(tmp_path / "buffer.sqlite3", 1 << 24)
    boot = uuid.uuid4().hex
    _produce(buf, boot, range(5))
    up = Uplink(settings, buf, boot, "test")
    up.start()
    try:
        _wait(lambda: buf.count == 0)
    finally:
        up.stop()
        b.stop()
