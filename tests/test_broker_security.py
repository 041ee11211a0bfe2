"""The agent against a production-like broker: TLS, passwords and the per-device ACL of deploy/mosquitto/."""

from __future__ import annotations

import shutil
import ssl
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from common import schema
from edge_agent.buffer import Buffer
from edge_agent.uplink import Uplink
from tests.agent_helpers import agent_settings
from tests.tls_helpers import SecureBroker, start_secure_broker

pytestmark = pytest.mark.skipif(
    not (shutil.which("mosquitto") and shutil.which("mosquitto_passwd")),
    reason="needs the mosquitto broker (Debian package mosquitto): the embedded Python broker has no TLS/ACL",
)
USERS = {"freezer-1": "pw-freezer-1", "freezer-2": "pw-freezer-2", "collector": "pw-collector"}


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory):
    b = start_secure_broker(tmp_path_factory.mktemp("secure"), USERS)
    yield b
    b.stop()


class Watcher:
    """The collector's view: reads everything under signalcraft/v1/ as the collector user."""

    def __init__(self, b: SecureBroker) -> None:
        self.seqs: list[int] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set("collector", USERS["collector"])
        self.client.tls_set(ca_certs=str(b.certs / "ca.crt"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe("signalcraft/v1/+/+/telemetry", qos=1)
        self.client.connect("127.0.0.1", b.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.seqs.extend(r.seq for r in schema.decode("telemetry", msg.payload).readings)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _uplink(tmp_path: Path, b: SecureBroker, device: str, user: str, password: str) -> tuple[Uplink, Buffer]:
    url = f"mqtts://{user}:{password}@127.0.0.1:{b.port}"
    settings = agent_settings(tmp_path, url, device=device, mqtt={"ca_file": str(b.certs / "ca.crt")})
    buf = Buffer(tmp_path / f"{uuid.uuid4().hex}.sqlite3", 1 << 24)
    boot = uuid.uuid4().hex
    for seq in range(20):
        buf.add(
            "telemetry", boot, schema.encode(schema.Reading(seq=seq, ts=datetime.now(UTC), values={"x": 1.0}))
        )
    return Uplink(settings, buf, boot, "test"), buf


def _wait(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)


def test_tls_with_password_delivers(secure: SecureBroker, tmp_path: Path) -> None:
    watcher = Watcher(secure)
    up, buf = _uplink(tmp_path, secure, "freezer-1", "freezer-1", USERS["freezer-1"])
    up.start()
    try:
        _wait(lambda: buf.count == 0 and len(watcher.seqs) >= 20)
    finally:
        up.stop()
        watcher.close()
    assert sorted(watcher.seqs) == list(range(20))
    assert up.counters.rejected == 0


def test_acl_refuses_speaking_for_another_device(secure: SecureBroker, tmp_path: Path) -> None:
    # Logged in as freezer-1 but publishing as freezer-2 (its Last Will included): mosquitto closes the
    # connection. Nothing reaches the cloud under the wrong name, and the agent loses nothing.
    watcher = Watcher(secure)
    up, buf = _uplink(tmp_path, secure, "freezer-2", "freezer-1", USERS["freezer-1"])
    up.start()
    try:
        _wait(lambda: up.counters.reconnects >= 2)
    finally:
        up.stop()
        watcher.close()
    assert watcher.seqs == []
    assert buf.count == 20


def test_wrong_password_is_reported(secure: SecureBroker, tmp_path: Path) -> None:
    up, buf = _uplink(tmp_path, secure, "freezer-1", "freezer-1", "not-the-password")
    up.start()
    try:
        _wait(lambda: "refused" in up.counters.last_error)
    finally:
        up.stop()
    assert buf.count == 20
    assert "password" in up.counters.last_error.lower() or "authori" in up.counters.last_error.lower()
