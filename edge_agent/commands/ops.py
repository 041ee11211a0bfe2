"""``signalcraft-agent buffer …`` and ``calibrate …``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from edge_agent.commands.common import ConfigOpt, JsonOpt, ask, die, load, print_json

buffer_app = typer.Typer(no_args_is_help=True, help="Inspect and export the on-disk buffer (outbox).")
calibrate_app = typer.Typer(no_args_is_help=True, help="Learn this machine's normal behaviour.")


@buffer_app.command("inspect")
def buffer_inspect(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """What waits to be sent: records by kind and boot, sizes, ages, and what was dropped."""
    from edge_agent.diagnose import outbox

    settings = load(config)
    try:
        info = outbox.inspect(settings.state_path)
    except (outbox.OutboxMissing, PermissionError) as exc:
        die(str(exc), as_json)
    if as_json:
        print_json(info)
        return
    typer.echo(
        f"{info['path']}: {info['records']} records, {info['bytes'] / 1024:.0f} KiB of payload, "
        f"{info['file_bytes'] / 1024:.0f} KiB on disk, {info['dropped']} dropped (buffer full)"
    )
    for kind, k in info["kinds"].items():
        typer.echo(f"  {kind:<10} {k['records']:>8} records  oldest {k['oldest_age_s']:.0f} s")
    for b in info["boots"]:
        typer.echo(f"  boot {b['boot'][:8]}: {b['records']} records (ids {b['first_id']}..{b['last_id']})")


@buffer_app.command("export")
def buffer_export(
    config: Path | None = ConfigOpt,
    output: Path | None = typer.Option(None, "--output", "-o", help="File to write (default: stdout)"),
    limit: int = typer.Option(0, min=0, help="At most this many records (0 = all)"),
) -> None:
    """Every buffered record as JSON lines, oldest first (e.g. to carry data home on a USB stick)."""
    from edge_agent.diagnose import outbox

    settings = load(config)
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    n = 0
    try:
        for record in outbox.export(settings.state_path, limit or None):
            out.write(json.dumps(record) + "\n")
            n += 1
    except (outbox.OutboxMissing, PermissionError) as exc:
        die(str(exc), False)
    finally:
        if output:
            out.close()
    if output:
        typer.echo(f"{n} records written to {output}", err=True)


def _print_calibration(r: dict, as_json: bool) -> None:
    if as_json:
        print_json(r)
        return
    if r["calibrated"]:
        typer.echo("calibrated: the agent scores against this machine's normal")
        return
    left = (r["needed"] - r["done"]) * r["poll_interval_s"]
    typer.echo(
        f"calibrating: {r['done']}/{r['needed']} readings, about {left / 60:.0f} min to go "
        "(keep the machine in normal operation meanwhile)"
    )


@calibrate_app.command("status")
def calibrate_status(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """How far the agent is in learning this machine's normal."""
    _print_calibration(ask(load(config), "calibration", as_json), as_json)


@calibrate_app.command("start")
def calibrate_start(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Start learning from now (discarding an unfinished calibration); refuses when already calibrated."""
    _print_calibration(ask(load(config), "recalibrate", as_json, only_if_uncalibrated=True), as_json)


@calibrate_app.command("restart")
def calibrate_restart(
    config: Path | None = ConfigOpt,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask"),
    as_json: bool = JsonOpt,
) -> None:
    """Forget this machine's normal and learn it again (after a repair or a refrigerant change)."""
    settings = load(config)
    if not yes and not typer.confirm("Discard the calibration and learn this machine's normal again?"):
        raise typer.Exit(1)
    _print_calibration(ask(settings, "recalibrate", as_json), as_json)
