"""Writing notifications into the outbox, inside the transaction that changed the alert.

Events: ``severity:warning`` / ``severity:critical`` / ``severity:info`` when an alert opens or
escalates (so an escalation notifies once more, a bump at the same severity never does) and ``cleared``.
An alert that clears before its opening notification left (within the group wait) is never notified at
all: a flap nobody needed to hear about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from cloud_collector.alerting.noise import quiet_until
from cloud_collector.alerting.rules import SEVERITY_RANK
from cloud_collector.errors import storage_errors
from cloud_collector.views import AlertView


@dataclass(frozen=True, slots=True)
class NotifySettings:
    group_wait: timedelta = timedelta(seconds=30)  # alerts of one site within this go out as one message
    retry_base: timedelta = timedelta(seconds=10)  # first retry after this, doubling, capped at an hour
    max_attempts: int = 8
    interval: timedelta = timedelta(seconds=1)  # how often each process looks for due notifications
    smtp_url: str = ""  # smtp://[user:password@]host[:port] or smtps://…; e-mail channels need it
    mail_from: str = "signalcraft@localhost"


_CHANNELS = """
SELECT id, min_severity FROM notification_channels
WHERE enabled AND (tenant_id IS NULL OR tenant_id = $1)
"""

_INSERT = """
INSERT INTO notifications (channel_id, alert_id, event, group_key, created_at, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (channel_id, alert_id, event) DO NOTHING
"""

_SITE = "SELECT timezone, quiet_start, quiet_end, quiet_min_severity FROM sites WHERE site = $1"

# A clear that overtakes its own opening notification cancels it.
_CANCEL_UNSENT = """
UPDATE notifications SET status = 'suppressed', last_error = 'cleared before it was sent'
WHERE alert_id = $1 AND status = 'pending' AND event LIKE 'severity:%'
RETURNING channel_id
"""

_CLEAR_FOR = """
SELECT DISTINCT channel_id FROM notifications
WHERE alert_id = $1 AND event LIKE 'severity:%' AND status IN ('sent', 'failed')
"""

_SUPPRESS_DEVICE = """
UPDATE notifications n SET status = 'suppressed', last_error = $2
FROM alerts a
WHERE n.alert_id = a.id AND n.status = 'pending' AND a.device = $1 AND a.rule <> 'offline'
"""


async def on_raised(conn: asyncpg.Connection, alert: AlertView, now: datetime) -> int:
    """Queue the alert's current severity for every channel that wants it; returns rows queued."""
    if alert.suppressed:
        return 0
    with storage_errors("queueing notifications"):
        channels = await conn.fetch(_CHANNELS, alert.tenant_id)
        wanted = [
            c["id"] for c in channels if SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[c["min_severity"]]
        ]
        if not wanted:
            return 0
        due = await _due(conn, alert, now)
        for channel_id in wanted:
            await conn.execute(
                _INSERT,
                channel_id,
                alert.id,
                f"severity:{alert.severity}",
                f"{channel_id}:{alert.site}",
                now,
                due,
            )
    return len(wanted)


async def on_cleared(conn: asyncpg.Connection, alert: AlertView, now: datetime) -> int:
    """Tell the channels that heard about the alert that it is over."""
    with storage_errors("queueing notifications"):
        await conn.fetch(_CANCEL_UNSENT, alert.id)
        channels = [r["channel_id"] for r in await conn.fetch(_CLEAR_FOR, alert.id)]
        for channel_id in channels:
            await conn.execute(
                _INSERT, channel_id, alert.id, "cleared", f"{channel_id}:{alert.site}", now, now
            )
    return len(channels)


async def suppress_device(conn: asyncpg.Connection, device: str, reason: str) -> None:
    """The device went offline: what its other alerts still had queued is inhibited."""
    with storage_errors("inhibiting notifications"):
        await conn.execute(_SUPPRESS_DEVICE, device, reason)


async def _due(conn: asyncpg.Connection, alert: AlertView, now: datetime) -> datetime:
    """The earliest a notification may go: now, or when the site's quiet hours end for low severities."""
    due = now
    site = await conn.fetchrow(_SITE, alert.site)
    if site is None or SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[site["quiet_min_severity"]]:
        return due
    morning = quiet_until(site["quiet_start"], site["quiet_end"], site["timezone"], now)
    return max(due, morning) if morning else due
