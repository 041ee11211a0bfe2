"""Sensor-fault detection: a stuck, dropped-out or impossible sensor must never look like a sick machine.

Three checks, each O(1) per reading with one counter per point (vectorised over the points):

* flat line: an analog channel repeats exactly the same value for ``flat_readings`` readings while other
  channels move (after ``suspect_readings`` its windows are already no longer scored). Real sensors
  carry noise; a value that does not change at all is a frozen transmitter, a cut wire on a latched
  input, or a slave serving a stale register. Channels that legitimately sit still while the machine
  is stopped (current, power, vibration read 0) only count while it runs.
* out of range: a value outside the physical range of the point.
* dropout: the point is missing (or out of range) for ``dropout_readings`` readings in a row.

A stale Modbus slave shows up here too: its points are reported missing by the source, or, when a
gateway keeps serving its last registers, every one of them freezes at once (reported as the slave).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_agent.analytics.features import ANALOG, POINTS, RANGES

# Channels that read a constant (usually 0) whenever the compressor is stopped.
_RUN_ONLY = frozenset({"motor_current", "power", "vibration_rms", "vibration_peak"})


class SensorMonitor:
    """Tracks per-point health counters and names the first faulty sensor, if any.

    ``update`` takes the reading as a row in ``points`` order (NaN = missing), the same row the feature
    window receives, so the dict is unpacked once per reading.
    """

    def __init__(
        self,
        flat_readings: int,
        dropout_readings: int,
        suspect_readings: int,
        *,
        points: Sequence[str] = POINTS,
        ranges: dict[str, tuple[float, float]] | None = None,
        analog: Sequence[str] = ANALOG,
        run_only: frozenset[str] = _RUN_ONLY,
        run_point: str | None = "running",
    ) -> None:
        ranges = ranges if ranges is not None else RANGES
        self.flat_readings = flat_readings
        self.suspect_readings = suspect_readings
        self.dropout_readings = dropout_readings
        self.points = tuple(points)
        self._lo = np.array([ranges[p][0] for p in self.points])
        self._hi = np.array([ranges[p][1] for p in self.points])
        self._analog = np.array([p in analog for p in self.points])
        self._n_analog = int(self._analog.sum())
        self._still_ok = np.array([p not in run_only for p in self.points])  # may sit still when stopped
        self._run_col = self.points.index(run_point) if run_point in self.points else None
        n = len(self.points)
        self._last = np.full(n, np.nan)
        self._flat = np.zeros(n, dtype=np.int64)
        self._bad = np.zeros(n, dtype=np.int64)
        self._oor = np.full(n, np.nan)  # the out-of-range value of a point, while it is out of range
        self._any_oor = False
        self.good = np.ones(n, dtype=bool)  # the last reading's points that were readable and in range

    def reset(self) -> None:
        self._last.fill(np.nan)
        self._flat.fill(0)
        self._bad.fill(0)
        self._oor.fill(np.nan)
        self._any_oor = False

    def update(self, row: np.ndarray) -> str | None:
        """Account for one reading (row in ``points`` order, NaN = missing); a sentence naming the
        faulty sensor, or None."""
        with np.errstate(invalid="ignore"):
            self.good = good = (row >= self._lo) & (row <= self._hi)  # NaN fails both
        self._bad += 1
        self._bad[good] = 0
        if not good.all():  # rare: remember an out-of-range value for the message
            finite = np.isfinite(row)
            self._oor[~good & finite] = row[~good & finite]
            self._any_oor = True
        if self._any_oor:
            self._oor[good] = np.nan
            self._any_oor = not np.isnan(self._oor).all()
        rc = self._run_col
        running = rc is None or bool(good[rc] and row[rc] >= 0.5)
        watch = good & self._analog
        same = watch & (row == self._last)
        # A repeat counts (run-only channels only while running); a changed value resets; a bad
        # reading leaves the counter and the last value as they were.
        self._flat += same if running else same & self._still_ok
        self._flat[watch & ~same] = 0
        np.copyto(self._last, row, where=good)
        if self._bad.max() < self.dropout_readings and self._flat.max() < self.flat_readings:
            return None
        return self._verdict()

    def suspect(self) -> str | None:
        """A channel already repeating itself, not long enough to call it a fault: its windows are not
        scored, because a frozen value breaks the physical relations between features within minutes."""
        i = int(np.argmax(self._flat))
        return self.points[i] if self._flat[i] >= self.suspect_readings else None

    def _verdict(self) -> str | None:
        over = np.flatnonzero(self._bad >= self.dropout_readings)
        if over.size:
            i = int(over[0])
            name, n = self.points[i], int(self._bad[i])
            if np.isfinite(self._oor[i]):
                return f"sensor fault: {name} out of range ({self._oor[i]:g})"
            return f"sensor fault: {name} not readable for {n} readings"
        stuck = np.flatnonzero(self._flat >= self.flat_readings)
        # Everything frozen at once is a stale slave or a stopped poller, which the missing list reports;
        # a single frozen channel among moving ones is the sensor.
        if stuck.size and stuck.size < self._n_analog // 2:
            return f"sensor fault: {self.points[int(stuck[0])]} flat-lined"
        return None
