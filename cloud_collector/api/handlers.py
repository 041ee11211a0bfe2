"""REST handlers: probes, devices, readings, alerts, acknowledgement, metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from aiohttp import web

from cloud_collector import alerts, queries
from cloud_collector.api.problems import BadRequest, NotFound
from cloud_collector.errors import storage_errors
from cloud_collector.runtime import BUS, CONSUMER, METRICS, POOL, readiness

DEFAULT_WINDOW = timedelta(hours=1)
MAX_LIMIT = 10_000
ALERT_STATUSES = ("active", "cleared", "all")


class AckRequest(msgspec.Struct, forbid_unknown_fields=True):
    by: str
    comment: str = ""


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(payload), status=status, content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    reasons = await readiness(request.app)
    if reasons:
        return json_response({"status": "not ready", "reasons": reasons}, status=503)
    return json_response({"status": "ready"})


async def list_devices(request: web.Request) -> web.Response:
    async with _conn(request) as conn:
        return json_response({"devices": await queries.devices(conn)})


async def get_device(request: web.Request) -> web.Response:
    name = request.match_info["device"]
    async with _conn(request) as conn:
        found = await queries.device(conn, name)
    if found is None:
        raise NotFound(f"no device {name!r}")
    return json_response(found)


async def device_readings(request: web.Request) -> web.Response:
    name = request.match_info["device"]
    end = _time_param(request, "to") or datetime.now(UTC)
    start = _time_param(request, "from") or end - DEFAULT_WINDOW
    if start >= end:
        raise BadRequest("'from' must be before 'to'")
    limit = _int_param(request, "limit", 1000, 1, MAX_LIMIT)
    async with _conn(request) as conn:
        if await queries.device(conn, name) is None:
            raise NotFound(f"no device {name!r}")
        rows = await queries.readings(conn, name, start, end, limit)
    return json_response({"device": name, "from": start, "to": end, "readings": rows})


async def list_alerts(request: web.Request) -> web.Response:
    status = request.query.get("status", "active")
    if status not in ALERT_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(ALERT_STATUSES)}, got {status!r}")
    device = request.query.get("device") or None
    limit = _int_param(request, "limit", 500, 1, MAX_LIMIT)
    async with _conn(request) as conn:
        rows = await queries.alerts(conn, None if status == "all" else status, device, limit)
    return json_response({"alerts": rows})


async def acknowledge_alert(request: web.Request) -> web.Response:
    alert_id = _int_path(request, "id")
    try:
        body = msgspec.json.decode(await request.read(), type=AckRequest)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise BadRequest(f"expected JSON {{\"by\": str, \"comment\": str}}: {exc}") from None
    if not body.by.strip():
        raise BadRequest("'by' must name who acknowledges")
    async with _conn(request) as conn:
        change = await alerts.acknowledge(conn, alert_id, body.by.strip(), body.comment, datetime.now(UTC))
    if change is None:
        raise NotFound(f"no alert {alert_id}")
    await request.app[BUS].emit(change.event, change.alert)
    return json_response(change.alert)


async def metrics(request: web.Request) -> web.Response:
    consumer = request.app.get(CONSUMER)
    depth, connected = (consumer.depth, consumer.connected) if consumer else (0, False)
    text = request.app[METRICS].render(depth, connected)
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Format": "version=0.0.4"})


class _conn:
    """``async with _conn(request) as conn``: a pooled connection, with pool errors translated."""

    def __init__(self, request: web.Request) -> None:
        self._cm = request.app[POOL].acquire()

    async def __aenter__(self):
        with storage_errors("acquiring a database connection"):
            return await self._cm.__aenter__()

    async def __aexit__(self, *exc_info) -> None:
        with storage_errors("releasing a database connection"):
            await self._cm.__aexit__(*exc_info)


def _time_param(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name!r} is not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name!r} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name!r} must be between {low} and {high}, got {value}")
    return value


def _int_path(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise NotFound(f"no alert {request.match_info[name]!r}") from None
