"""Where alerts are raised and cleared.

The rules, each a small function called by the writer inside the batch's transaction:

    on_state()        health state changes   -> "health" (WARNING: warning, ALARM: critical),
                                                cleared on HEALTHY
                                             -> "sensor_fault" (info), cleared by any other state
    on_status()       status online=false    -> "offline": warning (Last Will), info (clean shutdown)
    on_data()         telemetry/state/birth  -> clears "offline"
    check_offline()   timer: no message for ``alerts.offline_after`` -> "offline"

All of them go through :func:`raise_alert` and :func:`clear_alert`. An alert is identified by its
fingerprint ``device:rule``; the partial unique index ``alerts_one_active_per_fingerprint`` (one *active*
alert per fingerprint) lets ``INSERT … ON CONFLICT`` open-or-bump atomically, so two collectors can never
open the same alert twice. Severity only rises while an alert is active (WARNING after ALARM keeps it
critical): a machine that was in alarm stays suspect until it is healthy again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from cloud_collector.errors import storage_errors
from cloud_collector.views import AlertView, alert_from_row
from common.schema import HealthState, StateChange, Status

HEALTH = "health"
SENSOR_FAULT = "sensor_fault"
OFFLINE = "offline"

_SEVERITY_BY_STATE = {HealthState.WARNING: "warning", HealthState.ALARM: "critical"}

_RANK = "CASE {} WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END"

_OPEN_OR_BUMP = f"""
INSERT INTO alerts AS a (device, site, rule, severity, status, fingerprint, opened_at, last_seen, details)
VALUES ($1, $2, $3, $4, 'active', $5, $6, $6, $7::jsonb)
ON CONFLICT (fingerprint) WHERE status = 'active' DO UPDATE SET
    last_seen = GREATEST(a.last_seen, EXCLUDED.last_seen),
    occurrences = a.occurrences + 1,
    severity = CASE WHEN {_RANK.format("EXCLUDED.severity")} > {_RANK.format("a.severity")}
                    THEN EXCLUDED.severity ELSE a.severity END,
    details = EXCLUDED.details
RETURNING *, (xmax = 0) AS created
"""

_CLEAR = """
UPDATE alerts SET status = 'cleared', cleared_at = $2, last_seen = GREATEST(last_seen, $2)
WHERE fingerprint = $1 AND status = 'active'
RETURNING *
"""

_CLEAR_OFFLINE = """
UPDATE alerts SET status = 'cleared', cleared_at = $2
WHERE status = 'active' AND rule = 'offline' AND device = ANY($1::text[])
RETURNING *
"""

# Opens "offline" for every silent device that has none yet; DO NOTHING so concurrent timers of several
# collectors neither duplicate nor inflate it.
_OPEN_SILENT = """
INSERT INTO alerts (device, site, rule, severity, status, fingerprint, opened_at, last_seen, details)
SELECT d.device, d.site, 'offline', 'warning', 'active', d.device || ':offline', $2, $2,
       jsonb_build_object('reason', 'no data', 'last_seen', d.last_seen, 'offline_after_s', $3::float8)
FROM devices d
WHERE d.last_seen < $1
  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.fingerprint = d.device || ':offline' AND a.status = 'active')
ORDER BY d.device
ON CONFLICT (fingerprint) WHERE status = 'active' DO NOTHING
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


def fingerprint(device: str, rule: str) -> str:
    return f"{device}:{rule}"


# -- the rules ------------------------------------------------------------------------------------------


async def on_state(conn: asyncpg.Connection, site: str, change: StateChange) -> list[AlertChange]:
    """A device's newest health state: open, escalate or clear its health and sensor-fault alerts."""
    out: list[AlertChange] = []
    details = _explanation(change)
    severity = _SEVERITY_BY_STATE.get(change.state)
    if severity is not None:
        out += await raise_alert(conn, change.device, site, HEALTH, severity, change.ts, details)
    if change.state == HealthState.SENSOR_FAULT:
        out += await raise_alert(conn, change.device, site, SENSOR_FAULT, "info", change.ts, details)
    else:
        out += await clear_alert(conn, change.device, SENSOR_FAULT, change.ts)
    if change.state == HealthState.HEALTHY:
        out += await clear_alert(conn, change.device, HEALTH, change.ts)
    return out


async def on_status(conn: asyncpg.Connection, status: Status) -> list[AlertChange]:
    """Presence: the Last Will (or a clean shutdown) opens "offline"; a birth message clears it."""
    if status.online:
        return await clear_alert(conn, status.device, OFFLINE, status.ts)
    details = {"reason": status.reason or "offline", "boot": status.boot, "sources": status.sources}
    # A clean shutdown was somebody's decision (info); a Last Will means the agent vanished (warning).
    severity = "info" if status.reason == "shutdown" else "warning"
    return await raise_alert(conn, status.device, status.site, OFFLINE, severity, status.ts, details)


async def on_data(conn: asyncpg.Connection, devices: set[str], now: datetime) -> list[AlertChange]:
    """Data arrived from these devices: they are not offline any more."""
    if not devices:
        return []
    with storage_errors("clearing offline alerts"):
        rows = await conn.fetch(_CLEAR_OFFLINE, sorted(devices), now)
    return [AlertChange("alert.cleared", alert_from_row(r)) for r in rows]


async def check_offline(
    conn: asyncpg.Connection, offline_after: timedelta, now: datetime
) -> list[AlertChange]:
    """Timer rule: devices silent for longer than ``offline_after``."""
    with storage_errors("checking for silent devices"):
        rows = await conn.fetch(_OPEN_SILENT, now - offline_after, now, offline_after.total_seconds())
    return [AlertChange("alert.created", alert_from_row(r)) for r in rows]


# -- lifecycle ------------------------------------------------------------------------------------------


async def raise_alert(
    conn: asyncpg.Connection, device: str, site: str, rule: str, severity: str, at: datetime,
    details: dict[str, Any],
) -> list[AlertChange]:
    """Open the active alert of (device, rule), or bump its occurrences, last_seen and severity."""
    with storage_errors(f"raising {rule} alert"):
        row = await conn.fetchrow(_OPEN_OR_BUMP, device, site, rule, severity, fingerprint(device, rule), at,
                                  msgspec.json.encode(details).decode())
    return [AlertChange("alert.created" if row["created"] else "alert.updated", alert_from_row(row))]


async def clear_alert(conn: asyncpg.Connection, device: str, rule: str, at: datetime) -> list[AlertChange]:
    """Clear the active alert of (device, rule) if there is one."""
    with storage_errors(f"clearing {rule} alert"):
        rows = await conn.fetch(_CLEAR, fingerprint(device, rule), at)
    return [AlertChange("alert.cleared", alert_from_row(r)) for r in rows]


async def acknowledge(
    conn: asyncpg.Connection, alert_id: int, by: str, comment: str, at: datetime
) -> AlertChange | None:
    """Record who acknowledged an alert; None when there is no such alert."""
    with storage_errors("acknowledging an alert"):
        row = await conn.fetchrow(_ACK, alert_id, by, at, comment)
    return AlertChange("alert.updated", alert_from_row(row)) if row else None


def _explanation(change: StateChange) -> dict[str, Any]:
    """What an operator needs to judge the alert: the edge's reason, score and top contributors."""
    return {
        "state": change.state.value,
        "previous": change.previous.value if change.previous else None,
        "score": change.score,
        "model": change.model,
        "reason": change.reason,
        "contributors": [msgspec.structs.asdict(c) for c in change.contributors],
        "boot": change.boot,
        "seq": change.seq,
    }
