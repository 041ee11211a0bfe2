"""REST handlers of the fleet: probes, metrics, devices, readings, health history.

Alerts are in :mod:`.alert_handlers`, rules and silences in :mod:`.rule_handlers`, access and
administration in :mod:`.admin_handlers` and :mod:`.auth_handlers`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from cloud_collector import queries
from cloud_collector.api.bodies import DevicePatch
from cloud_collector.api.http import body, choice_param, conn, int_param, json_response, scope, time_param
from cloud_collector.api.problems import BadRequest, NotFound
from cloud_collector.errors import storage_errors
from cloud_collector.runtime import CONSUMER, METRICS, readiness

DEFAULT_WINDOW = timedelta(hours=1)
ALL_TIME = timedelta(days=365 * 100)
RESOLUTIONS = ("auto", "raw", "1m", "1h")


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    reasons = await readiness(request.app)
    if reasons:
        return json_response({"status": "not ready", "reasons": reasons}, status=503)
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    consumer = request.app.get(CONSUMER)
    depth, connected = (consumer.depth, consumer.connected) if consumer else (0, False)
    text = request.app[METRICS].render(depth, connected)
    return web.Response(
        text=text, content_type="text/plain", charset="utf-8", headers={"X-Content-Format": "version=0.0.4"}
    )


async def list_devices(request: web.Request) -> web.Response:
    async with conn(request) as c:
        return json_response({"devices": await queries.devices(c, scope(request))})


async def get_device(request: web.Request) -> web.Response:
    name = request.match_info["device"]
    async with conn(request) as c:
        found = await queries.device(c, name, scope(request))
    if found is None:
        raise NotFound(f"no device {name!r}")
    return json_response(found)


async def patch_device(request: web.Request) -> web.Response:
    """Set what kind of machine a device is, so rules for that type apply to it."""
    name = request.match_info["device"]
    patch = await body(request, DevicePatch)
    async with conn(request) as c:
        if await queries.device(c, name, scope(request)) is None:
            raise NotFound(f"no device {name!r}")
        with storage_errors("setting a device type"):
            await c.execute(
                "INSERT INTO device_meta (device, type) VALUES ($1, $2) "
                "ON CONFLICT (device) DO UPDATE SET type = EXCLUDED.type",
                name,
                patch.type.strip(),
            )
        return json_response(await queries.device(c, name, scope(request)))


async def device_readings(request: web.Request) -> web.Response:
    """Raw readings for short windows, 1-minute or 1-hour averages for long ones (``resolution=auto``)."""
    name = request.match_info["device"]
    start, end = _window(request)
    limit = int_param(request, "limit", 1000)
    resolution = choice_param(request, "resolution", RESOLUTIONS, "auto")
    if resolution == "auto":
        resolution = queries.auto_resolution(start, end)
    async with conn(request) as c:
        if await queries.device(c, name, scope(request)) is None:
            raise NotFound(f"no device {name!r}")
        if resolution == "raw":
            rows = await queries.readings(c, name, start, end, limit)
            return json_response(
                {
                    "device": name,
                    "from": start,
                    "to": end,
                    "resolution": "raw",
                    "readings": rows,
                    "buckets": [],
                }
            )
        buckets = await queries.buckets(c, name, start, end, resolution or "1m", limit)
    return json_response(
        {
            "device": name,
            "from": start,
            "to": end,
            "resolution": resolution,
            "readings": [],
            "buckets": buckets,
        }
    )


async def device_states(request: web.Request) -> web.Response:
    """The device's health transitions with the edge's explanation, newest first (default: all of them)."""
    name = request.match_info["device"]
    start, end = _window(request, default=ALL_TIME)
    limit = int_param(request, "limit", 200)
    async with conn(request) as c:
        if await queries.device(c, name, scope(request)) is None:
            raise NotFound(f"no device {name!r}")
        rows = await queries.states(c, name, start, end, limit)
    return json_response({"device": name, "states": rows})


def _window(request: web.Request, default: timedelta = DEFAULT_WINDOW) -> tuple[datetime, datetime]:
    end = time_param(request, "to") or datetime.now(UTC)
    start = time_param(request, "from")
    if start is None:
        try:
            start = end - default
        except OverflowError:  # a 'to' near year 1: the window starts at the beginning of time
            start = datetime.min.replace(tzinfo=UTC)
    if start >= end:
        raise BadRequest("'from' must be before 'to'")
    return start, end
