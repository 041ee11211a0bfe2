"""A token bucket per device: a runaway agent cannot crowd the rest of the fleet out of the writer.

A device may send ``burst`` messages at once and ``rate`` messages per second after that. What goes over
is refused into ``dead_letters`` with the reason (payload kept, so nothing is silently gone) and counted
in ``signalcraft_collector_rate_limited_total``. A healthy agent sends about one message per second live
and a few per second while replaying a backlog (up to 500 readings each), far below the default of 20/s.

The buckets live in each collector process: with N collectors on one shared subscription a device gets
about N times the rate in total. Idle buckets are forgotten, so memory follows the active fleet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class DeviceRateLimit:
    """``allow(device)`` takes one token from the device's bucket, or says no."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic) -> None:
        if rate < 0 or burst < 1:
            raise ValueError(f"rate must be >= 0 and burst >= 1, got rate={rate}, burst={burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._swept = clock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, device: str) -> bool:
        if not self.enabled:
            return True
        now = self._clock()
        bucket = self._buckets.get(device)
        if bucket is None:
            bucket = self._buckets[device] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if now - self._swept > 60:
            self._sweep(now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        return False

    def reason(self, device: str) -> str:
        return (f"device {device} exceeded its rate limit of {self.rate:g} messages/s "
                f"(burst {self.burst}); see ingest.device_rate_limit")

    def _sweep(self, now: float) -> None:
        # A bucket that has refilled completely is the same as no bucket.
        full = self.burst / self.rate
        self._buckets = {d: b for d, b in self._buckets.items() if now - b.at < full}
        self._swept = now
