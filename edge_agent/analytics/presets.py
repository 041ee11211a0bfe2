"""Operating regimes: how much machine time a reading stands for, and the parameters that follow.

The shipped model is trained on windows covering ``WINDOW_SECONDS`` of machine time. A preset picks
the window (in readings) that covers that span at its reading rate, a calibration long enough to see
a few thermostat cycles, and, for the simulator, when the injected faults start and how long they ramp.

* ``REALTIME``: a real unit polled at 1 Hz. The window is 20 minutes of readings, calibration two hours.
* ``DEMO``: ``signalcraft demo`` runs 90 s of wall time with the simulator ``speed`` times faster than the
  wall clock and the agent polling at 1 Hz, so one reading is ``speed`` seconds of machine time.
  Calibration ends within the first half minute and the faults are detected within about 75 s.

Both use the same code and the same model; only these numbers differ (see docs/MODEL_CARD.md).
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_SECONDS = 1200.0  # machine time a window covers (the model's training regime)


@dataclass(frozen=True)
class Preset:
    name: str
    speed: float  # simulated seconds per wall second (1 = real time)
    poll_interval_s: float  # wall seconds between readings
    window: int  # readings
    calibration_readings: int
    fault_start_s: float  # simulated seconds after the simulator starts
    fault_ramp_s: float  # simulated seconds to full severity

    def __post_init__(self) -> None:
        if self.speed <= 0 or self.poll_interval_s <= 0:
            raise ValueError(f"preset {self.name}: speed and poll_interval_s must be positive")
        if self.calibration_readings <= self.window:
            raise ValueError(f"preset {self.name}: calibration must be longer than one window")

    @property
    def seconds_per_reading(self) -> float:
        """Machine (simulated) seconds between two readings."""
        return self.speed * self.poll_interval_s

    def analytics_kwargs(self) -> dict[str, int]:
        """Keyword arguments for :class:`edge_agent.analytics.Analytics`."""
        return {"window": self.window, "calibration_readings": self.calibration_readings}


REALTIME = Preset(
    name="realtime",
    speed=1.0,
    poll_interval_s=1.0,
    window=1200,
    calibration_readings=7200,
    fault_start_s=4 * 3600.0,
    fault_ramp_s=2 * 3600.0,
)

DEMO = Preset(
    name="demo",
    speed=120.0,
    poll_interval_s=1.0,
    window=10,
    calibration_readings=25,
    fault_start_s=56 * 60.0,  # reading 28, just after calibration
    fault_ramp_s=30 * 60.0,  # full severity at reading 43
)

PRESETS = {p.name: p for p in (REALTIME, DEMO)}
