"""Polling one Modbus RTU slave with minimalmodbus, without letting it stall the agent.

Each poll runs the planned requests. A request that fails with a retryable error (busy, garbled frame)
is retried up to ``retries`` times; a timeout is retried too but counts against the slave. A slave
that stays silent is marked *stale* and then polled with exponential backoff (up to 30 s), so a dead
slave on a shared bus costs one timeout every backoff period instead of one every cycle. A vanished
port is closed and reopened on the next attempt.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import minimalmodbus
import serial

from common.errors import CrcError, DeviceBusy, DeviceTimeout, SourceError
from edge_agent.config import ModbusDevice
from edge_agent.sources.modbus import planner
from edge_agent.sources.modbus.errors import port_hint, translate
from edge_agent.sources.modbus.profile import Profile

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0
_RETRYABLE = (DeviceBusy, CrcError, DeviceTimeout)


@dataclass
class SlaveStatus:
    """What the cloud needs to tell "no data" from "value unchanged"."""

    state: str = "starting"  # starting | online | stale | error
    since: datetime | None = None  # when it entered this state
    last_ok: datetime | None = None
    last_error: str = ""
    failures: int = 0  # consecutive failed polls
    transactions: int = 0
    errors: int = 0

    def describe(self) -> str:
        if self.state in ("stale", "error") and self.since:
            return f"{self.state} since {self.since.isoformat(timespec='seconds')}: {self.last_error}"
        return self.state


@dataclass
class PollResult:
    values: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


class RtuSource:
    """One slave on one serial port, read according to its profile."""

    def __init__(self, device: ModbusDevice, profile: Profile) -> None:
        self.device = device
        self.profile = profile
        self.requests = planner.plan(profile.points, device.max_gap)
        self.status = SlaveStatus()
        self._instrument: minimalmodbus.Instrument | None = None
        self._next_attempt = 0.0  # monotonic time before which a stale slave is skipped

    @property
    def name(self) -> str:
        return self.device.name

    def _open(self) -> minimalmodbus.Instrument:
        if self._instrument is None:
            d = self.device
            try:
                inst = minimalmodbus.Instrument(d.port, d.slave, close_port_after_each_call=False)
            except (serial.SerialException, OSError) as exc:
                raise SourceError(f"{d.name} on {d.port}: {port_hint(exc)}") from None
            inst.serial.baudrate = d.baud
            inst.serial.parity = d.parity
            inst.serial.stopbits = d.stopbits
            inst.serial.bytesize = 8
            inst.serial.timeout = d.timeout.total_seconds()
            # A late answer to a timed-out request must never be taken for the next one's answer.
            inst.clear_buffers_before_each_transaction = True
            self._instrument = inst
        return self._instrument

    def close(self) -> None:
        if self._instrument is not None:
            self._instrument.serial.close()
            self._instrument = None

    def poll(self) -> PollResult:
        """Read every point once; what could not be read is listed in ``missing``."""
        result = PollResult()
        now = time.monotonic()
        if now < self._next_attempt:
            result.missing = [p.name for p in self.profile.points]
            return result
        error: SourceError | None = None
        for request in self.requests:
            try:
                words = self._read(request)
            except SourceError as exc:
                error = exc
                result.missing.extend(p.name for p in request.points)
                if isinstance(exc, DeviceTimeout) or "serial port" in str(exc):
                    # The slave (or the port) is gone: skip its other requests this cycle.
                    for rest in self.requests[self.requests.index(request) + 1 :]:
                        result.missing.extend(p.name for p in rest.points)
                    break
                continue
            result.values.update(request.values(words))
        self._account(result, error)
        return result

    def _read(self, request: planner.Request) -> list[int]:
        inst = self._open()
        attempts = 1 + self.device.retries
        for attempt in range(attempts):
            self.status.transactions += 1
            try:
                if request.function in (1, 2):
                    return inst.read_bits(request.address, request.count, request.function)
                return inst.read_registers(request.address, request.count, request.function)
            except (minimalmodbus.ModbusException, serial.SerialException, OSError) as exc:
                self.status.errors += 1
                mapped = translate(
                    exc, f"{self.device.name} (slave {self.device.slave} on {self.device.port})"
                )
                if isinstance(exc, serial.SerialException | OSError):
                    self.close()  # reopen on the next attempt: the USB adapter may come back
                    raise mapped from None
                if not isinstance(mapped, _RETRYABLE) or attempt == attempts - 1:
                    raise mapped from None
                log.debug("retrying", extra={"source": self.device.name, "error": str(mapped)})
        raise AssertionError("unreachable")

    def _account(self, result: PollResult, error: SourceError | None) -> None:
        now = datetime.now(UTC)
        st = self.status
        if error is None:
            if st.state != "online":
                log.info("slave online", extra={"source": self.device.name})
                st.since = now
            st.state, st.failures, st.last_ok, st.last_error = "online", 0, now, ""
            self._next_attempt = 0.0
            return
        st.last_error = str(error)
        if result.values:  # partly read: the slave answers but some request fails
            if st.state != "error":
                st.since = now
            st.state = "error"
            return
        st.failures += 1
        if st.state != "stale":
            log.warning("slave stale", extra={"source": self.device.name, "error": str(error)})
            st.state, st.since = "stale", now
        backoff = min(MAX_BACKOFF_S, 2.0 ** (st.failures - 1)) if st.failures > 1 else 0.0
        self._next_attempt = time.monotonic() + backoff
