"""The alert lifecycle in SQL: open or bump, clear, acknowledge, comment, feedback.

An alert's fingerprint is ``tenant:rule:device`` plus its labels (``{metric=…}``); the partial unique
index ``alerts_one_active_per_fingerprint`` allows one *active* alert per fingerprint, so
``INSERT … ON CONFLICT`` opens or bumps atomically and two collectors can never open the same alert twice.
Severity only rises while an alert is active. Every function runs in the caller's transaction and
returns what changed, which becomes an ``alert.*`` event after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from cloud_collector.alerting.rules import Target
from cloud_collector.errors import storage_errors
from cloud_collector.views import AlertView, CommentView, FeedbackView, alert_from_row

_RANK = "CASE {} WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END"

_OPEN_OR_BUMP = f"""
INSERT INTO alerts AS a (device, site, rule, severity, status, fingerprint, opened_at, last_seen, details,
                         tenant_id, rule_id, labels, suppressed)
VALUES ($1, $2, $3, $4, 'active', $5, $6, $6, $7::jsonb, $8, $9, $10::jsonb, $11)
ON CONFLICT (fingerprint) WHERE status = 'active' DO UPDATE SET
    last_seen = GREATEST(a.last_seen, EXCLUDED.last_seen),
    occurrences = a.occurrences + 1,
    severity = CASE WHEN {_RANK.format("EXCLUDED.severity")} > {_RANK.format("a.severity")}
                    THEN EXCLUDED.severity ELSE a.severity END,
    details = EXCLUDED.details,
    suppressed = EXCLUDED.suppressed
RETURNING *, (xmax = 0) AS created
"""

_TOUCH = """
UPDATE alerts SET last_seen = GREATEST(last_seen, $3)
WHERE device = $1 AND rule = $2 AND status = 'active'
"""

_CLEAR = """
UPDATE alerts SET status = 'cleared', cleared_at = $3, last_seen = GREATEST(last_seen, $3)
WHERE device = $1 AND rule = $2 AND status = 'active'
RETURNING *
"""

_ACK = """
UPDATE alerts SET acknowledged_by = $2, acknowledged_at = $3, ack_comment = $4
WHERE id = $1
RETURNING *
"""


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert that was created, updated or cleared; becomes an ``alert.*`` event after commit."""

    event: str  # "alert.created" | "alert.updated" | "alert.cleared"
    alert: AlertView


def fingerprint(tenant_id: int | None, rule: str, device: str, labels: dict[str, str] | None = None) -> str:
    tenant = "-" if tenant_id is None else str(tenant_id)
    base = f"{tenant}:{rule}:{device}"
    if not labels:
        return base
    return base + "{" + ",".join(f"{k}={labels[k]}" for k in sorted(labels)) + "}"


async def raise_alert(
    conn: asyncpg.Connection,
    target: Target,
    rule: str,
    severity: str,
    at: datetime,
    details: dict[str, Any],
    *,
    rule_id: int | None = None,
    labels: dict[str, str] | None = None,
    suppressed: str | None = None,
) -> AlertChange:
    """Open the active alert of (target, rule), or bump its occurrences, last_seen and severity."""
    labels = labels or {}
    fp = fingerprint(target.tenant_id, rule, target.device, labels)
    with storage_errors(f"raising {rule} alert"):
        row = await conn.fetchrow(
            _OPEN_OR_BUMP,
            target.device,
            target.site,
            rule,
            severity,
            fp,
            at,
            msgspec.json.encode(details).decode(),
            target.tenant_id,
            rule_id,
            msgspec.json.encode(labels).decode(),
            suppressed,
        )
    return AlertChange("alert.created" if row["created"] else "alert.updated", alert_from_row(row))


async def touch(conn: asyncpg.Connection, device: str, rule: str, at: datetime) -> None:
    """A firing rule saw its condition again: last_seen moves, nobody needs an event for that."""
    with storage_errors(f"updating {rule} alert"):
        await conn.execute(_TOUCH, device, rule, at)


async def clear_alert(conn: asyncpg.Connection, device: str, rule: str, at: datetime) -> list[AlertChange]:
    """Clear the active alert of (device, rule) if there is one."""
    with storage_errors(f"clearing {rule} alert"):
        rows = await conn.fetch(_CLEAR, device, rule, at)
    return [AlertChange("alert.cleared", alert_from_row(r)) for r in rows]


async def acknowledge(
    conn: asyncpg.Connection, alert_id: int, by: str, comment: str, at: datetime
) -> AlertChange | None:
    """Record who acknowledged an alert, when and why; None when there is no such alert."""
    with storage_errors("acknowledging an alert"):
        row = await conn.fetchrow(_ACK, alert_id, by, at, comment)
        if row is not None and comment:
            await conn.execute(
                "INSERT INTO alert_comments (alert_id, author, at, body) VALUES ($1, $2, $3, $4)",
                alert_id,
                by,
                at,
                comment,
            )
    return AlertChange("alert.updated", alert_from_row(row)) if row else None


async def add_comment(
    conn: asyncpg.Connection, alert_id: int, author: str, body: str, at: datetime
) -> CommentView:
    with storage_errors("commenting on an alert"):
        row = await conn.fetchrow(
            "INSERT INTO alert_comments (alert_id, author, at, body) VALUES ($1, $2, $3, $4) RETURNING *",
            alert_id,
            author,
            at,
            body,
        )
    return msgspec.convert(dict(row), CommentView)


async def set_feedback(
    conn: asyncpg.Connection, alert_id: int, verdict: str, author: str, comment: str, at: datetime
) -> FeedbackView:
    """The technician's verdict; a later verdict replaces an earlier one (people correct themselves)."""
    with storage_errors("recording feedback"):
        row = await conn.fetchrow(
            """INSERT INTO alert_feedback (alert_id, verdict, author, at, comment) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (alert_id) DO UPDATE SET verdict = EXCLUDED.verdict, author = EXCLUDED.author,
                   at = EXCLUDED.at, comment = EXCLUDED.comment
               RETURNING *""",
            alert_id,
            verdict,
            author,
            at,
            comment,
        )
    return msgspec.convert(dict(row), FeedbackView)
