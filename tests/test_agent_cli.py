"""``signalcraft-agent`` as a technician uses it, against the simulator's Modbus slave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_agent.cli import app
from simulator.modbus_slave import SimulatedUnit, start_unit

runner = CliRunner()


def _read(port: str, register: int, slave: str = "1", **options: str):
    """``signalcraft-agent diag read … --json`` against ``port``."""
    args = ["diag", "read", "--port", port, "--slave", slave, "--register", str(register), "--json"]
    for name, value in options.items():
        args += [f"--{name}", value]
    return runner.invoke(app, args)


@pytest.fixture(scope="module")
def unit():
    u = start_unit(seed=5, speed=1.0)
    yield u
    u.stop()


def test_diag_read_decodes_a_float(unit: SimulatedUnit) -> None:
    result = _read(unit.port, 8, function="4", type="float32")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["ok"] is True
    assert out["value"] == pytest.approx(unit.values["cabinet_temp"], abs=0.01)
    assert len(out["registers"]) == 2


def test_diag_read_word_order_matters(unit: SimulatedUnit) -> None:
    # vibration_rms is stored low word first (CDAB): read as CDAB it matches, as ABCD it does not.
    right = json.loads(_read(unit.port, 16, function="4", type="float32", order="CDAB").output)["value"]
    wrong = json.loads(_read(unit.port, 16, function="4", type="float32", order="ABCD").output)["value"]
    assert right == pytest.approx(unit.values["vibration_rms"], abs=0.01)
    assert wrong != pytest.approx(right, abs=0.01)


def test_diag_read_wrong_slave_explains(unit: SimulatedUnit) -> None:
    result = _read(unit.port, 0, slave="17", function="4", timeout="0.2")
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert out["error"] == "DeviceTimeout"
    assert "wiring" in out["detail"] and "slave id" in out["detail"]


def test_diag_read_illegal_address(unit: SimulatedUnit) -> None:
    result = _read(unit.port, 4000, function="4")
    assert result.exit_code == 1
    assert json.loads(result.output)["error"] == "IllegalAddress"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(body)
    return path


GOOD = """
[agent]
site = "shop"
device = "freezer-1"
state_dir = "{state}"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[modbus]]
name = "controller"
port = "/dev/ttyUSB0"
slave = 1
profile = "signalcraft-sim-compressor"
"""


def test_config_check_ok(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["config", "check", "--config", str(_write(tmp_path, GOOD.format(state=tmp_path)))]
    )
    assert result.exit_code == 0, result.output
    assert "14 points in 1 request(s)" in result.output


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        (("slave = 1", "slave = 300"), "modbus[0].slave"),
        (('url = "mqtt://127.0.0.1:1883"', 'url = "http://broker"'), "mqtt.url"),
        (('profile = "signalcraft-sim-compressor"', 'profile = "no-such-profile"'), "modbus[0].profile"),
        (('device = "freezer-1"', 'device = "bad/device"'), "agent.device"),
        (("[agent]", "[agent]\npoll_interval = 5"), "agent.poll_interval"),
    ],
)
def test_bad_config_names_the_setting(tmp_path: Path, change: tuple[str, str], setting: str) -> None:
    body = GOOD.format(state=tmp_path).replace(*change)
    result = runner.invoke(app, ["config", "check", "--config", str(_write(tmp_path, body))])
    assert result.exit_code == 2
    assert setting in result.output


def test_environment_overrides_the_file_and_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALCRAFT_MQTT_URL", "ftp://nowhere")
    path = _write(tmp_path, GOOD.format(state=tmp_path))
    result = runner.invoke(app, ["run", "--config", str(path)])
    assert result.exit_code == 2
    assert "mqtt.url" in result.output and "SIGNALCRAFT_MQTT_URL" in result.output


def test_status_without_agent_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--config", str(_write(tmp_path, GOOD.format(state=tmp_path)))])
    assert result.exit_code == 1
    assert "not running" in result.output and "systemctl status signalcraft-agent" in result.output
