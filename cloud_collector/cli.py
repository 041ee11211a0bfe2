"""``signalcraft-collector``: serve, migrate, maintain, stats, doctor.

Exit codes: 0 success, 1 the collector could not do its job (database or broker trouble, schema behind),
2 a setting is missing or invalid (the message names it).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec
import typer
from rich.console import Console
from rich.table import Table

from cloud_collector import doctor as doctor_checks
from cloud_collector import migrate as migrations
from cloud_collector import partitions, queries
from cloud_collector import stats as ingest_stats
from cloud_collector.auth.cli import apikeys_app, users_app
from cloud_collector.config import CollectorSettings, load_settings, validate
from cloud_collector.errors import CollectorError, storage_errors
from cloud_collector.service import run_collector
from cloud_collector.views import Stats
from common import logging as sc_logging
from common import sdnotify
from common import settings as sc_settings
from common.errors import ConfigError

app = typer.Typer(help="SignalCraft cloud collector: MQTT ingest, alerts, HTTP API.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(apikeys_app, name="apikeys")
log = logging.getLogger("cloud_collector")
T = TypeVar("T")

ConfigOption = typer.Option(
    None, "--config", "-c", help="TOML settings file (SIGNALCRAFT_* variables override it)"
)


def _settings(path: Path | None) -> CollectorSettings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; turn the collector's own errors into one line on stderr and exit code 1."""
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except CollectorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def serve(
    config: Path | None = ConfigOption,
    migrate: bool = typer.Option(False, "--migrate", help="apply pending migrations first"),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Ingest from MQTT, raise alerts, serve the API and dashboard until SIGTERM or Ctrl-C."""
    settings = _settings(config)
    sc_logging.setup(log_level)
    _run(_serve(settings, migrate))


async def _serve(settings: CollectorSettings, migrate: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready = asyncio.Event()  # READY=1 to systemd (Type=notify) once subscribed and listening
    notifier = asyncio.create_task(sdnotify.ready_when(ready))
    try:
        await run_collector(settings, migrate=migrate, ready=ready, stop=stop)
    finally:
        notifier.cancel()
    log.info("collector stopped")


@app.command()
def migrate(config: Path | None = ConfigOption) -> None:
    """Bring the database schema to head (safe to run from several hosts at once)."""
    settings = _settings(config)

    async def go() -> None:
        db = settings.database
        ran = await migrations.migrate(db.owner_url or db.url, db.runtime_role)
        for mig in ran:
            typer.echo(f"applied {mig.label}")
        typer.echo(f"database at head ({migrations.available()[-1].label})")

    _run(go())


@app.command()
def stats(
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    fast: bool = typer.Option(False, "--fast", help="from ingest's per-boot counters (device_boots) "
                              "instead of a scan of readings: cheap at any fleet size, but rows written "
                              "by anything other than ingest are not counted"),
) -> None:
    """Readings stored, first/last time, sequence gaps, duplicates, dead letters: per device and fleet."""
    settings = _settings(config)

    async def go() -> Stats:
        with storage_errors("connecting to the database"):
            conn = await asyncpg.connect(settings.database.url)
        try:
            await migrations.require_head(conn)
            return await (ingest_stats.fleet_stats(conn) if fast else queries.stats(conn))
        finally:
            await conn.close()

    result = _run(go())
    if as_json:
        typer.echo(msgspec.json.encode(result).decode())
    else:
        _print_stats(result)


@app.command()
def maintain(config: Path | None = ConfigOption) -> None:
    """Partition upkeep as the schema owner: create months ahead, drop those past storage.retention."""
    settings = _settings(config)

    async def go() -> None:
        db = settings.database
        with storage_errors("connecting to the database"):
            conn = await asyncpg.connect(db.owner_url or db.url)
        try:
            await migrations.require_head(conn)
            for name in await partitions.ensure(conn):
                typer.echo(f"created {name}")
            if settings.storage.retention is not None:
                for name in await partitions.drop_expired(conn, settings.storage.retention):
                    typer.echo(f"dropped {name}")
        finally:
            await conn.close()

    _run(go())


@app.command()
def doctor(
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    timeout: float = typer.Option(doctor_checks.TIMEOUT, "--timeout", help="seconds per network check"),
) -> None:
    """Check database, privileges, migrations, broker, ACL and Redis; name the cause and the fix."""
    try:
        loaded = sc_settings.load_with_sources(CollectorSettings, config)
        validate(loaded.settings, loaded.sources)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    ctx = doctor_checks.Context(loaded.settings, loaded.sources, timeout)
    report = _run(doctor_checks.run(ctx))
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(report: doctor_checks.Report) -> None:
    console = Console()
    for check in report.checks:
        mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {check.name}: {check.detail}", highlight=False)
        if not check.ok:
            console.print(f"      cause: {check.cause}", highlight=False)
            console.print(f"      fix:   {check.fix}", highlight=False)
    table = Table(title="effective settings and where each came from")
    table.add_column("setting")
    table.add_column("source")
    for name, source in report.sources.items():
        table.add_row(name, source)
    console.print(table)


def _print_stats(s: Stats) -> None:
    table = Table(title="SignalCraft collector stats")
    for column in ("site", "device", "readings", "first", "last", "gaps", "duplicates", "dead letters"):
        table.add_column(column, justify="right" if column not in ("site", "device") else "left")
    for d in s.devices:
        table.add_row(d.site, d.device, str(d.readings), _ts(d.first_ts), _ts(d.last_ts), str(d.gaps),
                      str(d.duplicates), str(d.dead_letters))
    f = s.fleet
    table.add_row("", f"fleet ({f.devices})", str(f.readings), _ts(f.first_ts), _ts(f.last_ts), str(f.gaps),
                  str(f.duplicates), str(f.dead_letters), style="bold")
    Console().print(table)


def _ts(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"
