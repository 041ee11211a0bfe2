"""Simulated compressors served as Modbus RTU slaves on pseudo-terminals.

Each unit gets its own pty; the agent opens ``unit.port`` (``/dev/pts/N``) exactly as it would open a
USB-RS485 adapter. The Modbus side is pymodbus' server (RTU framer, PDU decoding, exception responses,
a ``SimDevice`` datastore); only the byte transport is ours, because the pty master has no path for
pyserial to open (see :mod:`simulator.ptyport`).

Threads: one event loop serves every pty of a fleet, and one physics thread advances every compressor at
``speed`` × wall clock and publishes the encoded registers as an immutable tuple. The Modbus request path
only copies the latest tuple into pymodbus' register list, so a read never waits for the physics; both
threads block while idle (the loop on its selector, the physics on a timed ``Event.wait``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusBaseServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.transport import CommParams, CommType

from edge_agent.sources.modbus import profile as profiles
from simulator.compressor import Compressor
from simulator.faults import FaultSpec
from simulator.ptyport import Pty, PtyTransport

PROFILE = "signalcraft-sim-compressor"
TICK = 0.25  # wall seconds between physics updates; the agent polls at 1 s
BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)  # what the agent accepts
_T = TypeVar("_T")


class _PtyServer(ModbusBaseServer):
    """pymodbus' server listening on a pty master instead of a pyserial port."""

    def __init__(self, device: SimDevice, pty: Pty, slave_id: int) -> None:
        self._pty = pty
        self._slave_id = slave_id
        params = CommParams(
            comm_type=CommType.SERIAL,
            comm_name=f"sim {pty.path}",
            source_address=(pty.path, 0),
            reconnect_delay=0.0,
            reconnect_delay_max=0.0,
            timeout_connect=0.0,
        )
        super().__init__(
            params,
            device,
            ignore_missing_devices=True,
            broadcast_enable=False,
            identity=None,
            framer=FramerType.RTU,
            trace_packet=None,
            trace_pdu=self._addressed_to_me,
            trace_connect=None,
            custom_pdu=None,
        )

    def init_setup_connect_listen(self, host: str, port: int) -> None:
        # The one hook pymodbus offers for "how the listener is created"; the rest of the server is stock.
        self.call_create = self._open_pty

    async def _open_pty(self) -> tuple[PtyTransport, asyncio.Protocol]:
        protocol = self.handle_new_connection()
        transport = PtyTransport(self.loop, self._pty.master_fd, protocol)
        transport.start()
        return transport, protocol

    def _addressed_to_me(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        # On an RS-485 bus a slave stays silent for requests to other addresses (and broadcasts to a
        # read-only device); pymodbus drops a received PDU when the trace hook returns None.
        if not sending and pdu.dev_id != self._slave_id:
            return None  # type: ignore[return-value]
        return pdu


class _Runtime:
    """The event-loop thread and the physics thread shared by the units of one fleet."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.units: list[SimulatedUnit] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, name="sim-modbus", daemon=True)
        self._physics = threading.Thread(target=self._run_physics, name="sim-physics", daemon=True)
        self._loop_thread.start()
        self._physics.start()

    def call(self, coro: Coroutine[Any, Any, _T], timeout: float = 10.0) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def add(self, unit: SimulatedUnit) -> None:
        with self._lock:
            self.units.append(unit)

    def remove(self, unit: SimulatedUnit) -> None:
        with self._lock:
            if unit in self.units:
                self.units.remove(unit)

    def _run_physics(self) -> None:
        last = time.monotonic()
        while not self._stopping.wait(TICK):
            now = time.monotonic()
            with self._lock:
                units = list(self.units)
            for unit in units:
                unit._advance(now - last)
            last = now

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._physics.join()
        # Scheduled work runs even if the loop thread has not reached run_forever yet.
        with contextlib.suppress(TimeoutError):
            self.call(_cancel_pending(), timeout=5.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._loop_thread.join()
        self.loop.close()


async def _cancel_pending() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class SimulatedUnit:
    """One simulated compressor = one Modbus RTU slave on its own pseudo-terminal."""

    def __init__(
        self,
        runtime: _Runtime,
        compressor: Compressor,
        slave_id: int,
        speed: float,
        baud: int,
        owns_runtime: bool,
    ) -> None:
        self.compressor = compressor
        self.slave_id = slave_id
        self.speed = speed
        self.baud = baud  # what a client should configure; a pty carries bytes at any rate
        self._runtime = runtime
        self._owns_runtime = owns_runtime
        self._lock = threading.Lock()
        self._profile = profiles.load(PROFILE)
        self._base = min(p.address for p in self._profile.points)
        self._span = max(p.address + p.width for p in self._profile.points) - self._base
        self.values: dict[str, float] = {}
        self._words: tuple[int, ...] = ()
        self._publish()
        self._pty = Pty.open()
        self.port = self._pty.path
        try:
            self._server = runtime.call(self._serve())
        except BaseException:
            self._pty.close()
            raise
        self._stopped = False
        runtime.add(self)

    def __repr__(self) -> str:
        return f"SimulatedUnit(port={self.port!r}, slave_id={self.slave_id}, speed={self.speed:g})"

    @property
    def registers(self) -> tuple[int, ...]:
        """The input registers the slave serves right now, from the first mapped address on."""
        return self._words

    async def _serve(self) -> _PtyServer:
        simdata = [
            SimData(p.address, values=p.raw(self.values[p.name]), datatype=DataType.REGISTERS, readonly=True)
            for p in self._profile.points
        ]
        device = SimDevice(self.slave_id, simdata=simdata, action=self._on_request)
        server = _PtyServer(device, self._pty, self.slave_id)
        await server.serve_forever(background=True)
        return server

    async def _on_request(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        # The register map has input registers only: anything else is an address the device lacks.
        if function_code != 4 or set_values is not None:
            return ExcCodes.ILLEGAL_ADDRESS
        words = self._words  # one atomic read of the tuple the physics thread published
        offset = self._base - start_address
        registers[offset : offset + len(words)] = words
        return None

    def _advance(self, wall_seconds: float) -> None:
        with self._lock:
            self.compressor.step(wall_seconds * self.speed)
            self._publish()

    def _publish(self) -> None:
        values = self.compressor.sensors()
        words = [0] * self._span
        for p in self._profile.points:
            at = p.address - self._base
            words[at : at + p.width] = p.raw(values[p.name])
        self.values = values
        self._words = tuple(words)

    def stop(self) -> None:
        """Stop serving and close the pty (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._runtime.remove(self)
        with contextlib.suppress(TimeoutError, RuntimeError):
            self._runtime.call(self._server.shutdown())
        self._pty.close()
        if self._owns_runtime:
            self._runtime.stop()


def _validate(speed: float, slave_id: int, baud: int) -> None:
    if not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed!r}")
    if not 1 <= slave_id <= 247:
        raise ValueError(f"slave_id must be 1..247 (Modbus unicast addresses), got {slave_id!r}")
    if baud not in BAUDS:
        raise ValueError(f"baud must be one of {', '.join(map(str, BAUDS))}, got {baud!r}")


def _clock_now() -> float:
    now = datetime.now()
    return now.hour * 3600 + now.minute * 60 + now.second


def start_unit(
    seed: int,
    faults: Sequence[FaultSpec] = (),
    speed: float = 1.0,
    slave_id: int = 1,
    baud: int = 19200,
    *,
    kind: str = "freezer",
    start_clock_s: float | None = None,
) -> SimulatedUnit:
    """Start one unit on its own pty and threads. ``start_clock_s`` None = the local time of day now."""
    _validate(speed, slave_id, baud)
    clock = _clock_now() if start_clock_s is None else start_clock_s
    compressor = Compressor(seed=seed, faults=faults, start_clock_s=clock, kind=kind)
    runtime = _Runtime()
    try:
        return SimulatedUnit(runtime, compressor, slave_id, speed, baud, owns_runtime=True)
    except BaseException:
        runtime.stop()
        raise


class Fleet:
    """Several units sharing one event loop and one physics thread. A context manager."""

    def __init__(self, runtime: _Runtime, units: list[SimulatedUnit]) -> None:
        self.units = units
        self._runtime = runtime

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[SimulatedUnit]:
        return iter(self.units)

    def __len__(self) -> int:
        return len(self.units)

    def stop(self) -> None:
        for unit in self.units:
            unit.stop()
        self._runtime.stop()


def fleet_kind(index: int) -> str:
    """Every third unit of a fleet is a cold room, the rest are freezers (a typical small shop)."""
    return "cold_room" if index % 3 == 2 else "freezer"


def start_fleet(
    devices: int,
    faults: Mapping[int, Sequence[FaultSpec]] | None = None,
    speed: float = 1.0,
    seed: int = 0,
    *,
    baud: int = 19200,
    start_clock_s: float | None = None,
) -> Fleet:
    """Start ``devices`` units: unit i has seed ``seed + i``, slave id ``i + 1``, kind :func:`fleet_kind`."""
    faults = dict(faults or {})
    if not 1 <= devices <= 247:
        raise ValueError(f"devices must be 1..247, got {devices!r}")
    bad = sorted(i for i in faults if not 0 <= i < devices)
    if bad:
        raise ValueError(f"fault for device index {bad[0]}, but device indices are 0..{devices - 1}")
    _validate(speed, 1, baud)
    clock = _clock_now() if start_clock_s is None else start_clock_s
    compressors = [
        Compressor(seed=seed + i, faults=faults.get(i, ()), start_clock_s=clock, kind=fleet_kind(i))
        for i in range(devices)
    ]
    runtime = _Runtime()
    units: list[SimulatedUnit] = []
    try:
        for i, compressor in enumerate(compressors):
            units.append(SimulatedUnit(runtime, compressor, i + 1, speed, baud, owns_runtime=False))
    except BaseException:
        Fleet(runtime, units).stop()
        raise
    return Fleet(runtime, units)
