"""Soak: the agent at 10× its normal rate for 10 minutes with two broker outages; does its memory grow?

    .venv/bin/python -m benchmarks.soak_agent [--minutes 10] [--database-url postgresql://…]

Runs the real parts (simulator, agent process, mosquitto, collector, PostgreSQL), samples the agent's
resident memory every 5 s, and at the end checks that every reading reached PostgreSQL exactly once.
Prints RSS after warm-up, at the end, the peak, and the growth in percent.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from tests import services
from tests.delivery_rig import Rig


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--database-url", default=os.environ.get("SIGNALCRAFT_DATABASE_URL", services.MACHINE_PG))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="signalcraft-soak-"))
    db_url, db_name = services.create_database(args.database_url)
    rig = Rig(work, db_url)  # the agent polls every 100 ms: ten times the normal 1 Hz
    try:
        rig.start_agent()
        assert rig.agent is not None
        start = time.monotonic()
        duration = args.minutes * 60
        outages = [(duration * 0.3, 60.0), (duration * 0.65, 60.0)]
        samples: list[tuple[float, int]] = []
        paused_until = None
        while (elapsed := time.monotonic() - start) < duration:
            if outages and elapsed >= outages[0][0]:
                rig.broker.pause()
                paused_until = elapsed + outages.pop(0)[1]
            if paused_until is not None and elapsed >= paused_until:
                rig.broker.resume()
                paused_until = None
            samples.append((elapsed, rss_kib(rig.agent.pid)))
            time.sleep(5)
        if paused_until is not None:
            rig.broker.resume()
        rig.wait(lambda: (s := rig.status()) and s["delivery"]["buffered"] < 5, 120, "backlog drained")
        status = rig.status() or {}
        rig.stop_agent()
        time.sleep(3)
        stored, rows, distinct = rig.stored()
        # Every reading from seq 0 to the last one stored arrived: a hole would be a lost reading. (The
        # last few produced between the status above and the stop may still sit in the agent's buffer.)
        holes = sum(max(seqs) + 1 - len(set(seqs)) for seqs in stored.values())
        warm = next(kib for t, kib in samples if t >= 60)
        end, peak = samples[-1][1], max(k for _, k in samples)
        print(
            f"duration {args.minutes:g} min, readings produced {status.get('delivery', {}).get('produced')}, "
            f"stored rows {rows}, distinct {distinct}, boots {len(stored)}, missing seqs {holes}"
        )
        print(
            f"agent RSS after 1 min {warm / 1024:.1f} MiB, at end {end / 1024:.1f} MiB, "
            f"peak {peak / 1024:.1f} MiB, growth {100 * (end - warm) / warm:+.1f} %"
        )
    finally:
        rig.close()
        services.drop_database(args.database_url, db_name)


if __name__ == "__main__":
    main()
