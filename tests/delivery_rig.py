"""A site and a cloud for the delivery fault tests.

simulator → agent process → broker → collector → PostgreSQL

Every part is a real process; the tests stop the broker, kill the agent and read both ends to prove
that every reading produced reaches PostgreSQL exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import asyncpg
import msgspec

from common import schema
from edge_agent import control
from signalcraft import embedded
from simulator.agent_config import agent_config_toml
from simulator.modbus_slave import SimulatedUnit, start_unit

BIN = Path(sys.executable).parent


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


class Rig:
    def __init__(self, workdir: Path, pg_url: str, *, poll: str = "100ms", extra: str = "") -> None:
        self.workdir = workdir
        self.pg_url = pg_url
        self.broker = embedded.start_broker(workdir / "broker")
        self.unit: SimulatedUnit = start_unit(seed=4, speed=60.0)
        self.device = "site-box-1"
        self.state = workdir / "agent-state"
        self.config = workdir / "agent.toml"
        self.config.write_text(
            agent_config_toml(self.unit, "rig", self.device, self.state, self.broker.url, poll_interval=poll)
            + "\n[model]\ncalibration_readings = 25\nwindow = 10\n"
            + extra
        )
        api_port = embedded.free_port()
        (workdir / "collector.toml").write_text(
            # A plain subscription: mosquitto 2.0 forgets shared ones when it restarts (docs/collector.md).
            f'[mqtt]\nurl = "{self.broker.url}"\nclient_id = "rig-collector"\nshare_group = ""\n'
            f'[database]\nurl = "{pg_url}"\n[api]\nport = {api_port}\n'
        )
        self.collector = self._spawn(
            ["signalcraft-collector", "serve", "--migrate", "--config", str(workdir / "collector.toml")],
            "collector",
        )
        self.agent: subprocess.Popen | None = None
        # The collector's session must exist before the first reading is published, as in production.
        self.wait(lambda: _ready(api_port), 60, "collector ready")

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        with open(self.workdir / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                [str(BIN / args[0]), *args[1:]], stdout=log, stderr=log, start_new_session=True
            )

    # -- the agent -------------------------------------------------------------------------------

    def start_agent(self) -> None:
        self.agent = self._spawn(["signalcraft-agent", "run", "--config", str(self.config)], "agent")
        self.wait(lambda: (self.state / "agent.sock").exists() and self.status() is not None, 30, "agent up")

    def status(self) -> dict | None:
        try:
            return control.request(self.state / "agent.sock", "status", timeout=2)
        except (OSError, ValueError):
            return None

    def kill_agent(self) -> None:
        assert self.agent is not None
        os.killpg(self.agent.pid, signal.SIGKILL)
        self.agent.wait()

    def stop_agent(self) -> None:
        assert self.agent is not None
        os.killpg(self.agent.pid, signal.SIGTERM)
        self.agent.wait(30)

    # -- both ends -------------------------------------------------------------------------------

    def buffered(self) -> dict[str, set[int]]:
        """Reading seqs per boot still in the agent's buffer (the agent must be stopped)."""
        out: dict[str, set[int]] = defaultdict(set)
        db = sqlite3.connect(self.state / "buffer.sqlite3")
        try:
            for boot, body in db.execute("SELECT boot, body FROM outbox WHERE kind = 'telemetry'"):
                out[boot].add(msgspec.json.decode(body, type=schema.Reading).seq)
        finally:
            db.close()
        return out

    def stored(self) -> tuple[dict[str, list[int]], int, int]:
        """Seqs per boot in PostgreSQL, total rows and distinct (device, boot, seq)."""

        async def go():
            conn = await asyncpg.connect(self.pg_url)
            try:
                rows = await conn.fetch("SELECT boot, seq FROM readings WHERE device = $1", self.device)
                distinct = await conn.fetchval(
                    "SELECT count(*) FROM (SELECT DISTINCT device, boot, seq FROM readings"
                    " WHERE device = $1) d",
                    self.device,
                )
            finally:
                await conn.close()
            per_boot: dict[str, list[int]] = defaultdict(list)
            for r in rows:
                per_boot[r["boot"]].append(r["seq"])
            return per_boot, len(rows), distinct

        return asyncio.run(go())

    def wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not reached in {timeout:.0f} s")
            assert self.collector.poll() is None, (self.workdir / "collector.log").read_text()[-3000:]
            time.sleep(0.2)

    def close(self) -> None:
        for proc in (self.agent, self.collector):
            if proc is not None:
                embedded.terminate(proc, timeout=20)
        self.unit.stop()
        self.broker.stop()
