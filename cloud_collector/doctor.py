"""``signalcraft-collector doctor``: is everything the collector needs there, and if not, why and what to do.

Each check returns a :class:`Check` with what was seen and, when it failed, the likely cause and the fix,
in words an operator can act on ("password authentication failed for user "collector" - the password
comes from env SIGNALCRAFT_DATABASE_URL"). Failures are mapped here from exception types, never by
parsing log lines. The checks, in order: settings (with the source of every effective value), database
(reachability, authentication, privileges of the runtime role and of the owner, migration level),
broker (reachability, authentication, the ACL for our shared subscription) and Redis when configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import msgspec
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from cloud_collector import migrate
from cloud_collector.config import CollectorSettings
from cloud_collector.doctor_mqtt import check_broker

TIMEOUT = 5.0


class Check(msgspec.Struct, kw_only=True):
    name: str
    ok: bool
    detail: str
    cause: str = ""
    fix: str = ""


class Report(msgspec.Struct, kw_only=True):
    ok: bool
    checks: list[Check]
    sources: dict[str, str]  # effective setting -> where its value came from


@dataclass
class Context:
    settings: CollectorSettings
    sources: dict[str, str] = field(default_factory=dict)
    timeout: float = TIMEOUT

    def source(self, setting: str) -> str:
        return self.sources.get(setting, "default")


async def run(ctx: Context) -> Report:
    checks = [Check(name="settings", ok=True, detail=f"{len(ctx.sources)} settings loaded; sources below")]
    db = ctx.settings.database
    checks += await check_database(ctx, "database", db.url, "database.url", runtime=True)
    if db.owner_url:
        checks += await check_database(ctx, "database (owner)", db.owner_url, "database.owner_url",
                                       runtime=False)
    checks.append(await check_broker(ctx.settings.mqtt, ctx.source("mqtt.url"), ctx.timeout))
    if ctx.settings.redis.url:
        checks.append(await check_redis(ctx))
    return Report(ok=all(c.ok for c in checks), checks=checks, sources=dict(sorted(ctx.sources.items())))


def _where(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    host = parts.hostname or query.get("host", "localhost")
    return host, str(parts.port or 5432), parts.username or "(the operating-system user)"


async def check_database(ctx: Context, name: str, url: str, setting: str, *, runtime: bool) -> list[Check]:
    host, port, user = _where(url)
    source = ctx.source(setting)
    try:
        conn = await asyncpg.connect(url, timeout=ctx.timeout)
    except TimeoutError:
        return [Check(name=name, ok=False, detail=f"no answer from {host}:{port} within {ctx.timeout:g} s",
                      cause="a firewall or security-group rule drops the traffic, or the host is down",
                      fix=f"allow TCP {port} from this machine to {host} (firewall, cloud security group), "
                          f"check the address in {setting} ({source})")]
    except ConnectionRefusedError:
        return [Check(name=name, ok=False, detail=f"connection to {host}:{port} refused",
                      cause="PostgreSQL is not running there, or listens on another address or port",
                      fix=f"start PostgreSQL, or set listen_addresses/port in postgresql.conf, or correct "
                          f"{setting} ({source})")]
    except OSError as exc:
        return [Check(name=name, ok=False, detail=f"cannot reach {host}:{port}: {exc}",
                      cause="the host name does not resolve or the network is unreachable",
                      fix=f"check the host in {setting} ({source}) and this machine's DNS and routes")]
    except asyncpg.InvalidPasswordError as exc:
        return [Check(name=name, ok=False, detail=str(exc),
                      cause=f"wrong password for user {user!r}",
                      fix=f"the user and password come from {setting} ({source}); set the right password "
                          f"there, or ALTER ROLE {user} PASSWORD '…' on the server")]
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        if "does not exist" in str(exc):
            return [Check(name=name, ok=False, detail=str(exc),
                          cause=f"there is no role {user!r} on the server",
                          fix=f"CREATE ROLE {user} LOGIN PASSWORD '…' (deploy/postgres/roles.sql), "
                              f"or correct the user in {setting} ({source})")]
        return [Check(name=name, ok=False, detail=str(exc),
                      cause=f"pg_hba.conf has no entry letting user {user!r} connect from this host",
                      fix=f"add a host line for user {user!r} to pg_hba.conf and reload PostgreSQL, or "
                          f"use another user in {setting} ({source})")]
    except asyncpg.InvalidCatalogNameError as exc:
        return [Check(name=name, ok=False, detail=str(exc), cause="the database does not exist",
                      fix=f"CREATE DATABASE … OWNER <owner> (deploy/postgres/roles.sql), or correct "
                          f"{setting} ({source})")]
    except asyncpg.PostgresError as exc:
        return [Check(name=name, ok=False, detail=f"[{exc.sqlstate}] {exc}", cause="the server refused us",
                      fix=f"read the server log; the URL comes from {setting} ({source})")]
    try:
        checks = [Check(name=name, ok=True, detail=f"connected to {host}:{port} as {user}")]
        checks.append(await (_runtime_privileges(conn, name) if runtime else _owner_privileges(conn, name)))
        if runtime:
            checks.append(await _migration_level(conn))
        return checks
    finally:
        await conn.close()


async def _owner_privileges(conn: asyncpg.Connection, name: str) -> Check:
    row = await conn.fetchrow(
        "SELECT current_user AS me, has_schema_privilege('public', 'CREATE') AS can_create, "
        "(SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()) AS db_owner, "
        "(SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public') AS schema_owner")
    if row["can_create"]:
        return Check(name=f"{name} privileges", ok=True, detail=f"{row['me']} may create tables (migrations)")
    return Check(
        name=f"{name} privileges", ok=False,
        detail=f"permission denied for schema public: {row['me']} may not create tables",
        cause=f"the database belongs to {row['db_owner']} and schema public to {row['schema_owner']}; "
              "since PostgreSQL 15 other roles may not create in public",
        fix=f"make {row['me']} the owner: ALTER DATABASE … OWNER TO {row['me']}; ALTER SCHEMA public OWNER "
            f"TO {row['me']} (deploy/postgres/roles.sql), or run migrations with database.owner_url")


async def _runtime_privileges(conn: asyncpg.Connection, name: str) -> Check:
    exists = await conn.fetchval("SELECT to_regclass('readings') IS NOT NULL")
    if not exists:
        return await _owner_privileges(conn, name)  # nothing migrated yet: this role must migrate
    row = await conn.fetchrow(
        "SELECT current_user AS me, "
        "has_table_privilege('readings', 'INSERT') AND has_table_privilege('devices', 'UPDATE') "
        "AND has_table_privilege('dead_letters', 'INSERT') AND has_table_privilege('rollup_dirty', 'DELETE') "
        "AS rows_ok, has_database_privilege(current_database(), 'TEMP') AS temp_ok, "
        "pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = 'readings'::regclass), "
        "'USAGE') AS owner")
    if not row["rows_ok"]:
        return Check(name=f"{name} privileges", ok=False,
                     detail=f"permission denied: {row['me']} may not write the collector's tables",
                     cause="the role was created after the last migration, or database.runtime_role names "
                           "another role",
                     fix=f"set database.runtime_role = \"{row['me']}\" and run `signalcraft-collector "
                         "migrate` as the owner (it grants the privileges)")
    if not row["temp_ok"]:
        return Check(name=f"{name} privileges", ok=False,
                     detail=f"{row['me']} may not create temporary tables (the COPY staging tables)",
                     cause="TEMP was revoked on the database", fix=f"GRANT TEMP ON DATABASE … TO {row['me']}")
    how = ("owns the schema (also creates partitions)" if row["owner"]
           else "least privilege: reads and writes rows, no DDL")
    return Check(name=f"{name} privileges", ok=True, detail=f"{row['me']} {how}")


async def _migration_level(conn: asyncpg.Connection) -> Check:
    missing = [m.label for m in await migrate.pending(conn)]
    head = migrate.available()[-1].label
    if not missing:
        return Check(name="migrations", ok=True, detail=f"at head ({head})")
    return Check(name="migrations", ok=False, detail=f"{len(missing)} pending: {', '.join(missing)}",
                 cause="the collector was upgraded and the schema was not",
                 fix="run `signalcraft-collector migrate` (as the schema owner)")


async def check_redis(ctx: Context) -> Check:
    url, source = ctx.settings.redis.url, ctx.source("redis.url")
    client = aioredis.Redis.from_url(url, socket_connect_timeout=ctx.timeout, socket_timeout=ctx.timeout)
    where = urlsplit(url).netloc.rsplit("@", 1)[-1]
    try:
        await client.ping()
        return Check(name="redis", ok=True, detail=f"PING answered by {where}")
    except AuthenticationError as exc:
        return Check(name="redis", ok=False, detail=str(exc), cause="wrong or missing Redis password",
                     fix=f"the password comes from redis.url ({source}): redis://:PASSWORD@host:6379/0")
    except ResponseError as exc:
        if "NOAUTH" not in str(exc) and "WRONGPASS" not in str(exc):
            raise
        return Check(name="redis", ok=False, detail=str(exc), cause="Redis requires a password",
                     fix=f"put it in redis.url ({source}): redis://:PASSWORD@host:6379/0")
    except (RedisError, OSError) as exc:
        return Check(name="redis", ok=False, detail=f"cannot reach {where}: {exc}",
                     cause="Redis is down, or a firewall blocks the port",
                     fix=f"start Redis or allow the port; or unset redis.url ({source}) - it is optional")
    finally:
        await client.aclose()

