"""Analytics against the real simulator physics, the committed model and real onnxruntime."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from common.errors import ModelError
from common.schema import Contributor, HealthState
from edge_agent.analytics import DEMO, Analytics, Verdict
from edge_agent.analytics.features import FEATURES, FeatureWindow, Mode
from edge_agent.analytics.runner import ModelRunner, bundled_model_dir
from models.evaluate_sim import MINUTE, run_unit
from models.simdata import RegisterView, readings
from simulator.faults import FaultSpec

TS = datetime(2025, 1, 1, tzinfo=UTC)
ALERTS = (HealthState.WARNING, HealthState.ALARM)


@pytest.fixture(scope="module")
def view() -> RegisterView:
    return RegisterView()


def feed(
    a: Analytics, kind: str, seed: int, n: int, spr: float, view: RegisterView, **kw: object
) -> list[Verdict]:
    stream = readings(kind, seed, n * spr, spr, view=view, **kw)  # type: ignore[arg-type]
    return [a.observe(TS, values, []) for _, values in stream]


@pytest.mark.parametrize("kind", ["freezer", "cold_room"])
def test_healthy_unit_over_simulated_days_never_alerts(kind: str, view: RegisterView) -> None:
    # Three simulated days: defrosts, door openings, deliveries, a day/night ambient swing.
    r = run_unit(kind, 3, MINUTE, 3 * 1440, view=view)
    assert r.calibrated_at == MINUTE.calibration_readings
    assert r.alerts == 0 and r.sensor_faults == 0
    assert r.scored > 0.5


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("refrigerant_leak", "freezer"),
        ("condenser_fouling", "cold_room"),
        ("bearing_wear", "freezer"),
        ("short_cycling", "cold_room"),
    ],
)
def test_each_fault_reaches_warning_within_bound(fault: str, kind: str, view: RegisterView) -> None:
    # Fault starts after 4 h and ramps over 8 h; it must be caught before it is fully developed
    # (short cycling only stands out from the thermostat's own cycling late in the ramp).
    spec = FaultSpec(fault, start_s=4 * 3600, ramp_s=8 * 3600)
    r = run_unit(kind, 1, MINUTE, 12 * 60, (spec,), view=view)
    assert r.first_alert_at is not None, f"{fault} never detected"
    delay_h = (r.first_alert_at * 60 - spec.start_s) / 3600
    assert 0 < delay_h < 8


def test_demo_regime_calibrates_and_detects_within_wall_budget(view: RegisterView) -> None:
    spec = FaultSpec("refrigerant_leak", DEMO.fault_start_s, DEMO.fault_ramp_s)
    faulty = run_unit("freezer", 2, DEMO, 90, (spec,), view=view)
    healthy = run_unit("freezer", 2, DEMO, 90, view=view)
    assert faulty.calibrated_at is not None and faulty.calibrated_at <= 30
    assert faulty.first_alert_at is not None and faulty.first_alert_at <= 75
    assert healthy.alerts == 0


def test_verdict_contract_and_explanation(tmp_path: Path, view: RegisterView) -> None:
    a = Analytics(None, tmp_path, **DEMO.analytics_kwargs())
    spec = FaultSpec("condenser_fouling", DEMO.fault_start_s, DEMO.fault_ramp_s)
    verdicts = feed(a, "cold_room", 0, 90, DEMO.seconds_per_reading, view, faults=(spec,))
    first = verdicts[0]
    assert first.state is HealthState.INITIALIZING and first.changed and first.previous is None
    assert first.score is None and first.reason.startswith("calibrating")
    assert all(v.model_version == "compressor-v1" for v in verdicts)
    for before, after in itertools.pairwise(verdicts):
        assert after.changed == (after.state is not before.state)
        assert after.previous is before.state
    alert = next(v for v in verdicts if v.state in ALERTS)
    assert alert.changed and alert.score is not None and alert.score >= 1.0
    assert 1 <= len(alert.contributors) <= 3 and isinstance(alert.contributors[0], Contributor)
    assert alert.contributors[0].feature in FEATURES
    assert "σ" in alert.reason and "normal for" in alert.reason


def test_defrost_and_door_windows_are_not_scored() -> None:
    fw = FeatureWindow(10, seconds_per_reading=60.0)
    base = {
        "suction_pressure": 2.0,
        "discharge_pressure": 16.0,
        "suction_temp": -24.0,
        "discharge_temp": 60.0,
        "cabinet_temp": -20.0,
        "ambient_temp": 22.0,
        "evaporator_temp": -27.0,
        "motor_current": 3.2,
        "power": 600.0,
        "vibration_rms": 1.5,
        "vibration_peak": 4.4,
        "running": 1.0,
        "defrost": 0.0,
        "door_open": 0.0,
    }
    for _ in range(10):
        fw.push(base)
    assert fw.unscorable() == ""
    assert fw.push(base | {"defrost": 1.0, "running": 0.0}) is Mode.DEFROST
    assert "defrost" in fw.unscorable()
    # After the defrost ends, the pull-down is still not normal operation.
    assert fw.push(base) is Mode.RECOVERY
    assert "defrost" in fw.unscorable()

    fw = FeatureWindow(10, seconds_per_reading=1.0)
    for _ in range(10):
        fw.push(base)
    for _ in range(5):
        assert fw.push(base | {"door_open": 1.0}) is Mode.DOOR
    assert "door open" in fw.unscorable()


def test_defrost_is_not_scored_on_the_simulator(tmp_path: Path, view: RegisterView) -> None:
    a = Analytics(None, tmp_path, calibration_readings=60, window=20)
    stream = readings("freezer", 4, 14 * 3600, 60.0, view=view)
    seen_defrost = False
    for _, values in stream:
        v = a.observe(TS, values, [])
        if values["defrost"] >= 0.5 and a.calibrated:
            seen_defrost = True
            assert v.score is None and "defrost" in v.reason
            assert v.state is HealthState.HEALTHY  # the state holds; defrost never alarms
    assert seen_defrost


def test_flat_lined_sensor_is_sensor_fault_not_alarm(tmp_path: Path, view: RegisterView) -> None:
    a = Analytics(None, tmp_path, **MINUTE.analytics_kwargs())
    stuck_at = None
    states = []
    for i, (_, values) in enumerate(readings("freezer", 0, 8 * 3600, 60.0, view=view)):
        if i == 200:
            stuck_at = values["cabinet_temp"]
        if stuck_at is not None:
            values["cabinet_temp"] = stuck_at  # the transmitter froze
        states.append(a.observe(TS, values, []))
    faults = [v for v in states if v.state is HealthState.SENSOR_FAULT]
    assert faults, "a frozen cabinet sensor was not reported"
    assert faults[0].reason == "sensor fault: cabinet_temp flat-lined"
    assert not any(v.state in ALERTS for v in states)


def test_dropout_and_out_of_range_are_sensor_faults(tmp_path: Path, view: RegisterView) -> None:
    a = Analytics(None, tmp_path, calibration_readings=30, window=10)
    verdicts = []
    for i, (_, values) in enumerate(readings("cold_room", 0, 80 * 120, 120.0, view=view)):
        missing = ["discharge_pressure"] if 40 <= i < 50 else []
        if i >= 60:
            values["motor_current"] = -5.0  # an impossible reading: wiring or scaling fault
        verdicts.append(a.observe(TS, values, missing))
    assert any("discharge_pressure not readable" in v.reason for v in verdicts[40:50])
    assert verdicts[55].state is not HealthState.SENSOR_FAULT  # recovers when the point is back
    assert "motor_current out of range" in verdicts[-1].reason
    assert not any(v.state in ALERTS for v in verdicts)


def test_calibration_persists_and_resumes(tmp_path: Path, view: RegisterView) -> None:
    stream = list(readings("freezer", 5, 80 * 120, 120.0, view=view))
    a = Analytics(None, tmp_path, calibration_readings=40, window=10)
    for _, values in stream[:24]:
        a.observe(TS, values, [])
    assert a.calibration_progress[0] >= 20  # saved every 5% of the way
    saved = json.loads((tmp_path / "calibration.json").read_text())
    assert saved["done"] == 24 and "center" not in saved

    b = Analytics(None, tmp_path, calibration_readings=40, window=10)  # a restart
    assert b.calibration_progress == (24, 40)
    verdicts = [b.observe(TS, values, []) for _, values in stream[24:60]]
    done_at = next(i for i, v in enumerate(verdicts) if v.state is HealthState.HEALTHY)
    assert done_at + 24 + 1 == 40  # resumed, not restarted
    assert b.calibrated

    c = Analytics(None, tmp_path, calibration_readings=40, window=10)
    assert c.calibrated and c.calibration_progress == (40, 40)
    # Another window is another normal: a mismatching file starts over instead of being misapplied.
    d = Analytics(None, tmp_path, calibration_readings=40, window=12)
    assert not d.calibrated and d.calibration_progress == (0, 40)


def test_recalibrate_starts_over(tmp_path: Path, view: RegisterView) -> None:
    a = Analytics(None, tmp_path, calibration_readings=30, window=10)
    verdicts = feed(a, "freezer", 6, 40, 120.0, view)
    assert a.calibrated and verdicts[-1].state is HealthState.HEALTHY
    a.recalibrate()
    assert not a.calibrated and a.calibration_progress == (0, 30)
    v = a.observe(TS, dict(next(readings("freezer", 6, 120, 120.0, view=view))[1]), [])
    assert v.state is HealthState.INITIALIZING and v.changed
    assert Analytics(None, tmp_path, calibration_readings=30, window=10).calibration_progress == (1, 30)


def copy_model(dst: Path) -> Path:
    shutil.copytree(bundled_model_dir(), dst)
    return dst


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    model = copy_model(tmp_path / "model")
    onnx_file = model / "compressor-v1.onnx"
    blob = bytearray(onnx_file.read_bytes())
    blob[-5] ^= 0xFF
    onnx_file.write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="does not match its manifest: sha256"):
        Analytics(model, tmp_path / "state")


def test_manifest_problems_are_model_errors(tmp_path: Path) -> None:
    model = copy_model(tmp_path / "model")
    manifest = model / "compressor-v1.json"
    doc = json.loads(manifest.read_text())
    doc["features"] = doc["features"][::-1]
    manifest.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="expects features"):
        ModelRunner(model)
    (model / "compressor-v1.onnx").unlink()
    doc["features"] = list(FEATURES)
    manifest.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="cannot read model file"):
        ModelRunner(model)
    manifest.write_text("{not json")
    with pytest.raises(ModelError, match="cannot read model manifest"):
        ModelRunner(model)


def test_committed_manifest_matches_committed_model() -> None:
    d = bundled_model_dir()
    doc = json.loads((d / "compressor-v1.json").read_text())
    assert hashlib.sha256((d / doc["onnx_file"]).read_bytes()).hexdigest() == doc["sha256"]
    assert doc["features"] == list(FEATURES)


def test_nan_feature_counts_as_normal() -> None:
    r = ModelRunner()
    n = len(FEATURES)
    r.set_normal(np.ones(n, dtype=np.float32), np.ones(n, dtype=np.float32))
    score, contrib = r.run(np.full(n, np.nan))
    assert score == pytest.approx(0.0, abs=1e-6) and np.allclose(contrib, 0.0, atol=1e-6)
    x = np.ones(n)
    x[FEATURES.index("superheat")] = 50.0
    score, contrib = r.run(x)
    assert score > 1.0 and int(np.argmax(contrib)) == FEATURES.index("superheat")
