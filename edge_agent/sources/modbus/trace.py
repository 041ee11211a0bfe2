"""Frame trace: the hex of every request and answer with its timing, for diagnosing a bus.

Enabled per device with ``trace = true``. Lines go to the ``signalcraft.modbus.trace`` logger at INFO,
one per transaction, and the last :data:`KEEP` are kept for ``signalcraft-agent status``:

    /dev/ttyUSB0 slave 3 TX 03 04 00 00 00 18 F1 E2 | RX 03 04 30 … 4A 1B  (tx→rx 21.4 ms) ok
    /dev/ttyUSB0 slave 7 TX 07 04 00 00 00 18 F0 66 | RX -  (tx→rx 300.1 ms) DeviceTimeout
"""

from __future__ import annotations

import logging
import time
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
    """Collects frames of one link when tracing is on; costs one attribute check when it is off.

    ``trace = true`` in the config traces for good and logs every frame; ``signalcraft-agent diag trace``
    switches tracing on for a while through the control socket (:meth:`enable_for`) without logging, and
    follows the frames by their running number (:meth:`since`)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.configured = enabled  # on from the config: log every frame, never switch off
        self.frames: deque[Frame] = deque(maxlen=KEEP)
        self.total = 0  # frames recorded so far; the running number of the next one
        self._until = 0.0  # monotonic time an on-demand trace ends

    def record(self, frame: Frame) -> None:
        self.frames.append(frame)
        self.total += 1
        if self.configured:
            log.info(frame.line())
        elif time.monotonic() > self._until:
            self.enabled = False

    def enable_for(self, seconds: float) -> None:
        """Trace (without logging) for ``seconds`` more; a follower renews this while it watches."""
        self._until = max(self._until, time.monotonic() + seconds)
        self.enabled = True

    def since(self, number: int) -> tuple[int, list[Frame]]:
        """Frames with running number >= ``number`` still kept, and the number of the next frame."""
        total, frames = self.total, list(self.frames)
        first = total - len(frames)
        return total, frames[max(0, number - first) :]

    def lines(self) -> list[str]:
        return [f.line() for f in self.frames]
