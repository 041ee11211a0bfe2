"""Measure the shipped model on the simulator's physics: false alarms, detection delays, the demo regime.

Each unit is read every ``seconds_per_reading`` simulated seconds through the register map and fed to the
agent's own :class:`edge_agent.analytics.Analytics` (features, calibration, ONNX, health state), so what
is measured is what runs on the Pi. Three regimes, one model:

* ``minute``: a reading per simulated minute (window 20, calibration 2 h); healthy units for days, and
  every fault starting after a day and ramping to full severity over 24 h.
* ``demo``: the :data:`~edge_agent.analytics.presets.DEMO` preset, 90 readings as in ``signalcraft demo``
  (calibration, detection within the wall-clock budget); plus healthy units for days at that rate.
* ``realtime``: the :data:`~edge_agent.analytics.presets.REALTIME` preset, a reading per second.

    python -m models.evaluate_sim [--seeds N] [--days N] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from common.schema import HealthState
from edge_agent.analytics import Analytics
from edge_agent.analytics.presets import DEMO, REALTIME, Preset
from models.simdata import KINDS, RegisterView, readings
from simulator.faults import KINDS as FAULT_KINDS
from simulator.faults import FaultSpec

ALERTS = (HealthState.WARNING, HealthState.ALARM)
MINUTE = Preset(
    name="minute",
    speed=60.0,
    poll_interval_s=1.0,
    window=20,
    calibration_readings=120,
    fault_start_s=86400.0,
    fault_ramp_s=86400.0,
)


@dataclass(frozen=True)
class RunResult:
    kind: str
    seed: int
    fault: str  # "" for a healthy unit
    readings: int
    calibrated_at: int | None  # reading (1-based) at which calibration completed
    first_alert_at: int | None  # reading at which WARNING or ALARM was first entered
    alerts: int  # transitions into WARNING/ALARM
    sensor_faults: int  # transitions into SENSOR_FAULT
    scored: float  # fraction of readings after calibration that were scored


def run_unit(
    kind: str,
    seed: int,
    preset: Preset,
    n_readings: int,
    faults: Sequence[FaultSpec] = (),
    clock_s: float = 8 * 3600.0,
    model_dir: Path | None = None,
    view: RegisterView | None = None,
) -> RunResult:
    """Run one simulated unit through the agent's analytics; state lives in a throwaway folder."""
    spr = preset.seconds_per_reading
    with tempfile.TemporaryDirectory() as state_dir:
        a = Analytics(model_dir, Path(state_dir), **preset.analytics_kwargs())
        calibrated = first = None
        alerts = sensor = scored = after = 0
        ts = datetime(2025, 1, 1, tzinfo=UTC)
        for i, (_, values) in enumerate(
            readings(kind, seed, n_readings * spr, spr, faults, clock_s, view), 1
        ):
            v = a.observe(ts, values, [])
            if calibrated is None and a.calibrated:
                calibrated = i
            elif calibrated is not None:
                after += 1
                scored += v.score is not None
            if v.changed and v.state in ALERTS and v.previous not in ALERTS:
                alerts += 1
                first = first or i
            if v.changed and v.state is HealthState.SENSOR_FAULT:
                sensor += 1
    return RunResult(
        kind=kind,
        seed=seed,
        fault=",".join(f.kind for f in faults),
        readings=n_readings,
        calibrated_at=calibrated,
        first_alert_at=first,
        alerts=alerts,
        sensor_faults=sensor,
        scored=round(scored / after, 3) if after else 0.0,
    )


def healthy(preset: Preset, seeds: Sequence[int], days: float, view: RegisterView) -> list[RunResult]:
    n = int(days * 86400 / preset.seconds_per_reading)
    return [run_unit(k, s, preset, n, view=view) for k in KINDS for s in seeds]


def faulty(preset: Preset, seeds: Sequence[int], n_readings: int, view: RegisterView) -> list[RunResult]:
    out = []
    for fault in FAULT_KINDS:
        spec = FaultSpec(fault, start_s=preset.fault_start_s, ramp_s=preset.fault_ramp_s)
        out += [run_unit(k, s, preset, n_readings, (spec,), view=view) for k in KINDS for s in seeds]
    return out


def delay_s(r: RunResult, preset: Preset) -> float | None:
    """Simulated seconds from fault start to the first WARNING/ALARM (None: not detected)."""
    if r.first_alert_at is None:
        return None
    return r.first_alert_at * preset.seconds_per_reading - preset.fault_start_s


def run_all(
    seeds: int = 10,
    days: float = 7.0,
    model_dir: Path | None = None,
    console: Console | None = None,
    quick: bool = False,
) -> dict[str, Any]:
    """Every measurement of the model card, as plain data."""
    view = RegisterView()
    say = console.log if console else (lambda *_: None)
    seed_list = list(range(seeds))
    fault_seeds = seed_list[: max(1, min(seeds, 3 if quick else 5))]
    t0 = time.perf_counter()
    out: dict[str, Any] = {"seeds_per_kind": seeds, "days": days, "presets": {}}
    for p in (MINUTE, DEMO, REALTIME):
        out["presets"][p.name] = asdict(p) | {"seconds_per_reading": p.seconds_per_reading}

    say(f"healthy units, minute regime: {len(KINDS) * seeds} units x {days} days")
    out["healthy_minute"] = [asdict(r) for r in healthy(MINUTE, seed_list, days, view)]
    say(f"healthy units, demo regime: {len(KINDS) * seeds} units x {days} days")
    out["healthy_demo"] = [asdict(r) for r in healthy(DEMO, seed_list, days, view)]
    say("faults, minute regime")
    n_fault = int((MINUTE.fault_start_s + 2 * MINUTE.fault_ramp_s) / MINUTE.seconds_per_reading)
    out["faults_minute"] = [
        asdict(r) | {"delay_h": _hours(delay_s(r, MINUTE))}
        for r in faulty(MINUTE, fault_seeds, n_fault, view)
    ]
    say("demo regime: 90 readings (90 s of wall time at 1 Hz)")
    demo_runs = [run_unit(k, s, DEMO, 90, view=view) for k in KINDS for s in seed_list]
    demo_runs += faulty(DEMO, seed_list, 90, view)
    fault_start_reading = DEMO.fault_start_s / DEMO.seconds_per_reading
    out["demo"] = [
        asdict(r)
        | {"wall_s_after_fault": None if r.first_alert_at is None else r.first_alert_at - fault_start_reading}
        for r in demo_runs
    ]
    rt_seeds = seed_list[: 1 if quick else 2]
    rt_hours = 6.0 if quick else 24.0
    say(f"realtime regime: {len(KINDS) * len(rt_seeds)} healthy units x {rt_hours:g} h, and each fault")
    n_rt = int(rt_hours * 3600 / REALTIME.seconds_per_reading)
    out["healthy_realtime"] = [asdict(r) for r in healthy(REALTIME, rt_seeds, rt_hours / 24, view)]
    n_rt_fault = int((REALTIME.fault_start_s + 1.5 * REALTIME.fault_ramp_s) / REALTIME.seconds_per_reading)
    out["faults_realtime"] = [
        asdict(r) | {"delay_h": _hours(delay_s(r, REALTIME))}
        for r in faulty(REALTIME, rt_seeds[:1], n_rt_fault, view)
    ]
    out["realtime_readings"] = n_rt
    out["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return out


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def print_tables(res: dict[str, Any], console: Console) -> None:
    t = Table(title="Healthy units: false alarms (entries into WARNING/ALARM)")
    for col in (
        "regime",
        "units",
        "sim days each",
        "false alarms",
        "sensor faults",
        "scored after calibration",
    ):
        t.add_column(col)
    for key, regime in (
        ("healthy_minute", "minute"),
        ("healthy_demo", "demo"),
        ("healthy_realtime", "realtime"),
    ):
        runs = res[key]
        spr = res["presets"][regime]["seconds_per_reading"]
        t.add_row(
            regime,
            str(len(runs)),
            f"{runs[0]['readings'] * spr / 86400:g}",
            str(sum(r["alerts"] for r in runs)),
            str(sum(r["sensor_faults"] for r in runs)),
            f"{sum(r['scored'] for r in runs) / len(runs):.0%}",
        )
    console.print(t)

    t = Table(title="Faults: detection delay (simulated hours from fault start to WARNING)")
    for col in ("fault", "regime", "units", "detected", "median h", "max h"):
        t.add_column(col)
    for key, regime in (("faults_minute", "minute"), ("faults_realtime", "realtime")):
        ramp_h = res["presets"][regime]["fault_ramp_s"] / 3600
        for fault in FAULT_KINDS:
            runs = [r for r in res[key] if r["fault"] == fault]
            delays = sorted(r["delay_h"] for r in runs if r["delay_h"] is not None)
            t.add_row(
                fault,
                f"{regime} (ramp {ramp_h:g} h)",
                str(len(runs)),
                f"{len(delays)}/{len(runs)}",
                f"{delays[len(delays) // 2]:.2f}" if delays else "-",
                f"{delays[-1]:.2f}" if delays else "-",
            )
    console.print(t)

    demo = res["presets"]["demo"]
    t = Table(
        title=(
            f"Demo regime: speed {demo['speed']:g}, window {demo['window']}, "
            f"calibration {demo['calibration_readings']}, faults at sim {demo['fault_start_s'] / 60:g} min "
            f"+ {demo['fault_ramp_s'] / 60:g} min ramp (wall s at 1 Hz)"
        )
    )
    for col in (
        "unit",
        "units",
        "calibrated by (s)",
        "alerts",
        "detected",
        "detected by (s, max)",
        "s after fault start",
    ):
        t.add_column(col)
    for fault in ("", *FAULT_KINDS):
        runs = [r for r in res["demo"] if r["fault"] == fault]
        cal = max((r["calibrated_at"] or 999) for r in runs)
        hits = [r["first_alert_at"] for r in runs if r["first_alert_at"] is not None]
        after = [r["wall_s_after_fault"] for r in runs if r["wall_s_after_fault"] is not None]
        t.add_row(
            fault or "healthy",
            str(len(runs)),
            str(cal),
            str(sum(r["alerts"] for r in runs)),
            f"{len(hits)}/{len(runs)}" if fault else "-",
            str(max(hits)) if hits else "-",
            f"{min(after):g}-{max(after):g}" if after else "-",
        )
    console.print(t)
    console.print(f"evaluation took {res['elapsed_s']} s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="healthy units per kind (default 10)")
    parser.add_argument("--days", type=float, default=7.0, help="simulated days per healthy unit (default 7)")
    parser.add_argument("--quick", action="store_true", help="fewer fault and real-time units")
    args = parser.parse_args(argv)
    console = Console()
    print_tables(run_all(args.seeds, args.days, console=console, quick=args.quick), console)


if __name__ == "__main__":
    main()
