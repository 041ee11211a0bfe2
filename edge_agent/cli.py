"""``signalcraft-agent``: run the agent, and the technician's tools that say what to fix."""

from __future__ import annotations

import json
import signal
import sys
import threading
from enum import StrEnum
from pathlib import Path

import typer

from common.errors import ConfigError, SourceError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="SignalCraft edge agent.")
diag = typer.Typer(no_args_is_help=True, help="Diagnose sensors and the uplink.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the agent's configuration.")
app.add_typer(diag, name="diag")
app.add_typer(config_app, name="config")

DEFAULT_CONFIG = Path("/etc/signalcraft/agent.toml")
ConfigOpt = typer.Option(
    None, "--config", "-c", help="Agent config (TOML); default /etc/signalcraft/agent.toml"
)


def _config_path(path: Path | None) -> Path:
    return path if path is not None else DEFAULT_CONFIG


def _load(path: Path | None):
    from edge_agent import config

    try:
        return config.load(_config_path(path))
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def run(
    config: Path | None = ConfigOpt, log_level: str = typer.Option("info", help="debug|info|warning")
) -> None:
    """Run the agent until SIGTERM or Ctrl-C."""
    from common import logging as sclog
    from common.errors import ModelError
    from edge_agent import systemd
    from edge_agent.agent import Agent

    settings = _load(config)
    sclog.setup(log_level)
    try:
        agent = Agent(settings)
    except (ConfigError, ModelError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop())
    ready = threading.Event()
    threading.Thread(target=_announce, args=(agent, ready), daemon=True, name="systemd").start()
    agent.run(ready)
    systemd.notify("STOPPING=1")


def _announce(agent, ready: threading.Event) -> None:
    """READY=1 after the first good cycle; feed the watchdog only while the poll loop makes progress."""
    import time

    from edge_agent import systemd

    ready.wait()
    systemd.notify("READY=1")
    interval = systemd.watchdog_interval()
    if interval is None:
        return
    poll = agent.settings.agent.poll_interval.total_seconds()
    while not agent.stop_event.wait(interval):
        if time.monotonic() - agent.health.last_cycle < max(3 * poll, interval):
            systemd.notify("WATCHDOG=1")


@app.command()
def status(config: Path | None = ConfigOpt, as_json: bool = typer.Option(False, "--json")) -> None:
    """What the running agent sees: sources, last readings, health, calibration, delivery counters."""
    from edge_agent import control

    settings = _load(config)
    try:
        reply = control.request(settings.socket_path, "status")
    except OSError as exc:
        typer.echo(
            f"error: the agent does not answer on {settings.socket_path} ({exc.strerror or exc}): "
            "is it running? `systemctl status signalcraft-agent`",
            err=True,
        )
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(reply, indent=2))
        return
    _print_status(reply)


def _print_status(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    last = s["last"]
    con.print(f"[bold]{s['site']}/{s['device']}[/]  boot {s['boot'][:8]}  agent {s['version']}")
    con.print(f"health: [bold]{last['state']}[/]  score {last['score']}  {last['reason']}")
    cal = s["calibration"]
    con.print(f"calibration: {cal['done']}/{cal['needed']}")
    t = Table("source", "port", "slave", "state")
    for name, src in s["sources"].items():
        t.add_row(name, src["port"], str(src["slave"]), src["detail"])
    con.print(t)
    d = s["delivery"]
    con.print(
        f"delivery: produced {d['produced']}, acked {d['acked']}, buffered {d['buffered']}, dropped "
        f"{d['dropped']}, connected {d['connected']}, oldest unsent {d['oldest_unsent_s']} s"
    )


class RegType(StrEnum):
    int16 = "int16"
    uint16 = "uint16"
    int32 = "int32"
    uint32 = "uint32"
    float32 = "float32"
    float64 = "float64"


class Order(StrEnum):
    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"


@diag.command("read")
def diag_read(
    port: str = typer.Option(..., help="Serial device, e.g. /dev/ttyUSB0"),
    baud: int = typer.Option(19200, help="Baud rate"),
    slave: int = typer.Option(..., min=1, max=247, help="Slave id"),
    register: int = typer.Option(..., min=0, max=65535, help="0-based register address"),
    count: int = typer.Option(0, min=0, max=125, help="Registers to read (default: what --type needs)"),
    function: int = typer.Option(3, help="3 = holding registers, 4 = input registers"),
    type_: RegType = typer.Option(RegType.uint16, "--type", help="How to decode the registers"),
    order: Order = typer.Option(Order.ABCD, help="Byte/word order of multi-register values"),
    parity: str = typer.Option("N", help="N, E or O"),
    timeout: float = typer.Option(0.5, help="Seconds to wait for the answer"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Read one value from a live Modbus RTU device, and say what to fix when it fails."""
    import minimalmodbus
    import serial

    from edge_agent.sources.modbus import decode
    from edge_agent.sources.modbus.errors import translate

    if function not in (3, 4):
        raise typer.BadParameter("use 3 (holding) or 4 (input)", param_hint="--function")
    needed = decode.registers_for(type_.value)
    count = count or needed
    if count < needed:
        raise typer.BadParameter(f"{type_.value} needs {needed} registers", param_hint="--count")
    where = f"slave {slave} on {port} at {baud} baud"
    try:
        inst = minimalmodbus.Instrument(port, slave)
        inst.serial.baudrate, inst.serial.parity, inst.serial.timeout = baud, parity, timeout
        words = inst.read_registers(register, count, function)
        inst.serial.close()
    except (minimalmodbus.ModbusException, serial.SerialException, OSError) as exc:
        err: SourceError = translate(exc, where)
        if as_json:
            typer.echo(json.dumps({"ok": False, "error": type(err).__name__, "detail": str(err)}))
        else:
            typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    value = decode.decode(words[:needed], type_.value, order.value)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": True,
                    "value": value,
                    "registers": words,
                    "type": type_.value,
                    "order": order.value,
                    "slave": slave,
                    "register": register,
                }
            )
        )
    else:
        typer.echo(
            f"{value}  (registers {' '.join(f'0x{w:04X}' for w in words)}, {type_.value} {order.value})"
        )


@config_app.command("check")
def config_check(config: Path | None = ConfigOpt) -> None:
    """Validate the config and the register maps it names, without touching any device."""
    from edge_agent.agent import build_sources

    settings = _load(config)
    try:
        sources = build_sources(settings)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    points = sum(len(s.profile.points) for s in sources)
    requests = sum(len(s.requests) for s in sources)
    typer.echo(
        f"ok: {settings.agent.site}/{settings.agent.device}, {len(sources)} Modbus source(s), "
        f"{points} points in {requests} request(s) per cycle, broker {settings.broker!r}"
    )


def main() -> None:  # pragma: no cover - console entry for `python -m edge_agent.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
