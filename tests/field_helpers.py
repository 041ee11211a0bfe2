"""A real agent process for the technician-CLI and watchdog tests: config, start, wait, stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from edge_agent.cli import app
from signalcraft import embedded

runner = CliRunner()


def agent_toml(
    state_dir: Path,
    mqtt_url: str,
    port: str,
    *,
    baud: int = 19200,
    slave: int = 1,
    poll: str = "200ms",
    calibration: int = 15,
    socket: Path | None = None,
) -> str:
    """An agent polling one simulated compressor quickly, calibrating within seconds."""
    control = f'control_socket = "{socket}"\n' if socket else ""
    return (
        f'[agent]\nsite = "shop"\ndevice = "freezer-1"\nstate_dir = "{state_dir}"\n'
        f'poll_interval = "{poll}"\n{control}'
        f'[mqtt]\nurl = "{mqtt_url}"\n'
        f'[[modbus]]\nname = "controller"\nport = "{port}"\nbaud = {baud}\nslave = {slave}\n'
        'profile = "signalcraft-sim-compressor"\ntimeout = "200ms"\n'
        f"[model]\ncalibration_readings = {calibration}\nwindow = 10\n"
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNALCRAFT_", "NOTIFY_", "WATCHDOG_"))}
    env.update(extra)
    return env


class AgentProcess:
    """``signalcraft-agent run`` as a child process, as systemd would start it."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config)],
                stdout=out,
                stderr=out,
                env=env or clean_env(),
                start_new_session=True,
            )

    def cli(self, *args: str):
        return runner.invoke(app, [*args, "--config", str(self.config)])

    def status(self) -> dict | None:
        result = self.cli("status", "--json")
        return json.loads(result.output) if result.exit_code == 0 else None

    def wait_until(self, predicate, timeout: float = 20.0) -> dict:
        """The first status for which ``predicate`` holds; fails with the agent's log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"agent exited: {self.log.read_text()[-3000:]}"
            s = self.status()
            if s is not None and predicate(s):
                return s
            time.sleep(0.2)
        raise AssertionError(f"agent never got there; log: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        embedded.terminate(self.proc)
