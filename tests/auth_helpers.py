"""Credentials for collector tests: API keys and users made through the same store the CLI uses."""

from __future__ import annotations

import asyncpg

from cloud_collector import migrate
from cloud_collector.auth import store
from cloud_collector.auth.principal import Role


async def make_key(pg_url: str, role: str = "admin", tenant: str | None = None) -> str:
    """Migrate when needed, then create an API key (and its tenant)."""
    await migrate.migrate(pg_url)
    conn = await asyncpg.connect(pg_url)
    try:
        tenant_id = await store.tenant_id(conn, tenant, create=True)
        key, _ = await store.create_key(conn, Role.parse(role), tenant_id, f"test {role}", "tests")
        return key
    finally:
        await conn.close()


async def make_user(
    pg_url: str, email: str, password: str, role: str = "admin", tenant: str | None = None
) -> None:
    await migrate.migrate(pg_url)
    conn = await asyncpg.connect(pg_url)
    try:
        await store.add_user(
            conn, email, password, Role.parse(role), await store.tenant_id(conn, tenant, create=True)
        )
    finally:
        await conn.close()


async def assign_site(pg_url: str, site: str, tenant: str | None) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        tenant_id = await store.tenant_id(conn, tenant, create=True)
        await conn.execute(
            "INSERT INTO sites (site, tenant_id) VALUES ($1, $2) ON CONFLICT (site) DO UPDATE "
            "SET tenant_id = EXCLUDED.tenant_id",
            site,
            tenant_id,
        )
    finally:
        await conn.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
