"""Cost of one ``Analytics.observe()`` (features + ONNX + health state) against a bare baseline.

The baseline is what any window-based detector pays at least: one ``np.fft.rfft`` over the same window
of readings plus one onnxruntime run of the same model on the same input, in the same process. The ratio
says how much the mode labelling, the medians, the sensor checks and the state machine add on top.

    python benchmarks/bench_analytics.py [--window N] [--readings N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from edge_agent.analytics import REALTIME, Analytics
from edge_agent.analytics.features import POINTS
from edge_agent.analytics.runner import ModelRunner, bundled_waveform_dir
from edge_agent.analytics.waveform import WaveformScorer
from models.simdata import RegisterView, readings
from simulator.waveform import Signature


def bench(window: int, n_readings: int, spr: float) -> dict[str, float]:
    view = RegisterView()
    warm = 4 * window + 200  # enough to fill the window and finish calibrating
    stream = [values for _, values in readings("freezer", 0, (n_readings + warm) * spr, spr, view=view)]
    ts = datetime(2025, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as state:
        a = Analytics(None, Path(state), calibration_readings=window + 20, window=window)
        i = 0
        while not a.calibrated:
            a.observe(ts, stream[i], [])
            i += 1
        # The bare baseline uses onnxruntime's plain public API, as any straightforward implementation
        # would. It is timed right after each observe() so both see the same machine load.
        session = ModelRunner().session
        n = session.get_outputs()[1].shape[1]
        feeds = {"center": np.zeros(n, np.float32), "inv_scale": np.ones(n, np.float32)}
        block = np.array([[values[p] for p in POINTS] for values in stream[:window]])
        per_call, base = [], []
        scored = 0
        for values in stream[i : i + n_readings]:
            t = time.perf_counter_ns()
            v = a.observe(ts, values, [])
            per_call.append(time.perf_counter_ns() - t)
            scored += v.score is not None
            t = time.perf_counter_ns()
            spectrum = np.abs(np.fft.rfft(block, axis=0))
            feeds["features"] = spectrum.ravel()[None, :n].astype(np.float32)
            session.run(None, feeds)
            base.append(time.perf_counter_ns() - t)
    observe_us = statistics.median(per_call) / 1000
    base_us = statistics.median(base) / 1000
    return {
        "window": window,
        "readings": len(per_call),
        "scored": scored,
        "observe_median_us": round(observe_us, 1),
        "observe_p99_us": round(float(np.percentile(per_call, 99)) / 1000, 1),
        "baseline_median_us": round(base_us, 1),
        "ratio": round(observe_us / base_us, 2),
    }


def bench_waveform(rate: int, n_windows: int) -> dict[str, float]:
    """One waveform window (1 s): features + ONNX + health state, against rfft + onnxruntime run."""
    sig = Signature(rate, seed=1)
    windows = [sig.next(rate).astype(np.float32)[:, None] for _ in range(40)]
    with tempfile.TemporaryDirectory() as state:
        scorer = WaveformScorer(None, Path(state), "vib", calibration_windows=20)
        for w in windows[:20]:
            scorer.observe(w, rate)
        session = ModelRunner(bundled_waveform_dir()).session
        n = session.get_outputs()[1].shape[1]
        feeds = {"center": np.zeros(n, np.float32), "inv_scale": np.ones(n, np.float32)}
        per_call, base = [], []
        for k in range(n_windows):
            w = windows[20 + k % 20]
            t = time.perf_counter_ns()
            scorer.observe(w, rate)
            per_call.append(time.perf_counter_ns() - t)
            t = time.perf_counter_ns()
            spectrum = np.abs(np.fft.rfft(w[:, 0]))
            feeds["features"] = spectrum[None, :n].astype(np.float32)
            session.run(None, feeds)
            base.append(time.perf_counter_ns() - t)
    observe_us = statistics.median(per_call) / 1000
    base_us = statistics.median(base) / 1000
    return {
        "rate": rate,
        "observe_median_us": round(observe_us, 1),
        "baseline_median_us": round(base_us, 1),
        "ratio": round(observe_us / base_us, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--window", type=int, action="append", help="window(s) in readings (default 10, 20, 1200)"
    )
    parser.add_argument("--readings", type=int, default=3000)
    args = parser.parse_args()
    print(f"{'window':>7} {'scored':>7} {'observe µs':>11} {'p99 µs':>8} {'rfft+onnx µs':>13} {'ratio':>6}")
    for window in args.window or [10, 20, REALTIME.window]:
        spr = 1200.0 / window  # every window covers the model's 20 minutes of machine time
        r = bench(window, args.readings, spr)
        print(
            f"{r['window']:>7} {r['scored']:>7} {r['observe_median_us']:>11} {r['observe_p99_us']:>8} "
            f"{r['baseline_median_us']:>13} {r['ratio']:>6}"
        )
    print(f"\n{'waveform 1 s':>12} {'window µs':>10} {'rfft+onnx µs':>13} {'ratio':>6}")
    for rate in (8000, 16000):
        w = bench_waveform(rate, 300)
        print(f"{rate:>9} Hz {w['observe_median_us']:>10} {w['baseline_median_us']:>13} {w['ratio']:>6}")


if __name__ == "__main__":
    main()
