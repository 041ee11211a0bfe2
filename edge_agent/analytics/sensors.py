"""Sensor-fault detection: a stuck, dropped-out or impossible sensor must never look like a sick machine.

Three checks, each O(1) per reading with one counter per point:

* flat line: an analog channel repeats exactly the same value for ``flat_readings`` readings while other
  channels move (after ``suspect_readings`` its windows are already no longer scored). Real sensors
  carry noise; a value that does not change at all is a frozen transmitter, a cut wire on a latched
  input, or a slave serving a stale register. Channels that legitimately sit still while the compressor
  is stopped (current, power, vibration read 0) only count while it runs.
* out of range: a value outside the physical range of :data:`features.RANGES`.
* dropout: the point is in ``missing`` (or out of range) for ``dropout_readings`` readings in a row.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edge_agent.analytics.features import ANALOG, POINTS, RANGES

# Channels that read a constant (usually 0) whenever the compressor is stopped.
_RUN_ONLY = frozenset({"motor_current", "power", "vibration_rms", "vibration_peak"})


class SensorMonitor:
    """Tracks per-point health counters and names the first faulty sensor, if any."""

    def __init__(self, flat_readings: int, dropout_readings: int, suspect_readings: int) -> None:
        self.flat_readings = flat_readings
        self.suspect_readings = suspect_readings
        self.dropout_readings = dropout_readings
        self._last: dict[str, float] = {}
        self._flat = dict.fromkeys(ANALOG, 0)
        self._bad = dict.fromkeys(POINTS, 0)
        self._out_of_range: dict[str, float] = {}

    def reset(self) -> None:
        self._last.clear()
        self._flat = dict.fromkeys(ANALOG, 0)
        self._bad = dict.fromkeys(POINTS, 0)
        self._out_of_range.clear()

    def update(self, values: Mapping[str, float], missing: frozenset[str] | set[str]) -> str | None:
        """Account for one reading; return a sentence naming the faulty sensor, or None."""
        running = values.get("running", 0.0) >= 0.5 and "running" not in missing
        for name in POINTS:
            v = values.get(name)
            lo, hi = RANGES[name]
            if v is None or name in missing or not np.isfinite(v):
                self._bad[name] += 1
                continue
            if not lo <= v <= hi:
                self._bad[name] += 1
                self._out_of_range[name] = v
                continue
            self._bad[name] = 0
            self._out_of_range.pop(name, None)
            if name in self._flat:
                self._count_flat(name, v, running)
        return self._verdict()

    def suspect(self) -> str | None:
        """A channel already repeating itself, not long enough to call it a fault: its windows are not
        scored, because a frozen value breaks the physical relations between features within minutes."""
        for name, n in self._flat.items():
            if n >= self.suspect_readings:
                return name
        return None

    def _count_flat(self, name: str, v: float, running: bool) -> None:
        last = self._last.get(name)
        self._last[name] = v
        if last is None or v != last:
            self._flat[name] = 0
        elif running or name not in _RUN_ONLY:
            self._flat[name] += 1

    def _verdict(self) -> str | None:
        for name, n in self._bad.items():
            if n >= self.dropout_readings:
                if name in self._out_of_range:
                    return f"sensor fault: {name} out of range ({self._out_of_range[name]:g})"
                return f"sensor fault: {name} not readable for {n} readings"
        stuck = [name for name, n in self._flat.items() if n >= self.flat_readings]
        # Everything frozen at once is a stale slave or a stopped poller, which the missing list reports;
        # a single frozen channel among moving ones is the sensor.
        if stuck and len(stuck) < len(self._flat) // 2:
            return f"sensor fault: {stuck[0]} flat-lined"
        return None
