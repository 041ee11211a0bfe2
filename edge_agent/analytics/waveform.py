"""Waveform features (vibration, sound at 4–16 kHz) and their scorer: numpy only, one rfft per window.

Per window of one channel:

* time domain: **RMS**, **peak**, **crest factor** (peak / RMS: impacts raise it before they raise the
  RMS) and **kurtosis** (3 for Gaussian noise; bearing impacts make it spiky);
* **band energies**, log10 of the band's RMS so that a doubling is the same step at any level, for
  configurable bands: the mains family (``mains_hz`` × 1, 2, 3 ± 3 Hz: load and electrical imbalance), the
  bearing band (500–2000 Hz: structural resonances rung by defects) and the leak hiss (2–8 kHz); a band
  above the Nyquist frequency is NaN (never observed, so calibration switches it off);
* **spectral centroid** (Hz) and **flatness** (geometric / arithmetic mean of the power: 1 for white
  noise, near 0 for a few tones): broadband hiss moves both;
* **envelope spectrum**: the bearing band is isolated in the spectrum, its analytic signal's magnitude
  (the envelope) is demodulated, and the feature is the prominence of the strongest envelope line
  between 5 and 500 Hz over the envelope spectrum's median, in log10: bearing defects repeat at their
  defect frequency (a few times the shaft speed) and show up as a line there long before they raise the
  band's energy. The line's frequency is reported alongside for the technician.

:class:`WaveformScorer` is the waveform counterpart of :class:`~edge_agent.analytics.Analytics`: the same
on-site :class:`~edge_agent.analytics.calibration.Calibration` (its own file per source), the same ONNX
runner and the same :class:`~edge_agent.analytics.health.HealthMachine`, counted in windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.schema import Contributor, HealthState

ENVELOPE_BAND = (5.0, 500.0)  # Hz: where the defect frequencies of compressor bearings sit


@dataclass(frozen=True)
class Band:
    name: str
    lo: float  # Hz
    hi: float

    def __post_init__(self) -> None:
        if not 0 <= self.lo < self.hi:
            raise ValueError(f"band {self.name!r}: need 0 <= lo < hi, got {self.lo}..{self.hi}")


def default_bands(mains_hz: float = 60.0) -> tuple[Band, ...]:
    """The bands that matter on a refrigeration compressor (docs/MODEL_CARD.md)."""
    return (
        *(Band(f"mains_{k}x", k * mains_hz - 3.0, k * mains_hz + 3.0) for k in (1, 2, 3)),
        Band("bearing", 500.0, 2000.0),
        Band("hiss", 2000.0, 8000.0),
    )


@dataclass(frozen=True)
class WaveformSpec:
    """The ``extractor`` section of a waveform model's manifest."""

    bands: tuple[Band, ...] = field(default_factory=default_bands)
    bearing_band: tuple[float, float] = (500.0, 2000.0)

    @property
    def names(self) -> tuple[str, ...]:
        return (
            "rms",
            "peak",
            "crest",
            "kurtosis",
            *(f"band.{b.name}" for b in self.bands),
            "centroid",
            "flatness",
            "envelope_peak",
        )

    @classmethod
    def from_manifest(cls, doc: dict[str, Any]) -> WaveformSpec:
        return cls(
            bands=tuple(Band(str(b["name"]), float(b["lo"]), float(b["hi"])) for b in doc["bands"]),
            bearing_band=(float(doc["bearing_band"][0]), float(doc["bearing_band"][1])),
        )

    def to_manifest(self) -> dict[str, Any]:
        return {
            "kind": "waveform",
            "bands": [{"name": b.name, "lo": b.lo, "hi": b.hi} for b in self.bands],
            "bearing_band": list(self.bearing_band),
        }


class WaveformFeatures:
    """Features of windows of ``n`` samples at ``rate``; bin ranges and buffers are built once per shape.

    Cost is one real FFT of the window plus small fixed work: bands are contiguous bin ranges (slices, not
    masks), and the envelope is demodulated at baseband: the bearing band's bins are moved down to 0 Hz
    in a short complex buffer (a power of two covering the band), whose inverse FFT is the band's complex
    envelope at a few kHz, plenty for defect frequencies below 500 Hz and a fraction of a full-length
    inverse transform.
    """

    def __init__(self, spec: WaveformSpec, rate: int, n: int) -> None:
        self.spec, self.rate, self.n = spec, rate, n
        df = rate / n  # Hz per bin
        nyquist = rate / 2
        n_bins = n // 2 + 1

        def bins(lo: float, hi: float) -> tuple[int, int]:
            return max(1, math.ceil(lo / df)), min(n_bins, math.ceil(min(hi, nyquist) / df))

        self._bands = [bins(b.lo, b.hi) if b.hi <= nyquist else None for b in spec.bands]
        self._freqs = np.fft.rfftfreq(n, 1.0 / rate)[1:].astype(np.float32)
        lo, hi = spec.bearing_band
        self._bearing = bins(lo, hi) if lo < nyquist else None
        width = self._bearing[1] - self._bearing[0] if self._bearing else 0
        # A complex baseband signal of bandwidth B needs B samples per second: the band fits in m bins.
        self._m = 1 << max(4, math.ceil(math.log2(max(width, 2))))
        self._baseband = np.zeros(self._m, dtype=np.complex64)
        env_df = 1.0 / (n / rate)  # the envelope spans the same duration: same resolution
        self._env_bins = (max(1, math.ceil(ENVELOPE_BAND[0] / env_df)), math.ceil(ENVELOPE_BAND[1] / env_df))
        self._env_df = env_df
        self._out = np.full(len(spec.names), np.nan)
        self.envelope_hz = math.nan  # frequency of the last envelope line, for the explanation

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Features of one channel's window (1-D); an internal array the next call overwrites."""
        out = self._out
        # float32 throughout: the sensor's samples are float32, and numpy's FFT keeps that precision
        # (half the memory traffic of float64); sums use pairwise summation, ample for these features.
        x = np.asarray(x, dtype=np.float32)
        x = x - x.mean(dtype=np.float64).astype(np.float32)
        x2 = x * x
        power_t = float(x2.sum()) / len(x)
        rms = math.sqrt(power_t)
        peak = float(max(x.max(), -x.min()))
        out[0], out[1] = rms, peak
        out[2] = peak / rms if rms > 0 else math.nan
        out[3] = float(np.dot(x2, x2, out=None)) / len(x) / (power_t * power_t) if power_t > 0 else math.nan
        spec = np.fft.rfft(x)
        power = spec.real * spec.real + spec.imag * spec.imag
        k = 4
        for b in self._bands:
            # Parseval: band power from the spectrum, as an RMS in the signal's unit, in log10.
            if b is None:
                out[k] = math.nan
            else:
                band_rms = math.sqrt(2.0 * float(power[b[0] : b[1]].sum())) / len(x)
                out[k] = math.log10(max(band_rms, 1e-9))
            k += 1
        p = power[1:]
        total = float(p.sum())
        if total > 0:
            out[k] = float(np.dot(self._freqs, p)) / total
            out[k + 1] = math.exp(float(np.log(p + np.float32(1e-30)).mean(dtype=np.float64))) / (
                total / len(p)
            )
        else:
            out[k] = out[k + 1] = math.nan
        out[k + 2] = self._envelope_peak(spec)
        return out

    def _envelope_peak(self, spec: np.ndarray) -> float:
        if self._bearing is None:
            return math.nan
        i0, i1 = self._bearing
        a = self._baseband
        a.fill(0)
        a[: i1 - i0] = spec[i0:i1]  # the band moved down to 0 Hz: same envelope, far fewer samples
        env = np.abs(np.fft.ifft(a))
        env_spec = np.abs(np.fft.rfft(env - env.mean()))
        j0, j1 = self._env_bins
        env_spec = env_spec[j0 : min(j1, len(env_spec))]
        if env_spec.size == 0:
            return math.nan
        i = int(np.argmax(env_spec))
        self.envelope_hz = (j0 + i) * self._env_df
        half = env_spec.size // 2
        floor = float(np.partition(env_spec, half)[half])  # the median line: the spectrum's floor
        return math.log10((float(env_spec[i]) + 1e-12) / (floor + 1e-12))


@dataclass(frozen=True)
class WaveformVerdict:
    source: str
    score: float | None
    state: HealthState
    reason: str
    contributors: list[Contributor]


class WaveformScorer:
    """Calibration + ONNX + health state for the windows of one waveform source (first channel)."""

    def __init__(
        self,
        model_dir: Path | None,
        state_dir: Path,
        source: str,
        calibration_windows: int = 30,
    ) -> None:
        from edge_agent.analytics.calibration import Calibration
        from edge_agent.analytics.health import HealthConfig, HealthMachine
        from edge_agent.analytics.runner import ModelRunner, bundled_waveform_dir

        self.source = source
        self._runner = ModelRunner(model_dir or bundled_waveform_dir())
        m = self._runner.manifest
        if m.waveform is None:
            raise ValueError(f"model {m.version} is not a waveform model")
        self.spec = m.waveform
        self._names = m.features
        identity: dict[str, object] = {
            "model": m.version,
            "sha256": m.sha256,
            "features": list(self._names),
            "source": source,
            "calibration_windows": calibration_windows,
        }
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in source)
        self._calibration = Calibration(
            state_dir, calibration_windows, identity, m.fleet_scale, with_std=True, name=f"waveform-{safe}"
        )
        if self._calibration.normal is not None:
            self._runner.set_normal(self._calibration.normal.center, self._calibration.normal.inv_scale)
        # Counted in windows (about a second each): three in a row to warn, six quiet ones to clear.
        # A single knock or a door slam lasts one window and never warns.
        self._health = HealthMachine(HealthConfig(warn_after=3, alarm_after=6, clear_after=6))
        self._features: WaveformFeatures | None = None

    @property
    def model_version(self) -> str:
        return self._runner.version

    @property
    def calibrated(self) -> bool:
        return self._calibration.complete

    def recalibrate(self) -> None:
        self._calibration.reset()
        self._health.reset()

    def observe(self, samples: np.ndarray, rate: int, overload: bool = False) -> WaveformVerdict:
        """Score one window (``samples`` 1-D, or (n, channels): the first channel is used)."""
        x = samples[:, 0] if samples.ndim == 2 else samples
        fx = self._features
        if fx is None or fx.rate != rate or fx.n != len(x):
            fx = self._features = WaveformFeatures(self.spec, rate, len(x))
        features = None if overload else fx(x)
        cal = self._calibration
        if not cal.complete:
            if cal.add(features):
                assert cal.normal is not None
                self._runner.set_normal(cal.normal.center, cal.normal.inv_scale)
                self._health.reset()
                return self._verdict(None, HealthState.HEALTHY, f"calibrated on {len(cal.rows)} windows")
            return self._verdict(
                None, HealthState.INITIALIZING, f"calibrating: {cal.done}/{cal.needed} windows"
            )
        if features is None:
            return self._verdict(None, self._health.state, "ADC overload: window not scored")
        score, contributions = self._runner.run(features)
        state = self._health.update(score)
        top = self._top(features, contributions)
        if state is HealthState.HEALTHY or not top:
            reason = f"normal (score {score:.2f})"
        else:
            lead = top[0]
            side = "above" if lead.z >= 0 else "below"
            reason = f"{lead.feature} {abs(lead.z):.1f}σ {side} normal"
            if lead.feature == "envelope_peak" and math.isfinite(fx.envelope_hz):
                reason += f" (envelope line at {fx.envelope_hz:.0f} Hz)"
        return self._verdict(score, state, reason, top)

    def _top(self, features: np.ndarray, contrib: np.ndarray) -> list[Contributor]:
        center, inv_scale = self._runner.normal
        out = []
        for i in np.argsort(-contrib)[:3].tolist():
            if contrib[i] <= 0:
                break
            x = float(features[i])
            z = 0.0 if x != x else (x - float(center[i])) * float(inv_scale[i])
            out.append(
                Contributor(feature=f"{self.source}.{self._names[i]}", value=round(x, 4), z=round(z, 2))
            )
        return out

    def _verdict(
        self, score: float | None, state: HealthState, reason: str, top: Sequence[Contributor] = ()
    ) -> WaveformVerdict:
        return WaveformVerdict(self.source, score, state, reason, list(top))
