"""Waveform acquisition (serial reader: read, parse, CRC-check, cut windows): CPU and throughput.

    .venv/bin/python -m benchmarks.bench_waveform [--seconds 20] [--rates 8000,16000,32000]

1. Over a pty. For each rate the simulated sensor (``simulator.waveform.WaveformEmitter``: frames of 256
   int16 samples, one channel, paced in real time) streams on its own pty to each of three consumers, each
   in its own process, all measured over the same wall-clock interval (so they see the same machine load):

   - ``os.read + select``: blocks in ``select`` and reads whatever is there, discards it (the floor);
   - ``pyserial read loop``: the reader's own read loop (``ser.read(max(1, min(in_waiting, 65536)))``,
     0.5 s timeout), bytes discarded: the baseline;
   - ``WaveformSource``: the agent's reader thread (parse, CRC, resync, loss accounting, 1 s windows),
     drained with ``poll()`` once a second as the agent does.

   CPU is ``time.process_time()`` of the consumer process over the interval (every thread, including the
   once-a-second poll), printed as seconds and as % of one core; the ratio is against the pyserial loop.
2. Parser alone, in memory: ``FrameParser.feed`` over 10 s of a 16 kHz stream fed in 4096-byte chunks,
   against ``zlib.crc32`` over the same frames (the one step that must touch every byte), clean and with
   1 % corrupted frames + 1 % frames preceded by garbage. Best of several alternated runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

FRAME_SAMPLES = 256
CONSUMERS = ("os.read + select", "pyserial read loop", "WaveformSource")
KIND = {"os.read + select": "osread", "pyserial read loop": "pyserial", "WaveformSource": "reader"}
ROOT = Path(__file__).resolve().parents[1]


# -- consumer process ---------------------------------------------------------------------------------


def consume(kind: str, port: str, seconds: float) -> None:
    """Runs in the child: read ``port`` in a thread, report counters and CPU over ``seconds`` after "go"."""
    stop = threading.Event()
    counts = {"bytes": 0, "reads": 0}
    source = None
    if kind == "reader":
        from edge_agent.sources.waveform.reader import WaveformSource

        source = WaveformSource("bench", port, window=1.0)
        source.start()

        def snapshot() -> dict[str, int]:
            s = source.status_dict()
            keys = ("frames", "lost_frames", "crc_errors", "skipped_bytes", "windows", "windows_dropped")
            return {k: s[k] for k in keys}

    else:
        if kind == "osread":
            fd = os.open(port, os.O_RDONLY | os.O_NOCTTY)

            def loop() -> None:
                while not stop.is_set():
                    ready, _, _ = select.select([fd], [], [], 0.5)
                    if ready:
                        counts["bytes"] += len(os.read(fd, 65536))
                        counts["reads"] += 1

        else:
            import serial

            ser = serial.Serial(port, 921600, timeout=0.5, exclusive=True)

            def loop() -> None:
                while not stop.is_set():
                    data = ser.read(max(1, min(ser.in_waiting, 65536)))
                    counts["bytes"] += len(data)
                    counts["reads"] += 1

        threading.Thread(target=loop, daemon=True).start()

        def snapshot() -> dict[str, int]:
            return dict(counts)

    time.sleep(1.0)  # warm up: port open, first frames through
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    if source is not None:
        source.poll()  # windows completed during the warm-up are not counted
    before, cpu0, t0 = snapshot(), time.process_time(), time.monotonic()
    delivered, tick = 0, t0
    while True:
        tick += 1.0
        time.sleep(max(0.0, min(tick, t0 + seconds) - time.monotonic()))
        if source is not None:
            delivered += len(source.poll())
        if time.monotonic() >= t0 + seconds:
            break
    after, cpu1, t1 = snapshot(), time.process_time(), time.monotonic()
    result = {k: after[k] - before[k] for k in after}
    result.update(cpu=cpu1 - cpu0, wall=t1 - t0, delivered=delivered)
    print(json.dumps(result), flush=True)
    stop.set()
    if source is not None:
        source.stop()


# -- 1. over a pty ------------------------------------------------------------------------------------


def over_pty(rate: int, seconds: float) -> list[tuple[str, dict, dict]]:
    from simulator.waveform import WaveformEmitter

    emitters = [WaveformEmitter(rate, FRAME_SAMPLES, seed=1) for _ in CONSUMERS]
    procs = []
    try:
        for name, em in zip(CONSUMERS, emitters, strict=True):
            cmd = [sys.executable, "-m", "benchmarks.bench_waveform", "--consume", KIND[name], em.port]
            cmd += ["--seconds", str(seconds)]
            procs.append(
                subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )
        for p in procs:
            if p.stdout is None or p.stdout.readline().strip() != "ready":
                raise RuntimeError("consumer failed to start")
        sent0 = [(em.sent, em.unread) for em in emitters]
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [json.loads(p.stdout.readline()) for p in procs if p.stdout is not None]
        sent = [
            {"sent": em.sent - s, "unread": em.unread - u} for em, (s, u) in zip(emitters, sent0, strict=True)
        ]
    finally:
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for em in emitters:
            em.stop()
    return list(zip(CONSUMERS, results, sent, strict=True))


def print_pty(rows_by_rate: dict[int, list[tuple[str, dict, dict]]], seconds: float) -> None:
    print(
        f"1. acquisition over a pty: {seconds:.0f} s per rate, frames of {FRAME_SAMPLES} int16 samples, "
        "1 channel, 1 s windows"
    )
    print(
        f"   {'rate Hz':>7}  {'consumer':<18} {'kB/s':>6} {'reads/s':>8} {'frames/s':>9} {'windows':>7} "
        f"{'lost':>4} {'crc':>4} {'CPU s':>6} {'% core':>7} {'vs pyserial':>11}"
    )
    for rate, rows in rows_by_rate.items():
        base = next(r for name, r, _ in rows if name == "pyserial read loop")["cpu"]
        for name, r, _ in rows:
            wall = r["wall"]
            if name == "WaveformSource":
                kbs = r["frames"] * (20 + 2 * FRAME_SAMPLES) / wall / 1000
                reads, frames = "-", f"{r['frames'] / wall:.1f}"
                windows, lost, crc = str(r["delivered"]), str(r["lost_frames"]), str(r["crc_errors"])
            else:
                kbs = r["bytes"] / wall / 1000
                reads, frames, windows, lost, crc = f"{r['reads'] / wall:.0f}", "-", "-", "-", "-"
            print(
                f"   {rate:>7}  {name:<18} {kbs:6.1f} {reads:>8} {frames:>9} {windows:>7} {lost:>4} {crc:>4} "
                f"{r['cpu']:6.3f} {100 * r['cpu'] / wall:6.2f}% {r['cpu'] / base:11.2f}"
            )
        src = next(r for name, r, _ in rows if name == "WaveformSource")
        extra = (src["cpu"] - base) / max(1, src["frames"])
        print(f"   {rate:>7}  WaveformSource over the pyserial loop: {extra * 1e6:+.0f} µs CPU per frame")
        unread = sum(em["unread"] for _, _, em in rows)
        if unread:
            print(f"   {rate:>7}  the sensor could not write {unread} frames (nobody read the pty in time)")


# -- 2. parser alone ----------------------------------------------------------------------------------


def stream(rate: int, seconds: float, faulty: bool) -> tuple[bytes, list[tuple[int, int]], int]:
    """The bytes of ``seconds`` of frames, the (start, end) of each frame's CRC span, and the frame count."""
    from edge_agent.sources.waveform.protocol import encode_frame
    from simulator.waveform import Signature

    sig, rng = Signature(rate, seed=1), random.Random(7)
    out, spans = bytearray(), []
    n = round(seconds * rate / FRAME_SAMPLES)
    for seq in range(n):
        frame = encode_frame(seq, sig.next(FRAME_SAMPLES), rate)
        if faulty and rng.random() < 0.01:
            i = rng.randrange(len(frame))
            frame = frame[:i] + bytes([frame[i] ^ 0x5A]) + frame[i + 1 :]
        if faulty and rng.random() < 0.01:
            out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        spans.append((len(out) + 2, len(out) + len(frame) - 4))
        out += frame
    return bytes(out), spans, n


def parser_alone(repeats: int = 7) -> None:
    from edge_agent.sources.waveform.protocol import FrameParser

    rate, seconds, chunk = 16000, 10.0, 4096
    print(
        f"2. parser alone: {seconds:.0f} s of {rate} Hz ({FRAME_SAMPLES}-sample frames) "
        f"in {chunk}-byte chunks"
    )
    print(
        f"   {'stream':<32} {'frames':>6} {'crc err':>7} {'parse ms':>9} {'frames/s':>10} "
        f"{'µs/frame':>8} {'crc32 ms':>9} {'ratio':>6}"
    )
    for label, faulty in (("clean", False), ("1 % corrupted, 1 % garbage", True)):
        data, spans, _ = stream(rate, seconds, faulty)
        view = memoryview(data)
        chunks = [view[i : i + chunk] for i in range(0, len(data), chunk)]
        parse_t, crc_t = [], []
        for k in range(repeats + 1):  # the first pass warms up and is not counted
            p = FrameParser()
            t = time.perf_counter()
            got = sum(len(p.feed(c)) for c in chunks)
            if k:
                parse_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            for a, b in spans:
                zlib.crc32(view[a:b])
            if k:
                crc_t.append(time.perf_counter() - t)
        parse, crc = min(parse_t), min(crc_t)
        print(
            f"   {label:<32} {got:>6} {p.crc_errors:>7} {parse * 1000:9.2f} {got / parse:10.0f} "
            f"{parse / got * 1e6:8.1f} {crc * 1000:9.2f} {parse / crc:6.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per rate (default 20)")
    ap.add_argument("--rates", default="8000,16000,32000", help="comma-separated sample rates in Hz")
    ap.add_argument("--consume", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.consume:
        consume(args.consume[0], args.consume[1], args.seconds)
        return
    rows = {rate: over_pty(rate, args.seconds) for rate in (int(r) for r in args.rates.split(","))}
    print_pty(rows, args.seconds)
    parser_alone()


if __name__ == "__main__":
    main()
