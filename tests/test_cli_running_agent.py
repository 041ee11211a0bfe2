"""The technician's commands against a running agent process, a simulated compressor and a real broker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.cli import app
from signalcraft import embedded
from simulator.modbus_slave import SimulatedUnit, start_unit
from tests.field_helpers import AgentProcess, agent_toml, runner


@pytest.fixture(scope="module")
def unit() -> Iterator[SimulatedUnit]:
    u = start_unit(seed=2, speed=60.0)  # the compressor cycles within seconds: calibration ends fast
    yield u
    u.stop()


@pytest.fixture(scope="module")
def agent(
    unit: SimulatedUnit, broker: embedded.Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentProcess]:
    work = tmp_path_factory.mktemp("agent")
    config = work / "agent.toml"
    config.write_text(agent_toml(work / "state", broker.url, unit.port))
    a = AgentProcess(config, work / "agent.log")
    try:
        a.wait_until(lambda s: s["sources"]["controller"]["state"] == "online" and s["delivery"]["acked"] > 0)
        yield a
    finally:
        a.stop()


def _wait_calibrated(agent: AgentProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while json.loads(agent.cli("calibrate", "status", "--json").output)["calibrated"] is not True:
        assert time.monotonic() < deadline, "the agent never finished calibrating"
        time.sleep(0.2)


def test_status_json_has_sources_readings_units_and_delivery(agent: AgentProcess) -> None:
    s = agent.status()
    assert s is not None
    assert s["sources"]["controller"]["state"] == "online"
    assert s["last"]["values"]["suction_pressure"] > 0
    assert s["units"]["suction_pressure"] == "bar"
    for key in ("produced", "acked", "buffered", "dropped"):
        assert isinstance(s["delivery"][key], int)
    assert s["delivery"]["connected"] is True
    assert s["calibration"]["needed"] == 15


def test_status_text_for_a_person(agent: AgentProcess) -> None:
    result = agent.cli("status")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "shop/freezer-1" in out and "controller" in out and "online" in out
    assert "suction_pressure" in out and "bar" in out
    assert "uplink: connected" in out and "delivery: produced" in out
    assert "MiB resident" in out


def test_diag_trace_follows_live_frames(agent: AgentProcess) -> None:
    result = agent.cli("diag", "trace", "--duration", "1.5", "--json")
    assert result.exit_code == 0, result.output
    frames = [json.loads(line) for line in result.output.splitlines()]
    assert len(frames) >= 3  # 5 polls/s of one slave
    assert all(f["tx"].startswith("01 04") and f["outcome"] == "ok" for f in frames)
    assert all(f["rx"].startswith("01 04") for f in frames)


def test_diag_infer_scores_the_current_window(agent: AgentProcess) -> None:
    _wait_calibrated(agent)
    result = agent.cli("diag", "infer", "--json")
    assert result.exit_code == 0, result.output
    r = json.loads(result.output)
    assert r["calibration"]["calibrated"] is True
    assert r["state"] and r["reason"] and r["model"]
    text = agent.cli("diag", "infer")
    assert "why:" in text.output and "state" in text.output


def test_calibrate_status_start_restart(agent: AgentProcess) -> None:
    _wait_calibrated(agent)
    start = agent.cli("calibrate", "start", "--json")
    assert start.exit_code == 1
    assert "already calibrated" in json.loads(start.output)["error"]
    restart = agent.cli("calibrate", "restart", "--yes", "--json")
    assert restart.exit_code == 0, restart.output
    r = json.loads(restart.output)
    assert r["calibrated"] is False and r["done"] < r["needed"]
    status = agent.cli("calibrate", "status")
    assert "calibrating:" in status.output and "min to go" in status.output


def test_buffer_inspect_and_export_while_running(agent: AgentProcess, tmp_path: Path) -> None:
    result = agent.cli("buffer", "inspect", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["records"] >= 0 and info["dropped"] == 0 and info["path"].endswith("buffer.sqlite3")
    out = tmp_path / "export.jsonl"
    exported = agent.cli("buffer", "export", "--output", str(out))
    assert exported.exit_code == 0, exported.output
    for line in out.read_text().splitlines():
        record = json.loads(line)
        assert record["kind"] in ("telemetry", "state") and "body" in record


def test_doctor_passes_with_everything_up(agent: AgentProcess) -> None:
    result = agent.cli("doctor", "--json")
    report = json.loads(result.output)
    assert result.exit_code == 0, result.output
    assert report["ok"] is True and report["failed"] == []
    names = {c["name"] for c in report["checks"]}
    assert {"config", "agent", "slave controller", "uplink", "tcp", "login", "acl", "state dir"} <= names


def test_doctor_without_the_agent_reads_the_slaves_itself(broker: embedded.Broker, tmp_path: Path) -> None:
    unit = start_unit(seed=3)  # a port of its own: the running agent above holds its port exclusively
    config = tmp_path / "agent.toml"
    config.write_text(agent_toml(tmp_path / "state", broker.url, unit.port, socket=tmp_path / "none.sock"))
    try:
        result = runner.invoke(app, ["doctor", "--config", str(config), "--json"])
    finally:
        unit.stop()
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["agent"]["status"] == "fail" and "not running" in checks["agent"]["cause"]
    assert "systemctl start signalcraft-agent" in checks["agent"]["fix"]
    assert checks["slave controller"]["status"] == "ok"  # read on our own, the port being free
    text = runner.invoke(app, ["doctor", "--config", str(config)])
    assert "FAIL agent" in text.output and "problem(s)" in text.output


def test_doctor_says_when_another_program_holds_the_port(agent: AgentProcess, tmp_path: Path) -> None:
    other = tmp_path / "agent.toml"  # the same line as the running agent, whose socket we do not know
    body = agent.config.read_text().replace(
        'state_dir = "', f'control_socket = "{tmp_path}/x.sock"\nstate_dir = "'
    )
    other.write_text(body)
    result = runner.invoke(app, ["doctor", "--config", str(other), "--json"])
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert result.exit_code == 1
    assert "busy" in checks["slave controller"]["detail"]


def test_doctor_names_a_bad_setting(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(agent_toml(tmp_path, "http://nowhere", "/dev/ttyUSB9"))
    result = runner.invoke(app, ["doctor", "--config", str(config), "--json"])
    assert result.exit_code == 1
    check = json.loads(result.output)["checks"][0]
    assert check["name"] == "config" and "mqtt.url" in check["detail"] and "config check" in check["fix"]
