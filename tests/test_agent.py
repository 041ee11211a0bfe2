"""The agent in-process against the simulator and a real broker: control socket, metrics, commands, clock."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from common import schema
from edge_agent import control
from edge_agent.agent import Agent
from edge_agent.clock import ClockWatch
from signalcraft import embedded
from simulator.modbus_slave import start_unit
from tests.agent_helpers import agent_settings


@pytest.fixture
def running_agent(broker: embedded.Broker, tmp_path: Path):
    unit = start_unit(seed=2, speed=60.0)
    device = f"agent-{uuid.uuid4().hex[:6]}"
    settings = agent_settings(
        tmp_path / "state",
        broker.url,
        device=device,
        agent={"poll_interval": 0.2, "metrics_port": embedded.free_port()},
        modbus=[
            {"name": "controller", "port": unit.port, "slave": 1, "profile": "signalcraft-sim-compressor"}
        ],
        model={"window": 10, "calibration_readings": 25},
    )
    agent = Agent(settings)
    ready = threading.Event()
    thread = threading.Thread(target=agent.run, args=(ready,), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield agent
    agent.stop()
    thread.join(10)
    unit.stop()


def _until(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("not reached in time")


def test_status_and_metrics_tell_the_same_story(running_agent: Agent) -> None:
    status = _until(
        lambda: (
            (s := control.request(running_agent.settings.socket_path, "status"))["delivery"]["acked"] >= 5
            and s
        )
    )
    assert status["sources"]["controller"]["state"] == "online"
    assert status["last"]["values"]["cabinet_temp"] < 15
    d = status["delivery"]
    assert {"produced", "acked", "buffered", "dropped"} <= set(d)
    assert d["produced"] >= d["acked"] >= 5
    # no waveform sensor: start-up is over after the first cycle, and its pages were given back
    assert status["memory"]["released_at_startup_mib"] is not None and status["memory"]["rss_mib"] > 0
    port = running_agent.settings.agent.metrics_port
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert f'signalcraft_agent_source_online{{device="{status["device"]}",source="controller"}} 1' in text
    assert "signalcraft_agent_acked_total" in text and 'reason="buffer_full"' in text


def test_commands_are_answered_on_cmd_ack(running_agent: Agent, broker: embedded.Broker) -> None:
    s = running_agent.settings.agent
    acks: list[schema.CommandAck] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = lambda c, u, m: acks.append(schema.decode("cmd/ack", m.payload))
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe(f"signalcraft/v1/{s.site}/{s.device}/cmd/ack", qos=1)
    sub.loop_start()
    try:
        _until(lambda: running_agent.uplink.counters.connected)
        time.sleep(0.3)
        for cid, cmd in (("c1", "ping"), ("c2", "recalibrate"), ("c3", "reboot_the_world")):
            body = json.dumps({"kind": "cmd", "v": 1, "id": cid, "cmd": cmd}).encode()
            sub.publish(f"signalcraft/v1/{s.site}/{s.device}/cmd", body, qos=1)
        _until(lambda: len(acks) >= 3)
    finally:
        sub.loop_stop()
        sub.disconnect()
    by_id = {a.id: a for a in acks}
    assert by_id["c1"].ok and by_id["c1"].result == {"pong": True}
    assert by_id["c2"].ok and by_id["c2"].result["calibration"][0] == 0
    assert not by_id["c3"].ok and "unknown command" in by_id["c3"].error


def test_clock_jump_and_unsynced_clock_are_flagged() -> None:
    watch = ClockWatch(synced=lambda: True)
    now = datetime.now(UTC)
    assert watch.check(now) is None
    time.sleep(0.05)
    assert watch.check(datetime.now(UTC)) is None
    assert watch.check(datetime.now(UTC) + timedelta(hours=1)) == "jump:+3600s"
    assert ClockWatch(synced=lambda: False).check(now) == "unsynced"
    assert ClockWatch(synced=lambda: True).check(datetime(1970, 1, 1, tzinfo=UTC)) == "unsynced"
