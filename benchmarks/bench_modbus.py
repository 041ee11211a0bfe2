"""Modbus RTU acquisition: cycle time against the theoretical line time, and a faulty line.

    .venv/bin/python benchmarks/bench_modbus.py [--cycles 20] [--fault-seconds 30]

1. Line time. A realistic site on one line (the compressor controller, a QM30VT2, an SDM630, an
   ADAM-4117: bundled profiles, slave ids 1-4) served by pymodbus slaves on a pty that emulates line
   timing (each answer arrives when it would on a real line: request + 3.5-character silence + answer).
   One cycle reads every planned request once through the agent's RTU master. The baseline, measured
   the same way, is the theoretical line time: every byte at the baud rate plus two silences per
   transaction (slave turnaround 0). Target: ratio <= 1.15.
2. Faulty line. Three live slaves and one dead on one line at 19200 baud with line timing, 1 % of the
   answers corrupted, the agent's defaults (1 s interval, 300 ms timeout, 1 retry): polls of the live
   slaves against the nominal rate, and after how many cycles the dead one is marked stale.
3. Import cost of pymodbus (TCP devices only): peak RSS of importing the RTU path vs. RTU + TCP.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import subprocess
import sys
import time

from edge_agent.sources.modbus import planner, profile
from edge_agent.sources.modbus.bus import Bus
from edge_agent.sources.modbus.rtu import RtuLine, char_time, silence
from edge_agent.sources.modbus.source import SlaveSource
from simulator.rtu_bus import LineFaults, SimBus

SITE = ("signalcraft-sim-compressor", "banner-qm30vt2", "eastron-sdm630", "adam-4117-pressure")
BLOCK = {1: "coils", 2: "discrete_inputs", 3: "holding", 4: "input"}


def site() -> tuple[dict[int, list[planner.Request]], dict[int, dict]]:
    """Requests per slave id (every poll group) and register banks that serve them."""
    requests, banks = {}, {}
    for sid, name in enumerate(SITE, start=1):
        points = profile.load(name).points
        reqs = [
            r
            for g in sorted({p.group for p in points})
            for r in planner.plan([p for p in points if p.group == g])
        ]
        requests[sid] = reqs
        bank: dict = {}
        for fn in {r.function for r in reqs}:
            lo = min(r.address for r in reqs if r.function == fn)
            hi = max(r.address + r.count for r in reqs if r.function == fn)
            bank[BLOCK[fn]] = {lo: [0] * (hi - lo)}
        banks[sid] = bank
    return requests, banks


def theoretical(requests: list[planner.Request], baud: int) -> float:
    wire = sum(8 + 5 + ((r.count + 7) // 8 if r.function in (1, 2) else 2 * r.count) for r in requests)
    return wire * char_time(baud) + 2 * silence(baud) * len(requests)


def line_time(cycles: int) -> None:
    requests, banks = site()
    flat = [(sid, r) for sid, reqs in requests.items() for r in reqs]
    print(f"1. cycle time vs theoretical line time ({len(flat)} transactions per cycle, {len(SITE)} slaves)")
    print(f"   {'baud':>7} {'theory ms':>10} {'measured ms (median)':>21} {'ratio':>6}")
    for baud in (9600, 19200, 115200):
        with SimBus(banks, baud=baud, line_timing=True) as sim:
            line = RtuLine(sim.port, baud)
            times = []
            try:
                for _ in range(cycles + 1):
                    t0 = time.perf_counter()
                    for sid, r in flat:
                        line.read(sid, r.function, r.address, r.count, 0.5)
                    times.append(time.perf_counter() - t0)
            finally:
                line.close()
        got, want = statistics.median(times[1:]), theoretical([r for _, r in flat], baud)
        print(f"   {baud:7} {want * 1000:10.1f} {got * 1000:21.1f} {got / want:6.3f}")


def faulty_line(seconds: float) -> None:
    _, banks = site()
    live = {sid: banks[sid] for sid in (1, 2, 3)}
    sources = [
        SlaveSource(
            f"slave{sid}", sid, profile.load(SITE[sid - 1]), interval=1.0, timeout=0.3, retries=1, max_gap=10
        )
        for sid in (1, 2, 3, 4)  # 4 (the ADAM module) is dead: not on the line
    ]
    with SimBus(live, baud=19200, line_timing=True, faults=LineFaults(corrupt_rate=0.01, seed=11)) as sim:
        bus = Bus(sim.port, lambda: RtuLine(sim.port, 19200), sources)
        t0 = time.monotonic()
        bus.start()
        bus.wait_first_round(5)
        stale_after = time.monotonic() - t0
        dead_state = sources[3].status.state
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        elapsed = time.monotonic() - t0
        bus.stop()
    # Nominal: polls due (at 0 s, 1 s, 2 s, ...) at least 200 ms before the end, time enough to finish.
    nominal = math.ceil(elapsed - 0.2)
    print(f"2. faulty line: 1 % corrupted answers, one dead slave, 19200 baud, {elapsed:.0f} s")
    for s in sources[:3]:
        st, polls = s.status, s.groups[0].polls  # the every-second group ("default" sorts first)
        print(
            f"   {s.name}: {polls} polls of {nominal} nominal ({polls / nominal:.1%}), "
            f"crc errors {st.crc_errors}, retries {st.retries}, state {st.state}"
        )
    d = sources[3].status
    print(
        f"   slave4 (dead): {dead_state} after the first cycle ({stale_after:.2f} s), "
        f"{d.transactions} transactions in {elapsed:.0f} s (back-off), state {d.state}"
    )


def import_cost() -> None:
    # VmRSS of the fresh process (ru_maxrss would include the parent's pages copied before exec).
    probe = "import re, {mod}; print(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read())[1])"
    base = "edge_agent.sources.modbus.bus, edge_agent.sources.modbus.rtu"
    rows = []
    for label, mods in (
        ("RTU only", base),
        ("RTU + TCP (pymodbus)", base + ", edge_agent.sources.modbus.tcp"),
    ):
        out = subprocess.run(
            [sys.executable, "-c", probe.format(mod=mods)], capture_output=True, text=True, check=True
        )
        rows.append((label, int(out.stdout) / 1024))
    print("3. import cost (RSS of a fresh interpreter after the imports)")
    for label, mb in rows:
        print(f"   {label:22} {mb:6.1f} MB")
    extra = rows[1][1] - rows[0][1]
    print(f"   pymodbus adds {extra:.1f} MB (imported only when a [[modbus_tcp]] device exists)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--fault-seconds", type=float, default=30.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the dead slave's "stale" warning is expected here
    line_time(args.cycles)
    faulty_line(args.fault_seconds)
    import_cost()


if __name__ == "__main__":
    main()
