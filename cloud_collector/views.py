"""What the collector shows the outside world: typed views of database rows.

The HTTP API, the SSE stream and ``signalcraft-collector stats`` all speak these structs, so a field has
one name everywhere. ``from_row`` helpers turn asyncpg records into them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class AlertView(msgspec.Struct, kw_only=True):
    id: int
    device: str
    site: str
    rule: str
    severity: str
    status: str
    fingerprint: str
    opened_at: datetime
    cleared_at: datetime | None
    last_seen: datetime
    occurrences: int
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_comment: str | None
    details: dict[str, Any]
    tenant_id: int | None = None
    rule_id: int | None = None
    labels: dict[str, str] = {}
    suppressed: str | None = None  # why nobody was notified: inhibited, silenced
    feedback: str | None = None  # the technician's verdict: confirmed_fault, false_alarm, maintenance


class CommentView(msgspec.Struct, kw_only=True):
    id: int
    alert_id: int
    author: str
    at: datetime
    body: str


class FeedbackView(msgspec.Struct, kw_only=True):
    alert_id: int
    verdict: str
    author: str
    at: datetime
    comment: str


class AlertDetailView(msgspec.Struct, kw_only=True):
    alert: AlertView
    comments: list[CommentView]
    feedback: FeedbackView | None


class DeviceView(msgspec.Struct, kw_only=True):
    device: str
    site: str
    health: str  # last reported state, or "OFFLINE" while an offline alert is active
    state: str | None
    online: bool | None
    first_seen: datetime
    last_seen: datetime
    last_boot: str | None
    model: str | None
    last_score: float | None
    last_reading_at: datetime | None
    last_values: dict[str, float]
    active_alerts: int
    type: str = ""  # what kind of machine (rules can target a type); set with PATCH /devices/{device}


class ReadingView(msgspec.Struct, kw_only=True):
    boot: str
    seq: int
    ts: datetime
    received_at: datetime
    values: dict[str, float]
    missing: list[str]
    score: float | None
    state: str | None


class BucketView(msgspec.Struct, kw_only=True):
    """Readings averaged over one bucket (1 minute or 1 hour) starting at ``ts``."""

    ts: datetime
    count: int
    values: dict[str, float]
    score: float | None
    max_score: float | None


class StateView(msgspec.Struct, kw_only=True):
    """One health transition as the edge reported it, with its explanation."""

    ts: datetime
    state: str
    previous: str | None
    score: float | None
    model: str | None
    reason: str
    contributors: list[dict[str, Any]]


class DeviceStats(msgspec.Struct, kw_only=True):
    device: str
    site: str
    readings: int
    first_ts: datetime | None
    last_ts: datetime | None
    gaps: int  # readings that never arrived: per boot, max(seq) - min(seq) + 1 - count
    duplicates: int
    dead_letters: int


class FleetStats(msgspec.Struct, kw_only=True):
    devices: int
    readings: int
    first_ts: datetime | None
    last_ts: datetime | None
    gaps: int
    duplicates: int
    dead_letters: int  # all of them, including those whose topic named no device


class Stats(msgspec.Struct, kw_only=True):
    fleet: FleetStats
    devices: list[DeviceStats]

    @classmethod
    def of(cls, per_device: list[DeviceStats], all_dead_letters: int) -> Stats:
        """The fleet's line is the sum of the devices' (dead letters: all, named device or not)."""
        firsts = [d.first_ts for d in per_device if d.first_ts]
        lasts = [d.last_ts for d in per_device if d.last_ts]
        fleet = FleetStats(
            devices=len(per_device),
            readings=sum(d.readings for d in per_device),
            first_ts=min(firsts) if firsts else None,
            last_ts=max(lasts) if lasts else None,
            gaps=sum(d.gaps for d in per_device),
            duplicates=sum(d.duplicates for d in per_device),
            dead_letters=all_dead_letters,
        )
        return cls(fleet=fleet, devices=per_device)


def _json(value: Any, default: Any) -> Any:
    # asyncpg returns jsonb as text unless a codec is set; the pool sets one, ad-hoc connections may not.
    if value is None:
        return default
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


def alert_from_row(row: Any) -> AlertView:
    data = dict(row)
    data["details"] = _json(data.get("details"), {})
    data["labels"] = _json(data.get("labels"), {})
    return msgspec.convert({k: data[k] for k in AlertView.__struct_fields__ if k in data}, AlertView)


def device_from_row(row: Any) -> DeviceView:
    active_alerts = row["active_alerts"]
    offline = row["offline"]
    return DeviceView(
        device=row["device"],
        site=row["site"],
        health="OFFLINE" if offline else (row["last_state"] or "INITIALIZING"),
        state=row["last_state"],
        online=row["online"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        last_boot=row["last_boot"],
        model=row["model"],
        last_score=row["last_score"],
        last_reading_at=row["last_reading_at"],
        last_values=_json(row["last_values"], {}),
        active_alerts=active_alerts,
        type=(row.get("device_type") if hasattr(row, "get") else None) or "",
    )


def state_from_row(row: Any) -> StateView:
    return StateView(
        ts=row["ts"],
        state=row["state"],
        previous=row["previous"],
        score=row["score"],
        model=row["model"],
        reason=row["reason"],
        contributors=_json(row["contributors"], []),
    )


def reading_from_row(row: Any) -> ReadingView:
    return ReadingView(
        boot=row["boot"],
        seq=row["seq"],
        ts=row["ts"],
        received_at=row["received_at"],
        values=_json(row["values"], {}),
        missing=list(row["missing"]),
        score=row["score"],
        state=row["state"],
    )
