"""The collector as an aiohttp application: routes, middlewares and the lifecycle of its parts."""

from __future__ import annotations

from importlib import resources

from aiohttp import web
from aiohttp.typedefs import Middleware

from cloud_collector import runtime
from cloud_collector.api import handlers, openapi, stream
from cloud_collector.api.problems import NotFound, problem_middleware
from cloud_collector.config import CollectorSettings
from cloud_collector.metrics import Metrics

DASHBOARD_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}


def make_app(
    settings: CollectorSettings, *, migrate: bool = False, auth: Middleware | None = None
) -> web.Application:
    """Build the app; nothing connects until aiohttp starts it (``cleanup_ctx``).

    ``auth`` is the seam for authentication (API keys, sessions): a middleware that runs after the problem
    renderer, so its refusals are problem documents too. There is no authentication yet.
    """
    middlewares = [problem_middleware] + ([auth] if auth is not None else [])
    app = web.Application(middlewares=middlewares)
    app[runtime.SETTINGS] = settings
    app[runtime.MIGRATE] = migrate
    app[runtime.METRICS] = Metrics()
    app.cleanup_ctx.extend([runtime.database_ctx, runtime.events_ctx, runtime.ingest_ctx, runtime.timers_ctx])
    app.on_shutdown.append(_end_streams)
    add_routes(app)
    return app


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_get("/api/v1/devices", handlers.list_devices)
    app.router.add_get("/api/v1/devices/{device}", handlers.get_device)
    app.router.add_get("/api/v1/devices/{device}/readings", handlers.device_readings)
    app.router.add_get("/api/v1/alerts", handlers.list_alerts)
    app.router.add_post("/api/v1/alerts/{id}/ack", handlers.acknowledge_alert)
    app.router.add_get("/api/v1/stream", stream.stream)
    app.router.add_get("/api/v1/openapi.json", openapi_json)
    app.router.add_get("/", dashboard)
    app.router.add_get("/dashboard/{name}", dashboard)


async def openapi_json(request: web.Request) -> web.Response:
    return handlers.json_response(openapi.document())


async def dashboard(request: web.Request) -> web.Response:
    name = request.match_info.get("name", "index.html")
    if name not in DASHBOARD_FILES:
        raise NotFound(f"no dashboard file {name!r}")
    body = resources.files("cloud_collector.dashboard").joinpath(name).read_bytes()
    return web.Response(body=body, content_type=DASHBOARD_FILES[name], headers={"Cache-Control": "no-cache"})


async def _end_streams(app: web.Application) -> None:
    # on_shutdown runs before the server waits for open requests: end the endless SSE responses first.
    bus = app.get(runtime.BUS)
    if bus is not None:
        bus.hub.close()
