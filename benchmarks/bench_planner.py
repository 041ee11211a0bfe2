"""Transactions per poll cycle: the request planner versus one request per point.

    .venv/bin/python benchmarks/bench_planner.py

The map is a realistic compressor site on one RS-485 line: the compressor controller, a QM30VT2
vibration sensor, an SDM630 three-phase meter and two pressure transmitters behind an ADAM-4117 (the
bundled profiles). Bytes on the wire and line time at 19200 baud are printed for both.
"""

from __future__ import annotations

from edge_agent.sources.modbus import planner, profile
from edge_agent.sources.modbus.rtu import char_time, silence

SITE = ("signalcraft-sim-compressor", "banner-qm30vt2", "eastron-sdm630", "adam-4117-pressure")
BAUD = 19200


def line_time(requests: list[planner.Request]) -> tuple[int, float]:
    """Bytes on the wire and seconds at BAUD: request 8 bytes, answer 5 + data, two silences each."""
    wire = sum(8 + 5 + (r.count + 7) // 8 if r.function in (1, 2) else 8 + 5 + 2 * r.count for r in requests)
    return wire, wire * char_time(BAUD) + 2 * silence(BAUD) * len(requests)


def main() -> None:
    print(f"{'device':30} {'points':>6} {'per-point':>9} {'planned':>7}")
    naive_all: list[planner.Request] = []
    planned_all: list[planner.Request] = []
    for name in SITE:
        points = profile.load(name).points
        naive = planner.plan(points, max_gap=-1)  # a negative gap never merges: one request per point
        planned = [
            r
            for g in sorted({p.group for p in points})
            for r in planner.plan([p for p in points if p.group == g], 10)
        ]
        naive_all += naive
        planned_all += planned
        print(f"{name:30} {len(points):6} {len(naive):9} {len(planned):7}")
    (nb, nt), (pb, pt) = line_time(naive_all), line_time(planned_all)
    print(f"{'site (every group due)':30} {'':6} {len(naive_all):9} {len(planned_all):7}")
    print(f"bytes on the wire per cycle: per-point {nb}, planned {pb}")
    print(f"line time per cycle at {BAUD} baud: per-point {nt * 1000:.1f} ms, planned {pt * 1000:.1f} ms")
    print(
        f"planned / per-point: transactions {len(planned_all) / len(naive_all):.2f}, line time {pt / nt:.2f}"
    )


if __name__ == "__main__":
    main()
