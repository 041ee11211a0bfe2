"""``signalcraft-agent``: run the agent, and the technician's tools that say what to fix.

The long-running command (``run``) and the everyday ones (``status``, ``config check``) live here; the
technician's groups live in :mod:`edge_agent.commands` (``diag``, ``buffer``, ``calibrate``,
``doctor``) and are mounted below. Every command takes ``--json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from common.errors import ConfigError
from edge_agent.commands.common import DEFAULT_CONFIG, ConfigOpt, JsonOpt, ask, config_path, load, print_json
from edge_agent.commands.diag import diag
from edge_agent.commands.doctor import doctor
from edge_agent.commands.ops import buffer_app, calibrate_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="SignalCraft edge agent.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the agent's configuration.")
app.add_typer(diag, name="diag")
app.add_typer(config_app, name="config")
app.add_typer(buffer_app, name="buffer")
app.add_typer(calibrate_app, name="calibrate")
app.command("doctor")(doctor)

__all__ = ["DEFAULT_CONFIG", "app", "main"]
_load = load  # kept for commands that predate edge_agent.commands


@app.command()
def run(
    config: Path | None = ConfigOpt, log_level: str = typer.Option("info", help="debug|info|warning")
) -> None:
    """Run the agent until SIGTERM or Ctrl-C."""
    from edge_agent import service

    # The installed `signalcraft-agent run` goes straight to edge_agent.service (no typer in memory);
    # this command is the same thing for `--help` and for callers of the typer app.
    raise typer.Exit(service.serve(config_path(config), log_level))


@app.command()
def status(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """What the running agent sees: sources, last readings, health, calibration, delivery counters."""
    settings = load(config)
    reply = ask(settings, "status", as_json)
    units = _units(settings)
    if as_json:
        print_json({**reply, "units": units})
        return
    from edge_agent.commands.render import print_status

    print_status(reply, units)


def _units(settings) -> dict[str, str]:
    """Point name -> unit, from the register maps the config names (the agent's status has values only)."""
    from edge_agent.agent import build_sources

    try:
        return {p.name: p.unit for s in build_sources(settings) for p in s.profile.points if p.unit}
    except ConfigError:
        return {}


@config_app.command("check")
def config_check(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Validate the config and the register maps it names, without touching any device."""
    from edge_agent.agent import build_sources

    settings = load(config)
    try:
        sources = build_sources(settings)
    except ConfigError as exc:
        if as_json:
            print_json({"ok": False, "setting": exc.setting, "error": str(exc)})
        else:
            typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    points = sum(len(s.profile.points) for s in sources)
    requests = sum(len(s.requests) for s in sources)
    if as_json:
        print_json(
            {
                "ok": True,
                "site": settings.agent.site,
                "device": settings.agent.device,
                "sources": len(sources),
                "points": points,
                "requests": requests,
                "broker": repr(settings.broker),
                "control_socket": str(settings.socket_path),
            }
        )
        return
    typer.echo(
        f"ok: {settings.agent.site}/{settings.agent.device}, {len(sources)} Modbus source(s), "
        f"{points} points in {requests} request(s) per cycle, broker {settings.broker!r}"
    )


@app.command()
def analyze(
    recording: Path = typer.Argument(..., exists=True, dir_okay=False, help="PCM WAV recording."),
    baseline: Path | None = typer.Option(
        None, "--baseline", exists=True, dir_okay=False, help="Healthy recording to learn normal from."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Score a recorded waveform window by window with the agent's own feature + model path."""
    from edge_agent.analytics.analyze import run_cli

    raise typer.Exit(run_cli(recording, baseline, as_json))


def main() -> None:  # pragma: no cover - console entry for `python -m edge_agent.cli`
    from edge_agent.service import main as entry

    entry()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
