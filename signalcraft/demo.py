"""``signalcraft demo``: every part of SignalCraft, for real, on one machine with only Python.

    simulator (Modbus RTU slaves on ptys) → agents (one process per compressor) → MQTT broker
        → collector (ingest → PostgreSQL → alerts → API, SSE, dashboard)

The broker is mosquitto when installed, else a Python broker; PostgreSQL is the machine's when
``SIGNALCRAFT_DATABASE_URL`` is set, else an embedded server. The simulator runs faster than the wall
clock (:data:`edge_agent.analytics.presets.DEMO`) so faults develop within the first minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from edge_agent.analytics.presets import DEMO
from signalcraft import embedded
from simulator.agent_config import agent_config_toml
from simulator.faults import FaultSpec
from simulator.modbus_slave import Fleet, start_fleet

SITE = "demo-shop"
DEMO_LOGIN = "admin@demo.signalcraft.local"
# Which units develop which fault (by index); the others stay healthy.
FAULT_PLAN = ("refrigerant_leak", "condenser_fouling", "bearing_wear", "short_cycling")


class DemoError(Exception):
    """A part of the demo could not start; the message says which and why."""


def fault_plan(devices: int) -> dict[int, str]:
    """Odd-numbered units get a fault, in turn; even-numbered ones (0, 2, …) stay healthy."""
    return {i: FAULT_PLAN[(i // 2) % len(FAULT_PLAN)] for i in range(1, devices, 2)}


@dataclass
class AgentProcess:
    device: str
    config: Path
    proc: subprocess.Popen
    fault: str | None


class Demo:
    def __init__(self, devices: int, api_port: int, workdir: Path | None) -> None:
        self.devices = devices
        self.api_port = api_port or embedded.free_port()
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="signalcraft-demo-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.console = Console()
        self.broker: embedded.Broker | None = None
        self.postgres: embedded.Postgres | None = None
        self.collector: subprocess.Popen | None = None
        self.fleet: Fleet | None = None
        self.agents: list[AgentProcess] = []
        self.plan = fault_plan(devices)
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.collector_config = self.workdir / "collector.toml"
        self.password = secrets.token_urlsafe(12)  # a fresh one per run: no well-known demo password
        self.api_key = ""

    # -- start / stop ----------------------------------------------------------------------------

    def __enter__(self) -> Demo:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        say = self.console.print
        say(f"[bold]SignalCraft demo[/] in {self.workdir}")
        self.broker = embedded.start_broker(self.workdir / "broker")
        say(f"  broker      {self.broker.kind} on {self.broker.url}")
        db_url = os.environ.get("SIGNALCRAFT_DATABASE_URL")
        if db_url:
            say("  database    SIGNALCRAFT_DATABASE_URL")
        else:
            with self.console.status("starting embedded PostgreSQL…"):
                self.postgres = embedded.start_postgres(self.workdir / "pgdata")
            db_url = self.postgres.url
            say("  database    embedded PostgreSQL")
        self._start_collector(db_url)
        self._create_access()
        say(f"  collector   {self.api}   [bold green]dashboard: {self.api}/[/]")
        say(f"  login       {DEMO_LOGIN} / {self.password}   (an admin, made with `users add`)")
        faults = {
            i: [FaultSpec(kind, start_s=DEMO.fault_start_s, ramp_s=DEMO.fault_ramp_s)]
            for i, kind in self.plan.items()
        }
        self.fleet = start_fleet(self.devices, faults, speed=DEMO.speed, seed=7)
        say(f"  simulator   {self.devices} compressors at {DEMO.speed:g}× speed on pseudo-terminals")
        for i, unit in enumerate(self.fleet.units):
            self._start_agent(i, unit)
        say(
            f"  agents      {len(self.agents)} (one per compressor), "
            f"calibrating on {DEMO.calibration_readings} readings"
        )

    def _start_collector(self, db_url: str) -> None:
        assert self.broker is not None
        self.collector_config.write_text(
            "[mqtt]\n"
            f"url = {json.dumps(self.broker.url)}\n"
            'client_id = "signalcraft-demo-collector"\n'
            "[database]\n"
            f"url = {json.dumps(db_url)}\n"
            "[api]\n"
            f"port = {self.api_port}\n"
            "[alerts]\n"
            'offline_after = "30s"\n'
        )
        log = open(self.workdir / "collector.log", "ab")  # noqa: SIM115 - owned by the child
        env = {k: v for k, v in os.environ.items() if k != "SIGNALCRAFT_DATABASE_URL"}
        self.collector = subprocess.Popen(
            [_bin("signalcraft-collector"), "serve", "--migrate", "--config", str(self.collector_config)],
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.collector.poll() is not None:
                raise DemoError(
                    f"the collector exited with code {self.collector.returncode}; see "
                    f"{self.workdir / 'collector.log'}"
                )
            with contextlib.suppress(OSError, urllib.error.URLError):
                if _get(f"{self.api}/readyz", timeout=1.0) is not None:
                    return
            time.sleep(0.3)
        raise DemoError(f"the collector was not ready after 60 s; see {self.workdir / 'collector.log'}")

    def _create_access(self) -> None:
        """An admin for the dashboard and a viewer API key for this program, through the collector's CLI."""
        env = {k: v for k, v in os.environ.items() if k != "SIGNALCRAFT_DATABASE_URL"}
        config = ["--config", str(self.collector_config)]
        collector = _bin("signalcraft-collector")
        made = subprocess.run(
            [collector, "users", "add", DEMO_LOGIN, "--role", "admin", "--password-stdin", *config],
            input=self.password + "\n",
            capture_output=True,
            text=True,
            env=env,
        )
        key = subprocess.run(
            [collector, "apikeys", "create", "--role", "viewer", "--name", "demo", *config],
            capture_output=True,
            text=True,
            env=env,
        )
        for step in (made, key):
            if step.returncode != 0:
                raise DemoError(f"could not create the demo's access: {step.stderr.strip()}")
        self.api_key = key.stdout.strip()

    def _start_agent(self, index: int, unit: Any) -> None:
        assert self.broker is not None
        device = f"compressor-{index + 1}"
        text = agent_config_toml(
            unit,
            SITE,
            device,
            self.workdir / "agents" / device,
            self.broker.url,
            poll_interval=f"{DEMO.poll_interval_s:g}s",
        )
        if not self.broker.supports_v5:
            text = text.replace("[mqtt]\n", '[mqtt]\nprotocol = "3.1.1"\n')
        text += f"\n[model]\ncalibration_readings = {DEMO.calibration_readings}\nwindow = {DEMO.window}\n"
        config = self.workdir / f"agent-{device}.toml"
        config.write_text(text)
        log = open(self.workdir / f"agent-{device}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [_bin("signalcraft-agent"), "run", "--config", str(config)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        self.agents.append(AgentProcess(device, config, proc, self.plan.get(index)))

    def close(self) -> None:
        for agent in self.agents:
            embedded.terminate(agent.proc)
        if self.fleet is not None:
            self.fleet.stop()
        if self.collector is not None:
            embedded.terminate(self.collector)
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- running ---------------------------------------------------------------------------------

    def run(self, duration: float | None) -> None:
        """Show the fleet live until ``duration`` elapses (or Ctrl-C), then stop the agents cleanly."""
        start = time.monotonic()
        stop = False

        def _interrupt(*_: object) -> None:
            nonlocal stop
            stop = True

        previous = signal.signal(signal.SIGINT, _interrupt)
        try:
            with Live(self._table(0), console=self.console, refresh_per_second=2, transient=False) as live:
                while not stop:
                    elapsed = time.monotonic() - start
                    if duration is not None and elapsed >= duration:
                        break
                    self._check_children()
                    live.update(self._table(elapsed, duration))
                    time.sleep(1.0)
        finally:
            signal.signal(signal.SIGINT, previous)
        # The summary is taken while everything still runs: stopping the agents first would (rightly)
        # make the collector report every device offline.
        time.sleep(1.0)  # the collector's last batch

    def _check_children(self) -> None:
        if self.collector is not None and self.collector.poll() is not None:
            raise DemoError(
                f"the collector stopped (code {self.collector.returncode}); see "
                f"{self.workdir / 'collector.log'}"
            )
        for agent in self.agents:
            if agent.proc.poll() is not None:
                raise DemoError(
                    f"agent {agent.device} stopped (code {agent.proc.returncode}); see "
                    f"{self.workdir / f'agent-{agent.device}.log'}"
                )

    def _table(self, elapsed: float, duration: float | None = None) -> Table:
        fleet = _get(f"{self.api}/api/v1/devices", key=self.api_key) or {}
        devices = {d["device"]: d for d in fleet.get("devices", [])}
        left = f" — {max(0.0, duration - elapsed):.0f} s left" if duration else " — Ctrl-C to stop"
        t = Table(
            title=f"SignalCraft demo, {elapsed:.0f} s{left}   dashboard {self.api}/", title_justify="left"
        )
        for col in ("device", "injected fault", "health", "last seen", "active alerts"):
            t.add_column(col)
        colours = {"HEALTHY": "green", "WARNING": "yellow", "ALARM": "red", "SENSOR_FAULT": "magenta"}
        for agent in self.agents:
            d = devices.get(agent.device, {})
            state = d.get("state") or "—"
            colour = colours.get(state, "dim")
            t.add_row(
                agent.device,
                agent.fault or "none",
                f"[{colour}]{state}[/]",
                _ago(d.get("last_seen")),
                str(d.get("active_alerts", 0)),
            )
        return t

    # -- summary ---------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        stats = subprocess.run(
            [_bin("signalcraft-collector"), "stats", "--json", "--config", str(self.collector_config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if stats.returncode != 0:
            raise DemoError(f"signalcraft-collector stats failed: {stats.stderr.strip()}")
        per_device = {d["device"]: d for d in json.loads(stats.stdout)["devices"]}
        found = _get(f"{self.api}/api/v1/alerts?status=all&limit=1000", key=self.api_key) or {}
        alerts = found.get("alerts", [])
        rows = []
        for agent in self.agents:
            mine = [a for a in alerts if a["device"] == agent.device]
            rows.append(
                {
                    "device": agent.device,
                    "fault": agent.fault,
                    "readings": per_device.get(agent.device, {}).get("readings", 0),
                    "gaps": per_device.get(agent.device, {}).get("gaps", 0),
                    "alerts": sorted({a["rule"] for a in mine}),
                    "alert_count": len(mine),
                }
            )
        by_type: dict[str, int] = {}
        for a in alerts:
            by_type[a["rule"]] = by_type.get(a["rule"], 0) + 1
        return {"devices": rows, "alerts_by_type": by_type}

    def print_summary(self) -> bool:
        """Print the summary; True when every device stored readings and only faulted units alerted."""
        s = self.summary()
        t = Table(title="Summary", title_justify="left")
        for col in ("device", "injected fault", "readings stored", "sequence gaps", "alerts"):
            t.add_column(col)
        ok = True
        for row in s["devices"]:
            healthy_quiet = row["fault"] is not None or row["alert_count"] == 0
            faulted_seen = row["fault"] is None or row["alert_count"] > 0
            good = row["readings"] > 0 and healthy_quiet and faulted_seen
            ok &= good
            alerts = ", ".join(row["alerts"]) or "none"
            t.add_row(
                row["device"],
                row["fault"] or "none",
                str(row["readings"]),
                str(row["gaps"]),
                alerts if good else f"[red]{alerts}[/]",
            )
        self.console.print(t)
        by_type = ", ".join(f"{k}: {v}" for k, v in sorted(s["alerts_by_type"].items())) or "none"
        self.console.print(
            f"devices: {len(s['devices'])}   readings stored: "
            f"{sum(r['readings'] for r in s['devices'])}   alerts by type: {by_type}"
        )
        if not ok:
            self.console.print("[red]unexpected result: see the rows in red[/]")
        return ok


def _ago(iso: str | None) -> str:
    if not iso:
        return "—"
    with contextlib.suppress(ValueError):
        seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
        return f"{max(0.0, seconds):.0f} s ago"
    return iso


def _bin(name: str) -> str:
    """The console script next to this interpreter (the venv's), else on PATH."""
    here = Path(sys.executable).with_name(name)
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise DemoError(f"{name} is not installed (pip install -e '.[all]')")
    return found


def _get(url: str, timeout: float = 2.0, key: str = "") -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None
