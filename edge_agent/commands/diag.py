"""``signalcraft-agent diag …``: serial ports, bus scan, one read, live frame trace, broker, inference."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path

import typer

from common.errors import SourceError
from edge_agent.commands.common import ConfigOpt, JsonOpt, ask, config_path, die, load, print_json
from edge_agent.commands.render import print_checks

diag = typer.Typer(no_args_is_help=True, help="Diagnose sensors, serial lines and the uplink.")


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


class Parity(StrEnum):
    N = "N"
    E = "E"
    O = "O"  # noqa: E741 - the letter device manuals use


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
    parity: Parity = typer.Option(Parity.N, help="N, E or O"),
    stopbits: int = typer.Option(1, min=1, max=2, help="1 or 2"),
    timeout: float = typer.Option(0.5, help="Seconds to wait for the answer"),
    trace: bool = typer.Option(False, "--trace", help="Also print the frames (hex) and their timing"),
    as_json: bool = JsonOpt,
) -> None:
    """Read one value from a live Modbus RTU device, and say what to fix when it fails."""
    from edge_agent.diagnose import modbus as mb
    from edge_agent.sources.modbus import decode
    from edge_agent.sources.modbus.trace import Tracer

    if function not in (3, 4):
        raise typer.BadParameter("use 3 (holding) or 4 (input)", param_hint="--function")
    needed = decode.registers_for(type_.value)
    count = count or needed
    if count < needed:
        raise typer.BadParameter(f"{type_.value} needs {needed} registers", param_hint="--count")
    spec = mb.LineSpec(port, baud, parity.value, stopbits)
    tracer = Tracer(False)
    tracer.enable_for(3600)  # frames kept for --trace and for the JSON, never logged
    try:
        words = mb.read_registers(spec, slave, function, register, count, timeout, tracer)
    except SourceError as err:
        fix = mb.explain(err, spec, slave)
        frames = [mb.frame_dict(f) for f in tracer.frames]
        if as_json:
            out = {"ok": False, "error": type(err).__name__, "detail": str(err), "fix": fix, "frames": frames}
            typer.echo(json.dumps(out))
        else:
            _echo_frames(tracer, trace)
            typer.echo(f"error: {err}" + (f"\n  next: {fix}" if fix else ""), err=True)
        raise typer.Exit(1) from None
    value = decode.decode(words[:needed], type_.value, order.value)
    if as_json:
        out = {
            "ok": True,
            "value": value,
            "registers": words,
            "type": type_.value,
            "order": order.value,
            "slave": slave,
            "register": register,
            "function": function,
            "frames": [mb.frame_dict(f) for f in tracer.frames],
        }
        typer.echo(json.dumps(out))
        return
    _echo_frames(tracer, trace)
    typer.echo(f"{value}  (registers {' '.join(f'0x{w:04X}' for w in words)}, {type_.value} {order.value})")


def _echo_frames(tracer, trace: bool) -> None:
    if trace:
        for line in tracer.lines():
            typer.echo(line)


@diag.command("ports")
def diag_ports(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Serial ports with their USB ids, and whether the configured ones can be opened."""
    from edge_agent.diagnose import ports

    found = ports.list_serial()
    checks = []
    path = config_path(config)
    if config is not None or path.exists():
        settings = load(config)
        for port in dict.fromkeys(d.port for d in [*settings.modbus, *settings.waveform]):
            checks.append(ports.access(port))
    if as_json:
        print_json(
            {"ok": all(c.ok for c in checks), "ports": found, "configured": [c.to_dict() for c in checks]}
        )
    else:
        from rich.console import Console
        from rich.table import Table

        if found:
            t = Table("device", "USB id", "description", "by-id", "access")
            for p in found:
                t.add_row(p["device"], p["usb"], p["product"] or p["description"], p["by_id"], p["access"])
            Console().print(t)
        else:
            typer.echo("no serial ports found: is the USB-RS485 adapter plugged in? (`dmesg | tail`)")
        if checks:
            typer.echo("configured ports:")
            print_checks(checks)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@diag.command("scan")
def diag_scan(
    port: str = typer.Option(..., help="Serial device, e.g. /dev/ttyUSB0"),
    baud: list[int] = typer.Option([], help="Baud rate(s) to try; default: all, most common first"),
    slaves: str = typer.Option("1-247", help="Slave ids to probe, e.g. 1-10,17"),
    parity: Parity = typer.Option(Parity.N, help="N, E or O"),
    stopbits: int = typer.Option(1, min=1, max=2),
    function: int = typer.Option(3, help="Function of the probe read (3 or 4)"),
    register: int = typer.Option(0, min=0, max=65535, help="Register the probe reads"),
    timeout: float = typer.Option(0.1, help="Seconds to wait per slave id"),
    all_bauds: bool = typer.Option(False, "--all-bauds", help="Keep going after a baud rate answered"),
    as_json: bool = JsonOpt,
) -> None:
    """Find which slave ids answer on a line, and at which baud rate."""
    from edge_agent.diagnose import modbus as mb
    from edge_agent.sources.modbus.errors import PortError

    try:
        ids = mb.parse_ids(slaves)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--slaves") from None
    bauds = baud or list(mb.SCAN_BAUDS)
    kwargs = dict(
        parity=parity.value,
        stopbits=stopbits,
        function=function,
        register=register,
        timeout=timeout,
        every_baud=all_bauds,
    )
    try:
        if as_json:
            result = mb.scan(port, bauds, ids, **kwargs)  # type: ignore[arg-type]
        else:
            result = _scan_with_progress(port, bauds, ids, kwargs)
    except PortError as exc:
        die(f"{exc} — `signalcraft-agent diag ports` lists the ports and who may open them", as_json)
    found = [{"slave": f.slave, "baud": f.baud, "answer": f.answer} for f in result.found]
    hint = "" if found else _nothing_found(result, parity.value)
    if as_json:
        print_json(
            {
                "ok": bool(found),
                "port": port,
                "found": found,
                "garbled": result.garbled,
                "bauds_tried": result.bauds_tried,
                "probes": result.probes,
                "seconds": result.seconds,
                **({"error": hint} if hint else {}),
            }
        )
    else:
        for f in found:
            typer.echo(f"slave {f['slave']:3d} at {f['baud']} baud: {f['answer']}")
        typer.echo(f"{result.probes} probes in {result.seconds:.1f} s")
        if hint:
            typer.echo(f"error: {hint}", err=True)
    if not found:
        raise typer.Exit(1)


def _scan_with_progress(port: str, bauds: list[int], ids: list[int], kwargs: dict):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from edge_agent.diagnose import modbus as mb

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), transient=True
    ) as bar:
        task = bar.add_task(f"scanning {port}", total=len(bauds) * len(ids))

        def step(done: int, total: int, now: int) -> None:
            bar.update(task, completed=done, description=f"scanning {port} at {now} baud")

        return mb.scan(port, bauds, ids, progress=step, **kwargs)


def _nothing_found(result, parity: str) -> str:
    tried = ", ".join(map(str, result.bauds_tried))
    if result.garbled:
        bauds = ", ".join(f"{b}" for b in result.garbled)
        return (
            f"no slave answered cleanly; garbled answers at {bauds} baud: something is there at a "
            f"nearby speed or another parity (tried parity {parity}: try --parity E), or the line is "
            "noisy (termination, shield)"
        )
    return (
        f"no slave answered at {tried} baud (parity {parity}): check power to the device, wiring "
        "(A/B swapped?), 120 Ω termination at both ends, and the parity (--parity E is common)"
    )


@diag.command("mqtt")
def diag_mqtt(
    config: Path | None = ConfigOpt,
    timeout: float = typer.Option(5.0, help="Seconds per step"),
    as_json: bool = JsonOpt,
) -> None:
    """Reach the broker as the agent does: address, TCP, TLS, login, ACL publish test, explained."""
    from edge_agent.diagnose import mqtt

    settings = load(config)
    checks = mqtt.probe(mqtt.Target.from_settings(settings), timeout)
    ok = all(c.ok for c in checks)
    if as_json:
        print_json({"ok": ok, "broker": repr(settings.broker), "checks": [c.to_dict() for c in checks]})
    else:
        print_checks(checks)
    if not ok:
        raise typer.Exit(1)


@diag.command("trace")
def diag_trace(
    config: Path | None = ConfigOpt,
    port: str = typer.Option("", help="Only this line (default: every Modbus line of the agent)"),
    duration: float = typer.Option(0.0, help="Stop after this many seconds (default: until Ctrl-C)"),
    as_json: bool = JsonOpt,
) -> None:
    """Follow the running agent's Modbus frames live (hex and timing), without stopping it."""
    settings = load(config)
    cursors: dict[str, int] = {}
    end = time.monotonic() + duration if duration > 0 else float("inf")
    try:
        while time.monotonic() < end:
            reply = ask(
                settings, "trace", as_json, since=cursors, seconds=10.0, **({"port": port} if port else {})
            )
            for name, line in reply["lines"].items():
                cursors[name] = line["next"]  # the first answer also brings the frames still kept
                for f in line["frames"]:
                    typer.echo(
                        json.dumps({"port": name, **{k: v for k, v in f.items() if k != "line"}})
                        if as_json
                        else f["line"]
                    )
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))
    except KeyboardInterrupt:
        pass


@diag.command("infer")
def diag_infer(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Score the current window with the agent's model: score, state, why, and the top features."""
    settings = load(config)
    r = ask(settings, "infer", as_json)
    if as_json:
        print_json(r)
        return
    cal = r["calibration"]
    score = "-" if r["score"] is None else f"{r['score']:.3f}"
    typer.echo(f"state {r['state']}  score {score}  model {r['model']}")
    typer.echo(f"why: {r['reason']}")
    if not cal["calibrated"]:
        typer.echo(f"calibrating: {cal['done']}/{cal['needed']} readings (scores come after calibration)")
    for c in r["contributors"]:
        typer.echo(f"  {c['feature']:<32} value {c['value']:>10.3f}  z {c['z']:>6.2f}")
    if r["missing"]:
        typer.echo(f"missing: {', '.join(r['missing'])}")
