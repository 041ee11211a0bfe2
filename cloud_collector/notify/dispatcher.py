"""Draining the outbox: group, rate-limit, send, retry with backoff.

Every collector process runs :func:`dispatch_due` once per ``interval``. A group (one channel, one site)
is claimed with ``FOR UPDATE SKIP LOCKED`` and the channel row is locked while its message is sent, so
two processes never send the same group and the per-channel rate limit (``max_per_hour`` messages,
counted in ``notification_sends``) holds across processes. A failed send is retried after
``retry_base × 2^(attempts-1)`` (at most an hour) until ``max_attempts``, then marked failed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from cloud_collector.errors import storage_errors
from cloud_collector.notify.channels import DeliveryError, send_email, send_webhook
from cloud_collector.notify.outbox import NotifySettings
from cloud_collector.views import alert_from_row

log = logging.getLogger(__name__)

_DUE_GROUPS = """
SELECT group_key FROM notifications WHERE status = 'pending' AND next_attempt_at <= $1
GROUP BY group_key HAVING min(created_at) <= $2
LIMIT 100
"""

_CLAIM = """
SELECT n.id AS nid, n.event, n.attempts, n.channel_id, a.*
FROM notifications n JOIN alerts a ON a.id = n.alert_id
WHERE n.group_key = $1 AND n.status = 'pending' AND n.next_attempt_at <= $2
ORDER BY n.id
FOR UPDATE OF n SKIP LOCKED
"""

_LOCK_CHANNEL = "SELECT * FROM notification_channels WHERE id = $1 FOR UPDATE"
_SENT_LAST_HOUR = """
SELECT count(*), min(sent_at) FROM notification_sends
WHERE channel_id = $1 AND sent_at > $2::timestamptz - interval '1 hour'
"""


async def dispatch_due(
    pool: asyncpg.Pool, http: aiohttp.ClientSession, settings: NotifySettings, now: datetime
) -> int:
    """Send every due group once; returns how many messages went out."""
    with storage_errors("looking for due notifications"):
        async with pool.acquire() as conn:
            # A group waits until its oldest notification is group_wait old, then leaves as one message.
            groups = [r["group_key"] for r in await conn.fetch(_DUE_GROUPS, now, now - settings.group_wait)]
    sent = 0
    for key in groups:
        with storage_errors("sending notifications"):
            async with pool.acquire() as conn, conn.transaction():
                sent += await _send_group(conn, http, settings, key, now)
    return sent


async def _send_group(
    conn: asyncpg.Connection, http: aiohttp.ClientSession, settings: NotifySettings, key: str, now: datetime
) -> int:
    rows = await conn.fetch(_CLAIM, key, now)
    if not rows:
        return 0  # another process has it, or it is done
    ids = [r["nid"] for r in rows]
    channel = await conn.fetchrow(_LOCK_CHANNEL, rows[0]["channel_id"])
    count, oldest = await conn.fetchrow(_SENT_LAST_HOUR, channel["id"], now)
    if count >= channel["max_per_hour"]:
        later = oldest + timedelta(hours=1)
        await conn.execute(
            "UPDATE notifications SET next_attempt_at = $2 WHERE id = ANY($1::bigint[])", ids, later
        )
        log.info(
            "channel %s reached %d messages per hour; %d notifications wait until %s",
            channel["name"],
            channel["max_per_hour"],
            len(ids),
            later.isoformat(),
        )
        return 0
    items = [{"event": r["event"], "alert": alert_from_row(r)} for r in rows]
    delivery = f"{channel['id']}-{ids[0]}-{ids[-1]}"
    try:
        await _deliver(http, settings, channel, delivery, items)
    except DeliveryError as exc:
        await _failed(conn, rows, settings, now, str(exc))
        log.warning("notification via %s failed (%s)", channel["name"], exc)
        return 0
    await conn.execute(
        "UPDATE notifications SET status = 'sent', sent_at = $2, attempts = attempts + 1 "
        "WHERE id = ANY($1::bigint[])",
        ids,
        now,
    )
    await conn.execute(
        "INSERT INTO notification_sends (channel_id, sent_at, alerts) VALUES ($1, $2, $3)",
        channel["id"],
        now,
        len(ids),
    )
    return 1


async def _deliver(
    http: aiohttp.ClientSession,
    settings: NotifySettings,
    channel: Any,
    delivery: str,
    items: list[dict[str, Any]],
) -> None:
    if channel["kind"] == "webhook":
        await send_webhook(
            http,
            channel["target"],
            channel["secret"],
            delivery,
            {"delivery": delivery, "channel": channel["name"], "notifications": items},
        )
        return
    lines = [_line(item) for item in items]
    subject = lines[0] if len(lines) == 1 else f"{len(lines)} SignalCraft alerts at {items[0]['alert'].site}"
    await send_email(
        settings.smtp_url,
        settings.mail_from,
        channel["target"],
        subject,
        "\n".join(lines) + f"\n\ndelivery {delivery}\n",
    )


def _line(item: dict[str, Any]) -> str:
    a = item["alert"]
    what = "cleared" if item["event"] == "cleared" else a.severity.upper()
    reason = a.details.get("reason", "") if isinstance(a.details, dict) else ""
    return f"[{what}] {a.device} ({a.site}): {a.rule}{' - ' + reason if reason else ''}"


async def _failed(
    conn: asyncpg.Connection, rows: list[Any], settings: NotifySettings, now: datetime, error: str
) -> None:
    attempts = rows[0]["attempts"] + 1
    delay = min(settings.retry_base * 2 ** (attempts - 1), timedelta(hours=1))
    status = "failed" if attempts >= settings.max_attempts else "pending"
    await conn.execute(
        "UPDATE notifications SET attempts = attempts + 1, last_error = $2, status = $3, "
        "next_attempt_at = $4 "
        "WHERE id = ANY($1::bigint[])",
        [r["nid"] for r in rows],
        error,
        status,
        now + delay,
    )
