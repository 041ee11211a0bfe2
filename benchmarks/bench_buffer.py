"""What durability costs: buffering one reading with ``fsync = "normal"`` versus ``"full"``.

    .venv/bin/python benchmarks/bench_buffer.py [--readings 2000] [--dir PATH]

Appends the same readings (real encoded `Reading`s) to the on-disk buffer in both modes, in the same run
and on the same file system, and acknowledges them the way the uplink does (delete after PUBACK).
Prints µs per reading for each mode and the ratio full/normal. Use --dir to measure the disk the agent
will really use (an SD card differs from an SSD by orders of magnitude).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import schema
from edge_agent.buffer import Buffer

VALUES = {f"point_{i}": 20.0 + i / 10 for i in range(14)}


def run(folder: Path, fsync: str, n: int) -> tuple[float, float]:
    buf = Buffer(folder / f"bench-{fsync}.sqlite3", 256 << 20, fsync)
    bodies = [schema.encode(schema.Reading(seq=i, ts=datetime.now(UTC), values=VALUES)) for i in range(n)]
    t0 = time.perf_counter()
    ids = [buf.add("telemetry", "a" * 32, body) for body in bodies]
    t_add = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for i in range(0, n, 20):  # acknowledged in batches, as messages of 20 readings
        buf.delete(ids[i : i + 20])
    t_ack = (time.perf_counter() - t0) / n
    buf.close()
    return t_add, t_ack


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=2000)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results = {mode: run(Path(tmp), mode, args.readings) for mode in ("normal", "full")}
    where = args.dir or tempfile.gettempdir()
    print(f"{args.readings} readings of {len(VALUES)} values, file system of {where}")
    print("mode     add µs/reading  ack µs/reading")
    for mode, (add, ack) in results.items():
        print(f"{mode:<8} {add * 1e6:14.1f} {ack * 1e6:15.1f}")
    ratio = results["full"][0] / results["normal"][0]
    print(f"full/normal (add): {ratio:.2f}x")


if __name__ == "__main__":
    main()
