"""Frame trace: the hex of every request and answer with its timing, for diagnosing a bus.

Enabled per device with ``trace = true``. Lines go to the ``signalcraft.modbus.trace`` logger at INFO,
one per transaction, and the last :data:`KEEP` are kept for ``signalcraft-agent status``:

    /dev/ttyUSB0 slave 3 TX 03 04 00 00 00 18 F1 E2 | RX 03 04 30 … 4A 1B  (tx→rx 21.4 ms) ok
    /dev/ttyUSB0 slave 7 TX 07 04 00 00 00 18 F0 66 | RX -  (tx→rx 300.1 ms) DeviceTimeout
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

log = logging.getLogger("signalcraft.modbus.trace")
KEEP = 50


@dataclass(frozen=True, slots=True)
class Frame:
    """One transaction as it went over the wire."""

    link: str
    slave: int
    request: bytes
    response: bytes
    elapsed_ms: float  # from the end of the request's write to the last byte of the answer (or timeout)
    outcome: str  # "ok" or the error class name

    def line(self) -> str:
        rx = self.response.hex(" ").upper() if self.response else "-"
        return (
            f"{self.link} slave {self.slave} TX {self.request.hex(' ').upper()} | RX {rx}  "
            f"(tx→rx {self.elapsed_ms:.1f} ms) {self.outcome}"
        )


class Tracer:
    """Collects frames of one link when tracing is on; costs one attribute check when it is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.frames: deque[Frame] = deque(maxlen=KEEP)

    def record(self, frame: Frame) -> None:
        self.frames.append(frame)
        log.info(frame.line())

    def lines(self) -> list[str]:
        return [f.line() for f in self.frames]
