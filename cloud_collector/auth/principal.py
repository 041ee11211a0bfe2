"""Roles and the principal of a request."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """Ordered: each role may do everything the roles below it may."""

    VIEWER = 1  # reads the fleet, alerts, rules and silences of its tenant
    TECHNICIAN = 2  # + acknowledges, comments, gives feedback, silences
    ADMIN = 3  # + rules, users, API keys, channels; a platform admin (no tenant) also tenants and sites

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r} (use admin, technician or viewer)") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "user" | "apikey"
    id: int
    name: str  # the user's e-mail, or "key:<prefix>"
    role: Role
    tenant_id: int | None  # None: the platform operator, sees every tenant

    @property
    def platform(self) -> bool:
        return self.tenant_id is None

    def may(self, role: Role) -> bool:
        return self.role >= role
