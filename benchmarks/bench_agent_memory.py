"""The agent's steady resident memory with one waveform sensor and four Modbus slaves.

    .venv/bin/python -m benchmarks.bench_agent_memory [--seconds 60] [--rate 8000]

Starts mosquitto (or the Python broker), four simulated compressors, each a real Modbus RTU slave on its
own pseudo-terminal (four ``[[modbus]]`` lines, four bus threads), and a simulated waveform sensor
(``simulator.waveform``: 8 kHz int16 frames over a pty, 1 s windows). Then ``signalcraft-agent run`` polls
them all at 1 Hz: features, ONNX, health state, waveform features and scoring, SQLite buffer, MQTT uplink.
The compressors run in the demo's time (``DEMO``: 120× faster, calibration after 25 readings), so both
models are calibrated and scoring before the measurement starts; the status reply proves it. VmRSS is
sampled every second after the warm-up; the median and the maximum are the steady numbers.

The baseline, measured in the same run: a bare interpreter that imports only the libraries the agent cannot
do without and builds one onnxruntime session, before and after the same start-up release the agent does
(``edge_agent.memory``). The ratio agent/baseline is what the agent's own code, threads and buffers cost.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_agent_footprint import rss_mib, stop
from edge_agent import control
from edge_agent.analytics.presets import DEMO
from edge_agent.sources.modbus.profile import PROFILES_DIR
from signalcraft import embedded
from simulator.agent_config import agent_config_toml
from simulator.modbus_slave import PROFILE, start_unit
from simulator.waveform import WaveformEmitter

TARGET_MIB = 64.0
# The floor: the libraries the agent cannot do without, plus one onnxruntime session (~9 MiB of kernel
# registry and runtime state the first time), in a bare interpreter.
FLOOR = """
import numpy as np, onnxruntime as ort, paho.mqtt.client, serial, sqlite3, time
from edge_agent.memory import release_startup_pages, resident_mib
o = ort.SessionOptions(); o.enable_cpu_mem_arena = False; o.enable_mem_pattern = False
s = ort.InferenceSession(open("{model}", "rb").read(), sess_options=o, providers=["CPUExecutionProvider"])
shape = lambda i: [d if isinstance(d, int) else 1 for d in i.shape]
feeds = {i.name: np.zeros(shape(i), np.float32) for i in s.get_inputs()}
s.run(None, feeds)
untrimmed = resident_mib()
release_startup_pages()
for _ in range(30):
    s.run(None, feeds)
    time.sleep(0.1)
print(untrimmed, resident_mib())
"""


def status_kib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pss_mib(pid: int) -> float:
    """Proportional set size: shared library pages divided among the processes that map them."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def renamed_profile(work: Path, i: int) -> Path:
    """The compressor's register map with every point prefixed ``u<i>_``: a point name is read by one
    device only, and the analytics score the first unit's names (the others are carried as telemetry)."""
    text = (PROFILES_DIR / f"{PROFILE}.toml").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        if line.startswith("name = ") and out and out[-1].strip() == "[[points]]":
            line = line.replace('name = "', f'name = "u{i}_', 1)
        out.append(line)
    path = work / f"unit-{i}.toml"
    path.write_text("\n".join(out).replace(f'name = "{PROFILE}"', f'name = "{PROFILE}-u{i}"') + "\n")
    return path


def config_text(units: list, wave_port: str, state: Path, mqtt_url: str, work: Path) -> str:
    text = agent_config_toml(units[0], "bench", "memory", state, mqtt_url)
    text = text.split("[[modbus]]")[0]
    text += f"[model]\nwindow = {DEMO.window}\ncalibration_readings = {DEMO.calibration_readings}\n\n"
    for i, unit in enumerate(units):
        profile = PROFILE if i == 0 else str(renamed_profile(work, i))
        text += (
            "[[modbus]]\n"
            f'name = "controller-{i}"\n'
            f'port = "{unit.port}"\n'
            f"baud = {unit.baud}\n"
            f"slave = {unit.slave_id}\n"
            f'profile = "{profile}"\n'
            'timeout = "300ms"\n\n'
        )
    return text + f'[[waveform]]\nname = "vibration"\nport = "{wave_port}"\nbaud = 921600\nwindow = "1s"\n'


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=45.0, help="seconds: both models calibrated by then")
    ap.add_argument("--rate", type=int, default=8000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="signalcraft-memory-"))
    broker = embedded.start_broker(work / "broker")
    units = [start_unit(seed=i, speed=DEMO.speed) for i in range(4)]
    emitter = WaveformEmitter(rate=args.rate, seed=1)
    agent = None
    try:
        config = work / "agent.toml"
        config.write_text(config_text(units, emitter.port, work / "state", broker.url, work))
        agent = subprocess.Popen(
            [str(Path(sys.executable).with_name("signalcraft-agent")), "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(args.warmup)
        samples = []
        states: list[tuple[str, bool]] = []  # the compressor model's state and whether it scored
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            samples.append(rss_mib(agent.pid))
            if len(samples) % 5 == 0:
                last = control.request(work / "state" / "agent.sock", "status")["last"]
                states.append((last["state"], last["score"] is not None))
            time.sleep(1.0)
        anon = status_kib(agent.pid, "RssAnon")
        pss = pss_mib(agent.pid)
        status = control.request(work / "state" / "agent.sock", "status")
    finally:
        if agent is not None:
            stop(agent)
        emitter.stop()
        for unit in units:
            unit.stop()
        broker.stop()
    wave = status["waveform"]["vibration"]
    median, peak = statistics.median(samples), max(samples)
    print(f"signalcraft-agent run: 4 Modbus RTU slaves (4 lines) + 1 waveform sensor at {args.rate} Hz")
    print(f"cycles {status['loop']['cycles']}, waveform windows {wave['windows']} ({wave['state']})")
    cal = status["calibration"]
    scored = sum(ok for _, ok in states)
    seen = ", ".join(sorted({state for state, _ in states}))
    print(
        f"compressor model: calibration {cal['done']}/{cal['needed']}, "
        f"scored in {scored} of {len(states)} status samples (states seen: {seen})"
    )
    print(f"VmRSS over {args.seconds:g} s after {args.warmup:g} s: median {median:.1f} MiB, max {peak:.1f}")
    print(f"of which anonymous (heap, stacks; not shared library pages): {anon:.1f} MiB; PSS {pss:.1f} MiB")
    released = status["memory"]["released_at_startup_mib"]
    print(f"released once start-up was over (clean library pages, free heap): {released} MiB")
    root = Path(__file__).resolve().parents[1]
    model = root / "models" / "artifacts" / "compressor-v1.onnx"
    floor = subprocess.run(
        [sys.executable, "-c", FLOOR.replace("{model}", str(model))],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    ).stdout.split()
    untrimmed, trimmed = float(floor[0]), float(floor[1])
    print(
        "baseline (numpy + onnxruntime + one session + paho + pyserial + sqlite3, bare interpreter): "
        f"{untrimmed:.1f} MiB, {trimmed:.1f} MiB after the same release"
    )
    print(f"agent/baseline: {peak / trimmed:.2f}x (max over the run against the released baseline)")
    print(f"target {TARGET_MIB:g} MiB: {'met' if peak <= TARGET_MIB else 'NOT met'}")


if __name__ == "__main__":
    main()
