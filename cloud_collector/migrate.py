"""Versioned SQL migrations, applied under a PostgreSQL advisory lock.

Files are ``migrations/NNNN_name.sql``. :func:`migrate` takes a session-level advisory lock, so several
collectors starting at once queue up behind the first one instead of racing to create the same tables;
each file runs in its own transaction together with its row in ``schema_migrations`` (version, name,
sha256 checksum, applied_at), so a failure leaves the database at the previous version. An applied file
that was edited afterwards is refused: the checksum no longer matches what the database ran.

Least privilege: migrations run as the schema owner (``database.owner_url``). With
``database.runtime_role`` set, every run ends by granting that role exactly what ingest and the API need -
reading and writing rows, using sequences - and nothing else: it cannot create, alter or drop tables.
Creating and dropping partitions is the owner's job too (``signalcraft-collector maintain``), so the
first monthly partitions are created here. See ``deploy/postgres/roles.sql``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from cloud_collector.errors import MigrationError, NotMigrated, StorageError, storage_errors

log = logging.getLogger(__name__)

# Any constant works as long as every collector uses the same one; this is "SignalCr" in ASCII.
LOCK_KEY = 0x5369676E616C4372
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str
    checksum: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True, slots=True)
class Applied:
    version: int
    name: str
    checksum: str


def available() -> list[Migration]:
    """The migrations shipped with this collector, in version order."""
    found = []
    for entry in resources.files("cloud_collector.migrations").iterdir():
        m = _FILE.match(entry.name)
        if m is None:
            continue
        data = entry.read_bytes()
        checksum = hashlib.sha256(data).hexdigest()
        found.append(Migration(int(m.group(1)), m.group(2), data.decode("utf-8"), checksum))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return found


async def applied(conn: asyncpg.Connection) -> list[Applied]:
    """What the database says it ran; empty when it was never migrated."""
    with storage_errors("reading schema_migrations"):
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if not exists:
            return []
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
    return [Applied(r["version"], r["name"], r["checksum"]) for r in rows]


async def pending(conn: asyncpg.Connection) -> list[Migration]:
    """Migrations of this collector the database has not run yet."""
    done = {a.version for a in await applied(conn)}
    return [mig for mig in available() if mig.version not in done]


async def require_head(conn: asyncpg.Connection) -> None:
    """Raise :class:`NotMigrated` unless every migration of this collector has been applied."""
    missing = await pending(conn)
    if missing:
        raise NotMigrated([mig.label for mig in missing])


async def migrate(dsn: str, runtime_role: str = "") -> list[Migration]:
    """Bring the database at ``dsn`` to head; return the migrations this call applied (maybe none).

    Also creates the monthly partitions around today and, when ``runtime_role`` is given, grants it the
    privileges of a running collector (idempotent; repeated on every run so new tables are covered).
    """
    from cloud_collector import partitions  # imported here: partitions needs the schema this creates

    with storage_errors("connecting for migrations"):
        conn = await asyncpg.connect(dsn)
    try:
        with storage_errors("waiting for the migration lock"):
            await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            ran = await _apply_pending(conn)
            await partitions.ensure(conn)
            if runtime_role:
                await grant_runtime(conn, runtime_role)
            return ran
        finally:
            with storage_errors("releasing the migration lock"):
                await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection) -> list[Migration]:
    with storage_errors("creating schema_migrations"):
        await conn.execute(_CREATE_TABLE)
    done = {a.version: a for a in await applied(conn)}
    ran = []
    for mig in available():
        previous = done.get(mig.version)
        if previous is not None:
            if previous.checksum != mig.checksum:
                raise MigrationError(
                    f"migration {mig.label} was changed after it was applied "
                    f"(database has checksum {previous.checksum[:12]}…, file has {mig.checksum[:12]}…); "
                    "add a new migration instead of editing an applied one"
                )
            continue
        log.info("applying migration %s", mig.label)
        try:
            with storage_errors(f"migration {mig.label} failed"):
                async with conn.transaction():
                    await conn.execute(mig.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        mig.version, mig.name, mig.checksum,
                    )
        except StorageError as exc:
            if exc.retryable:
                raise
            raise MigrationError(str(exc)) from exc
        ran.append(mig)
    return ran


_GRANTS = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM {role};
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role};
"""


async def grant_runtime(conn: asyncpg.Connection, role: str) -> None:
    """Grant ``role`` row access to every table (no DDL: it owns nothing and may not create in public)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise MigrationError(f"invalid database.runtime_role {role!r}")
    with storage_errors(f"granting privileges to {role}"):
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role):
            raise MigrationError(
                f"database.runtime_role {role!r} does not exist; create it first (deploy/postgres/roles.sql)"
            )
        await conn.execute(_GRANTS.format(role=f'"{role}"'))
