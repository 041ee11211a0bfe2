"""Fault cases on a simulated RS-485 line (pymodbus slaves on one pty): corrupted answers, lost requests,
late answers, busy slaves, a dead slave among live ones, the port unplugged and back, a crashing loop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.errors import CrcError, DeviceTimeout
from edge_agent.sources.modbus import profile as profiles
from edge_agent.sources.modbus.bus import Bus
from edge_agent.sources.modbus.rtu import RtuLine
from edge_agent.sources.modbus.source import Link, SlaveSource
from simulator.rtu_bus import LineFaults, SimBus


def banks(*slaves: int) -> dict[int, dict]:
    # Each slave serves its own id in register 0: a desynchronised answer would show at once.
    return {s: {"holding": {0: [s, 0x4148, 0x0000]}} for s in slaves}  # flow = 12.5


def slave(sid: int, interval: float = 0.25, retries: int = 1, timeout: float = 0.05) -> SlaveSource:
    named = profiles.parse(
        {
            "profile": {"name": f"s{sid}"},
            "points": [
                {**p, "name": f"{p['name']}_{sid}"}
                for p in (
                    {"name": "level", "function": 3, "address": 0, "type": "uint16"},
                    {"name": "flow", "function": 3, "address": 1, "type": "float32"},
                )
            ],
        }
    )
    return SlaveSource(f"s{sid}", sid, named, interval=interval, timeout=timeout, retries=retries, max_gap=10)


@pytest.fixture
def stop_later() -> Iterator[list]:
    things: list = []
    yield things
    for t in reversed(things):
        t.stop()


def test_corrupted_answers_are_retried_and_counted() -> None:
    with SimBus(banks(1), faults=LineFaults(corrupt_rate=0.3, seed=4)) as sim:
        line = RtuLine(sim.port, 19200)
        src = slave(1, retries=5)
        try:
            for _ in range(30):
                src.poll_group(line, src.groups[0])
                assert src.read().values == {"level_1": 1, "flow_1": 12.5}
        finally:
            line.close()
    assert src.status.crc_errors > 3 and src.status.retries == src.status.crc_errors
    assert src.status.state == "online"


def test_late_answer_is_never_taken_for_the_next_one() -> None:
    with SimBus(banks(1, 2), faults=LineFaults(late={1: 0.08})) as sim:
        line = RtuLine(sim.port, 19200)
        try:
            for _ in range(5):
                with pytest.raises(DeviceTimeout):
                    line.read(1, 3, 0, 1, timeout=0.05)  # answers 30 ms after we gave up
                assert line.read(2, 3, 0, 1, timeout=0.05) == [2]
                assert line.read(1, 3, 0, 1, timeout=0.2) == [1]  # a patient master still gets it
        finally:
            line.close()
        assert line.late_discarded >= 5 * 7  # each late 7-byte answer was drained, not misread


def test_busy_slave_is_retried_and_illegal_is_not() -> None:
    with SimBus(banks(3), faults=LineFaults(busy_every={3: 2})) as sim:
        line = RtuLine(sim.port, 19200)
        src = slave(3, retries=2)
        try:
            for _ in range(6):
                src.poll_group(line, src.groups[0])
                assert src.read().values["level_3"] == 3
        finally:
            line.close()
    assert src.status.exceptions >= 3 and src.status.state == "online"


def test_lost_requests_cost_a_retry_not_the_value() -> None:
    with SimBus(banks(1), faults=LineFaults(drop_rate=0.2, seed=1)) as sim:
        line = RtuLine(sim.port, 19200)
        src = slave(1, retries=3)
        try:
            for _ in range(20):
                src.poll_group(line, src.groups[0])
        finally:
            line.close()
    assert src.status.timeouts > 0 and src.status.state == "online"


def test_garbage_on_the_line_is_a_crc_error() -> None:
    with SimBus(banks(1), faults=LineFaults(corrupt_rate=1.0)) as sim:
        line = RtuLine(sim.port, 19200)
        try:
            with pytest.raises(CrcError, match="garbled"):
                line.read(1, 3, 0, 3, timeout=0.1)
        finally:
            line.close()


def test_dead_slave_is_stale_in_the_first_round_and_live_ones_keep_their_rate(stop_later: list) -> None:
    sim = SimBus(banks(1, 2, 3), faults=LineFaults(corrupt_rate=0.01, seed=7))
    stop_later.append(sim)
    slaves = [slave(s) for s in (1, 2, 3, 4)]  # 4 is dead: not on the line at all
    bus = Bus(sim.port, lambda: RtuLine(sim.port, 19200), slaves)
    stop_later.append(bus)
    t0 = time.monotonic()
    bus.start()
    assert bus.wait_first_round(2.0)
    assert slaves[3].status.state == "stale"  # within the first cycle
    assert slaves[3].read().missing == ["level_4", "flow_4"]
    time.sleep(3.0)
    elapsed = time.monotonic() - t0
    nominal = elapsed / 0.25
    for s in slaves[:3]:
        assert s.status.state == "online", s.status.describe()
        assert s.status.polls >= 0.95 * int(nominal), (s.name, s.status.polls, nominal)
    assert slaves[3].status.transactions <= 6  # probed with back-off, not every cycle


def test_port_unplugged_and_back(tmp_path: Path, stop_later: list) -> None:
    sim = SimBus(banks(1, 2), link=tmp_path / "ttyUSB0")
    stop_later.append(sim)
    slaves = [slave(1, interval=0.05), slave(2, interval=0.05)]
    bus = Bus(sim.port, lambda: RtuLine(sim.port, 19200), slaves)
    stop_later.append(bus)
    bus.start()
    assert bus.wait_first_round(2.0) and all(s.status.state == "online" for s in slaves)
    sim.unplug()
    _wait(lambda: bus.health.state == "port-down" and all(s.status.state == "stale" for s in slaves))
    assert all(s.read().values == {} for s in slaves)
    assert "serial port" in slaves[0].status.last_error
    time.sleep(0.3)  # the bus retries with back-off while the port is gone
    sim.plug()
    _wait(lambda: all(s.status.state == "online" for s in slaves), timeout=5.0)
    assert bus.health.state == "running" and bus.health.port_errors >= 1
    assert slaves[1].read().values["level_2"] == 2


class _Flaky:
    """A link that breaks its owner's loop once with a bug-like exception, then works."""

    def __init__(self, inner: Link) -> None:
        self.inner, self.name, self.broken = inner, inner.name, False

    def read(self, slave: int, function: int, address: int, count: int, timeout: float) -> list[int]:
        if not self.broken:
            self.broken = True
            raise ZeroDivisionError("a bug")
        return self.inner.read(slave, function, address, count, timeout)

    def close(self) -> None:
        self.inner.close()


def test_supervisor_restarts_a_crashed_bus_loop_and_shows_it(stop_later: list, monkeypatch) -> None:
    monkeypatch.setattr("edge_agent.sources.modbus.bus.CRASH_BACKOFF_S", (0.05, 0.1))
    sim = SimBus(banks(1))
    stop_later.append(sim)
    flaky = _Flaky(RtuLine(sim.port, 19200))
    src = slave(1, interval=0.05)
    bus = Bus(sim.port, lambda: flaky, [src])
    stop_later.append(bus)
    bus.start()
    _wait(lambda: src.status.state == "online")
    assert bus.health.crashes == 1 and "ZeroDivisionError: a bug" in bus.health.last_crash
    assert bus.alive


def _wait(cond, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)
