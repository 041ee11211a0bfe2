"""Request bodies of the API as msgspec structs: decoded, validated and documented (OpenAPI) from here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Severity = Literal["info", "warning", "critical"]
RoleName = Literal["admin", "technician", "viewer"]
Text = Annotated[str, Meta(max_length=2000)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
LocalTime = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Seconds = Annotated[float, Meta(ge=0, le=365 * 86400)]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class LoginRequest(Strict, kw_only=True):
    email: Annotated[str, Meta(max_length=254)]
    password: Annotated[str, Meta(max_length=1024)]


class AckRequest(Strict, kw_only=True):
    comment: Text = ""
    by: Annotated[str, Meta(max_length=200)] | None = None  # API keys only: who acknowledges


class CommentRequest(Strict, kw_only=True):
    body: Annotated[str, Meta(min_length=1, max_length=2000)]


class FeedbackRequest(Strict, kw_only=True):
    verdict: Literal["confirmed_fault", "false_alarm", "maintenance"]
    comment: Text = ""


class SilenceRequest(Strict, kw_only=True):
    """At least one of site, device, rule. Recurring: recur_days (ISO weekdays, 1 = Monday), recur_start
    (local HH:MM in ``timezone``) and recur_duration_s, within [starts_at, ends_at)."""

    site: Name | None = None
    device: Name | None = None
    rule: Name | None = None
    starts_at: datetime | None = None
    ends_at: datetime
    recur_days: list[Annotated[int, Meta(ge=1, le=7)]] | None = None
    recur_start: LocalTime | None = None
    recur_duration_s: Annotated[float, Meta(gt=0, le=7 * 86400)] | None = None
    timezone: Annotated[str, Meta(max_length=64)] = "UTC"
    comment: Annotated[str, Meta(min_length=1, max_length=2000)]


class RuleRequest(Strict, kw_only=True):
    name: Annotated[str, Meta(pattern=r"^[a-z0-9_.-]{1,64}$")]
    kind: Literal["threshold", "rate", "health", "sensor_fault", "offline"]
    device: Name | None = None
    device_type: Name | None = None
    metric: Name | None = None
    op: Literal[">", "<"] = ">"
    threshold: float | None = None
    clear_threshold: float | None = None
    window_s: Annotated[float, Meta(gt=0, le=86400)] | None = None
    for_s: Seconds = 0.0
    clear_for_s: Seconds = 0.0
    severity: Severity = "warning"
    enabled: bool = True
    description: Text = ""
    tenant_id: int | None = None  # platform admins only; a tenant's admin always writes its own


class ChannelRequest(Strict, kw_only=True):
    name: Name
    kind: Literal["webhook", "email"]
    target: Annotated[str, Meta(min_length=3, max_length=2000)]  # the URL, or the e-mail address
    secret: Annotated[str, Meta(max_length=500)] = ""  # webhooks: the HMAC key
    min_severity: Severity = "warning"
    max_per_hour: Annotated[int, Meta(ge=1, le=10_000)] = 30
    tenant_id: int | None = None


class ChannelView(msgspec.Struct, kw_only=True):
    id: int
    tenant_id: int | None
    name: str
    kind: str
    target: str
    min_severity: str
    max_per_hour: int
    enabled: bool
    created_at: datetime


class UserRequest(Strict, kw_only=True):
    email: Annotated[str, Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
    password: Annotated[str, Meta(min_length=10, max_length=1024)]
    role: RoleName
    tenant: Name | None = None


class ApiKeyRequest(Strict, kw_only=True):
    role: RoleName
    name: Annotated[str, Meta(max_length=200)] = ""
    tenant: Name | None = None


class TenantRequest(Strict, kw_only=True):
    name: Name


class SiteRequest(Strict, kw_only=True):
    tenant: Name | None = None
    name: Annotated[str, Meta(max_length=200)] = ""
    timezone: Annotated[str, Meta(max_length=64)] = "UTC"
    quiet_start: LocalTime | None = None
    quiet_end: LocalTime | None = None
    quiet_min_severity: Severity = "critical"


class DevicePatch(Strict, kw_only=True):
    type: Annotated[str, Meta(max_length=100)]
