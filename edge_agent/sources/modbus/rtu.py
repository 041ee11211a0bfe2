"""Modbus RTU master framing on one serial port: the only code that touches the RS-485 line.

A transaction is: wait out the inter-frame silence (3.5 characters; 1.75 ms above 19200 baud, as the
spec says), throw away anything unread, write the request, then read exactly the answer's length as
announced by its header (``addr fc count`` or the 5-byte exception frame), and check its CRC, address
and function. An exception answer is recognised after 3 bytes, so it never costs a timeout.

After a timeout the line is watched for a while and whatever arrives is discarded: a slow slave's late
answer must never be taken for the answer to the next request (on RTU nothing in a frame tells which
request it answers). After a garbled answer the line is drained until it falls quiet.
"""

from __future__ import annotations

import contextlib
import struct
import termios
import time

import serial

from common.errors import CrcError, DeviceTimeout, SourceError
from edge_agent.sources.modbus.errors import (
    GARBLED_HINT,
    NO_ANSWER_HINT,
    PortError,
    exception_error,
    port_hint,
)
from edge_agent.sources.modbus.trace import Frame, Tracer

MAX_DRAIN_S = 0.5  # longest we listen for a late answer after a timeout


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc


def frame(payload: bytes) -> bytes:
    return payload + crc16(payload).to_bytes(2, "little")


def read_request(slave: int, function: int, address: int, count: int) -> bytes:
    """The RTU frame of a read (functions 1-4)."""
    return frame(struct.pack(">BBHH", slave, function, address, count))


def answer_bytes(function: int, count: int) -> int:
    """Data bytes in the answer to a read of ``count`` registers (or bits)."""
    return (count + 7) // 8 if function in (1, 2) else 2 * count


def unpack(function: int, count: int, data: bytes) -> list[int]:
    if function in (1, 2):
        return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]
    return list(struct.unpack(f">{count}H", data))


def char_time(baud: int, parity: str = "N", stopbits: int = 1) -> float:
    """Seconds per character on the wire: start bit, 8 data bits, parity, stop bits."""
    return (1 + 8 + (parity != "N") + stopbits) / baud


def silence(baud: int, parity: str = "N", stopbits: int = 1) -> float:
    """Inter-frame gap: 3.5 characters, 1.75 ms above 19200 baud (Modbus over serial line, 2.5.1.1)."""
    return 0.00175 if baud > 19200 else 3.5 * char_time(baud, parity, stopbits)


class RtuLine:
    """One serial port, opened exclusively; :meth:`read` runs one transaction. Not thread-safe: the
    port's :class:`~edge_agent.sources.modbus.bus.Bus` thread is its only user."""

    def __init__(
        self, port: str, baud: int, parity: str = "N", stopbits: int = 1, tracer: Tracer | None = None
    ) -> None:
        self.name = port
        self.baud, self.parity, self.stopbits = baud, parity, stopbits
        self.char = char_time(baud, parity, stopbits)
        self.silence = silence(baud, parity, stopbits)
        self.tracer = tracer or Tracer(False)
        self.late_discarded = 0  # bytes that arrived after a timeout and were thrown away
        self._serial: serial.Serial | None = None
        self._quiet_since = 0.0  # monotonic time the line last carried a byte
        self._sent = 0.0  # when the current request was written

    def open(self) -> None:
        if self._serial is not None:
            return
        try:
            self._serial = serial.Serial(
                self.name,
                self.baud,
                bytesize=8,
                parity=self.parity,
                stopbits=self.stopbits,
                timeout=0,
                exclusive=True,  # one owner per port: a second master on the line garbles both
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortError(f"{self.name}: {port_hint(exc)}") from None

    def close(self) -> None:
        if self._serial is not None:
            # A vanished adapter cannot be closed cleanly; the fd is gone either way.
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.close()
            self._serial = None

    def read(self, slave: int, function: int, address: int, count: int, timeout: float) -> list[int]:
        """Read ``count`` registers (or bits) from ``address``; raises our :class:`SourceError` tree."""
        self.open()
        request = read_request(slave, function, address, count)
        where = f"slave {slave} on {self.name}"
        got = bytearray()
        self._sent = time.monotonic()
        outcome = "ok"
        try:
            return self._transact(request, slave, function, count, timeout, got, where)
        except SourceError as exc:
            outcome = type(exc).__name__
            raise
        except (serial.SerialException, OSError, termios.error) as exc:
            # termios.error is what tcflush raises on a vanished USB adapter (not an OSError)
            outcome = "PortError"
            self.close()
            raise PortError(f"{where}: {port_hint(exc)}") from None
        finally:
            if self.tracer.enabled:
                ms = (time.monotonic() - self._sent) * 1000
                self.tracer.record(Frame(self.name, slave, request, bytes(got), ms, outcome))

    def _transact(
        self,
        request: bytes,
        slave: int,
        function: int,
        count: int,
        timeout: float,
        got: bytearray,
        where: str,
    ) -> list[int]:
        ser = self._serial
        assert ser is not None
        wait = self._quiet_since + self.silence - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        ser.reset_input_buffer()  # anything unread now belongs to no request of ours
        ser.write(request)
        self._sent = sent = time.monotonic()
        # The answer cannot start before the request has left the UART.
        deadline = sent + len(request) * self.char + timeout
        head = self._read_until(ser, 3, deadline, got)
        if not head:
            self._drain(ser, min(timeout, MAX_DRAIN_S))
            raise DeviceTimeout(f"{where}: {NO_ANSWER_HINT}")
        n_data = answer_bytes(function, count)
        # Once the answer has started, the rest follows at line speed (+ USB adapter latency).
        rest_deadline = lambda n: time.monotonic() + n * self.char * 1.5 + 0.05  # noqa: E731
        if len(head) == 3 and head[1] == function | 0x80:
            self._read_until(ser, 2, rest_deadline(2), got)
            if len(got) == 5 and crc16(bytes(got)) == 0 and got[0] == slave:
                self._quiet_since = time.monotonic()
                raise exception_error(got[2], where)
        elif len(head) == 3 and head[0] == slave and head[1] == function and head[2] == n_data:
            self._read_until(ser, n_data + 2, rest_deadline(n_data + 2), got)
            if len(got) == 5 + n_data and crc16(bytes(got)) == 0:
                self._quiet_since = time.monotonic()
                return unpack(function, count, bytes(got[3 : 3 + n_data]))
        self._drain(ser, self.silence + 0.005)
        raise CrcError(f"{where}: {GARBLED_HINT} (got {bytes(got).hex(' ')})")

    def _read_until(self, ser: serial.Serial, n: int, deadline: float, got: bytearray) -> bytes:
        """Up to ``n`` bytes, waiting (blocking, not spinning) until ``deadline``; appends to ``got``."""
        data = bytearray()
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ser.timeout = left
            chunk = ser.read(n - len(data))
            if not chunk:
                break
            data += chunk
        got += data
        if data:
            self._quiet_since = time.monotonic()
        return bytes(data)

    def _drain(self, ser: serial.Serial, window: float) -> None:
        """Discard whatever arrives within ``window``, and keep listening while bytes keep coming."""
        deadline = time.monotonic() + window
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ser.timeout = left
            chunk = ser.read(256)
            if not chunk:
                break
            self.late_discarded += len(chunk)
            deadline = max(deadline, time.monotonic() + self.silence + 0.005)
        self._quiet_since = time.monotonic()
