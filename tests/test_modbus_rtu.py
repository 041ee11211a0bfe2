"""The RTU line and a slave's state machine against the simulator's real Modbus RTU slave on a pty."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from common.errors import DeviceTimeout, IllegalAddress
from edge_agent.sources.modbus import profile as profiles
from edge_agent.sources.modbus.errors import PortError
from edge_agent.sources.modbus.rtu import RtuLine, crc16, read_request
from edge_agent.sources.modbus.source import SlaveSource
from edge_agent.sources.modbus.trace import Tracer
from simulator.modbus_slave import SimulatedUnit, start_unit

PROFILE = profiles.load("signalcraft-sim-compressor")


@pytest.fixture(scope="module")
def unit():
    u = start_unit(seed=3, speed=1.0)
    yield u
    u.stop()


def _slave(slave: int = 1, profile: profiles.Profile = PROFILE, retries: int = 1) -> SlaveSource:
    return SlaveSource("controller", slave, profile, interval=1.0, timeout=0.2, retries=retries, max_gap=10)


def _poll(src: SlaveSource, line: RtuLine) -> None:
    for group in src.groups:
        src.poll_group(line, group)


def test_crc_and_request_frame_match_the_spec() -> None:
    # The example of the Modbus over serial line spec, read 1 holding register: 01 03 00 00 00 01 84 0A
    assert read_request(1, 3, 0, 1).hex(" ") == "01 03 00 00 00 01 84 0a"
    assert crc16(b"123456789") == 0x4B37  # CRC-16/MODBUS check value


def test_reads_every_point_in_one_transaction(unit: SimulatedUnit) -> None:
    src, line = _slave(), RtuLine(unit.port, 19200)
    try:
        _poll(src, line)
    finally:
        line.close()
    result = src.read()
    assert result.missing == []
    assert set(result.values) == {p.name for p in PROFILE.points}
    assert src.status.state == "online" and src.status.transactions == 1
    for name, served in unit.values.items():
        assert result.values[name] == pytest.approx(served, abs=0.051), name


def test_silent_slave_goes_stale_at_once_and_then_costs_little(unit: SimulatedUnit) -> None:
    src, line = _slave(slave=9, retries=1), RtuLine(unit.port, 19200)
    try:
        _poll(src, line)
        assert src.status.state == "stale"
        assert "no answer" in src.status.last_error and "slave id" in src.status.last_error
        assert set(src.read().missing) == {p.name for p in PROFILE.points}
        assert src.status.transactions == 2  # the first failure is retried once
        _poll(src, line)  # a stale slave is probed once, without retries, then backed off
        assert src.status.transactions == 3
        t0 = time.monotonic()
        for _ in range(5):
            _poll(src, line)
        assert time.monotonic() - t0 < 0.1  # skipped while backing off: no 200 ms timeouts each cycle
        assert src.status.transactions == 3
    finally:
        line.close()


def test_missing_port_is_a_port_error_that_says_what_to_check(tmp_path: Path) -> None:
    line = RtuLine(str(tmp_path / "ttyUSB9"), 19200)
    with pytest.raises(PortError, match="serial port not found"):
        line.read(1, 4, 0, 2, 0.1)


def test_exception_answer_is_recognised_without_waiting_for_the_timeout(unit: SimulatedUnit) -> None:
    line = RtuLine(unit.port, 19200)
    try:
        t0 = time.monotonic()
        with pytest.raises(IllegalAddress, match=r"\[code:2\]") as info:
            line.read(1, 3, 0, 2, timeout=1.0)  # the simulator has input registers only
        assert info.value.code == 2  # type: ignore[attr-defined]
        assert time.monotonic() - t0 < 0.5
        with pytest.raises(DeviceTimeout):
            line.read(77, 4, 0, 2, timeout=0.05)
    finally:
        line.close()


def test_illegal_address_marks_only_its_points(unit: SimulatedUnit, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[profile]\nname = "bad"\n'
        '[[points]]\nname = "cabinet_temp"\nfunction = 4\naddress = 8\ntype = "float32"\n'
        '[[points]]\nname = "nowhere"\nfunction = 4\naddress = 900\ntype = "uint16"\n'
    )
    src, line = _slave(profile=profiles.load(path)), RtuLine(unit.port, 19200)
    try:
        _poll(src, line)
    finally:
        line.close()
    assert len(src.requests) == 2
    result = src.read()
    assert result.missing == ["nowhere"]
    assert "cabinet_temp" in result.values
    assert src.status.state == "error" and "illegal" in src.status.last_error
    assert src.status.exceptions == 1 and src.status.retries == 0  # never retried: it cannot improve


def test_trace_shows_each_frame_in_hex_with_timing(unit: SimulatedUnit) -> None:
    tracer = Tracer(True)
    line = RtuLine(unit.port, 19200, tracer=tracer)
    try:
        line.read(1, 4, 20, 1, 0.2)
    finally:
        line.close()
    [text] = tracer.lines()
    assert text.startswith(f"{unit.port} slave 1 TX 01 04 00 14 00 01 ")
    assert "| RX 01 04 02 00 0" in text and "ms) ok" in text
