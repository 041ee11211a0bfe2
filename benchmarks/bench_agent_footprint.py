"""The agent's footprint on the box: resident memory, CPU and Modbus transactions per cycle.

    .venv/bin/python -m benchmarks.bench_agent_footprint [--seconds 60]

Runs, one after the other and against the same simulated compressor (14 points, 1 Hz, real Modbus RTU on a
pseudo-terminal) and the same mosquitto:

- the baseline: a bare loop of minimalmodbus + paho-mqtt (one read of the register block, one publish a
  second) — the least any agent can do;
- the SignalCraft agent with everything on: planner, ONNX model, health state, SQLite buffer, uplink.

For each it prints the resident memory at the end, the CPU used over the run as a percentage of one core,
and the Modbus transactions per cycle, then the ratios agent/baseline.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from edge_agent import control
from signalcraft import embedded
from simulator.agent_config import agent_config_toml
from simulator.modbus_slave import start_unit

BARE = textwrap.dedent("""
    import json, sys, time
    import minimalmodbus, paho.mqtt.client as mqtt
    port, broker = sys.argv[1], int(sys.argv[2])
    inst = minimalmodbus.Instrument(port, 1)
    inst.serial.baudrate, inst.serial.timeout = 19200, 0.3
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bare")
    client.connect("127.0.0.1", broker)
    client.loop_start()
    n = 0
    next_t = time.monotonic()
    while True:
        words = inst.read_registers(0, 24, 4)
        client.publish("bare/telemetry", json.dumps({"n": n, "w": words}), qos=1)
        n += 1
        next_t += 1.0
        time.sleep(max(0.0, next_t - time.monotonic()))
""")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure(proc: subprocess.Popen, seconds: float, warmup: float = 10.0) -> tuple[float, float]:
    time.sleep(warmup)
    c0, t0 = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(seconds)
    cpu = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100
    return rss_mib(proc.pid), cpu


def stop(proc: subprocess.Popen) -> None:
    embedded.terminate(proc, timeout=20)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="signalcraft-footprint-"))
    broker = embedded.start_broker(work / "broker")
    unit = start_unit(seed=1, speed=1.0)
    try:
        bare = subprocess.Popen(
            [sys.executable, "-c", BARE, unit.port, str(broker.port)], start_new_session=True
        )
        bare_rss, bare_cpu = measure(bare, args.seconds)
        stop(bare)

        config = work / "agent.toml"
        config.write_text(agent_config_toml(unit, "bench", "footprint", work / "state", broker.url))
        agent = subprocess.Popen(
            [str(Path(sys.executable).with_name("signalcraft-agent")), "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        agent_rss, agent_cpu = measure(agent, args.seconds)
        status = control.request(work / "state" / "agent.sock", "status")
        src = status["sources"]["controller"]
        cycles = max(1, status["loop"]["cycles"])
        tx = src["transactions"] / cycles
        stop(agent)
    finally:
        unit.stop()
        broker.stop()
    print(f"{args.seconds:g} s at 1 Hz, 14 points (24 registers), real Modbus RTU + mosquitto")
    print("                          RSS MiB   CPU % of a core   transactions/cycle")
    print(f"bare minimalmodbus+paho   {bare_rss:7.1f}   {bare_cpu:15.2f}   {1:18d}")
    print(f"signalcraft-agent         {agent_rss:7.1f}   {agent_cpu:15.2f}   {tx:18.2f}")
    print(f"agent/bare: memory {agent_rss / bare_rss:.2f}x, CPU {agent_cpu / max(bare_cpu, 1e-9):.2f}x")


if __name__ == "__main__":
    main()
