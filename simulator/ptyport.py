"""A pseudo-terminal as a serial line, and an asyncio transport over its master side.

``os.openpty()`` gives a master and a slave. The slave has a path (``/dev/pts/N``) that any serial client
opens as it would open ``/dev/ttyUSB0``; the simulator reads and writes the master. pyserial (and therefore
pymodbus' own serial transport) can only open ports by path, and the master has none, so the master side
gets this small transport instead; everything above it (RTU framing, PDUs, datastore) is pymodbus.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from dataclasses import dataclass


@dataclass
class Pty:
    """An open pseudo-terminal pair. The simulator keeps the slave open so that the master never sees a
    hang-up (EIO) while no client has the port open, which is how a real serial line behaves."""

    master_fd: int
    slave_fd: int
    path: str

    @classmethod
    def open(cls) -> Pty:
        master, slave = os.openpty()
        # Raw on both sides: no echo, no CR/LF translation, no signals on ^C. A Modbus frame is binary.
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
        return cls(master, slave, os.ttyname(slave))

    def close(self) -> None:
        for fd in (self.master_fd, self.slave_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.master_fd = self.slave_fd = -1


class PtyTransport(asyncio.Transport):
    """Reads and writes the master side of a :class:`Pty` for one asyncio protocol.

    Readiness comes from the event loop (``add_reader``), so an idle port costs nothing. Writes go straight
    out when the pty buffer has room and are queued behind ``add_writer`` otherwise. Closing the transport
    detaches it from the loop; the file descriptors belong to the :class:`Pty`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self._loop = loop
        self._fd = fd
        self._protocol = protocol
        self._pending = bytearray()
        self._closed = False

    def start(self) -> None:
        self._loop.add_reader(self._fd, self._read_ready)
        self._loop.call_soon(self._protocol.connection_made, self)

    def _read_ready(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        if data:
            self._protocol.data_received(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            return
        if self._pending:
            self._pending += data
            return
        try:
            sent = os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._fail(exc)
            return
        if sent < len(data):
            self._pending += bytes(data[sent:])
            self._loop.add_writer(self._fd, self._write_ready)

    def _write_ready(self) -> None:
        try:
            sent = os.write(self._fd, self._pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        del self._pending[:sent]
        if not self._pending:
            self._loop.remove_writer(self._fd)

    def _fail(self, exc: OSError) -> None:
        self.close()
        self._protocol.connection_lost(exc)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        self._pending.clear()

    def is_closing(self) -> bool:
        return self._closed

    def abort(self) -> None:
        self.close()

    def get_write_buffer_size(self) -> int:
        return len(self._pending)

    def can_write_eof(self) -> bool:
        return False

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]
