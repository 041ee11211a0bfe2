"""The RTU source against the simulator's real Modbus RTU slave on a pseudo-terminal."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from edge_agent.config import ModbusDevice
from edge_agent.sources.modbus import profile as profiles
from edge_agent.sources.modbus.rtu import RtuSource
from simulator.modbus_slave import SimulatedUnit, start_unit


@pytest.fixture(scope="module")
def unit():
    u = start_unit(seed=3, speed=1.0)
    yield u
    u.stop()


def _device(port: str, slave: int = 1, **kw) -> ModbusDevice:
    raw = {
        "name": "controller",
        "port": port,
        "slave": slave,
        "profile": "signalcraft-sim-compressor",
        "timeout": 0.2,
        **kw,
    }
    return msgspec.convert(raw, ModbusDevice, strict=False)


def test_reads_every_point_in_one_transaction(unit: SimulatedUnit) -> None:
    src = RtuSource(_device(unit.port), profiles.load("signalcraft-sim-compressor"))
    try:
        result = src.poll()
    finally:
        src.close()
    assert result.missing == []
    assert set(result.values) == {p.name for p in src.profile.points}
    assert src.status.state == "online" and src.status.transactions == 1
    # Decoded values match what the simulator serves, whatever each point's type and word order.
    for name, served in unit.values.items():
        assert result.values[name] == pytest.approx(served, abs=0.051), name
    assert -40 < result.values["cabinet_temp"] < 15
    assert result.values["running"] in (0.0, 1.0)


def test_silent_slave_goes_stale_at_once_and_then_costs_little(unit: SimulatedUnit) -> None:
    src = RtuSource(_device(unit.port, slave=9, retries=0), profiles.load("signalcraft-sim-compressor"))
    try:
        first = src.poll()
        assert src.status.state == "stale"
        assert "no answer" in src.status.last_error and "slave id" in src.status.last_error
        assert set(first.missing) == {p.name for p in src.profile.points}
        src.poll()  # second failure: back off
        t0 = time.monotonic()
        for _ in range(5):
            src.poll()
        assert time.monotonic() - t0 < 0.1  # skipped while backing off: no 200 ms timeouts each cycle
        assert src.status.transactions == 2
    finally:
        src.close()


def test_missing_port_says_what_to_check(tmp_path: Path) -> None:
    src = RtuSource(_device(str(tmp_path / "ttyUSB9")), profiles.load("signalcraft-sim-compressor"))
    result = src.poll()
    assert src.status.state == "stale"
    assert "serial port not found" in src.status.last_error
    assert len(result.missing) == len(src.profile.points)


def test_illegal_address_marks_only_its_points(unit: SimulatedUnit, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[profile]\nname = "bad"\n'
        '[[points]]\nname = "cabinet_temp"\nfunction = 4\naddress = 8\ntype = "float32"\n'
        '[[points]]\nname = "nowhere"\nfunction = 4\naddress = 900\ntype = "uint16"\n'
    )
    src = RtuSource(_device(unit.port, profile=str(path)), profiles.load(path))
    try:
        result = src.poll()
    finally:
        src.close()
    assert len(src.requests) == 2
    assert result.missing == ["nowhere"]
    assert "cabinet_temp" in result.values
    assert src.status.state == "error" and "illegal" in src.status.last_error
