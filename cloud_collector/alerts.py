"""Where alerts are raised and cleared.

The writer calls these inside each batch's transaction; the timer calls :func:`tick` every second:

    on_state()    the newest edge health state  -> "health" and "sensor_fault" kind rules
    on_data()     telemetry, a state or a birth -> clears "offline"; "threshold" and "rate" kind rules
                                                   on the device's latest values
    on_status()   a Last Will / clean shutdown  -> "offline" at once (warning; info for a shutdown)
    tick()        the clock                     -> "offline" after silence; pending rules fire and
                                                   recovering rules clear when their time has come

Rules are rows of ``alert_rules`` (:mod:`cloud_collector.alerting.rules`); each (rule, device) runs the
state machine of :mod:`cloud_collector.alerting.machine`, persisted in ``rule_states``. Opening,
bumping and clearing is :mod:`cloud_collector.alerting.lifecycle` (one active alert per fingerprint,
enforced by a partial unique index); what may be notified is decided by
:mod:`cloud_collector.alerting.noise` and queued by :mod:`cloud_collector.notify.outbox`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from cloud_collector.alerting import lifecycle, noise
from cloud_collector.alerting.lifecycle import AlertChange, acknowledge, fingerprint, raise_alert
from cloud_collector.alerting.machine import Action, Phase, Step, elapse, step
from cloud_collector.alerting.rules import (
    Rule,
    Target,
    applicable,
    explanation,
    load_enabled,
    load_targets,
    rule_from_row,
    state_verdict,
    value_verdict,
)
from cloud_collector.errors import storage_errors
from cloud_collector.notify import outbox
from cloud_collector.views import alert_from_row
from common.schema import StateChange, Status

__all__ = [
    "AlertChange",
    "acknowledge",
    "check_offline",
    "fingerprint",
    "on_data",
    "on_state",
    "on_status",
    "raise_alert",
    "tick",
]

HEALTH, SENSOR_FAULT, OFFLINE = "health", "sensor_fault", "offline"

# Any constant works as long as every collector uses the same one: one timer at a time across processes.
TICK_LOCK = 0x5369674E_616C5431

_STATE = "SELECT * FROM rule_states WHERE rule_id = $1 AND device = $2 FOR UPDATE"
_SAVE_STATE = """
INSERT INTO rule_states (rule_id, device, phase, since, severity, details, value, value_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)
ON CONFLICT (rule_id, device) DO UPDATE SET phase = EXCLUDED.phase, since = EXCLUDED.since,
    severity = EXCLUDED.severity, details = EXCLUDED.details, value = EXCLUDED.value,
    value_at = EXCLUDED.value_at, updated_at = EXCLUDED.updated_at
"""
_CLEAR_OFFLINE = """
UPDATE alerts SET status = 'cleared', cleared_at = $2
WHERE status = 'active' AND device = ANY($1::text[])
  AND rule IN (SELECT name FROM alert_rules WHERE kind = 'offline')
RETURNING *
"""
_SILENT = """
SELECT d.device, d.last_seen FROM devices d
WHERE d.last_seen < $1
  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.device = d.device AND a.status = 'active'
                  AND a.rule IN (SELECT name FROM alert_rules WHERE kind = 'offline'))
ORDER BY d.device
"""
_WAITING = """
SELECT s.phase, s.since, s.severity AS state_severity, s.details AS state_details,
       s.device AS state_device, r.*
FROM rule_states s JOIN alert_rules r ON r.id = s.rule_id
WHERE s.phase IN ('pending', 'recovering') AND r.enabled
ORDER BY s.rule_id, s.device
FOR UPDATE OF s
"""


# -- the rules ------------------------------------------------------------------------------------------


async def on_state(conn: asyncpg.Connection, site: str, change: StateChange) -> list[AlertChange]:
    """A device's newest health state drives its health and sensor-fault rules."""
    target = await _target(conn, change.device, site)
    now = datetime.now(UTC)
    out: list[AlertChange] = []
    for rule in applicable(await load_enabled(conn, (HEALTH, SENSOR_FAULT)), target):
        fires, clears, severity = state_verdict(rule, change.state.value)
        out += await _observe(
            conn, rule, target, fires, clears, severity, explanation(change), change.ts, now
        )
    return out


async def on_data(conn: asyncpg.Connection, devices: set[str], now: datetime) -> list[AlertChange]:
    """Data arrived: these devices are not offline; their latest values drive threshold and rate rules."""
    if not devices:
        return []
    names = sorted(devices)
    with storage_errors("clearing offline alerts"):
        rows = await conn.fetch(_CLEAR_OFFLINE, names, now)
    out = [await _cleared(conn, row, now) for row in rows]
    rules = await load_enabled(conn, ("threshold", "rate"))
    if not rules:
        return out
    targets = await load_targets(conn, names)
    with storage_errors("reading latest values"):
        latest = await conn.fetch(
            "SELECT device, last_values, last_reading_at FROM devices WHERE device = ANY($1::text[]) "
            "AND last_values IS NOT NULL ORDER BY device",
            names,
        )
    for row in latest:
        values = row["last_values"]
        values = msgspec.json.decode(values) if isinstance(values, str | bytes) else values
        target = targets[row["device"]]
        for rule in applicable(rules, target):
            if rule.metric in values:
                out += await _on_value(
                    conn, rule, target, float(values[rule.metric]), row["last_reading_at"], now
                )
    return out


async def on_status(conn: asyncpg.Connection, status: Status) -> list[AlertChange]:
    """Presence: the Last Will (or a clean shutdown) opens "offline"; a birth message clears it."""
    if status.online:
        return await on_data(conn, {status.device}, datetime.now(UTC))
    target = await _target(conn, status.device, status.site)
    details = {"reason": status.reason or "offline", "boot": status.boot, "sources": status.sources}
    out = []
    for rule in applicable(await load_enabled(conn, (OFFLINE,)), target):
        # A clean shutdown was somebody's decision (info); a Last Will means the agent vanished.
        severity = "info" if status.reason == "shutdown" else rule.severity
        out.append(await _open(conn, rule, target, severity, status.ts, details, datetime.now(UTC)))
    return out


async def tick(conn: asyncpg.Connection, offline_after: timedelta, now: datetime) -> list[AlertChange]:
    """The timer: silent devices go offline, pending rules fire, recovering rules clear.

    One process at a time (a transaction-level advisory lock; the others skip this tick), so timers of
    several collectors neither duplicate nor inflate anything.
    """
    out: list[AlertChange] = []
    with storage_errors("running the alert timer"):
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", TICK_LOCK):
                return []
            out += await _check_silent(conn, offline_after, now)
            for row in await conn.fetch(_WAITING):
                out += await _elapse(conn, row, now)
    return out


async def check_offline(
    conn: asyncpg.Connection, offline_after: timedelta, now: datetime
) -> list[AlertChange]:
    """Kept for callers of the first version: the whole timer."""
    return await tick(conn, offline_after, now)


# -- the state machine, persisted --------------------------------------------------------------------------


async def _observe(
    conn: asyncpg.Connection,
    rule: Rule,
    target: Target,
    fires: bool,
    clears: bool,
    severity: str,
    details: dict[str, Any],
    at: datetime,
    now: datetime,
    value: float | None = None,
    value_at: datetime | None = None,
) -> list[AlertChange]:
    with storage_errors("reading rule state"):
        row = await conn.fetchrow(_STATE, rule.id, target.device)
    phase = Phase(row["phase"]) if row else Phase.NORMAL
    since = row["since"] if row else now
    nxt = step(phase, since, fires=fires, clears=clears, hold=rule.hold, clear_hold=rule.clear_hold, now=now)
    moved = row is None or nxt.phase != phase or nxt.since != since or value_at is not None
    if moved:
        await _save(conn, rule, target.device, nxt, severity, details, value, value_at, now)
    return await _act(conn, rule, target, nxt, phase, severity, details, at, now)


async def _on_value(
    conn: asyncpg.Connection, rule: Rule, target: Target, value: float, at: datetime, now: datetime
) -> list[AlertChange]:
    if rule.kind == "threshold":
        fires, clears = value_verdict(rule, value)
        details = {
            "metric": rule.metric,
            "value": value,
            "threshold": rule.threshold,
            "clear_threshold": rule.clear_threshold,
            "reason": f"{rule.metric} {value:g} {rule.op} {rule.threshold:g}",
        }
        return await _observe(conn, rule, target, fires, clears, rule.severity, details, at, now)
    # rate: the change per minute against a reference taken at least window_s earlier
    with storage_errors("reading rule state"):
        row = await conn.fetchrow(_STATE, rule.id, target.device)
    if row is None or row["value_at"] is None:
        await _save(conn, rule, target.device, Step(Phase.NORMAL, now), rule.severity, {}, value, at, now)
        return []
    span = (at - row["value_at"]).total_seconds()
    if span < (rule.window_s or 60.0):
        return []
    per_minute = (value - row["value"]) / span * 60.0
    fires, clears = value_verdict(rule, per_minute)
    details = {
        "metric": rule.metric,
        "rate_per_min": per_minute,
        "value": value,
        "threshold": rule.threshold,
        "reason": f"{rule.metric} changing {per_minute:+.3g}/min",
    }
    return await _observe(conn, rule, target, fires, clears, rule.severity, details, at, now, value, at)


async def _elapse(conn: asyncpg.Connection, row: Any, now: datetime) -> list[AlertChange]:
    rule = rule_from_row({k: row[k] for k in Rule.__struct_fields__})
    phase, since = Phase(row["phase"]), row["since"]
    nxt = elapse(phase, since, hold=rule.hold, clear_hold=rule.clear_hold, now=now)
    if nxt.phase == phase:
        return []
    details = _decode(row["state_details"])
    await _save(
        conn, rule, row["state_device"], nxt, row["state_severity"], details, None, None, now, keep_value=True
    )
    target = await _target(conn, row["state_device"], None)
    return await _act(conn, rule, target, nxt, phase, row["state_severity"], details, now, now)


async def _act(
    conn: asyncpg.Connection,
    rule: Rule,
    target: Target,
    nxt: Step,
    before: Phase,
    severity: str,
    details: dict[str, Any],
    at: datetime,
    now: datetime,
) -> list[AlertChange]:
    if nxt.action == Action.CLEAR:
        with storage_errors("clearing an alert"):
            rows = await conn.fetch(
                "UPDATE alerts SET status = 'cleared', cleared_at = $3, "
                "last_seen = GREATEST(last_seen, $3) WHERE device = $1 AND rule = $2 "
                "AND status = 'active' RETURNING *",
                target.device,
                rule.name,
                at,
            )
        return [await _cleared(conn, row, now) for row in rows]
    if nxt.action != Action.OPEN:
        return []
    if rule.kind in ("threshold", "rate") and before in (Phase.FIRING, Phase.RECOVERING):
        await lifecycle.touch(conn, target.device, rule.name, at)  # still above: no news for anyone
        return []
    return [await _open(conn, rule, target, severity, at, details, now)]


async def _open(
    conn: asyncpg.Connection,
    rule: Rule,
    target: Target,
    severity: str,
    at: datetime,
    details: dict[str, Any],
    now: datetime,
) -> AlertChange:
    suppressed = await noise.suppression(conn, target, rule.name, now)
    change = await raise_alert(
        conn,
        target,
        rule.name,
        severity,
        at,
        details,
        rule_id=rule.id,
        labels=rule.labels,
        suppressed=suppressed,
    )
    if rule.kind == OFFLINE:
        await outbox.suppress_device(conn, target.device, "inhibited: the device went offline")
    await outbox.on_raised(conn, change.alert, now)
    return change


async def _cleared(conn: asyncpg.Connection, row: Any, now: datetime) -> AlertChange:
    change = AlertChange("alert.cleared", alert_from_row(row))
    await outbox.on_cleared(conn, change.alert, now)
    return change


async def _check_silent(
    conn: asyncpg.Connection, offline_after: timedelta, now: datetime
) -> list[AlertChange]:
    rules = await load_enabled(conn, (OFFLINE,))
    if not rules:
        return []
    shortest = min((timedelta(seconds=r.for_s) for r in rules if r.for_s > 0), default=offline_after)
    silent = await conn.fetch(_SILENT, now - min(shortest, offline_after))
    targets = await load_targets(conn, [r["device"] for r in silent])
    out = []
    for row in silent:
        target = targets[row["device"]]
        for rule in applicable(rules, target):
            after = timedelta(seconds=rule.for_s) if rule.for_s > 0 else offline_after
            if row["last_seen"] < now - after:
                details = {
                    "reason": "no data",
                    "last_seen": row["last_seen"].isoformat(),
                    "offline_after_s": after.total_seconds(),
                }
                out.append(await _open(conn, rule, target, rule.severity, now, details, now))
    return out


async def _save(
    conn: asyncpg.Connection,
    rule: Rule,
    device: str,
    nxt: Step,
    severity: str,
    details: dict[str, Any],
    value: float | None,
    value_at: datetime | None,
    now: datetime,
    keep_value: bool = False,
) -> None:
    with storage_errors("saving rule state"):
        if keep_value:
            await conn.execute(
                "UPDATE rule_states SET phase = $3, since = $4, updated_at = $5 "
                "WHERE rule_id = $1 AND device = $2",
                rule.id,
                device,
                nxt.phase.value,
                nxt.since,
                now,
            )
            return
        await conn.execute(
            _SAVE_STATE,
            rule.id,
            device,
            nxt.phase.value,
            nxt.since,
            severity,
            msgspec.json.encode(details).decode(),
            value,
            value_at,
            now,
        )


async def _target(conn: asyncpg.Connection, device: str, site: str | None) -> Target:
    found = (await load_targets(conn, [device])).get(device)
    if found is not None:
        return found
    # A status can arrive before anything else from a device: it has no row yet.
    with storage_errors("reading a site"):
        tenant = await conn.fetchval("SELECT tenant_id FROM sites WHERE site = $1", site)
    return Target(device, site or "", tenant, "")


def _decode(value: Any) -> dict[str, Any]:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else (value or {})
