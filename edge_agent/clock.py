"""Is the device's wall clock worth trusting? Readings carry UTC wall time, never uptime, so say when not.

A Raspberry Pi has no battery-backed clock: until NTP synchronises it, it boots at the last saved time
(fake-hwclock) or 1970. And when NTP finally steps it, timestamps jump. Each reading is flagged:

- ``unsynced``: the kernel says the clock is not synchronised (adjtimex reports TIME_ERROR), or it reads
  a date before 2024, which no real reading can have;
- ``jump:+3600s``: since the previous reading the wall clock moved that much more (or less) than the
  monotonic clock did.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from datetime import UTC, datetime

JUMP_TOLERANCE_S = 2.0
_EARLIEST = datetime(2024, 1, 1, tzinfo=UTC)
_TIME_ERROR = 5  # adjtimex(2): "clock not synchronized"
_SYNC_RECHECK_S = 60.0


def kernel_clock_synced() -> bool | None:
    """True/False from adjtimex(2) on Linux; None where that cannot be asked."""
    path = ctypes.util.find_library("c")
    if not path:
        return None
    libc = ctypes.CDLL(path, use_errno=True)
    if not hasattr(libc, "adjtimex"):
        return None
    buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
    state = libc.adjtimex(buf)
    if state < 0:
        return None
    return state != _TIME_ERROR


class ClockWatch:
    def __init__(self, synced=kernel_clock_synced) -> None:
        self._synced_probe = synced
        self._last: tuple[datetime, float] | None = None
        self._synced: bool | None = None
        self._checked = -_SYNC_RECHECK_S

    def check(self, wall: datetime) -> str | None:
        """The flag for a reading taken at ``wall`` (None when the clock looks right)."""
        mono = time.monotonic()
        flag = None
        if self._last is not None:
            last_wall, last_mono = self._last
            drift = (wall - last_wall).total_seconds() - (mono - last_mono)
            if abs(drift) > JUMP_TOLERANCE_S:
                flag = f"jump:{drift:+.0f}s"
        self._last = (wall, mono)
        if flag is None and not self.synced(mono, wall):
            flag = "unsynced"
        return flag

    def synced(self, mono: float, wall: datetime) -> bool:
        if wall < _EARLIEST:
            return False
        if mono - self._checked >= _SYNC_RECHECK_S:
            self._synced, self._checked = self._synced_probe(), mono
        return self._synced is not False
