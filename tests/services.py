"""Real services for the tests: the machine's PostgreSQL and Redis when they run, embedded ones otherwise.

The MQTT broker is always our own, rendered from ``deploy/mosquitto/`` (the system broker's default
config drops QoS1 messages for slow subscribers and leaves Nagle on).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from signalcraft import embedded

MACHINE_PG = os.environ.get("SIGNALCRAFT_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
MACHINE_REDIS = os.environ.get("SIGNALCRAFT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def admin_pg_url(workdir: Path) -> tuple[str, object]:
    """A superuser URL: the machine's PostgreSQL if it answers, else an embedded one (pgserver)."""
    host = urlsplit(MACHINE_PG)
    if embedded.port_open(host.hostname or "127.0.0.1", host.port or 5432):
        return MACHINE_PG, None
    pg = embedded.start_postgres(workdir / "pgdata")
    return pg.url, pg


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def create_database(admin_url: str) -> tuple[str, str]:
    """A fresh, uniquely named database; returns (its URL, its name)."""
    import asyncio

    import asyncpg

    name = f"sc_test_{uuid.uuid4().hex[:10]}"

    async def go() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())
    return with_database(admin_url, name), name


def drop_database(admin_url: str, name: str) -> None:
    import asyncio

    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(go())


def redis_url(workdir: Path) -> tuple[str | None, subprocess.Popen | None, str]:
    """The machine's Redis, or a redis-server we start; (None, None, why) when neither exists."""
    host = urlsplit(MACHINE_REDIS)
    if embedded.port_open(host.hostname or "127.0.0.1", host.port or 6379):
        return MACHINE_REDIS, None, ""
    binary = shutil.which("redis-server")
    if not binary:
        return None, None, "no Redis on 127.0.0.1:6379 and no redis-server binary to start one"
    port = embedded.free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    embedded.wait_for_port("127.0.0.1", port, proc=proc)
    return f"redis://127.0.0.1:{port}/0", proc, ""


def with_user(url: str, user: str) -> str:
    """The same server and database as ``url``, as another role (no password: the test server trusts)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
