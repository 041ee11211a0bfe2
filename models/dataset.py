"""Training data: healthy simulated units run through the agent's own feature code.

Each unit is a (kind, seed) of :mod:`simulator.compressor`, read every ``dt`` simulated seconds through
the register map (:mod:`models.simdata`), and windowed by :class:`edge_agent.analytics.features.FeatureWindow`
with the same scorability rules the agent applies. The result is one feature row per reading (NaN rows
where the window is not scorable), so the training code can replay on-site calibration at any point.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edge_agent.analytics.features import FEATURES, FeatureWindow, Timing
from models.simdata import RegisterView, readings
from simulator.faults import FaultSpec


@dataclass(frozen=True)
class Regime:
    """How readings relate to machine time: seconds per reading and what the window must cover."""

    dt: float  # simulated seconds per reading
    window_seconds: float
    timing: Timing

    @property
    def window(self) -> int:
        return max(4, round(self.window_seconds / self.dt))

    def feature_window(self) -> FeatureWindow:
        return FeatureWindow(self.window, self.dt, self.timing)


@dataclass(frozen=True)
class Unit:
    kind: str
    seed: int
    start_clock_s: float
    rows: np.ndarray  # (readings, F); all-NaN row where the window was not scorable

    @property
    def scorable(self) -> np.ndarray:
        return ~np.isnan(self.rows).all(axis=1)


def start_clock(seed: int) -> float:
    """A reproducible time of day for a unit to be switched on (calibration sees all hours)."""
    return random.Random(f"signalcraft-train:{seed}").uniform(0.0, 86400.0)


def simulate_unit(
    kind: str,
    seed: int,
    days: float,
    regime: Regime,
    faults: Sequence[FaultSpec] = (),
    clock_s: float | None = None,
    view: RegisterView | None = None,
) -> Unit:
    clock = start_clock(seed) if clock_s is None else clock_s
    fw = regime.feature_window()
    n = int(days * 86400 // regime.dt)
    rows = np.full((n, len(FEATURES)), np.nan)
    for i, (_, values) in enumerate(readings(kind, seed, days * 86400, regime.dt, faults, clock, view)):
        fw.push(values)
        if not fw.unscorable():
            rows[i] = fw.features()
    return Unit(kind, seed, clock, rows)


def simulate_fleet(
    kinds: Sequence[str],
    seeds: Sequence[int],
    days: float,
    regime: Regime,
    progress: Callable[[str], None] | None = None,
) -> list[Unit]:
    view = RegisterView()
    units = []
    for kind in kinds:
        for seed in seeds:
            units.append(simulate_unit(kind, seed, days, regime, view=view))
            if progress:
                progress(f"{kind} seed {seed}")
    return units
