"""Collector settings: ``collector.toml`` overridden by ``SIGNALCRAFT_*`` environment variables.

    [mqtt]
    url = "mqtt://broker.example:1883"        # required (SIGNALCRAFT_MQTT_URL)
    client_id = "signalcraft-collector-HOST"  # stable, so the broker keeps our session across restarts
    share_group = "collectors"                # MQTT v5 shared subscription group
    session_expiry = "1d"                     # how long the broker keeps our session while we are away

    [database]
    url = "postgresql://collector@db.example/signalcraft"   # required (SIGNALCRAFT_DATABASE_URL)
    pool_size = 10
    owner_url = ""            # migrations and partition upkeep as the schema owner (default: url)
    runtime_role = ""         # role that migrations grant ingest privileges to (no DDL)

    [redis]
    url = ""                                  # optional (SIGNALCRAFT_REDIS_URL): SSE fan-out across processes

    [api]
    host = "127.0.0.1"
    port = 8080
    session_ttl = "12h"       # dashboard logins expire after this
    login_attempts = 5        # failed logins per account and client address within 5 minutes

    [ingest]
    batch_size = 500          # messages per database transaction
    flush_interval = "200ms"  # longest a message waits for its batch to fill
    queue_size = 2000         # messages between the MQTT thread and the writer (backpressure beyond)
    device_rate_limit = 20.0  # messages per second per device beyond which a runaway agent is refused
    device_burst = 200        # messages a device may send at once before the limit applies

    [storage]
    retention = "400d"        # optional: `maintain` drops time partitions entirely older than this

    [alerts]
    offline_after = "5m"      # no data for this long opens an "offline" alert
    group_wait = "30s"        # notifications of one site within this leave as one message
    retry_base = "10s"        # first retry of a failed notification; doubling, at most an hour
    max_attempts = 8
    smtp_url = ""             # e-mail channels: smtp://[user:password@]host[:port], smtps://…
    mail_from = "signalcraft@localhost"

Everything is validated by :func:`load_settings` before any connection is opened.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from common import settings as common_settings
from common.errors import ConfigError
from common.mqtt_url import BrokerAddress

ClientId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
GroupName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]{0,64}$")]  # "" = no shared subscription


def _default_client_id() -> str:
    # Stable per host: the broker keeps a persistent session (and queued QoS1 messages) per client id.
    host = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in socket.gethostname()) or "host"
    return f"signalcraft-collector-{host}"[:128]


class MqttSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str
    client_id: ClientId = msgspec.field(default_factory=_default_client_id)
    share_group: GroupName = "collectors"
    session_expiry: timedelta = timedelta(days=1)


RoleName = Annotated[str, Meta(pattern=r"^([a-z_][a-z0-9_]{0,62})?$")]


class DatabaseSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str
    pool_size: Annotated[int, Meta(ge=2, le=200)] = 10
    # Least privilege: `url` may be a role without DDL rights; migrations and partition upkeep then
    # connect with `owner_url`, and grant `runtime_role` what ingest needs.
    owner_url: str = ""
    runtime_role: RoleName = ""


class RedisSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str = ""


class ApiSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080
    session_ttl: timedelta = timedelta(hours=12)  # dashboard logins expire after this
    login_attempts: Annotated[int, Meta(ge=1, le=1000)] = 5  # failed logins per account and address / 5 min


class IngestSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    batch_size: Annotated[int, Meta(ge=1, le=10_000)] = 500
    flush_interval: timedelta = timedelta(milliseconds=200)
    queue_size: Annotated[int, Meta(ge=1, le=65_535)] = 2000
    # Per-device token bucket against a runaway agent (0 turns it off); see cloud_collector.ratelimit.
    device_rate_limit: Annotated[float, Meta(ge=0)] = 20.0
    device_burst: Annotated[int, Meta(ge=1)] = 200


class StorageSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    retention: timedelta | None = None  # None keeps everything


class AlertSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    offline_after: timedelta = timedelta(minutes=5)
    # Notifications (see cloud_collector.notify): alerts of one site within group_wait leave as one message;
    # a failed send is retried after retry_base, doubling, up to max_attempts.
    group_wait: timedelta = timedelta(seconds=30)
    retry_base: timedelta = timedelta(seconds=10)
    max_attempts: Annotated[int, Meta(ge=1, le=50)] = 8
    smtp_url: str = ""  # smtp://[user:password@]host[:port], smtp+starttls://…, smtps://…; e-mail channels
    mail_from: str = "signalcraft@localhost"


class CollectorSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    mqtt: MqttSettings
    database: DatabaseSettings
    redis: RedisSettings = msgspec.field(default_factory=RedisSettings)
    api: ApiSettings = msgspec.field(default_factory=ApiSettings)
    ingest: IngestSettings = msgspec.field(default_factory=IngestSettings)
    alerts: AlertSettings = msgspec.field(default_factory=AlertSettings)
    storage: StorageSettings = msgspec.field(default_factory=StorageSettings)


_REQUIRED_TABLES = ("mqtt", "database")


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> CollectorSettings:
    """Load, then check what the generic loader cannot know; raise :class:`ConfigError` naming the setting."""
    try:
        loaded = common_settings.load_with_sources(CollectorSettings, path, env)
    except ConfigError as exc:
        # A missing [mqtt] or [database] table means its required url is missing: name the leaf.
        if exc.setting in _REQUIRED_TABLES and exc.problem.startswith("required"):
            raise ConfigError(f"{exc.setting}.url", exc.problem, exc.source) from None
        raise
    settings: CollectorSettings = loaded.settings
    validate(settings, loaded.sources)
    return settings


def validate(settings: CollectorSettings, sources: dict[str, str] | None = None) -> None:
    """Semantic checks shared by the file loader and programmatic callers (the demo builds its own)."""
    sources = sources or {}
    BrokerAddress.parse(settings.mqtt.url, "mqtt.url")
    common_settings.check_scheme(
        "database.url", settings.database.url, ("postgresql", "postgres"), sources.get("database.url")
    )
    if settings.database.owner_url:
        common_settings.check_scheme(
            "database.owner_url", settings.database.owner_url, ("postgresql", "postgres"),
            sources.get("database.owner_url"),
        )
    if settings.redis.url:
        common_settings.check_scheme(
            "redis.url", settings.redis.url, ("redis", "rediss", "unix"), sources.get("redis.url")
        )
    _positive("ingest.flush_interval", settings.ingest.flush_interval, sources)
    _positive("alerts.offline_after", settings.alerts.offline_after, sources)
    _positive("api.session_ttl", settings.api.session_ttl, sources)
    if settings.alerts.smtp_url:
        common_settings.check_scheme("alerts.smtp_url", settings.alerts.smtp_url,
                                     ("smtp", "smtps", "smtp+starttls"), sources.get("alerts.smtp_url"))
    _positive("mqtt.session_expiry", settings.mqtt.session_expiry, sources)
    if settings.storage.retention is not None:
        _positive("storage.retention", settings.storage.retention, sources)
    if settings.mqtt.session_expiry > timedelta(seconds=0xFFFFFFFE):
        raise ConfigError("mqtt.session_expiry", "longer than MQTT allows (about 136 years)")


def _positive(name: str, value: timedelta, sources: dict[str, str]) -> None:
    if value <= timedelta(0):
        raise ConfigError(name, f"must be a positive duration, got {value}", sources.get(name))
