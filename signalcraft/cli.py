"""``signalcraft``: the umbrella command — ``signalcraft demo`` and ``signalcraft simulate``."""

from __future__ import annotations

from pathlib import Path

import typer

from simulator.cli import simulate

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="SignalCraft: compressor health monitoring."
)
app.command("simulate")(simulate)


@app.command()
def demo(
    duration: float | None = typer.Option(
        None, min=10, help="Stop after this many seconds and print a summary (default: run until Ctrl-C)."
    ),
    devices: int = typer.Option(6, min=2, max=20, help="Simulated compressors (some develop faults)."),
    port: int = typer.Option(8080, min=0, max=65535, help="Dashboard/API port (0 = any free port)."),
    workdir: Path | None = typer.Option(
        None, help="Keep the demo's files here (default: a temporary folder)."
    ),
) -> None:
    """The whole system on embedded defaults: broker, PostgreSQL, collector + dashboard, agents, simulator."""
    from signalcraft.demo import Demo, DemoError

    try:
        with Demo(devices=devices, api_port=port, workdir=workdir) as d:
            d.run(duration)
            if duration is not None:
                ok = d.print_summary()
                if not ok:
                    raise typer.Exit(1)
    except DemoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
