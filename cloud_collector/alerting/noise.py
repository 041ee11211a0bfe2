"""Noise control: why an alert should not be notified now.

    inhibition     a device's active offline alert inhibits its other alerts (a dead uplink is one problem,
                   not five)
    silences       one-off or recurring maintenance windows matching tenant / site / device / rule, each
                   with its author and comment
    quiet hours    per site, local time: notifications below the site's severity floor wait until the
                   quiet hours end (see :mod:`cloud_collector.notify.outbox`)

Alerts are always recorded and shown; noise control only decides who gets woken up. The reason is kept
on the alert (``suppressed``) so the dashboard can say "silenced by #4 (kim: compressor swap)".
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from cloud_collector.alerting.rules import Target
from cloud_collector.errors import storage_errors

OFFLINE = "offline"

_CANDIDATE_SILENCES = """
SELECT * FROM silences
WHERE starts_at <= $1 AND ends_at > $1
  AND (tenant_id IS NULL OR tenant_id = $2)
  AND (site IS NULL OR site = $3) AND (device IS NULL OR device = $4) AND (rule IS NULL OR rule = $5)
ORDER BY id
"""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def in_recurring_window(row: Any, now: datetime) -> bool:
    """Whether ``now`` falls in one of the silence's weekly windows (which may run past midnight)."""
    days, start, duration = row["recur_days"], row["recur_start"], row["recur_duration_s"]
    if not days or start is None or not duration:
        return True  # one-off: [starts_at, ends_at) already matched
    local = now.astimezone(zone(row["timezone"]))
    span = timedelta(seconds=duration)
    for back in range(math.ceil(span / timedelta(days=1)) + 1):
        day = local.date() - timedelta(days=back)
        if day.isoweekday() not in days:
            continue
        opens = datetime.combine(day, start, tzinfo=local.tzinfo)
        if opens <= local < opens + span:
            return True
    return False


async def silenced_by(conn: asyncpg.Connection, target: Target, rule: str, now: datetime) -> str | None:
    with storage_errors("checking silences"):
        rows = await conn.fetch(_CANDIDATE_SILENCES, now, target.tenant_id, target.site, target.device, rule)
    for row in rows:
        if in_recurring_window(row, now):
            return f"silenced by #{row['id']} ({row['author']}: {row['comment']})"
    return None


async def suppression(conn: asyncpg.Connection, target: Target, rule: str, now: datetime) -> str | None:
    """Why an alert of ``rule`` on ``target`` must not be notified now, or None."""
    if rule != OFFLINE:
        with storage_errors("checking inhibition"):
            offline = await conn.fetchval(
                "SELECT 1 FROM alerts WHERE device = $1 AND rule = 'offline' AND status = 'active'",
                target.device,
            )
        if offline:
            return "inhibited: the device is offline"
    return await silenced_by(conn, target, rule, now)


def quiet_until(start: time | None, end: time | None, tz: str, now: datetime) -> datetime | None:
    """When the site's current quiet hours end (UTC), or None outside them. start > end spans midnight."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone(tz))
    t = local.timetz().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=local.tzinfo).astimezone(UTC)
