"""The whole path for real: simulated compressor (Modbus RTU on a pty) → agent process → mosquitto →
collector process → PostgreSQL → alert in the REST API and on the SSE stream."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from edge_agent.analytics.presets import DEMO
from signalcraft import embedded
from simulator.agent_config import agent_config_toml
from simulator.faults import FaultSpec
from simulator.modbus_slave import start_fleet

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=out, start_new_session=True)


def _get(url: str, key: str):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


class SseReader(threading.Thread):
    """Reads /api/v1/stream and keeps every event it sees."""

    def __init__(self, port: int, key: str) -> None:
        super().__init__(daemon=True)
        self.events: list[tuple[str, dict]] = []
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.conn.request(
            "GET", "/api/v1/stream", headers={"Accept": "text/event-stream", "Authorization": f"Bearer {key}"}
        )
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        assert self.resp.getheader("Content-Type", "").startswith("text/event-stream")

    def close(self) -> None:
        """End the stream from outside; the reading thread then closes its end."""
        if self.conn.sock is not None:
            self.conn.sock.shutdown(2)
        self.join(5)

    def run(self) -> None:
        event, data = "", ""
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and event:
                    self.events.append((event, json.loads(data) if data else {}))
                    event, data = "", ""
        except (OSError, ValueError, http.client.HTTPException):
            pass
        finally:
            self.resp.close()
            self.conn.close()


def test_fault_reaches_the_api_and_the_stream(broker: embedded.Broker, pg_url: str, tmp_path: Path) -> None:
    api_port = embedded.free_port()
    (tmp_path / "collector.toml").write_text(
        f'[mqtt]\nurl = "{broker.url}"\nclient_id = "e2e-collector"\n'
        f'[database]\nurl = "{pg_url}"\n[api]\nport = {api_port}\n'
    )
    collector = _spawn(
        [
            str(BIN / "signalcraft-collector"),
            "serve",
            "--migrate",
            "--config",
            str(tmp_path / "collector.toml"),
        ],
        tmp_path / "collector.log",
    )
    fleet = start_fleet(
        2,
        {1: [FaultSpec("condenser_fouling", DEMO.fault_start_s, DEMO.fault_ramp_s)]},
        speed=DEMO.speed,
        seed=11,
    )
    agents: list[subprocess.Popen] = []
    sse: SseReader | None = None
    try:
        embedded.wait_for_port("127.0.0.1", api_port, timeout=60, proc=collector)
        key = subprocess.run(
            [
                str(BIN / "signalcraft-collector"),
                "apikeys",
                "create",
                "--role",
                "viewer",
                "--config",
                str(tmp_path / "collector.toml"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        sse = SseReader(api_port, key)
        sse.start()
        for i, unit in enumerate(fleet.units):
            cfg = tmp_path / f"agent-{i}.toml"
            cfg.write_text(
                agent_config_toml(unit, "e2e", f"unit-{i}", tmp_path / f"state-{i}", broker.url)
                + f"\n[model]\ncalibration_readings = {DEMO.calibration_readings}\nwindow = {DEMO.window}\n"
            )
            agents.append(
                _spawn([str(BIN / "signalcraft-agent"), "run", "--config", str(cfg)], tmp_path / f"a{i}.log")
            )

        deadline = time.monotonic() + 150
        alerts: list[dict] = []
        while time.monotonic() < deadline:
            assert collector.poll() is None, (tmp_path / "collector.log").read_text()[-3000:]
            alerts = _get(f"http://127.0.0.1:{api_port}/api/v1/alerts?status=active", key)["alerts"]
            if any(a["device"] == "unit-1" and a["rule"] == "health" for a in alerts):
                break
            time.sleep(1.0)
        else:
            pytest.fail(f"no health alert for the faulted unit; active alerts: {alerts}")

        alert = next(a for a in alerts if a["device"] == "unit-1")
        assert alert["site"] == "e2e"
        assert not any(a["device"] == "unit-0" for a in alerts), "the healthy unit raised an alert"
        listed = _get(f"http://127.0.0.1:{api_port}/api/v1/devices", key)["devices"]
        devices = {d["device"]: d for d in listed}
        assert devices["unit-1"]["state"] in ("WARNING", "ALARM")
        assert devices["unit-0"]["state"] == "HEALTHY"
        readings = _get(f"http://127.0.0.1:{api_port}/api/v1/devices/unit-1/readings", key)["readings"]
        assert len(readings) >= DEMO.calibration_readings
        assert {"discharge_pressure", "cabinet_temp"} <= set(readings[-1]["values"])

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(e == "alert.created" for e, _ in sse.events):
            time.sleep(0.2)
        created = [d for e, d in sse.events if e == "alert.created"]
        assert created, f"no alert.created on the stream; saw {[e for e, _ in sse.events]}"
        assert any(d.get("device") == "unit-1" for d in created)
    finally:
        if sse is not None:
            sse.close()
        for proc in agents:
            embedded.terminate(proc)
        fleet.stop()
        embedded.terminate(collector)
