"""The one seam where Modbus exception codes and serial-port failures become :mod:`common.errors`.

The RTU framing (:mod:`.rtu`) raises these for the poller and for ``signalcraft-agent diag`` alike;
Modbus TCP maps pymodbus' exceptions in :mod:`.tcp`.

SourceError
├── DeviceTimeout      no answer (or a gateway saying its target did not answer, codes 10 and 11)
├── DeviceBusy         exception 5 (acknowledge) or 6 (busy): retryable
├── IllegalAddress     exceptions 1-3: the register map does not fit the device; retrying will not help
├── CrcError           a garbled, truncated or misaddressed answer: retryable
├── SlaveFailure       exception 4 and any other code
└── PortError          the serial port (or TCP connection) itself failed: every slave on it is affected
"""

from __future__ import annotations

import errno

from common.errors import DeviceBusy, DeviceTimeout, IllegalAddress, SourceError


class PortError(SourceError):
    """The serial port or the TCP connection failed; the bus reopens it with back-off."""


class SlaveFailure(SourceError):
    """The slave answered with an exception that is neither 'busy' nor 'illegal' (e.g. 4, device failure)."""


NO_ANSWER_HINT = "no answer: check wiring (A/B swapped?), termination, baud rate, parity and the slave id"
GARBLED_HINT = "garbled answer (CRC or length): noise, wrong baud rate or a second master on the bus"

# Modbus exception code -> (our class, what it means, what to check)
EXCEPTION_CODES: dict[int, tuple[type[SourceError], str]] = {
    1: (IllegalAddress, "illegal function: the device does not support this function code"),
    2: (IllegalAddress, "illegal data address: check the profile's addresses (0-based) and max_gap"),
    3: (IllegalAddress, "illegal data value: the device refuses this register count"),
    4: (SlaveFailure, "slave device failure"),
    5: (DeviceBusy, "acknowledge: the slave is processing a long command"),
    6: (DeviceBusy, "slave busy"),
    8: (SlaveFailure, "memory parity error"),
    10: (DeviceTimeout, "gateway path unavailable"),
    11: (DeviceTimeout, "gateway target device failed to respond"),
}


def exception_error(code: int, where: str) -> SourceError:
    """Our error for a Modbus exception response; the protocol code is kept on ``.code``."""
    cls, text = EXCEPTION_CODES.get(code, (SlaveFailure, "unknown exception code"))
    err = cls(f"{where}: [code:{code}] {text}")
    err.code = code  # type: ignore[attr-defined]
    return err


def port_hint(exc: BaseException) -> str:
    """What a technician should do when the serial port itself fails."""
    err = getattr(exc, "errno", None)
    text = str(exc)
    if err == errno.EACCES or "Permission denied" in text:
        return f"permission denied on the serial port: add the agent's user to the 'dialout' group ({text})"
    if err in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such file" in text:
        return f"serial port not found: is the USB adapter plugged in? ({text})"
    if err == errno.EBUSY or "busy" in text.lower() or "lock" in text.lower():
        return f"serial port busy: another program holds it ({text})"
    if err == errno.EIO or "Input/output error" in text or "returned no data" in text:
        return f"serial port vanished (USB adapter unplugged?) ({text})"
    return f"serial port error ({text})"
