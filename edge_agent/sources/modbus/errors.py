"""The one seam where minimalmodbus and pyserial exceptions become SignalCraft's :mod:`common.errors`."""

from __future__ import annotations

import errno

import minimalmodbus
import serial

from common.errors import CrcError, DeviceBusy, DeviceTimeout, IllegalAddress, SourceError

# Most specific first: the map is walked in order and the first isinstance match wins.
_MAP: tuple[tuple[type[BaseException], type[SourceError], str], ...] = (
    (minimalmodbus.SlaveDeviceBusyError, DeviceBusy, "slave busy (exception 6)"),
    (
        minimalmodbus.IllegalRequestError,
        IllegalAddress,
        "slave rejected the request (illegal function or address): check the profile's addresses",
    ),
    (minimalmodbus.NegativeAcknowledgeError, DeviceBusy, "slave answered NAK (exception 7)"),
    (minimalmodbus.SlaveReportedException, SourceError, "slave reported an exception"),
    (
        minimalmodbus.NoResponseError,
        DeviceTimeout,
        "no answer: check wiring (A/B swapped?), termination, baud rate, parity and the slave id",
    ),
    (minimalmodbus.LocalEchoError, SourceError, "local echo mismatch: is the RS-485 adapter echoing?"),
    (
        minimalmodbus.InvalidResponseError,
        CrcError,
        "garbled answer (CRC or length): noise, wrong baud rate or a second master on the bus",
    ),
    (minimalmodbus.MasterReportedException, SourceError, "invalid answer"),
)


def translate(exc: BaseException, where: str) -> SourceError:
    """Map a library exception to our tree, keeping the library's text and adding what to check."""
    for lib_exc, ours, hint in _MAP:
        if isinstance(exc, lib_exc):
            return ours(f"{where}: {hint} ({exc})")
    if isinstance(exc, serial.SerialException | OSError):
        return SourceError(f"{where}: {port_hint(exc)}")
    raise TypeError(f"unmapped exception {type(exc).__name__}") from exc


def port_hint(exc: BaseException) -> str:
    """What a technician should do when the serial port itself fails."""
    err = getattr(exc, "errno", None)
    text = str(exc)
    if err == errno.EACCES or "Permission denied" in text:
        return f"permission denied on the serial port: add the agent's user to the 'dialout' group ({text})"
    if err in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such file" in text:
        return f"serial port not found: is the USB adapter plugged in? ({text})"
    if err == errno.EBUSY or "busy" in text.lower():
        return f"serial port busy: another program holds it ({text})"
    return f"serial port error ({text})"
