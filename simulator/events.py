"""The shop's life around the unit: door openings and deliveries of goods.

Events are drawn from their own random stream, one event at a time, and only from the simulated time of
the previous event. The schedule therefore does not depend on how the simulation is stepped: a unit
advanced in 60 s steps sees the same doors open at the same times as one advanced in 1 s steps.
"""

from __future__ import annotations

import math
import random

DAY = 86400.0
HOUR = 3600.0
SHOP_OPENS, SHOP_CLOSES = 8 * HOUR, 21 * HOUR


class ShopEvents:
    """Door openings (a Poisson process, busier in shop hours) and a morning delivery on most days."""

    def __init__(self, rng: random.Random, start_clock_s: float, door_rate_factor: float) -> None:
        self._rng = rng
        self._clock0 = start_clock_s
        self._shop_rate = 2.5 / HOUR * door_rate_factor  # openings per second in shop hours
        self._night_rate = 0.15 / HOUR * door_rate_factor
        self.door_open = False
        self.restocking = False
        self.door_openings = 0
        self._door_until = math.inf
        self._next_door = self._draw_door(0.0)
        self._next_restock = self._draw_restock(0.0)

    def clock(self, sim_time: float) -> float:
        """Seconds since local midnight."""
        return (self._clock0 + sim_time) % DAY

    def next_time(self) -> float:
        """Simulated time of the next change of door state."""
        return min(self._door_until, self._next_door, self._next_restock)

    def advance(self, sim_time: float) -> tuple[int, bool]:
        """Apply every event due at ``sim_time``; returns (doors opened, delivery arrived)."""
        opened, delivered = 0, False
        if sim_time >= self._door_until:
            self.door_open = self.restocking = False
            self._door_until = math.inf
        if sim_time >= self._next_restock:
            # A delivery: the door stays open while the goods go in, and the goods bring warmth.
            self._open(sim_time, self._rng.uniform(120.0, 300.0))
            self.restocking = delivered = True
            opened += 1
            self._next_restock = self._draw_restock(sim_time + HOUR)
        if sim_time >= self._next_door:
            if not self.door_open:
                # Most openings are a customer taking something out: seconds, with a long tail.
                self._open(sim_time, min(90.0, 5.0 + self._rng.expovariate(1 / 15.0)))
                opened += 1
            self._next_door = self._draw_door(sim_time)
        return opened, delivered

    def _open(self, sim_time: float, duration: float) -> None:
        self.door_open = True
        self.door_openings += 1
        self._door_until = max(self._door_until if self._door_until != math.inf else 0.0, sim_time + duration)

    def _rate(self, sim_time: float) -> float:
        clock = self.clock(sim_time)
        return self._shop_rate if SHOP_OPENS <= clock < SHOP_CLOSES else self._night_rate

    def _draw_door(self, after: float) -> float:
        # Thinning (Lewis-Shedler): candidates at the peak rate, kept with probability rate(t) / peak.
        t = after
        while True:
            t += self._rng.expovariate(self._shop_rate)
            if self._rng.random() * self._shop_rate <= self._rate(t):
                return t

    def _draw_restock(self, after: float) -> float:
        # Deliveries come between 9:00 and 12:00 on about six days in ten.
        day_start = after - self.clock(after)
        while True:
            t = day_start + self._rng.uniform(9 * HOUR, 12 * HOUR)
            if t > after and self._rng.random() < 0.6:
                return t
            day_start += DAY
