"""The technician's diagnoses: each check says what it saw, and when it failed, why and what to do.

Used by ``signalcraft-agent diag …`` and ``doctor``. Failures are mapped from exception types and
protocol codes (a CONNACK reason, an OpenSSL verify code, an errno, a Modbus exception), never by
parsing log lines, and every failed check carries a ``fix`` a person standing at the machine can do.

- :mod:`.ports`: serial ports, their USB ids, and whether this user (and the service) may open them
- :mod:`.modbus`: one read and a scan for slave ids and baud rates, on the agent's own RTU code
- :mod:`.mqtt`: broker address, TCP, TLS, login and an ACL publish test, each explained
- :mod:`.outbox`: the buffer file, read-only, for ``buffer inspect`` and ``buffer export``
- :mod:`.doctor`: all of it in one report
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One finding. ``warn`` does not fail ``doctor``; ``fail`` does."""

    name: str
    status: Status
    detail: str
    cause: str = ""
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def line(self) -> str:
        """The one-line diagnosis: what, why, what to do."""
        parts = [self.detail]
        if self.cause:
            parts.append(self.cause)
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return " — ".join(parts)


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def warn(name: str, detail: str, cause: str = "", fix: str = "") -> Check:
    return Check(name, "warn", detail, cause, fix)


def fail(name: str, detail: str, cause: str = "", fix: str = "") -> Check:
    return Check(name, "fail", detail, cause, fix)
