"""``signalcraft simulate``: simulated compressors on pseudo-terminals, until Ctrl-C.

The umbrella CLI registers :func:`simulate` with ``app.command("simulate")(simulate)``.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from simulator.agent_config import agent_config_toml, config_paths
from simulator.faults import KINDS, FaultSpec
from simulator.modbus_slave import Fleet, fleet_kind, start_fleet


def parse_fault_option(text: str, devices: int) -> tuple[int, FaultSpec]:
    """``KIND[@START[+RAMP]]:DEVICE_INDEX`` → (index, spec)."""
    spec, sep, index = text.rpartition(":")
    if not sep or not index.strip().isdigit():
        raise ValueError(
            f"invalid --fault {text!r}: expected KIND:DEVICE_INDEX or KIND@START+RAMP:DEVICE_INDEX "
            f"(kinds: {', '.join(KINDS)})"
        )
    i = int(index)
    if not 0 <= i < devices:
        raise ValueError(f"invalid --fault {text!r}: device index {i} is not in 0..{devices - 1}")
    return i, FaultSpec.parse(spec)


def simulate(
    devices: int = typer.Option(4, "--devices", min=1, max=247, help="Number of simulated compressors."),
    fault: list[str] = typer.Option(
        [],
        "--fault",
        help="Inject a developing fault: KIND:DEVICE_INDEX, or KIND@START+RAMP:DEVICE_INDEX with times in "
        f"simulated seconds. Repeatable. Kinds: {', '.join(KINDS)}.",
    ),
    speed: float = typer.Option(
        1.0, "--speed", help="Simulated seconds per wall second (60: a minute a second)."
    ),
    write_agent_config: Path | None = typer.Option(
        None,
        "--write-agent-config",
        metavar="FILE",
        help="Write one agent config per unit, FILE's stem + '-<index>' (agent.toml → agent-0.toml, …).",
    ),
    site: str = typer.Option("sim-site", "--site", help="Site id in the written agent configs."),
    mqtt_url: str = typer.Option("mqtt://127.0.0.1:1883", "--mqtt-url", help="Broker in the agent configs."),
    seed: int = typer.Option(0, "--seed", help="Unit i is built from seed + i: same seed, same fleet."),
    duration: float | None = typer.Option(None, "--duration", help="Stop after this many wall seconds."),
) -> None:
    """Run simulated compressors as Modbus RTU slaves on pseudo-terminals."""
    if not speed > 0:
        raise typer.BadParameter(f"must be > 0, got {speed}", param_hint="--speed")
    faults: dict[int, list[FaultSpec]] = {}
    for text in fault:
        try:
            i, spec = parse_fault_option(text, devices)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--fault") from None
        faults.setdefault(i, []).append(spec)

    console = Console()
    with start_fleet(devices, faults, speed, seed) as fleet:
        _print_table(console, fleet, speed)
        if write_agent_config is not None:
            for path in _write_configs(fleet, write_agent_config, site, mqtt_url):
                console.print(f"agent config: {path}")
        console.print("Serving; Ctrl-C to stop." if duration is None else f"Serving for {duration:g} s.")
        _wait(duration)


def _print_table(console: Console, fleet: Fleet, speed: float) -> None:
    table = Table(title=f"Simulated compressors (speed ×{speed:g})")
    for column in ("device", "kind", "port", "slave id", "faults"):
        table.add_column(column)
    for i, unit in enumerate(fleet.units):
        faults = ", ".join(str(f) for f in unit.compressor.faults) or "-"
        table.add_row(f"sim-{i}", fleet_kind(i), unit.port, str(unit.slave_id), faults)
    console.print(table)


def _write_configs(fleet: Fleet, file: Path, site: str, mqtt_url: str) -> list[Path]:
    paths = config_paths(file, len(fleet.units))
    base = file.resolve().parent
    base.mkdir(parents=True, exist_ok=True)
    for i, (unit, path) in enumerate(zip(fleet.units, paths, strict=True)):
        device = f"sim-{i}"
        text = agent_config_toml(unit, site, device, base / device, mqtt_url)
        path.write_text(text, encoding="utf-8")
    return paths


def _wait(duration: float | None) -> None:
    done = threading.Event()
    # SIGTERM (systemd, docker stop) ends the run like Ctrl-C does: units stop, ptys close. Signal
    # handlers can only be installed from the main thread; elsewhere the caller owns the signals.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set()) if main else None
    try:
        done.wait(duration)
    except KeyboardInterrupt:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
