"""``signalcraft-agent run``: the long-running service, started without the CLI framework.

The agent lives for months on a 1 GB box, so what it imports stays resident: typer brings pydantic and
rich along (~15 MB), which only the technician's short-lived commands need. :func:`main` is the console
entry point; it handles ``run`` itself with argparse and hands every other command to the typer app.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from common.errors import ConfigError, ModelError

DEFAULT_CONFIG = Path("/etc/signalcraft/agent.toml")


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["run"] and not {"--help", "-h"} & set(args):
        sys.exit(run(args[1:]))
    from edge_agent.cli import app

    app()


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="signalcraft-agent run", description="Run the agent until SIGTERM.")
    parser.add_argument("--config", "-c", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    opts = parser.parse_args(argv)
    return serve(opts.config, opts.log_level)


def serve(config_path: Path, log_level: str = "info") -> int:
    """Load the settings, run the agent until SIGTERM/SIGINT; the exit code (2 for a bad setting)."""
    from common import logging as sclog
    from edge_agent import config, systemd
    from edge_agent.agent import Agent

    try:
        settings = config.load(config_path)
        sclog.setup(log_level)
        agent = Agent(settings)
    except (ConfigError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop())
    ready = threading.Event()
    threading.Thread(
        target=systemd.supervise, args=(ready, agent.stop_event, probes(agent)), daemon=True, name="systemd"
    ).start()
    agent.run(ready)
    systemd.notify("STOPPING=1")
    return 0


def probes(agent) -> list:
    """What must keep moving for the watchdog to be fed: the poll loop and the uplink (edge_agent.systemd)."""
    from edge_agent import systemd
    from edge_agent.uplink import HEARTBEAT_S

    poll = agent.settings.agent.poll_interval.total_seconds()
    half = systemd.watchdog_interval() or 0.0
    return [
        systemd.Probe("poll loop", lambda: agent.health.last_cycle, max(3 * poll, half)),
        systemd.Probe("uplink", agent.uplink.progress, 3 * HEARTBEAT_S),
    ]
