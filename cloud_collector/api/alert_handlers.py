"""REST handlers of alerts: list (filters, keyset pagination), detail, acknowledge, comment, feedback,
and the false-alarm report that tells which rules and devices need tuning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from aiohttp import web

from cloud_collector import alerts, queries
from cloud_collector.alerting import lifecycle
from cloud_collector.api.bodies import AckRequest, CommentRequest, FeedbackRequest
from cloud_collector.api.http import (
    MAX_LIMIT,
    body,
    choice_param,
    conn,
    int_param,
    int_path,
    json_response,
    principal,
    scope,
    time_param,
)
from cloud_collector.api.problems import BadRequest, NotFound
from cloud_collector.errors import storage_errors
from cloud_collector.runtime import BUS
from cloud_collector.views import AlertDetailView, CommentView, FeedbackView

STATUSES = ("active", "cleared", "all")
SEVERITIES = ("info", "warning", "critical")


async def list_alerts(request: web.Request) -> web.Response:
    """Newest first. ``cursor`` is the ``next_cursor`` of the previous page (keyset, stable under inserts)."""
    status = choice_param(request, "status", STATUSES, "active")
    acknowledged = choice_param(request, "acknowledged", ("true", "false"), None)
    limit = int_param(request, "limit", 500, 1, MAX_LIMIT)
    cursor = int_param(request, "cursor", 0, 0, 2**62) or None
    q = request.query
    async with conn(request) as c:
        rows = await queries.alerts(
            c,
            None if status == "all" else status,
            q.get("device") or None,
            limit,
            tenant=scope(request),
            site=q.get("site") or None,
            rule=q.get("rule") or None,
            severity=choice_param(request, "severity", SEVERITIES, None),
            acknowledged=None if acknowledged is None else acknowledged == "true",
            before_id=cursor,
        )
    next_cursor = str(rows[-1].id) if len(rows) == limit else None
    return json_response({"alerts": rows, "next_cursor": next_cursor})


async def get_alert(request: web.Request) -> web.Response:
    alert_id = int_path(request, "id", "alert")
    async with conn(request) as c:
        found = await _alert_or_404(c, request, alert_id)
        with storage_errors("reading comments"):
            comments = await c.fetch("SELECT * FROM alert_comments WHERE alert_id = $1 ORDER BY id", alert_id)
            feedback = await c.fetchrow("SELECT * FROM alert_feedback WHERE alert_id = $1", alert_id)
    return json_response(
        AlertDetailView(
            alert=found,
            comments=[msgspec.convert(dict(r), CommentView) for r in comments],
            feedback=msgspec.convert(dict(feedback), FeedbackView) if feedback else None,
        )
    )


async def acknowledge_alert(request: web.Request) -> web.Response:
    alert_id = int_path(request, "id", "alert")
    req = await body(request, AckRequest)
    who = principal(request)
    # A person acknowledges as themselves; a machine (API key) may say on whose behalf.
    by = who.name if who.kind == "user" else (req.by or "").strip() or who.name
    async with conn(request) as c:
        await _alert_or_404(c, request, alert_id)
        async with c.transaction():
            change = await alerts.acknowledge(c, alert_id, by, req.comment.strip(), datetime.now(UTC))
    if change is None:
        raise NotFound(f"no alert {alert_id}")
    await request.app[BUS].emit(change.event, change.alert)
    return json_response(change.alert)


async def comment_alert(request: web.Request) -> web.Response:
    alert_id = int_path(request, "id", "alert")
    req = await body(request, CommentRequest)
    if not req.body.strip():
        raise BadRequest("a comment needs some text")
    async with conn(request) as c:
        await _alert_or_404(c, request, alert_id)
        made = await lifecycle.add_comment(
            c, alert_id, principal(request).name, req.body.strip(), datetime.now(UTC)
        )
    return json_response(made, status=201)


async def alert_feedback(request: web.Request) -> web.Response:
    alert_id = int_path(request, "id", "alert")
    req = await body(request, FeedbackRequest)
    async with conn(request) as c:
        await _alert_or_404(c, request, alert_id)
        made = await lifecycle.set_feedback(
            c, alert_id, req.verdict, principal(request).name, req.comment.strip(), datetime.now(UTC)
        )
        updated = await queries.alert(c, alert_id, scope(request))
    if updated is not None:
        await request.app[BUS].emit("alert.updated", updated)
    return json_response(made)


async def false_alarms(request: web.Request) -> web.Response:
    """False-alarm rate per rule (``by=rule``) or per device (``by=device``) since ``since``."""
    by = choice_param(request, "by", ("rule", "device"), "rule") or "rule"
    since = time_param(request, "since") or datetime.now(UTC) - timedelta(days=30)
    async with conn(request) as c:
        rows = await queries.false_alarm_report(c, by, since, scope(request))
    return json_response({"by": by, "since": since, "rows": rows})


async def _alert_or_404(c, request: web.Request, alert_id: int):
    found = await queries.alert(c, alert_id, scope(request))
    if found is None:
        raise NotFound(f"no alert {alert_id}")
    return found
