"""Score a recorded waveform (WAV) window by window with the agent's own waveform path.

``signalcraft-agent analyze RECORDING.wav [--baseline BASELINE.wav] [--json]`` uses this: the recording is
cut into the same windows the live agent gets from a serial sensor, and every window goes through
:class:`~edge_agent.analytics.waveform.WaveformScorer` (features, on-site calibration, ONNX, health
state) exactly as ``Analytics.observe_waveform`` does. The normal is learned from the baseline recording
when one is given (all of its windows), otherwise from the first windows of the recording itself.
"""

from __future__ import annotations

import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.schema import Contributor
from edge_agent.analytics.waveform import WaveformScorer

MIN_BASELINE_WINDOWS = 5


@dataclass(frozen=True)
class Recording:
    rate: int
    samples: np.ndarray  # float32 (n, channels), full scale ±1.0

    def windows(self, seconds: float) -> Iterator[tuple[float, np.ndarray]]:
        n = max(1, round(seconds * self.rate))
        for start in range(0, len(self.samples) - n + 1, n):
            yield start / self.rate, self.samples[start : start + n]


def read_wav(path: Path) -> Recording:
    """PCM WAV (8, 16, 24 or 32-bit integer) as float32 full scale ±1.0; ValueError names the problem."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width, frames = (
                w.getframerate(),
                w.getnchannels(),
                w.getsampwidth(),
                w.getnframes(),
            )
            raw = w.readframes(frames)
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a PCM WAV file ({exc or 'truncated'})") from exc
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float32)
    else:
        x = (np.frombuffer(raw, dtype="<i4") / float(1 << 31)).astype(np.float32)
    return Recording(rate, x.reshape(-1, channels))


@dataclass(frozen=True)
class WindowResult:
    t: float  # seconds from the start of the recording
    score: float | None
    state: str
    reason: str
    contributors: list[Contributor]

    def to_dict(self) -> dict[str, object]:
        return {
            "t": round(self.t, 3),
            "score": None if self.score is None else round(self.score, 4),
            "state": self.state,
            "reason": self.reason,
            "contributors": [{"feature": c.feature, "value": c.value, "z": c.z} for c in self.contributors],
        }


def analyze(
    recording: Recording,
    baseline: Recording | None = None,
    *,
    window_s: float = 1.0,
    calibration_windows: int = 30,
    model_dir: Path | None = None,
    source: str = "recording",
) -> Iterator[WindowResult]:
    if baseline is not None:
        if baseline.rate != recording.rate:
            raise ValueError(
                f"baseline at {baseline.rate} Hz, recording at {recording.rate} Hz: resample one"
            )
        base = list(baseline.windows(window_s))
        if len(base) < MIN_BASELINE_WINDOWS:
            raise ValueError(f"baseline too short: {len(base)} windows, need {MIN_BASELINE_WINDOWS}")
        calibration_windows = len(base)
    else:
        # Without a baseline the recording's start is its normal: a quarter of it, 5 to 30 windows.
        n = sum(1 for _ in recording.windows(window_s))
        calibration_windows = max(MIN_BASELINE_WINDOWS, min(calibration_windows, n // 4))
    with tempfile.TemporaryDirectory() as state:
        scorer = WaveformScorer(model_dir, Path(state), source, calibration_windows=calibration_windows)
        if baseline is not None:
            for _, x in baseline.windows(window_s):
                scorer.observe(x, baseline.rate)
        for t, x in recording.windows(window_s):
            v = scorer.observe(x, recording.rate, overload=bool(np.abs(x).max() >= 1.0))
            yield WindowResult(t, v.score, v.state.value, v.reason, v.contributors)


def run_cli(recording: Path, baseline: Path | None, as_json: bool, window_s: float = 1.0) -> int:
    """``signalcraft-agent analyze``: print one line (or JSON object) per window; returns the exit code."""
    import json
    import sys

    from common.errors import ModelError

    try:
        rec = read_wav(recording)
        base = read_wav(baseline) if baseline is not None else None
        results = analyze(rec, base, window_s=window_s, source=recording.stem)
        for r in results:
            if as_json:
                print(json.dumps(r.to_dict()), flush=True)
            else:
                score = "  -  " if r.score is None else f"{r.score:5.2f}"
                print(f"{r.t:8.1f} s  {score}  {r.state:<12} {r.reason}", flush=True)
    except (ValueError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
