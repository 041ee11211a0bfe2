"""Generic per-channel window features, for machines without a compressor's operating modes (pumps, fans).

A model whose manifest says ``"extractor": {"kind": "channels", ...}`` scores a fixed list of numeric
channels. Each channel gets two features over the last ``window`` readings: the **mean** (where the
machine operates) and the **standard deviation** (how rough it runs). The manifest also declares each
channel's physical range (outside it the sensor is wrong, not the machine) and an **allowance**: the
smallest change of the mean that can be a machine change rather than normal life. Thermal channels need
one: a motor body or a fluid warms and cools by a kelvin or two with the room and the load long after
calibration ended, and a level that drifts that slowly says nothing about the hydraulics.

The ring buffer keeps running sums, so ``push`` and ``features`` are O(channels) whatever the window:
the sums are rebuilt from the buffer every ``window`` pushes so float rounding cannot accumulate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Channel:
    name: str
    lo: float  # physical range; outside it the reading is a sensor error
    hi: float
    allowance: float = 0.0  # smallest change of the window mean that counts (unit of the channel)

    def __post_init__(self) -> None:
        if not self.lo < self.hi:
            raise ValueError(f"channel {self.name!r}: range lo must be below hi")
        if self.allowance < 0:
            raise ValueError(f"channel {self.name!r}: allowance must not be negative")


@dataclass(frozen=True)
class ChannelSpec:
    """The ``extractor`` section of a channels model's manifest."""

    channels: tuple[Channel, ...]
    window: int  # readings per window
    flat_readings: int  # an exactly repeated value this long is a frozen sensor

    @property
    def names(self) -> tuple[str, ...]:
        return feature_names(self.channels)

    def floor(self) -> np.ndarray:
        """Per-feature scale floor (the means' allowances; no floor for the spreads)."""
        return np.array([c.allowance for c in self.channels] + [0.0] * len(self.channels))

    @classmethod
    def from_manifest(cls, doc: Mapping[str, Any]) -> ChannelSpec:
        return cls(
            channels=tuple(
                Channel(str(c["name"]), float(c["lo"]), float(c["hi"]), float(c.get("allowance", 0.0)))
                for c in doc["channels"]
            ),
            window=int(doc["window"]),
            flat_readings=int(doc["flat_readings"]),
        )

    def to_manifest(self) -> dict[str, Any]:
        return {
            "kind": "channels",
            "window": self.window,
            "flat_readings": self.flat_readings,
            "channels": [
                {"name": c.name, "lo": c.lo, "hi": c.hi, "allowance": c.allowance} for c in self.channels
            ],
        }


def feature_names(channels: Sequence[Channel]) -> tuple[str, ...]:
    return tuple(f"{c.name}.mean" for c in channels) + tuple(f"{c.name}.std" for c in channels)


class ChannelWindow:
    """Ring buffer of the last ``window`` readings with running sums; same interface as FeatureWindow."""

    def __init__(self, spec: ChannelSpec) -> None:
        self.spec = spec
        self.window = spec.window
        n = len(spec.channels)
        self._names = [c.name for c in spec.channels]
        self._lo = np.array([c.lo for c in spec.channels])
        self._hi = np.array([c.hi for c in spec.channels])
        self._data = np.zeros((self.window, n))
        self._bad = np.zeros((self.window, n), dtype=bool)  # missing or out of range
        self._row = np.empty(n)
        self._sum = np.zeros(n)
        self._sq = np.zeros(n)
        self._nbad = np.zeros(n, dtype=np.int64)
        self._pos = self._count = 0
        self._features = np.full(2 * n, np.nan)

    @property
    def filled(self) -> int:
        return min(self._count, self.window)

    def reset(self) -> None:
        self._data.fill(0.0)
        self._bad.fill(False)
        self._sum.fill(0.0)
        self._sq.fill(0.0)
        self._nbad.fill(0)
        self._pos = self._count = 0

    def push(self, values: Mapping[str, float], missing: frozenset[str] | set[str] = frozenset()) -> None:
        row = np.array([values.get(name, np.nan) for name in self._names], dtype=float)
        for i, name in enumerate(self._names):
            if name in missing:
                row[i] = np.nan
        self.push_row(row)

    def push_row(self, reading: np.ndarray, checked: bool = False) -> None:
        """Add one reading in channel order (NaN = missing); out-of-range values count as missing."""
        row = self._row
        row[:] = reading
        with np.errstate(invalid="ignore"):
            bad = ~((row >= self._lo) & (row <= self._hi))  # NaN fails both comparisons
        row[bad] = 0.0  # a bad reading adds nothing to the sums and is not counted
        p = self._pos
        old, old_bad = self._data[p], self._bad[p]
        self._sum += row - old
        self._sq += row * row - old * old
        self._nbad += bad.astype(np.int64) - old_bad
        old[:] = row
        old_bad[:] = bad
        self._pos = (p + 1) % self.window
        self._count += 1
        if self._pos == 0:  # once per window: drop accumulated rounding error
            self._sum = self._data.sum(axis=0)
            self._sq = (self._data * self._data).sum(axis=0)

    def unscorable(self) -> str:
        if self._count < self.window:
            return f"filling window: {self._count}/{self.window} readings"
        return ""

    def features(self) -> np.ndarray:
        """Means then standard deviations (NaN for a channel with fewer than two good readings).

        Returns an internal array that the next call overwrites; copy it to keep it.
        """
        n = len(self._names)
        good = self.filled - self._nbad
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self._sum / good
            var = np.maximum(self._sq / good - mean * mean, 0.0)
        f = self._features
        f[:n] = np.where(good >= 2, mean, np.nan)
        f[n:] = np.where(good >= 2, np.sqrt(var), np.nan)
        return f
