"""A simulated RS-485 line: several Modbus RTU slaves on one pseudo-terminal, with line timing and faults.

The slaves are pymodbus' server (RTU framer, PDU decoding, exception answers) over register banks given
as data (``registers.json``: ``{"<slave id>": {"holding": {"<address>": [words…]}, "input": …, "coils": …,
"discrete_inputs": …}}``). Unmapped addresses answer exception 2, as a strict device does.

Line timing (``line_timing=True``): a pty carries bytes instantly, a real line does not. Each answer is
released when it would have finished arriving on a real line: the request's own frame time, the
3.5-character silence that ends it, then the answer's frame time. A writer thread sleeps until then
(``time.sleep`` is precise to ~0.1 ms; the event loop's timers are not), so a benchmark can compare the
master's cycle time with the theoretical line time.

Faults (:class:`LineFaults`): a fraction of answers with one byte flipped (a CRC error at the master), a
fraction of requests lost (the slave stays silent, as after a corrupted request), slaves that answer
late, dead slaves, and a slave that answers "busy" (exception 6) to every n-th request. ``unplug()`` and
``plug()`` make the port vanish and come back, like a USB adapter pulled out. ``check_baud=True`` makes
the slaves deaf to a master whose port is set to another baud rate (a pty carries bytes at any rate, but
it keeps the speed the client configured), as real slaves are: they hear only noise and stay silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import random
import termios
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.simulator import DataType, SimData, SimDevice

from edge_agent.sources.modbus.rtu import char_time, silence
from simulator.modbus_slave import _PtyServer, _Runtime
from simulator.ptyport import Pty, PtyTransport

BLOCKS = ("coils", "discrete_inputs", "holding", "input")  # the order SimDevice wants
Bank = dict[str, dict[int, list[int]]]  # block -> {start address: values}


@dataclass
class LineFaults:
    corrupt_rate: float = 0.0  # answers with one byte flipped
    drop_rate: float = 0.0  # requests the addressed slave never sees
    late: dict[int, float] = field(default_factory=dict)  # slave id -> extra seconds before answering
    dead: set[int] = field(default_factory=set)  # slave ids that never answer
    busy_every: dict[int, int] = field(default_factory=dict)  # slave id -> answer "busy" to every n-th
    seed: int = 0


def load_registers(path: str | Path) -> dict[int, Bank]:
    """Read a ``registers.json``; keys are slave ids, then block names, then start addresses."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return parse_registers(raw)


def parse_registers(raw: Mapping[str, Mapping[str, Mapping[str, list[int]]]]) -> dict[int, Bank]:
    banks: dict[int, Bank] = {}
    for slave, blocks in raw.items():
        unknown = set(blocks) - set(BLOCKS)
        if unknown:
            raise ValueError(f"slave {slave}: unknown block(s) {sorted(unknown)} (use {', '.join(BLOCKS)})")
        banks[int(slave)] = {b: {int(a): list(v) for a, v in blocks.get(b, {}).items()} for b in BLOCKS}
    return banks


def _device(slave: int, bank: Bank, action: Any) -> SimDevice:
    blocks = []
    for name in BLOCKS:
        bits = name in ("coils", "discrete_inputs")
        kind = DataType.BITS if bits else DataType.REGISTERS
        entries = [
            SimData(a, values=[bool(v) for v in vs] if bits else list(vs), datatype=kind)
            for a, vs in sorted(bank.get(name, {}).items())
        ]
        # SimDevice needs every block non-empty; an address far out of reach stands for "none".
        blocks.append(entries or [SimData(65535, values=[False] if bits else [0], datatype=kind)])
    return SimDevice(slave, simdata=tuple(blocks), action=action)  # type: ignore[arg-type]


class _TimedTransport(PtyTransport):
    """Releases each answer when a real line would have delivered it, from a sleeping writer thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, protocol: asyncio.Protocol, line: SimBus):
        super().__init__(loop, fd, protocol)
        self._line = line
        self._rx_start = 0.0
        self._rx_bytes = 0

    def _read_ready(self) -> None:
        if self._rx_bytes == 0:
            self._rx_start = time.monotonic()
        try:
            data = os.read(self._fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        self._rx_bytes += len(data)
        if data:
            self._protocol.data_received(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        line = self._line
        at = self._rx_start
        if line.line_timing:
            at += (self._rx_bytes + len(data)) * line.char + line.silence
        at += line.faults.late.get(data[0], 0.0) if data else 0.0
        self._rx_bytes = 0
        if at <= time.monotonic():
            super().write(data)
        else:
            line._writer.put((at, self._fd, data))


class SimBus:
    """Slaves sharing one pty. ``port`` is the path to open (a stable symlink when ``link`` is given)."""

    def __init__(
        self,
        banks: Mapping[int, Bank],
        *,
        baud: int = 19200,
        line_timing: bool = False,
        faults: LineFaults | None = None,
        link: str | Path | None = None,
        check_baud: bool = False,
    ) -> None:
        self.banks = {k: v for k, v in banks.items()}
        self.baud = baud
        self.check_baud = check_baud
        self.char = char_time(baud)
        self.silence = silence(baud)
        self.line_timing = line_timing
        self.faults = faults or LineFaults()
        self.requests: dict[int, int] = {}  # slave id -> requests seen
        self._rng = random.Random(self.faults.seed)
        self._link = Path(link) if link else None
        self._runtime = _Runtime()
        self._writer: queue.SimpleQueue[tuple[float, int, bytes] | None] = queue.SimpleQueue()
        self._writer_thread = threading.Thread(target=self._write_timed, name="sim-line", daemon=True)
        self._writer_thread.start()
        self._pty: Pty | None = None
        self._server: _PtyServer | None = None
        self.port = ""
        self.plug()

    # -- the port coming and going ------------------------------------------------------------------

    def plug(self) -> None:
        if self._pty is not None:
            return
        pty = Pty.open()
        try:
            self._server = self._runtime.call(self._serve(pty))
        except BaseException:
            pty.close()
            raise
        self._pty = pty
        if self._link is not None:
            tmp = self._link.with_name(self._link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(pty.path)
            tmp.replace(self._link)
            self.port = str(self._link)
        else:
            self.port = pty.path

    def unplug(self) -> None:
        """The adapter is pulled out: the path disappears and the open port fails (EIO)."""
        if self._pty is None:
            return
        if self._link is not None:
            with contextlib.suppress(FileNotFoundError):
                self._link.unlink()
        if self._server is not None:
            with contextlib.suppress(TimeoutError, RuntimeError):
                self._runtime.call(self._server.shutdown())
            self._server = None
        self._pty.close()
        self._pty = None

    def stop(self) -> None:
        self.unplug()
        self._writer.put(None)
        self._writer_thread.join(5)
        self._runtime.stop()

    def __enter__(self) -> SimBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving --------------------------------------------------------------------------------------

    async def _serve(self, pty: Pty) -> _PtyServer:
        banks = sorted(self.banks.items())
        devices = [_device(sid, bank, partial(self._on_request, sid)) for sid, bank in banks]
        server = _LineServer(devices, pty, self)
        await server.serve_forever(background=True)
        return server

    async def _on_request(
        self,
        slave: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        return ExcCodes.DEVICE_BUSY if self.busy_now(slave) else None

    def _write_timed(self) -> None:
        while (item := self._writer.get()) is not None:
            at, fd, data = item
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with contextlib.suppress(OSError):  # the port was unplugged meanwhile
                os.write(fd, data)

    def accept(self, slave: int) -> bool:
        """Whether ``slave`` hears (and will answer) this request."""
        if slave not in self.banks or slave in self.faults.dead or not self._same_speed():
            return False
        self.requests[slave] = self.requests.get(slave, 0) + 1
        return not (self.faults.drop_rate and self._rng.random() < self.faults.drop_rate)

    def _same_speed(self) -> bool:
        """Whether the master's port runs at our baud rate (always, unless ``check_baud``)."""
        if not self.check_baud or self._pty is None:
            return True
        try:
            speed = termios.tcgetattr(self._pty.slave_fd)[5]  # ospeed of the master's side
        except termios.error:
            return True
        return speed == getattr(termios, f"B{self.baud}", speed)

    def busy_now(self, slave: int) -> bool:
        every = self.faults.busy_every.get(slave)
        return bool(every) and self.requests.get(slave, 0) % every == 0

    def garble(self, data: bytes) -> bytes:
        if data and self.faults.corrupt_rate and self._rng.random() < self.faults.corrupt_rate:
            i = self._rng.randrange(len(data))
            data = data[:i] + bytes([data[i] ^ (1 << self._rng.randrange(8))]) + data[i + 1 :]
        return data


class _LineServer(_PtyServer):
    def __init__(self, devices: list[SimDevice], pty: Pty, line: SimBus) -> None:
        self._line = line
        super().__init__(devices, pty, 0)  # type: ignore[arg-type]
        self.trace_packet = self._packet

    async def _open_pty(self) -> tuple[PtyTransport, asyncio.Protocol]:
        protocol = self.handle_new_connection()
        transport = _TimedTransport(self.loop, self._pty.master_fd, protocol, self._line)
        transport.start()
        return transport, protocol

    def _addressed_to_me(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if sending:
            return pdu
        if not self._line.accept(pdu.dev_id):
            return None  # type: ignore[return-value]
        return pdu

    def _packet(self, sending: bool, data: bytes) -> bytes:
        return self._line.garble(data) if sending else data
