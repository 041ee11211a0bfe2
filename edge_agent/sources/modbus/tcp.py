"""Modbus TCP through pymodbus' synchronous client; the one seam where its exceptions become ours.

Imported only when a ``[[modbus_tcp]]`` device is configured (pymodbus adds a few MB to the agent).
Several unit ids behind one gateway share one connection and one :class:`~.bus.Bus` thread, which
is also what most RTU gateways expect: one request at a time.
"""

from __future__ import annotations

from pymodbus import exceptions as mbexc
from pymodbus.client import ModbusTcpClient
from pymodbus.pdu import ExceptionResponse

from common.errors import DeviceTimeout, SourceError
from edge_agent.sources.modbus.errors import PortError, exception_error
from edge_agent.sources.modbus.trace import Frame, Tracer

# Most specific first; tests check that every pymodbus exception class is covered.
_MAP: tuple[tuple[type[Exception], type[SourceError], str], ...] = (
    (mbexc.ConnectionException, PortError, "cannot connect: check host, port and the device's network"),
    (mbexc.ModbusIOException, DeviceTimeout, "no answer in time (or an answer to another request)"),
    (mbexc.NoSuchIdException, DeviceTimeout, "no such unit id behind the gateway"),
    (mbexc.MessageRegisterException, SourceError, "pymodbus message registry error"),
    (mbexc.NotImplementedException, SourceError, "not implemented by pymodbus"),
    (mbexc.ParameterException, SourceError, "invalid request parameters"),
    (mbexc.ModbusException, SourceError, "Modbus error"),
)


def translate(exc: Exception, where: str) -> SourceError:
    for lib_exc, ours, hint in _MAP:
        if isinstance(exc, lib_exc):
            return ours(f"{where}: {hint} ({exc})")
    if isinstance(exc, OSError):
        return PortError(f"{where}: network error ({exc})")
    raise TypeError(f"unmapped exception {type(exc).__name__}") from exc


class TcpLink:
    """One TCP connection; reconnects on the next read after a failure."""

    def __init__(self, host: str, port: int, timeout: float, tracer: Tracer | None = None) -> None:
        self.name = f"{host}:{port}"
        self.tracer = tracer or Tracer(False)
        self._tx = b""
        self._rx = b""
        self._client = ModbusTcpClient(
            host,
            port=port,
            timeout=timeout,
            retries=0,  # our SlaveSource retries, and counts what it retried
            reconnect_delay=0,  # our Bus reconnects, with its own back-off
            trace_packet=self._trace if self.tracer.enabled else None,
        )

    def open(self) -> None:
        if not self._client.connect():
            raise PortError(f"{self.name}: cannot connect: check host, port and the device's network")

    def close(self) -> None:
        self._client.close()

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self._tx, self._rx = data, b""
        else:
            self._rx = data
        return data

    def read(self, slave: int, function: int, address: int, count: int, timeout: float) -> list[int]:
        where = f"unit {slave} at {self.name}"
        calls = {
            1: self._client.read_coils,
            2: self._client.read_discrete_inputs,
            3: self._client.read_holding_registers,
            4: self._client.read_input_registers,
        }
        outcome = "ok"
        try:
            try:
                rr = calls[function](address, count=count, device_id=slave)
            except (mbexc.ModbusException, OSError) as exc:
                err = translate(exc, where)
                if isinstance(err, PortError):
                    self.close()
                raise err from None
            if isinstance(rr, ExceptionResponse) or rr.isError():
                raise exception_error(getattr(rr, "exception_code", 4), where)
            if function in (1, 2):
                return [int(b) for b in rr.bits[:count]]
            return list(rr.registers)
        except SourceError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            if self.tracer.enabled:
                self.tracer.record(Frame(self.name, slave, self._tx, self._rx, 0.0, outcome))
