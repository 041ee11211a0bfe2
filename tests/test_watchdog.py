"""The systemd watchdog: the real agent process under a real sd_notify socket (what systemd listens on).

READY=1 arrives after the first cycle; WATCHDOG=1 keeps arriving through a broker outage (the uplink is
retrying, a restart would not help); it stops when the poll loop cannot complete a cycle — here because
the buffer database is locked, as when the SD card stalls — so systemd would restart the agent, and it
resumes once the loop moves again.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent import systemd
from signalcraft import embedded
from simulator.modbus_slave import SimulatedUnit, start_unit
from tests.field_helpers import AgentProcess, agent_toml, clean_env

WATCHDOG_USEC = 1_000_000  # WatchdogSec=1s: fed every 0.5 s


class NotifyListener:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[tuple[float, str]] = []

    def collect(self, seconds: float) -> list[str]:
        """Messages arriving within ``seconds`` from now."""
        got: list[str] = []
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.messages.append((time.monotonic(), data))
            got.append(data)
        return got

    def wait_for(self, text: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in m for m in self.collect(min(0.5, end - time.monotonic()))):
                return
        raise AssertionError(f"{text!r} never arrived; got {[m for _, m in self.messages][-10:]}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def unit() -> Iterator[SimulatedUnit]:
    u = start_unit(seed=4, speed=10.0)
    yield u
    u.stop()


def test_fed_through_a_broker_outage_and_not_while_the_poll_loop_is_stuck(
    unit: SimulatedUnit, tmp_path: Path
) -> None:
    listener = NotifyListener(tmp_path / "notify.sock")
    nobody = f"mqtt://127.0.0.1:{embedded.free_port()}"  # the broker is down for the whole test
    config = tmp_path / "agent.toml"
    config.write_text(agent_toml(tmp_path / "state", nobody, unit.port, poll="100ms"))
    env = clean_env(NOTIFY_SOCKET=str(listener.path), WATCHDOG_USEC=str(WATCHDOG_USEC))
    agent = AgentProcess(config, tmp_path / "agent.log", env)
    lock: sqlite3.Connection | None = None
    try:
        listener.wait_for("READY=1", timeout=20)
        # Broker unreachable, uplink retrying: still fed, every half WatchdogSec.
        fed = listener.collect(2.5).count("WATCHDOG=1")
        assert fed >= 3, listener.messages
        # The loop stalls: every cycle waits on a buffer another process holds locked.
        lock = sqlite3.connect(tmp_path / "state" / "buffer.sqlite3", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        listener.wait_for("STATUS=stalled: poll loop", timeout=5)
        assert listener.collect(2.5).count("WATCHDOG=1") == 0  # systemd restarts us after WatchdogSec
        lock.execute("ROLLBACK")
        lock.close()
        lock = None
        listener.wait_for("WATCHDOG=1", timeout=15)  # the loop moves again (after its crash back-off)
    finally:
        if lock is not None:
            lock.close()
        agent.stop()
        listener.close()
    assert agent.proc.returncode == 0  # SIGTERM is a clean stop
    assert "watchdog not fed" in (tmp_path / "agent.log").read_text()


def test_stalled_names_what_stopped() -> None:
    now = 100.0
    probes = [
        systemd.Probe("poll loop", lambda: 99.5, 3.0),
        systemd.Probe("uplink", lambda: 80.0, 15.0),
        systemd.Probe("sender", lambda: 0.0, 15.0),
    ]
    assert systemd.stalled(probes, now) == [
        "uplink: no progress for 20 s (limit 15 s)",
        "sender: not running",
    ]
    assert systemd.stalled(probes[:1], now) == []
