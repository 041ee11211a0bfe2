"""Reading a waveform sensor: one thread owns the port, parses frames and cuts them into windows.

Windows are what the analytics get: ``window`` seconds of consecutive samples (shape (n, channels),
float32, full scale ±1.0). A window never spans lost frames: when the sequence numbers show a gap the
partial window is dropped (and counted) and a new one starts, so a spectrum is never computed across a
hole. At most ``max_windows`` wait for the agent; beyond that the oldest are dropped and counted.

The USB device may disappear (unplugged, rebooted, re-enumerated): the read fails, the state becomes
``disconnected since T``, and the port is reopened with back-off (0.5 s doubling to 5 s) until it is
back. The thread blocks in ``read`` (with a timeout) or on its stop event; it never spins.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import serial

from edge_agent.sources.modbus.errors import port_hint
from edge_agent.sources.waveform.protocol import Frame, FrameParser

log = logging.getLogger(__name__)
REOPEN_BACKOFF_S = (0.5, 5.0)
READ_TIMEOUT_S = 0.5
SILENT_AFTER_S = 2.0  # connected but no frame for this long: "silent"


@dataclass(frozen=True, slots=True)
class WaveformWindow:
    """Consecutive samples of one sensor, handed to ``Analytics.observe_waveform``."""

    source: str
    t0: datetime  # UTC time of the first sample (estimated from the arrival of the last frame)
    sample_rate: int  # samples per second per channel
    samples: np.ndarray  # float32, shape (n, channels), full scale ±1.0 (float32 sensors: their unit)
    first_seq: int  # sequence number of the first frame in the window
    overload: bool  # some frame in the window reported ADC clipping

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


class WaveformSource:
    """One serial waveform sensor (see docs/serial-protocol.md)."""

    def __init__(
        self, name: str, port: str, baud: int = 921600, window: float = 1.0, max_windows: int = 8
    ) -> None:
        self.name = name
        self.port = port
        self.baud = baud
        self.window_s = window
        self.parser = FrameParser()
        self.state = "starting"  # starting | streaming | silent | disconnected | stopped
        self.since: datetime | None = None
        self.last_error = ""
        self.windows = 0
        self.windows_dropped = 0  # queue full: the agent did not collect them in time
        self.windows_discarded = 0  # partial windows cut short by lost frames or a reconnect
        self.reconnects = 0
        self.sample_rate = 0
        self.channels = 0
        self._queue: deque[WaveformWindow] = deque()
        self._max_windows = max_windows
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._parts: list[np.ndarray] = []
        self._have = 0
        self._first_seq = 0
        self._overload = False
        self._last_frame: datetime | None = None

    # -- agent side ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"waveform {self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._set_state("stopped")

    def poll(self) -> list[WaveformWindow]:
        """The windows completed since the last call (oldest first); never blocks on the port."""
        with self._lock:
            out = list(self._queue)
            self._queue.clear()
        return out

    def status_dict(self) -> dict[str, Any]:
        p = self.parser
        quiet = timedelta(seconds=SILENT_AFTER_S)
        if self.state == "streaming" and self._last_frame and datetime.now(UTC) - self._last_frame > quiet:
            self._set_state("silent")
        since = self.since.isoformat(timespec="seconds") if self.since else None
        return {
            "state": self.state,
            "since": since,
            "detail": self.state
            if self.state == "streaming"
            else f"{self.state} since {since}: {self.last_error}",
            "port": self.port,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "frames": p.frames,
            "lost_frames": p.lost,
            "crc_errors": p.crc_errors,
            "skipped_bytes": p.skipped_bytes,
            "sender_restarts": p.restarts,
            "windows": self.windows,
            "windows_dropped": self.windows_dropped,
            "windows_discarded": self.windows_discarded,
            "reconnects": self.reconnects,
        }

    # -- the thread ----------------------------------------------------------------------------------

    def _set_state(self, state: str, error: str = "") -> None:
        if state != self.state:
            self.since = datetime.now(UTC)
            self.state = state
        if error:
            self.last_error = error

    def _run(self) -> None:
        backoff = REOPEN_BACKOFF_S[0]
        while not self._stop.is_set():
            try:
                ser = serial.Serial(self.port, self.baud, timeout=READ_TIMEOUT_S, exclusive=True)
            except (serial.SerialException, OSError, ValueError) as exc:
                self._set_state("disconnected", f"{self.port}: {port_hint(exc)}")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, REOPEN_BACKOFF_S[1])
                continue
            backoff = REOPEN_BACKOFF_S[0]
            if self.state == "disconnected":
                self.reconnects += 1
                log.info("waveform sensor back", extra={"source": self.name})
            self.parser.reset_sequence()
            self._cut()
            try:
                self._stream(ser)
            except (serial.SerialException, OSError) as exc:
                log.warning("waveform sensor lost", extra={"source": self.name, "error": str(exc)})
                self._set_state("disconnected", f"{self.port}: {port_hint(exc)}")
            finally:
                ser.close()

    def _stream(self, ser: serial.Serial) -> None:
        while not self._stop.is_set():
            data = ser.read(max(1, min(ser.in_waiting, 65536)))
            if not data:
                continue
            for frame in self.parser.feed(data):
                self._take(frame)

    def _take(self, frame: Frame) -> None:
        now = datetime.now(UTC)
        self._last_frame = now
        self._set_state("streaming")
        self.last_error = ""
        if frame.rate != self.sample_rate or frame.channels != self.channels or frame.gap:
            self._cut()  # a hole, a restart or new settings: do not mix them in one window
            self.sample_rate, self.channels = frame.rate, frame.channels
        if not self._parts:
            self._first_seq = frame.seq
            self._overload = False
        self._parts.append(frame.samples)
        self._have += len(frame.samples)
        self._overload |= frame.overload
        need = max(1, round(self.window_s * frame.rate))
        while self._have >= need:
            joined = np.concatenate(self._parts)
            window, rest = joined[:need], joined[need:]
            t0 = now - timedelta(seconds=(len(joined) - 1) / frame.rate)
            self._emit(WaveformWindow(self.name, t0, frame.rate, window, self._first_seq, self._overload))
            self._parts = [rest] if len(rest) else []
            self._have = len(rest)
            self._first_seq = frame.seq
            self._overload = frame.overload if len(rest) else False

    def _cut(self) -> None:
        if self._parts:
            self.windows_discarded += 1
        self._parts, self._have = [], 0

    def _emit(self, window: WaveformWindow) -> None:
        with self._lock:
            if len(self._queue) >= self._max_windows:
                self._queue.popleft()
                self.windows_dropped += 1
            self._queue.append(window)
            self.windows += 1


def deliver(sources: list[WaveformSource], analytics: object) -> int:
    """Hand every completed window to ``analytics.observe_waveform(window)`` when the analytics have that
    method (windows are drained either way, so they never pile up). Returns the number delivered."""
    hook = getattr(analytics, "observe_waveform", None)
    count = 0
    for source in sources:
        for window in source.poll():
            if hook is not None:
                hook(window)
                count += 1
    return count
