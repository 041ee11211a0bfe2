"""Errors of the collector, and the one seam where database exceptions become ours.

    SignalCraftError (common.errors)
    └── CollectorError
        ├── MigrationError     a migration file is missing, altered or failed to apply
        ├── NotMigrated        the database schema is behind this collector (run `migrate`)
        └── StorageError       PostgreSQL is unreachable or refused a statement

HTTP-facing errors live in :mod:`cloud_collector.api.problems`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncpg

from common.errors import SignalCraftError


class CollectorError(SignalCraftError):
    """Base of the collector's own errors."""


class MigrationError(CollectorError):
    """A migration could not be applied, or an applied one no longer matches its file."""


class NotMigrated(CollectorError):
    """The database is missing migrations this collector needs."""

    def __init__(self, pending: list[str]) -> None:
        self.pending = pending
        super().__init__(
            f"database schema is not at head ({len(pending)} pending: {', '.join(pending)}); "
            "run `signalcraft-collector migrate` (or `serve --migrate`)"
        )


class StorageError(CollectorError):
    """The database failed; `retryable` says whether trying again later can help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        self.retryable = retryable
        super().__init__(message)


# Connection-level failures: the server went away or cannot be reached; a later retry may succeed.
RETRYABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    # A connection whose protocol state was left broken when the server went away under it ("cannot
    # switch to state …; another operation is in progress"): the pool drops it, a retry gets another.
    asyncpg.InternalClientError,
    ConnectionError,
    OSError,
    TimeoutError,
)


@contextlib.contextmanager
def storage_errors(action: str) -> Iterator[None]:
    """Translate asyncpg and socket exceptions raised while doing ``action`` into :class:`StorageError`."""
    try:
        yield
    except RETRYABLE as exc:
        reason = f"{action}: database unavailable ({type(exc).__name__}: {exc})"
        raise StorageError(reason, retryable=True) from exc
    except asyncpg.PostgresError as exc:
        code = getattr(exc, "sqlstate", "?")
        raise StorageError(f"{action}: [{code}] {exc}", retryable=False) from exc
