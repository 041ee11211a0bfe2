"""What every command shares: the config option, loading it, asking the agent, printing errors."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

from common.errors import ConfigError
from edge_agent.config import AgentSettings

DEFAULT_CONFIG = Path("/etc/signalcraft/agent.toml")
CREDENTIALS = Path("/etc/signalcraft/credentials")  # the files systemd/signalcraft-agent.service loads
ConfigOpt = typer.Option(
    None, "--config", "-c", help="Agent config (TOML); default /etc/signalcraft/agent.toml"
)
JsonOpt = typer.Option(False, "--json", help="Print JSON for scripts instead of text")


def config_path(path: Path | None) -> Path:
    return path if path is not None else DEFAULT_CONFIG


def load(path: Path | None) -> AgentSettings:
    """The validated config, or exit 2 with the message naming the setting."""
    from edge_agent import config

    _use_service_credentials()
    try:
        return config.load(config_path(path))
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _use_service_credentials() -> None:
    """A person running the CLI with sudo sees the settings the service sees: the service gets its
    secrets (``mqtt.url`` with the password) from ``LoadCredential=`` files, so read the same files."""
    if "CREDENTIALS_DIRECTORY" not in os.environ and os.access(CREDENTIALS, os.R_OK | os.X_OK):
        os.environ["CREDENTIALS_DIRECTORY"] = str(CREDENTIALS)


def die(message: str, as_json: bool, code: int = 1, **extra: Any) -> NoReturn:
    """A one-line diagnosis: JSON ``{"ok": false, "error": …}`` on stdout, or ``error: …`` on stderr."""
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": message, **extra}))
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def sockets(settings: AgentSettings) -> list[Path]:
    from edge_agent import control

    return control.candidates(settings.socket_path, explicit=bool(settings.agent.control_socket))


def ask(
    settings: AgentSettings, cmd: str, as_json: bool, timeout: float = 5.0, **args: Any
) -> dict[str, Any]:
    """The running agent's answer to ``cmd``, or exit 1 saying why it cannot be asked."""
    from edge_agent import control

    try:
        _, reply = control.ask(sockets(settings), cmd, timeout, **args)
    except control.ControlUnreachable as exc:
        die(exc.hint, as_json)
    if not reply.get("ok", False):
        die(str(reply.get("error", "the agent refused the request")), as_json)
    return reply


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def is_tty() -> bool:
    return sys.stderr.isatty()
