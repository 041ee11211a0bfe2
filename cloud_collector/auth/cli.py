"""``signalcraft-collector users …`` and ``signalcraft-collector apikeys …``: access bootstrap.

    signalcraft-collector users add EMAIL --role admin|technician|viewer [--tenant NAME] --password-stdin
    signalcraft-collector apikeys create --role ROLE [--tenant NAME] [--name TEXT]   # prints the key once

The password is read from standard input (never an argument: those show up in ``ps`` and shell history).
A tenant named with ``--tenant`` is created when it does not exist yet.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
import typer

from cloud_collector import migrate as migrations
from cloud_collector.auth import store
from cloud_collector.auth.principal import Role
from cloud_collector.config import load_settings
from cloud_collector.errors import CollectorError, storage_errors
from common.errors import ConfigError

T = TypeVar("T")

users_app = typer.Typer(help="Users of the API and dashboard.", no_args_is_help=True)
apikeys_app = typer.Typer(
    help="API keys for machines (sent as 'Authorization: Bearer KEY').", no_args_is_help=True
)

ConfigOption = typer.Option(None, "--config", "-c", help="TOML settings file (SIGNALCRAFT_* override it)")
TenantOption = typer.Option(None, "--tenant", help="the customer this account belongs to (default: platform)")


def _role(text: str) -> Role:
    try:
        return Role.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _with_db(config: Path | None, job: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    async def go() -> T:
        with storage_errors("connecting to the database"):
            conn = await asyncpg.connect(settings.database.url)
        try:
            await migrations.require_head(conn)
            async with conn.transaction():
                return await job(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(go())
    except CollectorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@users_app.command("add")
def add_user(
    email: str = typer.Argument(..., help="the login"),
    role: str = typer.Option(..., "--role", help="admin, technician or viewer"),
    tenant: str | None = TenantOption,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
    config: Path | None = ConfigOption,
) -> None:
    """Add a user who logs in with a password."""
    parsed = _role(role)
    if not password_stdin:
        raise typer.BadParameter(
            "pass --password-stdin and the password on standard input", param_hint="--password-stdin"
        )
    password = sys.stdin.readline().rstrip("\r\n")

    async def job(conn: asyncpg.Connection) -> store.UserView:
        return await store.add_user(
            conn, email, password, parsed, await store.tenant_id(conn, tenant, create=True)
        )

    user = _with_db(config, job)
    typer.echo(f"added {user.email} ({user.role}{', tenant ' + tenant if tenant else ''})")


@users_app.command("list")
def list_users(config: Path | None = ConfigOption) -> None:
    """The users (never their passwords)."""

    async def job(conn: asyncpg.Connection) -> list[store.UserView]:
        return await store.list_users(conn, None)

    for u in _with_db(config, job):
        state = "disabled" if u.disabled_at else "active"
        typer.echo(f"{u.id}\t{u.email}\t{u.role}\ttenant={u.tenant_id or '-'}\t{state}")


@apikeys_app.command("create")
def create_key(
    role: str = typer.Option(..., "--role", help="admin, technician or viewer"),
    tenant: str | None = TenantOption,
    name: str = typer.Option("", "--name", help="what the key is for"),
    config: Path | None = ConfigOption,
) -> None:
    """Create an API key and print it. It is shown this once; only its hash is stored."""
    parsed = _role(role)

    async def job(conn: asyncpg.Connection) -> str:
        tenant_id = await store.tenant_id(conn, tenant, create=True)
        key, _ = await store.create_key(conn, parsed, tenant_id, name, "cli")
        return key

    typer.echo(_with_db(config, job))
