"""The simulator as a real Modbus RTU slave on a pseudo-terminal, read by real clients.

minimalmodbus is what a technician's script uses; pymodbus' client is a second, independent
implementation of the protocol. Both open the pty path like a serial port.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import minimalmodbus
import pytest
import serial
import typer
from pymodbus.client import ModbusSerialClient
from pymodbus.pdu import ExceptionResponse
from typer.testing import CliRunner

from edge_agent.sources.modbus import profile
from simulator import FaultSpec, SimulatedUnit, agent_config_toml, start_fleet, start_unit
from simulator.cli import simulate

PROFILE = profile.load("signalcraft-sim-compressor")
SPAN = max(p.address + p.width for p in PROFILE.points)  # 24 registers
SLAVE = 7


def decode(words: list[int] | tuple[int, ...]) -> dict[str, float]:
    return {p.name: p.value(list(words[p.address : p.address + p.width])) for p in PROFILE.points}


def instrument(port: str, slave: int, timeout: float = 0.5) -> minimalmodbus.Instrument:
    inst = minimalmodbus.Instrument(port, slave, close_port_after_each_call=True)
    inst.serial.baudrate = 19200
    inst.serial.timeout = timeout
    return inst


def assert_plausible(v: dict[str, float]) -> None:
    assert set(v) == {p.name for p in PROFILE.points}
    assert -35 < v["cabinet_temp"] < 15 and 5 < v["ambient_temp"] < 40
    assert 0.5 < v["suction_pressure"] < 10 and 1 < v["discharge_pressure"] < 30
    assert v["discharge_pressure"] > v["suction_pressure"] - 0.5
    assert (
        -45 < v["evaporator_temp"] < 25 and -45 < v["suction_temp"] < 40 and -10 < v["discharge_temp"] < 130
    )
    assert 0 <= v["motor_current"] < 30 and 0 <= v["power"] < 3000
    assert 0 <= v["vibration_rms"] < v["vibration_peak"] < 100
    for flag in ("running", "defrost", "door_open"):
        assert v[flag] in (0.0, 1.0)
    assert (v["motor_current"] > 0.5) == (v["running"] == 1.0)


@pytest.fixture(scope="module")
def unit() -> Iterator[SimulatedUnit]:
    u = start_unit(seed=1, speed=60, slave_id=SLAVE, start_clock_s=12 * 3600)
    yield u
    u.stop()


def test_minimalmodbus_reads_what_the_unit_serves(unit: SimulatedUnit) -> None:
    inst = instrument(unit.port, SLAVE)
    for _ in range(5):
        before = unit.registers
        words = inst.read_registers(0, SPAN, functioncode=4)
        after = unit.registers
        # The reply is one consistent snapshot: exactly what the physics published, before or after.
        assert tuple(words) in (before, after)
        assert_plausible(decode(words))
        time.sleep(0.1)
    # Single points, as the agent's diag command reads them, with the profile's own types and orders.
    assert inst.read_float(8, functioncode=4) == pytest.approx(
        decode(unit.registers)["cabinet_temp"], abs=0.5
    )
    assert inst.read_register(20, functioncode=4) in (0, 1)
    assert inst.read_register(23, number_of_decimals=1, functioncode=4, signed=True) == pytest.approx(
        decode(unit.registers)["evaporator_temp"], abs=1.0
    )


def test_register_encoding_follows_the_profile(unit: SimulatedUnit) -> None:
    values = unit.values
    words = unit.registers
    decoded = decode(words)
    for p in PROFILE.points:
        tolerance = 0.051 if p.type == "int16" else 1e-5 * max(1.0, abs(values[p.name]))
        assert decoded[p.name] == pytest.approx(values[p.name], abs=tolerance), p.name
    # The vibration block is word-swapped (CDAB): read as ABCD it would be a different number.
    rms = PROFILE.point("vibration_rms")
    swapped = profile.Point("x", 4, rms.address, "float32", "ABCD").value(list(words[16:18]))
    assert swapped != pytest.approx(decoded["vibration_rms"], rel=1e-3)


def test_pymodbus_client_reads_the_same_map(unit: SimulatedUnit) -> None:
    client = ModbusSerialClient(unit.port, baudrate=19200, timeout=0.5, retries=0)
    assert client.connect()
    try:
        rr = client.read_input_registers(0, count=SPAN, device_id=SLAVE)
        assert not rr.isError()
        assert len(rr.registers) == SPAN
        assert_plausible(decode(rr.registers))
        # Part of the map, starting mid-way: addresses are absolute.
        rr = client.read_input_registers(20, count=4, device_id=SLAVE)
        assert rr.registers[0] in (0, 1) and rr.registers[1] in (0, 1)
    finally:
        client.close()


@pytest.mark.parametrize(("address", "count"), [(24, 1), (22, 4), (100, 2), (65534, 2)])
def test_unknown_addresses_get_exception_2(unit: SimulatedUnit, address: int, count: int) -> None:
    client = ModbusSerialClient(unit.port, baudrate=19200, timeout=0.5, retries=0)
    assert client.connect()
    try:
        rr = client.read_input_registers(address, count=count, device_id=SLAVE)
    finally:
        client.close()
    assert isinstance(rr, ExceptionResponse)
    assert rr.exception_code == 2


def test_only_input_registers_exist(unit: SimulatedUnit) -> None:
    inst = instrument(unit.port, SLAVE)
    with pytest.raises(minimalmodbus.IllegalRequestError):
        inst.read_registers(24, 1, functioncode=4)
    with pytest.raises(minimalmodbus.IllegalRequestError):
        inst.read_registers(0, 2, functioncode=3)  # holding registers: none
    with pytest.raises(minimalmodbus.IllegalRequestError):
        inst.write_register(0, 5, functioncode=6)
    assert inst.read_register(21, functioncode=4) in (0, 1)  # the slave is still fine afterwards


def test_other_slave_ids_get_no_answer(unit: SimulatedUnit) -> None:
    with pytest.raises(minimalmodbus.NoResponseError):
        instrument(unit.port, SLAVE + 1, timeout=0.2).read_registers(0, 2, functioncode=4)
    assert instrument(unit.port, SLAVE).read_register(20, functioncode=4) in (0, 1)


def test_time_runs_at_speed_times_wall_clock() -> None:
    u = start_unit(seed=2, speed=600)
    try:
        t0, w0 = u.compressor.sim_time, time.monotonic()
        time.sleep(1.0)
        t1, w1 = u.compressor.sim_time, time.monotonic()
    finally:
        u.stop()
    assert t1 - t0 == pytest.approx(600 * (w1 - w0), rel=0.35)


def test_fleet_serves_each_unit_on_its_own_port_and_idles_cheaply() -> None:
    faults = {1: [FaultSpec("bearing_wear", 0, 0)]}
    with start_fleet(3, faults, speed=60, seed=10, start_clock_s=0) as fleet:
        ports = [u.port for u in fleet.units]
        assert len(set(ports)) == 3
        assert [u.slave_id for u in fleet.units] == [1, 2, 3]
        assert fleet.units[1].compressor.severity() == {"bearing_wear": 1.0}
        assert fleet.units[0].compressor.severity() == {}
        for u in fleet.units:
            assert_plausible(decode(instrument(u.port, u.slave_id).read_registers(0, SPAN, functioncode=4)))
        # Nothing spins while nobody asks: a second of wall time costs a small fraction of a CPU second.
        cpu, wall = time.process_time(), time.monotonic()
        time.sleep(1.0)
        assert (time.process_time() - cpu) / (time.monotonic() - wall) < 0.25
    # Stopped: the ports no longer answer.
    with pytest.raises((serial.SerialException, minimalmodbus.NoResponseError, OSError)):
        instrument(ports[0], 1, timeout=0.2).read_registers(0, 2, functioncode=4)


def test_start_arguments_are_checked_before_any_pty_opens() -> None:
    with pytest.raises(ValueError, match="speed"):
        start_unit(seed=0, speed=0)
    with pytest.raises(ValueError, match="slave_id"):
        start_unit(seed=0, slave_id=0)
    with pytest.raises(ValueError, match="baud"):
        start_unit(seed=0, baud=12345)
    with pytest.raises(ValueError, match="device index 3"):
        start_fleet(2, {3: [FaultSpec("bearing_wear")]}, speed=1)


def test_agent_config_polls_the_unit(unit: SimulatedUnit, tmp_path: Path) -> None:
    text = agent_config_toml(unit, "shop-1", "sim-0", tmp_path / "sim-0", "mqtt://127.0.0.1:1883")
    assert tomllib.loads(text) == {
        "agent": {
            "site": "shop-1",
            "device": "sim-0",
            "state_dir": str(tmp_path / "sim-0"),
            "poll_interval": "1s",
        },
        "mqtt": {"url": "mqtt://127.0.0.1:1883"},
        "modbus": [
            {
                "name": "controller",
                "port": unit.port,
                "baud": 19200,
                "slave": SLAVE,
                "profile": "signalcraft-sim-compressor",
                "timeout": "300ms",
            }
        ],
    }
    with pytest.raises(ValueError, match="device"):
        agent_config_toml(unit, "shop-1", "sim 0", tmp_path, "mqtt://127.0.0.1:1883")


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("simulate")(simulate)
    app.command("noop")(lambda: None)  # two commands, so "simulate" is addressed by name as in the umbrella
    return app


def test_simulate_command_writes_one_agent_config_per_unit(tmp_path: Path) -> None:
    target = tmp_path / "agent.toml"
    result = CliRunner().invoke(
        cli(),
        ["simulate", "--devices", "2", "--fault", "bearing_wear@60+120:1", "--speed", "60",
         "--write-agent-config", str(target), "--duration", "0.5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    configs = [tomllib.loads((tmp_path / f"agent-{i}.toml").read_text()) for i in range(2)]
    assert [c["agent"]["device"] for c in configs] == ["sim-0", "sim-1"]
    assert [c["modbus"][0]["slave"] for c in configs] == [1, 2]
    assert configs[0]["modbus"][0]["port"] != configs[1]["modbus"][0]["port"]
    assert configs[1]["agent"]["state_dir"] == str(tmp_path.resolve() / "sim-1")
    for c in configs:
        assert c["modbus"][0]["port"] in result.output
    assert "bearing_wear@60+120" in result.output


@pytest.mark.parametrize(
    ("fault", "message"),
    [("bearing_wear:2", "device index 2"), ("valve_leak:0", "unknown fault kind"), ("bearing_wear", "KIND:")],
)
def test_simulate_command_rejects_bad_faults(fault: str, message: str) -> None:
    result = CliRunner().invoke(cli(), ["simulate", "--devices", "2", "--fault", fault, "--duration", "0"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
