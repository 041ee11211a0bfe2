"""``signalcraft-agent doctor``: every check in one report; exits 1 when any failed."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from pathlib import Path

import typer

from common.errors import ConfigError
from edge_agent.commands.common import ConfigOpt, JsonOpt, config_path, print_json, sockets
from edge_agent.commands.render import print_checks


def doctor(
    config: Path | None = ConfigOpt,
    timeout: float = typer.Option(5.0, help="Seconds per network step"),
    as_json: bool = JsonOpt,
) -> None:
    """Check everything (config, agent, serial lines, broker, disk, clock) and say what to fix."""
    from edge_agent import __version__
    from edge_agent import config as agent_config
    from edge_agent.diagnose import doctor as checks_

    path = config_path(config)
    try:
        settings = agent_config.load(path)
    except ConfigError as exc:
        checks = [checks_.config_failure(exc)]
    else:
        checks = checks_.run(settings, sockets(settings), timeout)
    ok = all(c.ok for c in checks)
    if as_json:
        print_json(
            {
                "ok": ok,
                "host": platform.node(),
                "agent_version": __version__,
                "config": str(path),
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "checks": [c.to_dict() for c in checks],
                "failed": [c.name for c in checks if not c.ok],
            }
        )
    else:
        typer.echo(f"signalcraft-agent {__version__} doctor on {platform.node()}, config {path}")
        print_checks(checks)
        failed = [c for c in checks if not c.ok]
        typer.echo(f"{len(failed)} problem(s)" if failed else "all checks passed")
    if not ok:
        raise typer.Exit(1)
