"""The debounced health state machine: scores in, HEALTHY / WARNING / ALARM out.

A single window over the threshold is not news; a technician woken at 3 a.m. by one is a customer
lost. So a level must be *sustained* to enter a state and the score must fall clearly below the
threshold (hysteresis) for a while before the state clears:

    HEALTHY --(score >= warn for warn_after scored readings)--> WARNING
    HEALTHY/WARNING --(score >= alarm for alarm_after scored readings)--> ALARM
    WARNING/ALARM --(score < clear for clear_after scored readings)--> HEALTHY

Durations are counted in readings, never in seconds, so the machine behaves the same whether a
reading is one second or one (simulated) minute of machine time. Readings that are not scored
(defrost, door open, compressor stopped) neither advance nor reset the counters: they are no evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.schema import HealthState


@dataclass(frozen=True)
class HealthConfig:
    warn_level: float = 1.0
    alarm_level: float = 2.0
    clear_level: float = 0.7
    warn_after: int = 5
    alarm_after: int = 10
    clear_after: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.clear_level < self.warn_level < self.alarm_level:
            raise ValueError("levels must satisfy 0 < clear_level < warn_level < alarm_level")
        if min(self.warn_after, self.alarm_after, self.clear_after) < 1:
            raise ValueError("warn_after, alarm_after and clear_after must be at least 1 reading")

    @classmethod
    def for_window(cls, window: int) -> HealthConfig:
        """Debounce in proportion to the window: consecutive windows share most of their readings, so
        evidence is only independent about once per window; half a window of agreement is enough to
        warn, a whole window to alarm, and a whole quieter window to clear."""
        half = max(3, window // 2)
        return cls(warn_after=half, alarm_after=2 * half, clear_after=2 * half)


class HealthMachine:
    """Machine health from a stream of scores (the caller handles INITIALIZING and SENSOR_FAULT)."""

    def __init__(self, config: HealthConfig) -> None:
        self.config = config
        self.state = HealthState.HEALTHY
        self.above_warn = 0
        self.above_alarm = 0
        self.below_clear = 0
        self.in_state = 0  # scored readings since the current state was entered

    def reset(self) -> None:
        self.state = HealthState.HEALTHY
        self.above_warn = self.above_alarm = self.below_clear = self.in_state = 0

    def update(self, score: float) -> HealthState:
        c = self.config
        self.above_warn = self.above_warn + 1 if score >= c.warn_level else 0
        self.above_alarm = self.above_alarm + 1 if score >= c.alarm_level else 0
        self.below_clear = self.below_clear + 1 if score < c.clear_level else 0
        new = self.state
        if self.state is not HealthState.ALARM and self.above_alarm >= c.alarm_after:
            new = HealthState.ALARM
        elif self.state is HealthState.HEALTHY and self.above_warn >= c.warn_after:
            new = HealthState.WARNING
        elif self.state is not HealthState.HEALTHY and self.below_clear >= c.clear_after:
            new = HealthState.HEALTHY
        if new is not self.state:
            self.state = new
            self.in_state = 0
        self.in_state += 1
        return self.state
