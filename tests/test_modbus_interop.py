"""Against independent implementations: ``mbpoll`` (Debian package) as a master against our simulator;
pymodbus' stock serial server behind a socat pty pair and its TCP server as slaves for our master."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from common.errors import IllegalAddress
from edge_agent.sources.modbus import profile as profiles
from edge_agent.sources.modbus.bus import Bus
from edge_agent.sources.modbus.decode import encode
from edge_agent.sources.modbus.rtu import RtuLine
from edge_agent.sources.modbus.source import SlaveSource
from simulator.modbus_slave import SimulatedUnit, start_unit
from simulator.rtu_bus import SimBus

MBPOLL = shutil.which("mbpoll")
SOCAT = shutil.which("socat")
needs_mbpoll = pytest.mark.skipif(MBPOLL is None, reason="mbpoll not installed (apt-get install mbpoll)")
needs_socat = pytest.mark.skipif(SOCAT is None, reason="socat not installed (apt-get install socat)")
HOLDING = [1, *encode(12.5, "float32"), *encode(-3.25, "float32", "CDAB"), 65535]


def _mbpoll(port: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [MBPOLL or "mbpoll", "-m", "rtu", "-b", "19200", "-P", "none", "-0", "-1", "-o", "0.5", *args, port]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20)


def _values(out: str) -> dict[int, float]:
    return {int(a): float(v) for a, v in re.findall(r"^\[(\d+)\]:\s+(-?[\d.]+)", out, re.M)}


@pytest.fixture(scope="module")
def unit() -> Iterator[SimulatedUnit]:
    u = start_unit(seed=5, speed=1.0, slave_id=4, start_clock_s=12 * 3600)
    yield u
    u.stop()


@needs_mbpoll
def test_mbpoll_reads_the_simulated_compressor_in_both_word_orders(unit: SimulatedUnit) -> None:
    big = _mbpoll(unit.port, "-a", "4", "-t", "3:float", "-B", "-r", "8", "-c", "1")  # ABCD
    assert big.returncode == 0, big.stderr
    assert _values(big.stdout)[8] == pytest.approx(unit.values["cabinet_temp"], abs=0.5)
    little = _mbpoll(unit.port, "-a", "4", "-t", "3:float", "-r", "16", "-c", "2")  # mbpoll default: CDAB
    assert little.returncode == 0, little.stderr
    got = _values(little.stdout)
    assert got[16] == pytest.approx(unit.values["vibration_rms"], abs=0.5)
    assert got[18] == pytest.approx(unit.values["vibration_peak"], abs=0.5)


@needs_mbpoll
def test_mbpoll_sees_values_exceptions_and_silence_from_a_simulated_line() -> None:
    with SimBus({1: {"holding": {0: HOLDING}}, 2: {"input": {0: [7, 8]}}}) as sim:
        ok = _mbpoll(sim.port, "-a", "1", "-t", "4", "-r", "0", "-c", "6")
        assert ok.returncode == 0, ok.stderr
        assert _values(ok.stdout) == {0: 1, 1: 16712, 2: 0, 3: 0, 4: 49232, 5: 65535}
        flt = _mbpoll(sim.port, "-a", "1", "-t", "4:float", "-B", "-r", "1", "-c", "1")
        assert _values(flt.stdout) == {1: 12.5}
        illegal = _mbpoll(sim.port, "-a", "2", "-t", "4", "-r", "0", "-c", "1")  # slave 2 has no holding
        assert illegal.returncode != 0 and "Illegal data address" in illegal.stderr + illegal.stdout
        dead = _mbpoll(sim.port, "-a", "9", "-t", "4", "-r", "0", "-c", "1")
        assert dead.returncode != 0 and "timed out" in dead.stderr + dead.stdout


def _device(sid: int) -> SimDevice:
    return SimDevice(
        sid,
        simdata=(
            [SimData(0, values=[True, False, True], datatype=DataType.BITS)],
            [SimData(0, values=[False, True], datatype=DataType.BITS)],
            [SimData(0, values=HOLDING, datatype=DataType.REGISTERS)],
            [SimData(0, values=[sid, 2, 3], datatype=DataType.REGISTERS)],
        ),
    )


class _LoopThread:
    """An event loop in a thread, running one pymodbus server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def socat_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    a, b = tmp_path / "ttyA", tmp_path / "ttyB"
    proc = subprocess.Popen(
        [SOCAT or "socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while not (a.exists() and b.exists()):
        assert time.monotonic() < deadline, "socat did not create the pty pair"
        time.sleep(0.02)
    yield str(a), str(b)
    proc.terminate()
    proc.wait(5)


@needs_socat
def test_our_master_against_pymodbus_serial_server_over_socat(socat_pair: tuple[str, str]) -> None:
    server_end, our_end = socat_pair
    rt = _LoopThread()

    async def start() -> ModbusSerialServer:
        server = ModbusSerialServer([_device(1), _device(2)], port=server_end, baudrate=19200)
        await server.serve_forever(background=True)
        return server

    server = rt.run(start())
    line = RtuLine(our_end, 19200)
    try:
        time.sleep(0.2)  # the server opens its end
        assert line.read(1, 3, 0, 6, 0.5) == HOLDING
        assert line.read(2, 4, 0, 3, 0.5) == [2, 2, 3]
        assert line.read(1, 1, 0, 3, 0.5) == [1, 0, 1]
        assert line.read(2, 2, 0, 2, 0.5) == [0, 1]
        with pytest.raises(IllegalAddress):
            line.read(1, 3, 100, 2, 0.5)
        prof = profiles.parse(
            {
                "profile": {"name": "p"},
                "points": [
                    {"name": "flow", "function": 3, "address": 1, "type": "float32"},
                    {"name": "temp", "function": 3, "address": 3, "type": "float32", "order": "CDAB"},
                    {"name": "valve", "function": 1, "address": 2, "type": "bit"},
                ],
            }
        )
        src = SlaveSource("p", 1, prof, interval=1.0, timeout=0.5, retries=0, max_gap=10)
        for g in src.groups:
            src.poll_group(line, g)
        assert src.read().values == {"flow": 12.5, "temp": -3.25, "valve": 1.0}
    finally:
        line.close()
        rt.run(server.shutdown())
        rt.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tcp_device_through_pymodbus_client_and_server() -> None:
    from edge_agent.sources.modbus.tcp import TcpLink  # pymodbus client: only when TCP is configured

    port = _free_port()
    rt = _LoopThread()

    async def start() -> ModbusTcpServer:
        server = ModbusTcpServer([_device(1), _device(3)], address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        return server

    server = rt.run(start())
    prof = profiles.parse(
        {
            "profile": {"name": "p"},
            "points": [{"name": "flow", "function": 3, "address": 1, "type": "float32"}],
        }
    )
    gw = SlaveSource("gw3", 3, prof, interval=0.05, timeout=0.5, retries=0, max_gap=10)
    bus = Bus(f"127.0.0.1:{port}", lambda: TcpLink("127.0.0.1", port, 0.5), [gw])
    try:
        bus.start()
        assert bus.wait_first_round(5.0)
        assert gw.read().values == {"flow": 12.5} and gw.status.state == "online"
        link = TcpLink("127.0.0.1", port, 0.5)
        link.open()
        with pytest.raises(IllegalAddress, match=r"\[code:2\]"):
            link.read(1, 3, 100, 1, 0.5)
        assert link.read(1, 4, 0, 3, 0.5) == [1, 2, 3]
        link.close()
        rt.run(server.shutdown())  # the device goes away: the slave goes stale, the bus keeps trying
        deadline = time.monotonic() + 5
        while gw.status.state != "stale":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert bus.alive and bus.health.state == "port-down"
    finally:
        bus.stop()
        rt.stop()


def test_tcp_exception_map_covers_every_pymodbus_exception() -> None:
    from pymodbus import exceptions as mbexc

    from edge_agent.sources.modbus import tcp

    every = {
        obj
        for obj in vars(mbexc).values()
        if isinstance(obj, type) and issubclass(obj, mbexc.ModbusException)
    }
    mapped = {lib for lib, _, _ in tcp._MAP}
    assert every <= mapped, every - mapped
