"""Alert rules as data: what a row of ``alert_rules`` says, which rule applies to a device, and whether
an observation fires or clears it.

Several rules may share a name (the built-in ``health`` for everyone, a stricter ``health`` for one
device type, another for one device): for each device the most specific enabled one wins, in this order:
device, device type, tenant, everyone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec

from cloud_collector.errors import storage_errors
from common.schema import StateChange

Kind = Literal["threshold", "rate", "health", "sensor_fault", "offline"]
Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK = {"info": 1, "warning": 2, "critical": 3}

_FIRING_STATES = {"WARNING": "warning", "ALARM": "critical"}


class Rule(msgspec.Struct, kw_only=True):
    id: int
    tenant_id: int | None
    name: str
    kind: Kind
    device: str | None
    device_type: str | None
    metric: str | None
    op: Literal[">", "<"]
    threshold: float | None
    clear_threshold: float | None
    window_s: float | None
    for_s: float
    clear_for_s: float
    severity: Severity
    enabled: bool
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def hold(self) -> timedelta:
        return timedelta(seconds=self.for_s)

    @property
    def clear_hold(self) -> timedelta:
        return timedelta(seconds=self.clear_for_s)

    @property
    def labels(self) -> dict[str, str]:
        """What, besides tenant, rule and device, makes this alert's fingerprint."""
        return {"metric": self.metric} if self.metric else {}

    def specificity(self) -> int:
        return (
            (self.device is not None) * 4 + (self.device_type is not None) * 2 + (self.tenant_id is not None)
        )


class Target(msgspec.Struct, frozen=True):
    """A device as the rules see it."""

    device: str
    site: str
    tenant_id: int | None
    type: str


def rule_from_row(row: Any) -> Rule:
    return msgspec.convert(dict(row), Rule)


async def load_enabled(conn: asyncpg.Connection, kinds: tuple[str, ...]) -> list[Rule]:
    with storage_errors("loading alert rules"):
        rows = await conn.fetch("SELECT * FROM alert_rules WHERE enabled AND kind = ANY($1::text[])", kinds)
    return [rule_from_row(r) for r in rows]


async def load_targets(conn: asyncpg.Connection, devices: list[str]) -> dict[str, Target]:
    with storage_errors("loading devices for the rules"):
        rows = await conn.fetch(
            """SELECT d.device, d.site, s.tenant_id, coalesce(m.type, '') AS type
               FROM devices d LEFT JOIN sites s USING (site) LEFT JOIN device_meta m USING (device)
               WHERE d.device = ANY($1::text[])""",
            devices,
        )
    return {r["device"]: Target(r["device"], r["site"], r["tenant_id"], r["type"]) for r in rows}


def applicable(rules: list[Rule], target: Target) -> list[Rule]:
    """The winning rule of every name that applies to ``target``."""
    best: dict[str, Rule] = {}
    for rule in rules:
        if rule.tenant_id is not None and rule.tenant_id != target.tenant_id:
            continue
        if rule.device is not None and rule.device != target.device:
            continue
        if rule.device_type is not None and rule.device_type != target.type:
            continue
        current = best.get(rule.name)
        if current is None or rule.specificity() > current.specificity():
            best[rule.name] = rule
    return sorted(best.values(), key=lambda r: r.name)


def state_verdict(rule: Rule, state: str) -> tuple[bool, bool, str]:
    """(fires, clears, severity) of a health or sensor-fault rule for an edge health state."""
    if rule.kind == "health":
        # Between WARNING/ALARM and HEALTHY (INITIALIZING, SENSOR_FAULT) a health alert stays as it is.
        return state in _FIRING_STATES, state == "HEALTHY", _FIRING_STATES.get(state, rule.severity)
    return state == "SENSOR_FAULT", state != "SENSOR_FAULT", rule.severity


def value_verdict(rule: Rule, value: float) -> tuple[bool, bool]:
    """(fires, clears) of a threshold or rate rule; clear_threshold defaults to the threshold."""
    assert rule.threshold is not None
    clear_at = rule.clear_threshold if rule.clear_threshold is not None else rule.threshold
    if rule.op == ">":
        return value > rule.threshold, value < clear_at
    return value < rule.threshold, value > clear_at


def validate(rule: Rule) -> str | None:
    """Why a rule cannot work (None when it can); the API refuses such a rule with this text."""
    if rule.kind in ("threshold", "rate"):
        if not rule.metric:
            return f"a {rule.kind} rule needs 'metric'"
        if rule.threshold is None:
            return f"a {rule.kind} rule needs 'threshold'"
        if rule.clear_threshold is not None:
            wrong = (
                rule.clear_threshold > rule.threshold
                if rule.op == ">"
                else rule.clear_threshold < rule.threshold
            )
            if wrong:
                return (
                    f"clear_threshold {rule.clear_threshold} is on the firing side of threshold "
                    f"{rule.threshold} for op {rule.op!r}"
                )
    if rule.kind == "rate" and (rule.window_s is None or rule.window_s <= 0):
        return "a rate rule needs a positive 'window_s'"
    if rule.for_s < 0 or rule.clear_for_s < 0:
        return "'for_s' and 'clear_for_s' must not be negative"
    return None


def explanation(change: StateChange) -> dict[str, Any]:
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
