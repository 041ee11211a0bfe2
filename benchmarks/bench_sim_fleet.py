"""Simulator fleet: 30+ simulated days per healthy unit without a single WARNING, and every fault caught.

    python benchmarks/bench_sim_fleet.py [--days 30] [--seeds 2] [--fault-seeds 2] [--workers 2] [--json]

Every unit runs through the agent's own :class:`edge_agent.analytics.Analytics` (the ``minute`` regime of
``models.evaluate_sim``: one reading per simulated minute, window 20, calibration 2 h), time-accelerated:
a simulated month of one unit takes seconds. Healthy units live through defrosts every 6–8 h, door
openings and deliveries, day/night ambient swings with weather and start transients; the count that
matters is entries into WARNING or ALARM (must be 0). Each fault type of the simulator starts after one
day and ramps to full severity over 24 h; the table gives the delay from its start to the first WARNING.
Units run in parallel processes (``--workers``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict

from models.evaluate_sim import MINUTE, delay_s, run_unit
from models.simdata import KINDS
from simulator.faults import KINDS as FAULT_KINDS
from simulator.faults import FaultSpec


def healthy_unit(args: tuple[str, int, float]) -> dict:
    kind, seed, days = args
    r = run_unit(kind, seed, MINUTE, int(days * 86400 / MINUTE.seconds_per_reading))
    return asdict(r) | {"days": days}


def faulty_unit(args: tuple[str, str, int]) -> dict:
    fault, kind, seed = args
    spec = FaultSpec(fault, start_s=MINUTE.fault_start_s, ramp_s=MINUTE.fault_ramp_s)
    n = int((MINUTE.fault_start_s + 2 * MINUTE.fault_ramp_s) / MINUTE.seconds_per_reading)
    r = run_unit(kind, seed, MINUTE, n, (spec,))
    d = delay_s(r, MINUTE)
    return asdict(r) | {"delay_h": None if d is None else round(d / 3600, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--seeds", type=int, default=2, help="healthy units per kind (freezer, cold room)")
    ap.add_argument("--fault-seeds", type=int, default=2, help="units per kind for each fault type")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    # Seeds 100+ are neither training (1000+) nor the model card's evaluation units (0-9).
    healthy_jobs = [(k, 100 + s, args.days) for k in KINDS for s in range(args.seeds)]
    fault_jobs = [(f, k, 200 + s) for f in FAULT_KINDS for k in KINDS for s in range(args.fault_seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        healthy = list(pool.map(healthy_unit, healthy_jobs))
        faults = list(pool.map(faulty_unit, fault_jobs))
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"healthy": healthy, "faults": faults, "elapsed_s": round(elapsed, 1)}, indent=2))
        return
    print(f"healthy units: {len(healthy)} x {args.days:g} simulated days (1 reading per simulated minute)")
    print(f"{'unit':<22} {'WARNING/ALARM entries':>22} {'sensor faults':>14} {'scored':>7}")
    for r in healthy:
        unit = f"{r['kind']} seed {r['seed']}"
        print(f"{unit:<22} {r['alerts']:>22} {r['sensor_faults']:>14} {r['scored']:>7.0%}")
    print(f"\nfaults: start after 24 h, full severity 24 h later; {len(KINDS) * args.fault_seeds} units each")
    print(f"{'fault':<20} {'reached WARNING':>16} {'median delay h':>15} {'max delay h':>12}")
    for fault in FAULT_KINDS:
        runs = [r for r in faults if r["fault"] == fault]
        delays = [r["delay_h"] for r in runs if r["delay_h"] is not None]
        med = f"{statistics.median(delays):.2f}" if delays else "-"
        worst = f"{max(delays):.2f}" if delays else "-"
        print(f"{fault:<20} {len(delays):>10} of {len(runs):<3} {med:>15} {worst:>12}")
    print(f"\nwall time {elapsed:.0f} s")


if __name__ == "__main__":
    main()
