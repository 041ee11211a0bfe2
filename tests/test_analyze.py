"""Waveform features, the waveform scorer and ``signalcraft-agent analyze`` on real WAV files."""

from __future__ import annotations

import json
import wave
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from common.schema import HealthState
from edge_agent.analytics import Analytics
from edge_agent.analytics.waveform import WaveformFeatures, WaveformScorer, WaveformSpec
from edge_agent.cli import app
from edge_agent.sources.waveform.reader import WaveformWindow
from simulator.waveform import Signature

RATE = 8000
ALERTS = (HealthState.WARNING, HealthState.ALARM)


def write_wav(path: Path, x: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def signal(
    seconds: int, seed: int, fault: str | None = None, after: int = 0, severity: float = 0.3
) -> np.ndarray:
    sig = Signature(RATE, seed=seed)
    parts = []
    for i in range(seconds):
        if i == after and fault:
            sig.fault, sig.severity = fault, severity
        parts.append(sig.next(RATE))
    return np.concatenate(parts)


def test_features_of_known_signals() -> None:
    spec = WaveformSpec()
    fx = WaveformFeatures(spec, RATE, RATE)
    t = np.arange(RATE) / RATE
    f = dict(zip(spec.names, fx(np.sqrt(2) * 0.5 * np.sin(2 * np.pi * 120 * t)).tolist(), strict=True))
    assert f["rms"] == pytest.approx(0.5, rel=1e-3)
    assert f["crest"] == pytest.approx(np.sqrt(2), rel=1e-3)
    assert f["kurtosis"] == pytest.approx(1.5, rel=1e-2)  # a sine
    assert f["band.mains_2x"] == pytest.approx(np.log10(0.5), abs=1e-3)  # all the energy at 120 Hz
    assert f["band.mains_1x"] < -4 and f["centroid"] == pytest.approx(120, rel=1e-2)
    # 4 kHz sampling: the hiss band (2-8 kHz) lies above Nyquist and is never observed.
    assert np.isnan(WaveformFeatures(spec, 4000, 4000)(np.zeros(4000))[spec.names.index("band.hiss")])


@pytest.mark.parametrize("fault", ["bearing_wear", "refrigerant_leak", "electrical_imbalance"])
def test_scorer_is_quiet_when_healthy_and_warns_on_each_fault(fault: str, tmp_path: Path) -> None:
    scorer = WaveformScorer(None, tmp_path, "vib", calibration_windows=30)
    x = signal(330, seed=5, fault=fault, after=300)
    verdicts = [scorer.observe(x[i * RATE : (i + 1) * RATE], RATE) for i in range(330)]
    assert verdicts[29].state is HealthState.HEALTHY and verdicts[28].state is HealthState.INITIALIZING
    assert not any(v.state in ALERTS for v in verdicts[:300])
    first = next(i for i, v in enumerate(verdicts) if v.state in ALERTS)
    assert 300 <= first <= 305
    assert verdicts[first].contributors[0].feature.startswith("vib.")


def test_waveform_calibration_resumes_after_a_restart(tmp_path: Path) -> None:
    x = signal(20, seed=6)
    first = WaveformScorer(None, tmp_path, "vib", calibration_windows=10)
    for i in range(10):
        first.observe(x[i * RATE : (i + 1) * RATE], RATE)
    assert first.calibrated and (tmp_path / "waveform-vib.json").exists()
    again = WaveformScorer(None, tmp_path, "vib", calibration_windows=10)
    assert again.calibrated
    assert again.observe(x[-RATE:], RATE).score is not None


def test_agent_hook_merges_a_waveform_alarm_into_the_verdict(tmp_path: Path) -> None:
    a = Analytics(None, tmp_path, calibration_readings=25, window=10)
    x = signal(40, seed=7, fault="bearing_wear", after=31)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    states = []
    for i in range(40):
        samples = x[i * RATE : (i + 1) * RATE, None].astype(np.float32)
        states.append(a.observe_waveform(WaveformWindow("vib", t0, RATE, samples, i, False)).state)
    assert states[-1] in ALERTS
    assert "vib." in a._waveform_last["vib"].reason


def test_analyze_command_with_and_without_baseline(tmp_path: Path) -> None:
    base = write_wav(tmp_path / "base.wav", signal(30, seed=8))
    rec = write_wav(tmp_path / "rec.wav", signal(40, seed=9, fault="refrigerant_leak", after=25))
    runner = CliRunner()
    for args in (["--baseline", str(base)], []):
        result = runner.invoke(app, ["analyze", str(rec), "--json", *args])
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.output.splitlines()]
        assert [r["t"] for r in rows] == [float(i) for i in range(40)]
        assert all(r["state"] not in ("WARNING", "ALARM") for r in rows[:25])
        assert rows[-1]["state"] in ("WARNING", "ALARM") and rows[-1]["score"] > 1.0
    text = runner.invoke(app, ["analyze", str(rec)])
    assert text.exit_code == 0 and "ALARM" in text.output


def test_analyze_refuses_what_is_not_a_wav(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("hello")
    result = CliRunner().invoke(app, ["analyze", str(bad)])
    assert result.exit_code == 2
