"""The collector as an aiohttp application: routes, middlewares and the lifecycle of its parts."""

from __future__ import annotations

from importlib import resources

from aiohttp import web
from aiohttp.typedefs import Middleware

from cloud_collector import runtime
from cloud_collector.alerting.timer import alerting_ctx
from cloud_collector.api import (
    admin_handlers,
    alert_handlers,
    auth_handlers,
    handlers,
    openapi,
    rule_handlers,
)
from cloud_collector.api import stream as sse
from cloud_collector.api.problems import NotFound, problem_middleware
from cloud_collector.auth.context import auth_ctx
from cloud_collector.auth.middleware import auth_middleware
from cloud_collector.config import CollectorSettings
from cloud_collector.metrics import Metrics

DASHBOARD_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
    "charts.js": "text/javascript",
    "device.js": "text/javascript",
}


def make_app(
    settings: CollectorSettings, *, migrate: bool = False, auth: Middleware | None = auth_middleware
) -> web.Application:
    """Build the app; nothing connects until aiohttp starts it (``cleanup_ctx``).

    ``auth`` runs after the problem renderer, so its refusals are problem documents too.
    """
    middlewares = [problem_middleware] + ([auth] if auth is not None else [])
    app = web.Application(middlewares=middlewares)
    app[runtime.SETTINGS] = settings
    app[runtime.MIGRATE] = migrate
    app[runtime.METRICS] = Metrics()
    app.cleanup_ctx.extend(
        [
            runtime.database_ctx,
            runtime.events_ctx,
            auth_ctx,
            runtime.ingest_ctx,
            runtime.timers_ctx,
            alerting_ctx,
        ]
    )
    app.on_shutdown.append(_end_streams)
    add_routes(app)
    return app


ROUTES = [
    ("GET", "/healthz", handlers.healthz),
    ("GET", "/readyz", handlers.readyz),
    ("GET", "/metrics", handlers.metrics),
    ("POST", "/api/v1/auth/login", auth_handlers.login),
    ("POST", "/api/v1/auth/logout", auth_handlers.logout),
    ("GET", "/api/v1/auth/me", auth_handlers.me),
    ("GET", "/api/v1/devices", handlers.list_devices),
    ("GET", "/api/v1/devices/{device}", handlers.get_device),
    ("PATCH", "/api/v1/devices/{device}", handlers.patch_device),
    ("GET", "/api/v1/devices/{device}/readings", handlers.device_readings),
    ("GET", "/api/v1/devices/{device}/states", handlers.device_states),
    ("GET", "/api/v1/alerts", alert_handlers.list_alerts),
    ("GET", "/api/v1/alerts/{id}", alert_handlers.get_alert),
    ("POST", "/api/v1/alerts/{id}/ack", alert_handlers.acknowledge_alert),
    ("POST", "/api/v1/alerts/{id}/comments", alert_handlers.comment_alert),
    ("POST", "/api/v1/alerts/{id}/feedback", alert_handlers.alert_feedback),
    ("GET", "/api/v1/reports/false-alarms", alert_handlers.false_alarms),
    ("GET", "/api/v1/silences", rule_handlers.list_silences),
    ("POST", "/api/v1/silences", rule_handlers.create_silence),
    ("DELETE", "/api/v1/silences/{id}", rule_handlers.expire_silence),
    ("GET", "/api/v1/rules", rule_handlers.list_rules),
    ("POST", "/api/v1/rules", rule_handlers.create_rule),
    ("PUT", "/api/v1/rules/{id}", rule_handlers.update_rule),
    ("DELETE", "/api/v1/rules/{id}", rule_handlers.delete_rule),
    ("GET", "/api/v1/channels", admin_handlers.list_channels),
    ("POST", "/api/v1/channels", admin_handlers.create_channel),
    ("DELETE", "/api/v1/channels/{id}", admin_handlers.delete_channel),
    ("GET", "/api/v1/users", admin_handlers.list_users),
    ("POST", "/api/v1/users", admin_handlers.create_user),
    ("DELETE", "/api/v1/users/{id}", admin_handlers.disable_user),
    ("GET", "/api/v1/apikeys", admin_handlers.list_keys),
    ("POST", "/api/v1/apikeys", admin_handlers.create_key),
    ("DELETE", "/api/v1/apikeys/{id}", admin_handlers.revoke_key),
    ("GET", "/api/v1/tenants", admin_handlers.list_tenants),
    ("POST", "/api/v1/tenants", admin_handlers.create_tenant),
    ("GET", "/api/v1/sites", admin_handlers.list_sites),
    ("PUT", "/api/v1/sites/{site}", admin_handlers.put_site),
    ("GET", "/api/v1/stream", sse.stream),
]


def add_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
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
