"""Users, API keys and tenants in PostgreSQL. Secrets never leave this module except as hashes."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from cloud_collector.auth import keys, passwords
from cloud_collector.auth.principal import Principal, Role
from cloud_collector.errors import CollectorError, storage_errors


class AccessError(CollectorError):
    """A user, key or tenant request that cannot be done (duplicate e-mail, unknown tenant, …)."""


class UserView(msgspec.Struct, kw_only=True):
    id: int
    email: str
    role: str
    tenant_id: int | None
    created_at: datetime
    disabled_at: datetime | None


class ApiKeyView(msgspec.Struct, kw_only=True):
    id: int
    prefix: str
    name: str
    role: str
    tenant_id: int | None
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


class TenantView(msgspec.Struct, kw_only=True):
    id: int
    name: str
    created_at: datetime


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        raise AccessError(f"not an e-mail address: {email!r}")
    return email


async def tenant_id(conn: asyncpg.Connection, name: str | None, *, create: bool = False) -> int | None:
    """The id of a tenant by name (None for no tenant); ``create`` makes it when missing."""
    if not name:
        return None
    with storage_errors("looking up a tenant"):
        if create:
            await conn.execute("INSERT INTO tenants (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", name)
        found = await conn.fetchval("SELECT id FROM tenants WHERE name = $1", name)
    if found is None:
        raise AccessError(f"no tenant {name!r}")
    return found


async def add_user(
    conn: asyncpg.Connection, email: str, password: str, role: Role, tenant: int | None
) -> UserView:
    try:
        hashed = passwords.hash_password(password)
    except ValueError as exc:
        raise AccessError(str(exc)) from None
    email = normalize_email(email)
    try:
        with storage_errors("adding a user"):
            row = await conn.fetchrow(
                "INSERT INTO users (email, password_hash, role, tenant_id) "
                "VALUES ($1, $2, $3, $4) RETURNING *",
                email,
                hashed,
                role.label,
                tenant,
            )
    except CollectorError as exc:
        if isinstance(exc.__cause__, asyncpg.UniqueViolationError):
            raise AccessError(f"a user {email!r} already exists") from None
        raise
    return _user(row)


async def check_password(conn: asyncpg.Connection, email: str, password: str) -> Principal | None:
    with storage_errors("checking a password"):
        row = await conn.fetchrow(
            "SELECT * FROM users WHERE email = $1 AND disabled_at IS NULL", email.strip().lower()
        )
    if not passwords.verify(row["password_hash"] if row else None, password) or row is None:
        return None
    return Principal("user", row["id"], row["email"], Role.parse(row["role"]), row["tenant_id"])


async def list_users(conn: asyncpg.Connection, tenant: int | None) -> list[UserView]:
    with storage_errors("listing users"):
        rows = await conn.fetch(
            "SELECT * FROM users WHERE $1::bigint IS NULL OR tenant_id = $1 ORDER BY id", tenant
        )
    return [_user(r) for r in rows]


async def disable_user(conn: asyncpg.Connection, user_id: int, tenant: int | None, at: datetime) -> bool:
    with storage_errors("disabling a user"):
        done = await conn.fetchval(
            "UPDATE users SET disabled_at = coalesce(disabled_at, $3) WHERE id = $1 "
            "AND ($2::bigint IS NULL OR tenant_id = $2) RETURNING id",
            user_id,
            tenant,
            at,
        )
    return done is not None


async def create_key(
    conn: asyncpg.Connection, role: Role, tenant: int | None, name: str, created_by: str
) -> tuple[str, ApiKeyView]:
    """A new key: (the key, shown once; its stored view)."""
    new = keys.generate()
    with storage_errors("creating an API key"):
        row = await conn.fetchrow(
            "INSERT INTO api_keys (prefix, key_hash, name, role, tenant_id, created_by) "
            "VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            new.prefix,
            new.key_hash,
            name,
            role.label,
            tenant,
            created_by,
        )
    return new.key, _key(row)


async def check_key(conn: asyncpg.Connection, key: str, now: datetime) -> Principal | None:
    with storage_errors("checking an API key"):
        row = await conn.fetchrow(
            "SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", keys.digest(key)
        )
        if row is None:
            return None
        # At most one write a minute per key, not one per request.
        await conn.execute(
            "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND "
            "(last_used_at IS NULL OR last_used_at < $2::timestamptz - interval '1 minute')",
            row["id"],
            now,
        )
    return Principal("apikey", row["id"], f"key:{row['prefix']}", Role.parse(row["role"]), row["tenant_id"])


async def list_keys(conn: asyncpg.Connection, tenant: int | None) -> list[ApiKeyView]:
    with storage_errors("listing API keys"):
        rows = await conn.fetch(
            "SELECT * FROM api_keys WHERE $1::bigint IS NULL OR tenant_id = $1 ORDER BY id", tenant
        )
    return [_key(r) for r in rows]


async def revoke_key(conn: asyncpg.Connection, key_id: int, tenant: int | None, at: datetime) -> bool:
    with storage_errors("revoking an API key"):
        done = await conn.fetchval(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $3) WHERE id = $1 "
            "AND ($2::bigint IS NULL OR tenant_id = $2) RETURNING id",
            key_id,
            tenant,
            at,
        )
    return done is not None


async def list_tenants(conn: asyncpg.Connection, tenant: int | None) -> list[TenantView]:
    with storage_errors("listing tenants"):
        rows = await conn.fetch(
            "SELECT * FROM tenants WHERE $1::bigint IS NULL OR id = $1 ORDER BY id", tenant
        )
    return [msgspec.convert(dict(r), TenantView) for r in rows]


def _user(row: asyncpg.Record) -> UserView:
    return msgspec.convert({k: row[k] for k in UserView.__struct_fields__}, UserView)


def _key(row: asyncpg.Record) -> ApiKeyView:
    return msgspec.convert({k: row[k] for k in ApiKeyView.__struct_fields__}, ApiKeyView)
