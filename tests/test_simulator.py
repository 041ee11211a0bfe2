"""The compressor simulator's physics, fault injection and fault parsing (no I/O).

Days of simulated time run in large steps; the model sub-steps internally, so this file stays fast.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import simulator
from edge_agent.sources.modbus import profile
from simulator.compressor import Compressor
from simulator.events import HOUR
from simulator.faults import KINDS, FaultSpec
from simulator.thermo import psat, tsat

DT = 30.0  # s of simulated time between samples in the multi-day runs


@dataclass
class Run:
    """Samples of a unit, one every DT seconds."""

    unit: Compressor
    rows: list[dict[str, float]] = field(default_factory=list)
    doors: list[int] = field(default_factory=list)  # door openings so far (short ones fall between samples)

    def window(self, start_s: float) -> list[dict[str, float]]:
        return self.rows[int(start_s / DT) :]


def simulate(hours: float, seed: int = 3, faults: tuple[FaultSpec, ...] = (), kind: str = "freezer") -> Run:
    run = Run(Compressor(seed=seed, faults=faults, kind=kind))
    for _ in range(int(hours * HOUR / DT)):
        run.unit.step(DT)
        run.rows.append(run.unit.sensors())
        run.doors.append(run.unit.events.door_openings)
    return run


def mean(rows: list[dict[str, float]], key: str, running: bool | None = True) -> float:
    """Mean of ``key``, by default over samples where the compressor is past its start transient."""
    picked = [r[key] for r in rows if running is None or (r["running"] == 1.0) == running]
    return statistics.fmean(picked)


def starts(rows: list[dict[str, float]]) -> int:
    return sum(1 for a, b in itertools.pairwise(rows) if b["running"] and not a["running"])


@pytest.fixture(scope="module")
def healthy() -> Run:
    return simulate(36)


# ---------------------------------------------------------------- FaultSpec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bearing_wear", FaultSpec("bearing_wear", 0.0, 3600.0)),
        ("bearing_wear@600", FaultSpec("bearing_wear", 600.0, 3600.0)),
        ("bearing_wear@600+1800", FaultSpec("bearing_wear", 600.0, 1800.0)),
        ("refrigerant_leak@10m+2h", FaultSpec("refrigerant_leak", 600.0, 7200.0)),
        (" short_cycling@0+0 ", FaultSpec("short_cycling", 0.0, 0.0)),
        ("condenser_fouling@1.5+2.5", FaultSpec("condenser_fouling", 1.5, 2.5)),
    ],
)
def test_faultspec_parse(text: str, expected: FaultSpec) -> None:
    assert FaultSpec.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "bearing", "Bearing_wear", "bearing_wear@", "bearing_wear@x", "bearing_wear@-5", "bearing_wear@5+",
     "bearing_wear@5+1+2", "bearing_wear@nan", "bearing_wear@inf", "bearing_wear:2", "@600"],
)  # fmt: skip
def test_faultspec_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="fault"):
        FaultSpec.parse(text)


def test_unknown_kind_names_the_kinds() -> None:
    with pytest.raises(ValueError) as err:
        FaultSpec("valve_leak")
    for kind in KINDS:
        assert kind in str(err.value)


@pytest.mark.parametrize(
    "kwargs", [{"severity": 0.0}, {"severity": 1.5}, {"start_s": -1.0}, {"ramp_s": -1.0}]
)
def test_faultspec_refuses_bad_numbers(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FaultSpec("bearing_wear", **kwargs)


def test_fault_level_ramps_from_start() -> None:
    f = FaultSpec("bearing_wear", start_s=100, ramp_s=200, severity=0.8)
    assert [f.level(t) for t in (0, 99.9, 100, 200, 300, 10_000)] == pytest.approx([0, 0, 0, 0.4, 0.8, 0.8])
    assert FaultSpec("bearing_wear", start_s=50, ramp_s=0).level(50) == 1.0


# ---------------------------------------------------------------- the unit


def test_sensors_cover_the_register_map_and_nothing_else() -> None:
    points = {p.name for p in profile.load("signalcraft-sim-compressor").points}
    unit = Compressor(seed=0)
    unit.step(600)
    assert set(unit.sensors()) == points


def test_same_seed_same_unit_other_seed_other_unit() -> None:
    def trace(seed: int) -> list[dict[str, float]]:
        unit = Compressor(seed=seed)
        out = []
        for _ in range(200):
            unit.step(30)
            out.append(unit.sensors())
        return out

    assert trace(5) == trace(5)
    a, b = Compressor(seed=1), Compressor(seed=2)
    assert a.set_point != b.set_point
    assert a.ambient() != b.ambient()
    assert trace(1) != trace(2)


def test_unknown_unit_kind() -> None:
    with pytest.raises(ValueError, match="cold_room"):
        Compressor(kind="chiller")


def test_step_size_does_not_change_the_story() -> None:
    fine, coarse = Compressor(seed=4), Compressor(seed=4)
    for _ in range(86400):
        fine.step(1.0)
    for _ in range(1440):
        coarse.step(60.0)
    assert fine.sim_time == pytest.approx(coarse.sim_time)
    assert fine.events.door_openings == coarse.events.door_openings > 5
    assert fine.defrosts == coarse.defrosts
    assert fine.starts == pytest.approx(coarse.starts, rel=0.05)
    assert fine.run_seconds == pytest.approx(coarse.run_seconds, rel=0.03)


def test_healthy_freezer_holds_its_band_and_cycles(healthy: Run) -> None:
    unit, rows = healthy.unit, healthy.rows
    hours = len(rows) * DT / HOUR
    assert 2.0 <= starts(rows) / hours <= 8.0
    assert 0.25 <= unit.run_seconds / (hours * HOUR) <= 0.8
    assert unit.defrosts >= 4  # every 6-8 h
    assert unit.hp_trips == 0
    # Outside defrosts (and the hour after), door openings (and 20 min after) and deliveries (the door
    # open for minutes, warm goods: 2 h after), the cabinet stays within the thermostat band, give or
    # take the overshoot from the coil's stored cold and the anti-short-cycle timer.
    since_defrost = since_door = since_delivery = 1e9
    door_open_for = 0.0
    quiet = []
    for r, before, after in zip(rows, [0, *healthy.doors], healthy.doors, strict=False):
        since_defrost = 0.0 if r["defrost"] else since_defrost + DT
        since_door = 0.0 if r["door_open"] or after != before else since_door + DT
        door_open_for = door_open_for + DT if r["door_open"] else 0.0
        since_delivery = 0.0 if door_open_for > 90 else since_delivery + DT
        if since_defrost > HOUR and since_door > 1200 and since_delivery > 2 * HOUR:
            quiet.append(r["cabinet_temp"])
    assert len(quiet) > len(rows) / 3
    assert unit.cut_out - 1.0 < min(quiet) and max(quiet) < unit.cut_in + 1.0
    assert statistics.fmean(quiet) == pytest.approx(unit.set_point, abs=0.7)


def test_running_and_standstill_look_like_a_refrigeration_circuit(healthy: Run) -> None:
    rows = healthy.window(2 * HOUR)
    on = [r for r in rows if r["running"]]
    off = [r for r in rows if not r["running"] and not r["defrost"]]
    # Running: a freezer's evaporating temperature around -30 °C, condensing some 10-20 K above ambient.
    assert -36 < tsat(mean(on, "suction_pressure")) < -24
    approach = tsat(mean(on, "discharge_pressure")) - mean(on, "ambient_temp")
    assert 8 < approach < 25
    assert 40 < mean(on, "discharge_temp") < 100
    assert 2.0 < mean(on, "motor_current") < 6.0 and 300 < mean(on, "power") < 1200
    assert mean(on, "vibration_rms") > 5 * mean(off, "vibration_rms", running=False)
    assert all(r["vibration_peak"] > r["vibration_rms"] for r in rows)
    # Stopped: no current, and the pressures have equalised a few minutes into the off cycle.
    assert all(r["motor_current"] == 0 and r["power"] == 0 for r in off)
    assert statistics.fmean(r["discharge_pressure"] - r["suction_pressure"] for r in off) < 2.0
    assert all(r[k] in (0.0, 1.0) for r in rows for k in ("running", "defrost", "door_open"))


def test_pressures_equalise_within_minutes_after_a_stop() -> None:
    unit = Compressor(seed=2)
    while not unit.running:
        unit.step(5)
    while unit.running:
        unit.step(5)
    stopped = unit.sensors()
    assert stopped["discharge_pressure"] - stopped["suction_pressure"] > 8
    unit.step(240)
    later = unit.sensors()
    assert later["discharge_pressure"] - later["suction_pressure"] < 0.6


def test_start_inrush_lasts_a_second_or_two() -> None:
    unit = Compressor(seed=2)
    while not unit.running:
        unit.step(1)
    trace = []
    for _ in range(30):
        trace.append(unit.sensors()["motor_current"])
        unit.step(0.1)
    unit.step(120)
    running = unit.sensors()["motor_current"]
    assert max(trace[:3]) > 3 * running
    assert trace[29] < 1.5 * running  # 3 s after the start the inrush is over


def test_defrost_warms_the_coil_and_stops_the_compressor(healthy: Run) -> None:
    rows = healthy.rows
    spans, current = [], []
    for r in rows:
        if r["defrost"]:
            current.append(r)
        elif current:
            spans.append(current)
            current = []
    assert len(spans) >= 4
    for span in spans:
        assert not any(r["running"] for r in span)
        assert max(r["evaporator_temp"] for r in span) > 5.0  # heater ran to termination
        assert 10 * 60 <= len(span) * DT <= 35 * 60
    # The cabinet air warms during defrost, more than the thermostat band would allow.
    assert max(r["cabinet_temp"] for r in spans[1]) > healthy.unit.cut_in + 1.0


def test_door_openings_warm_the_cabinet() -> None:
    unit = Compressor(seed=6, start_clock_s=10 * HOUR)
    rises = []
    while len(rises) < 5 and unit.sim_time < 2 * 86400:
        before = unit.sensors()["cabinet_temp"]
        unit.step(5)
        if unit.events.door_open and not unit.defrost_phase:
            peak = before
            while unit.events.door_open:
                unit.step(5)
                peak = max(peak, unit.sensors()["cabinet_temp"])
            rises.append(peak - before)
    assert len(rises) == 5
    assert statistics.fmean(rises) > 0.5


def test_ambient_swings_day_and_night() -> None:
    unit = Compressor(seed=1, start_clock_s=0.0)
    temps = {}
    for hour in range(24):
        temps[hour] = unit.ambient()
        unit.step(HOUR)
    assert temps[15] - temps[3] > 4.0
    assert max(temps, key=temps.__getitem__) in (14, 15, 16)


def test_cold_room_holds_plus_two() -> None:
    run = simulate(12, seed=1, kind="cold_room")
    rows = run.window(2 * HOUR)
    assert mean(rows, "cabinet_temp", running=None) == pytest.approx(run.unit.set_point, abs=1.0)
    assert 0 < run.unit.set_point < 4
    assert -15 < tsat(mean(rows, "suction_pressure")) < 0


# ---------------------------------------------------------------- faults against a healthy twin

FAULT_START, FAULT_RAMP = 6 * HOUR, 6 * HOUR
LATE = 24 * HOUR  # compare the last 12 hours, when the fault is at full severity


def faulty(kind: str) -> Run:
    return simulate(36, faults=(FaultSpec(kind, FAULT_START, FAULT_RAMP),))


@pytest.mark.parametrize("kind", KINDS)
def test_a_fault_changes_nothing_before_it_starts(healthy: Run, kind: str) -> None:
    run = faulty(kind)
    n = int(FAULT_START / DT)
    assert run.rows[:n] == healthy.rows[:n]  # same seed, same noise: bit for bit
    assert run.rows[n + 100 :] != healthy.rows[n + 100 :]
    assert run.unit.severity() == {kind: 1.0}


def test_refrigerant_leak_signature(healthy: Run) -> None:
    ok, leak = healthy.window(LATE), faulty("refrigerant_leak").window(LATE)

    def superheat(rows: list[dict[str, float]]) -> float:
        return statistics.fmean(r["suction_temp"] - tsat(r["suction_pressure"]) for r in rows if r["running"])

    assert mean(leak, "suction_pressure") < mean(ok, "suction_pressure") - 0.3
    assert superheat(leak) > superheat(ok) + 8.0
    duty = [mean(rows, "running", running=None) for rows in (ok, leak)]
    assert duty[1] > duty[0] + 0.2
    assert mean(leak, "cabinet_temp", running=None) > mean(ok, "cabinet_temp", running=None) + 1.0
    assert mean(leak, "discharge_temp") > mean(ok, "discharge_temp") + 10.0


def test_condenser_fouling_signature(healthy: Run) -> None:
    ok, foul = healthy.window(LATE), faulty("condenser_fouling").window(LATE)
    assert mean(foul, "discharge_pressure") > mean(ok, "discharge_pressure") + 3.0
    assert mean(foul, "discharge_temp") > mean(ok, "discharge_temp") + 5.0
    assert mean(foul, "motor_current") > mean(ok, "motor_current") * 1.05
    assert mean(foul, "power") > mean(ok, "power") * 1.08
    assert mean(foul, "suction_pressure") == pytest.approx(mean(ok, "suction_pressure"), rel=0.15)


def test_bearing_wear_signature(healthy: Run) -> None:
    ok, worn = healthy.window(LATE), faulty("bearing_wear").window(LATE)

    def crest(rows: list[dict[str, float]]) -> float:
        return statistics.fmean(r["vibration_peak"] / r["vibration_rms"] for r in rows if r["running"])

    assert mean(worn, "vibration_rms") > 1.8 * mean(ok, "vibration_rms")
    assert mean(worn, "vibration_peak") > 3.0 * mean(ok, "vibration_peak")
    assert crest(worn) > crest(ok) + 2.0
    assert 1.01 < mean(worn, "motor_current") / mean(ok, "motor_current") < 1.15
    assert mean(worn, "suction_pressure") == pytest.approx(mean(ok, "suction_pressure"), rel=0.05)


def test_short_cycling_signature(healthy: Run) -> None:
    ok, short = healthy.window(LATE), faulty("short_cycling").window(LATE)
    # Sampling every 30 s would miss runs that short: count with 5 s samples over 6 hours instead.
    assert starts(short) > 4 * max(starts(ok), 1)
    fine = Compressor(seed=3, faults=(FaultSpec("short_cycling", 0, 0),))
    healthy_fine = Compressor(seed=3)
    for unit in (fine, healthy_fine):
        for _ in range(int(6 * HOUR / 5)):
            unit.step(5)
    assert fine.starts / 6 > 20
    assert fine.starts > 5 * healthy_fine.starts
    assert fine.run_seconds / fine.starts < 0.3 * healthy_fine.run_seconds / healthy_fine.starts


def test_psat_and_tsat_are_inverse_and_r404a_like() -> None:
    for t in (-40.0, -30.0, -10.0, 0.0, 20.0, 45.0):
        assert tsat(psat(t)) == pytest.approx(t, abs=1e-9)
    assert psat(-30) == pytest.approx(2.04, rel=0.02)
    assert psat(0) == pytest.approx(6.1, rel=0.05)
    assert psat(40) == pytest.approx(18.2, rel=0.02)


def test_readme_documents_the_register_map_and_the_faults() -> None:
    readme = (Path(simulator.__file__).parent / "README.md").read_text(encoding="utf-8")
    for p in profile.load("signalcraft-sim-compressor").points:
        row = f"| `{p.name}` | {p.address} | {p.width} | {p.type} |"
        assert row in readme, f"register map row missing or stale: {row}"
    for kind in KINDS:
        assert f"| `{kind}` |" in readme
