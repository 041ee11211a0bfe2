"""Compressor analytics: readings in, a debounced health verdict with an explanation out.

    Analytics.observe(ts, values, missing)
      ├─ SensorMonitor      stuck / dropped-out / impossible sensor  -> SENSOR_FAULT, never a machine alarm
      ├─ FeatureWindow      ring buffer + operating modes -> mode-conditioned features
      ├─ scorable?          defrost, door open, compressor stopped -> not scored, state holds
      ├─ Calibration        the first readings learn this machine's normal (persisted, resumable)
      ├─ ModelRunner        ONNX: features + site normal -> score (1.0 = threshold) + contributions
      └─ HealthMachine      hysteresis, counted in readings -> HEALTHY / WARNING / ALARM
    Analytics.observe_waveform(window)   the same calibration, ONNX and health path per waveform source
                                         (edge_agent.analytics.waveform), merged into the next verdict

Everything that depends on how much machine time a reading stands for is derived from the window:
the shipped model is trained on windows covering ``manifest.window.seconds`` of machine time, so a
window of N readings implies N readings = that many seconds, which sets how many readings a start
transient and a post-defrost pull-down last. Pick the window from :mod:`edge_agent.analytics.presets`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.schema import Contributor, HealthState
from edge_agent.analytics.calibration import Calibration
from edge_agent.analytics.channels import ChannelWindow
from edge_agent.analytics.features import POINTS, FeatureWindow, to_row
from edge_agent.analytics.health import HealthConfig, HealthMachine
from edge_agent.analytics.presets import DEMO, REALTIME, Preset
from edge_agent.analytics.runner import ModelRunner
from edge_agent.analytics.sensors import SensorMonitor
from edge_agent.analytics.waveform import WaveformScorer, WaveformVerdict

if TYPE_CHECKING:
    from edge_agent.sources.waveform.reader import WaveformWindow

__all__ = ["DEMO", "REALTIME", "Analytics", "HealthConfig", "Preset", "Verdict"]

TOP_CONTRIBUTORS = 3
DEFAULT_WINDOW = 60  # readings, for the compressor model when the caller does not say


@dataclass(frozen=True)
class Verdict:
    """The analytics' answer for one reading."""

    score: float | None  # None while INITIALIZING or when the window isn't full / not scorable
    state: HealthState
    changed: bool  # True exactly when state differs from the previous verdict's state
    previous: HealthState | None
    reason: str  # one human sentence
    contributors: list[Contributor]  # top features pushing the score up
    model_version: str


class Analytics:
    """Feature extraction, on-site calibration, ONNX scoring and the health state of one compressor."""

    def __init__(
        self,
        model_dir: Path | None,
        state_dir: Path,
        calibration_readings: int = 600,
        window: int | None = None,
        *,
        seconds_per_reading: float | None = None,
        health: HealthConfig | None = None,
    ) -> None:
        self._runner = ModelRunner(model_dir)
        m = self._runner.manifest
        spec = m.channels
        self.window = window = window or (spec.window if spec is not None else DEFAULT_WINDOW)
        # Machine seconds per reading; by default what makes the window cover what the model was trained on.
        self.seconds_per_reading = seconds_per_reading or m.window_seconds / window
        self._names = m.features
        self._features: FeatureWindow | ChannelWindow
        if spec is None:
            self._points = POINTS
            self._features = FeatureWindow(window, self.seconds_per_reading, m.timing)
            # A channel frozen for a window while others move is a fault, and suspect after a quarter
            # window (no noisy sensor repeats a float exactly); unreadable for a quarter window in a row
            # is a dropout.
            self._sensors = SensorMonitor(
                flat_readings=max(window, 10),
                dropout_readings=max(5, window // 4),
                suspect_readings=max(5, window // 4),
            )
        else:
            # A generic machine: no operating modes, no run flag; quantised channels (a flow meter in
            # whole litres) repeat themselves for a while, so the manifest says when frozen is frozen.
            spec = replace(spec, window=window)
            self._points = tuple(c.name for c in spec.channels)
            self._features = ChannelWindow(spec)
            self._sensors = SensorMonitor(
                flat_readings=spec.flat_readings,
                dropout_readings=max(5, window // 4),
                suspect_readings=spec.flat_readings,
                points=self._points,
                ranges={c.name: (c.lo, c.hi) for c in spec.channels},
                analog=self._points,
                run_only=frozenset(),
                run_point=None,
            )
        identity: dict[str, object] = {
            "model": m.version,
            "sha256": m.sha256,
            "features": list(self._names),
            "window": window,
            "calibration_readings": calibration_readings,
        }
        self._calibration = Calibration(
            state_dir, calibration_readings, identity, m.fleet_scale, with_std=spec is not None
        )
        if self._calibration.normal is not None:
            self._runner.set_normal(self._calibration.normal.center, self._calibration.normal.inv_scale)
        self._health = HealthMachine(health or HealthConfig.for_window(window))
        self._last: HealthState | None = None
        self._state_dir = state_dir
        self._waveforms: dict[str, WaveformScorer] = {}
        self._waveform_last: dict[str, WaveformVerdict] = {}

    @property
    def model_version(self) -> str:
        return self._runner.version

    @property
    def calibration_progress(self) -> tuple[int, int]:
        """(readings done, readings needed); done stays at needed once calibrated."""
        cal = self._calibration
        return (min(cal.done, cal.needed), cal.needed)

    @property
    def waveform_sources(self) -> frozenset[str]:
        """The waveform sources that have a scorer (their first window has been scored)."""
        return frozenset(self._waveforms)

    @property
    def calibrated(self) -> bool:
        return self._calibration.complete

    def recalibrate(self) -> None:
        """Forget this machine's normal and learn it again from the next readings (e.g. after a repair)."""
        self._calibration.reset()
        self._health.reset()
        for scorer in self._waveforms.values():
            scorer.recalibrate()
        self._waveform_last.clear()

    def observe_waveform(self, window: WaveformWindow) -> WaveformVerdict:
        """Score one window of a waveform source (the agent's hook, see sources/waveform/README.md).

        Each source has its own calibration (``waveform-<source>.json``) and health state; a source in
        WARNING or ALARM shows in the next :meth:`observe` verdict when the slow readings are healthy.
        """
        scorer = self._waveforms.get(window.source)
        if scorer is None:
            scorer = self._waveforms[window.source] = WaveformScorer(None, self._state_dir, window.source)
        verdict = scorer.observe(window.samples, window.sample_rate, window.overload)
        self._waveform_last[window.source] = verdict
        return verdict

    def observe(self, ts: datetime, values: dict[str, float], missing: list[str]) -> Verdict:
        """Account for one poll cycle and return the verdict (call once per reading, in time order).

        ``ts`` is not used for timing: durations are counted in readings so that accelerated time behaves.
        """
        row = to_row(values, frozenset(missing) if missing else frozenset(), self._points)
        fault = self._sensors.update(row)
        row[~self._sensors.good] = np.nan  # out of range: a sensor error, treated like a missing value
        self._features.push_row(row, checked=True)
        if fault is not None:
            return self._verdict(None, HealthState.SENSOR_FAULT, fault)
        why_not = self._features.unscorable()
        suspect = self._sensors.suspect()
        if suspect and not why_not:
            why_not = f"{suspect} not changing: not scored"
        features = None if why_not else self._features.features()
        cal = self._calibration
        if not cal.complete:
            if not cal.add(features):
                return self._verdict(None, HealthState.INITIALIZING, self._calibrating_reason(why_not))
            assert cal.normal is not None
            self._runner.set_normal(cal.normal.center, cal.normal.inv_scale)
            self._health.reset()
            return self._verdict(None, HealthState.HEALTHY, f"calibrated on {len(cal.rows)} windows")
        if features is None:
            return self._verdict(None, self._health.state, why_not or "not scored")
        score, contributions = self._runner.run(features)
        state = self._health.update(score)
        top = self._contributors(features, contributions)
        if state is HealthState.HEALTHY and self._waveform_last:
            loud = self._loudest_waveform()
            if loud is not None:
                return self._verdict(loud.score, loud.state, loud.reason, loud.contributors)
        return self._verdict(score, state, self._explain(score, state, top), top)

    def _loudest_waveform(self) -> WaveformVerdict | None:
        worst = None
        for v in self._waveform_last.values():
            if v.state in (HealthState.WARNING, HealthState.ALARM) and (
                worst is None or v.state is HealthState.ALARM
            ):
                worst = v
        return worst

    def _calibrating_reason(self, why_not: str) -> str:
        done, needed = self.calibration_progress
        if done >= needed:
            return f"calibrating: waiting for scorable windows ({why_not or 'collecting'})"
        return f"calibrating: {done}/{needed} readings"

    def _explain(self, score: float, state: HealthState, top: list[Contributor]) -> str:
        if state is HealthState.HEALTHY or not top:
            return f"normal (score {score:.2f})"
        lead = top[0]
        side = "above" if lead.z >= 0 else "below"
        readings = self._health.in_state + self._health.config.warn_after
        return f"{lead.feature} {abs(lead.z):.1f}σ {side} normal for {self._duration(readings)}"

    def _contributors(self, features: np.ndarray, contrib: np.ndarray) -> list[Contributor]:
        # Only the top few are reported, so only their z-scores are computed (plain floats).
        order = np.argsort(-contrib)[:TOP_CONTRIBUTORS].tolist()
        center, inv_scale = self._runner.normal
        out = []
        for i in order:
            if contrib[i] <= 0:
                break
            x = float(features[i])
            z = 0.0 if x != x else (x - float(center[i])) * float(inv_scale[i])  # NaN: counted as normal
            out.append(Contributor(feature=self._names[i], value=round(x, 4), z=round(z, 2)))
        return out

    def _duration(self, readings: int) -> str:
        minutes = readings * self.seconds_per_reading / 60
        if minutes < 2:
            return f"{readings * self.seconds_per_reading:.0f} s"
        if minutes < 120:
            return f"{minutes:.0f} min"
        return f"{minutes / 60:.1f} h"

    def _verdict(
        self,
        score: float | None,
        state: HealthState,
        reason: str,
        contributors: list[Contributor] | None = None,
    ) -> Verdict:
        previous, self._last = self._last, state
        return Verdict(
            score=score,
            state=state,
            changed=state is not previous,
            previous=previous,
            reason=reason,
            contributors=contributors or [],
            model_version=self._runner.version,
        )
