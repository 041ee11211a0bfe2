"""The OpenAPI 3.1 document of the collector's HTTP API.

Paths are listed here by hand; the schemas of bodies come from the very msgspec structs the handlers
decode and encode, so they cannot drift. ``tests/test_collector_api.py`` checks that every route the app
serves is documented, and ``tests/test_collector_api_schema.py`` runs schemathesis against this document.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from cloud_collector.alerting.rules import Rule
from cloud_collector.api import bodies as b
from cloud_collector.api.admin_handlers import SiteView
from cloud_collector.api.auth_handlers import MeView
from cloud_collector.api.problems import ProblemDoc
from cloud_collector.api.rule_handlers import SilenceView
from cloud_collector.auth.policy import PUBLIC
from cloud_collector.auth.store import ApiKeyView, TenantView, UserView
from cloud_collector.views import (
    AlertDetailView,
    AlertView,
    BucketView,
    CommentView,
    DeviceView,
    FeedbackView,
    ReadingView,
    StateView,
)

_REF = "#/components/schemas/{name}"
_STRUCTS: list[Any] = [
    AlertView,
    AlertDetailView,
    DeviceView,
    ReadingView,
    BucketView,
    StateView,
    CommentView,
    FeedbackView,
    Rule,
    SilenceView,
    b.ChannelView,
    UserView,
    ApiKeyView,
    TenantView,
    SiteView,
    MeView,
    ProblemDoc,
    b.LoginRequest,
    b.AckRequest,
    b.CommentRequest,
    b.FeedbackRequest,
    b.SilenceRequest,
    b.RuleRequest,
    b.ChannelRequest,
    b.UserRequest,
    b.ApiKeyRequest,
    b.TenantRequest,
    b.SiteRequest,
    b.DevicePatch,
]


def ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props)}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_PROBLEM = {"description": "Problem", "content": {"application/problem+json": {"schema": ref("ProblemDoc")}}}
_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_STR = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def q(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def p(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


_ID = p("id", {"type": "integer", "minimum": 1})
_DEVICE = p("device")
_LIMIT = q("limit", {"type": "integer", "minimum": 1, "maximum": 10000})
_WINDOW = [q("from", _TIME), q("to", _TIME)]


def op(
    summary: str,
    ok: dict[str, Any] | None,
    *,
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    status: str = "200",
    description: str = "",
) -> dict[str, Any]:
    """One operation; 400/401/403/404/503 problems are added where they can happen."""
    responses: dict[str, Any] = {status: _json(ok) if ok is not None else {"description": "Done"}}
    for code in ("400", "401", "403", "404", "409", "429", "503"):
        responses[code] = _PROBLEM
    out: dict[str, Any] = {"summary": summary, "responses": responses, "parameters": params or []}
    if description:
        out["description"] = description
    if body:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
    return out


def _paths() -> dict[str, dict[str, Any]]:
    alert_list = obj(alerts=array(ref("AlertView")), next_cursor=_NULLABLE_STR)
    return {
        "/healthz": {
            "get": {"summary": "The process is alive", "responses": {"200": _json(obj(status=_STR))}}
        },
        "/readyz": {
            "get": {
                "summary": "Database reachable, schema at head and MQTT subscribed",
                "responses": {
                    "200": _json(obj(status=_STR)),
                    "503": _json(obj(status=_STR, reasons=array(_STR)), "Not ready, with the reasons"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (no tenant data; see docs/API.md)",
                "responses": {"200": {"description": "OK", "content": {"text/plain": {"schema": _STR}}}},
            }
        },
        "/api/v1/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}
        },
        "/api/v1/auth/login": {
            "post": op("Log in; sets the session cookie", ref("MeView"), body="LoginRequest")
        },
        "/api/v1/auth/logout": {"post": op("End this session", None, status="204")},
        "/api/v1/auth/me": {"get": op("Who is asking", ref("MeView"))},
        "/api/v1/devices": {
            "get": op(
                "The fleet: health, last seen, latest values, active alerts",
                obj(devices=array(ref("DeviceView"))),
            )
        },
        "/api/v1/devices/{device}": {
            "get": op("One device", ref("DeviceView"), params=[_DEVICE]),
            "patch": op(
                "Set a device's type (rules can target types)",
                ref("DeviceView"),
                params=[_DEVICE],
                body="DevicePatch",
            ),
        },
        "/api/v1/devices/{device}/readings": {
            "get": op(
                "Readings by time range, newest first; resolution auto picks raw (≤ 6 h), 1m (≤ 7 d) or 1h",
                obj(
                    device=_STR,
                    resolution=_STR,
                    readings=array(ref("ReadingView")),
                    buckets=array(ref("BucketView")),
                    **{"from": _TIME, "to": _TIME},
                ),
                params=[_DEVICE, *_WINDOW, _LIMIT, q("resolution", {"enum": ["auto", "raw", "1m", "1h"]})],
            )
        },
        "/api/v1/devices/{device}/states": {
            "get": op(
                "Health transitions with the edge's explanation, newest first (default: all, limit 200)",
                obj(device=_STR, states=array(ref("StateView"))),
                params=[_DEVICE, *_WINDOW, _LIMIT],
            )
        },
        "/api/v1/alerts": {
            "get": op(
                "Alerts, newest first, with keyset pagination (pass next_cursor as cursor)",
                alert_list,
                params=[
                    q("status", {"enum": ["active", "cleared", "all"]}),
                    q("device", _STR),
                    q("site", _STR),
                    q("rule", _STR),
                    q("severity", {"enum": ["info", "warning", "critical"]}),
                    q("acknowledged", {"enum": ["true", "false"]}),
                    _LIMIT,
                    q("cursor", {"type": "integer", "minimum": 0, "maximum": 2**62}),
                ],
            )
        },
        "/api/v1/alerts/{id}": {
            "get": op("An alert with its comments and feedback", ref("AlertDetailView"), params=[_ID])
        },
        "/api/v1/alerts/{id}/ack": {
            "post": op(
                "Acknowledge, with an optional comment", ref("AlertView"), params=[_ID], body="AckRequest"
            )
        },
        "/api/v1/alerts/{id}/comments": {
            "post": op(
                "Comment on an alert", ref("CommentView"), params=[_ID], body="CommentRequest", status="201"
            )
        },
        "/api/v1/alerts/{id}/feedback": {
            "post": op(
                "What the technician found: confirmed_fault, false_alarm or maintenance",
                ref("FeedbackView"),
                params=[_ID],
                body="FeedbackRequest",
            )
        },
        "/api/v1/reports/false-alarms": {
            "get": op(
                "False-alarm rate per rule or device, among alerts with feedback",
                obj(by=_STR, since=_TIME, rows=array({"type": "object"})),
                params=[q("by", {"enum": ["rule", "device"]}), q("since", _TIME)],
            )
        },
        "/api/v1/silences": {
            "get": op(
                "Silences and maintenance windows (expired=true for old ones too)",
                obj(silences=array(ref("SilenceView"))),
                params=[q("expired", {"enum": ["true", "false"]})],
            ),
            "post": op(
                "Silence alerts (one-off or weekly)", ref("SilenceView"), body="SilenceRequest", status="201"
            ),
        },
        "/api/v1/silences/{id}": {"delete": op("End a silence now", ref("SilenceView"), params=[_ID])},
        "/api/v1/rules": {
            "get": op("Alert rules", obj(rules=array(ref("Rule")))),
            "post": op("Create a rule", ref("Rule"), body="RuleRequest", status="201"),
        },
        "/api/v1/rules/{id}": {
            "put": op("Replace a rule", ref("Rule"), params=[_ID], body="RuleRequest"),
            "delete": op("Delete a rule", None, params=[_ID], status="204"),
        },
        "/api/v1/channels": {
            "get": op(
                "Notification channels (secrets are never shown)", obj(channels=array(ref("ChannelView")))
            ),
            "post": op(
                "Add a webhook or e-mail channel", ref("ChannelView"), body="ChannelRequest", status="201"
            ),
        },
        "/api/v1/channels/{id}": {"delete": op("Remove a channel", None, params=[_ID], status="204")},
        "/api/v1/users": {
            "get": op("Users", obj(users=array(ref("UserView")))),
            "post": op("Add a user", ref("UserView"), body="UserRequest", status="201"),
        },
        "/api/v1/users/{id}": {
            "delete": op("Disable a user and end their sessions", None, params=[_ID], status="204")
        },
        "/api/v1/apikeys": {
            "get": op("API keys (never the keys themselves)", obj(apikeys=array(ref("ApiKeyView")))),
            "post": op(
                "Create an API key; the key is shown in this response only",
                obj(key=_STR, apikey=ref("ApiKeyView")),
                body="ApiKeyRequest",
                status="201",
            ),
        },
        "/api/v1/apikeys/{id}": {"delete": op("Revoke an API key", None, params=[_ID], status="204")},
        "/api/v1/tenants": {
            "get": op("Tenants", obj(tenants=array(ref("TenantView")))),
            "post": op(
                "Create a tenant (platform admins)", ref("TenantView"), body="TenantRequest", status="201"
            ),
        },
        "/api/v1/sites": {
            "get": op("Sites with their tenant and quiet hours", obj(sites=array(ref("SiteView"))))
        },
        "/api/v1/sites/{site}": {
            "put": op(
                "Assign a site to a tenant, set time zone and quiet hours",
                ref("SiteView"),
                params=[p("site")],
                body="SiteRequest",
            )
        },
        "/api/v1/stream": {
            "get": {
                "summary": "Server-sent events: alert.created, alert.updated, alert.cleared, device.state",
                "description": "Each event has an increasing `id:` (`<ms>-<n>`); send `Last-Event-ID` to be "
                "replayed what was missed, also on another API process. A comment line every 15 s.",
                "parameters": [{"name": "Last-Event-ID", "in": "header", "schema": _STR}],
                "responses": {
                    "200": {
                        "description": "An endless event stream",
                        "content": {"text/event-stream": {"schema": _STR}},
                    },
                    "401": _PROBLEM,
                    "403": _PROBLEM,
                },
            }
        },
    }


@cache
def document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(_STRUCTS, ref_template=_REF)
    paths = _paths()
    for path, ops in paths.items():
        for method, operation in ops.items():
            if (method.upper(), path) in PUBLIC:
                operation["security"] = []
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SignalCraft collector API",
            "version": "1",
            "description": "Fleet health, readings and alerts of compressors monitored by SignalCraft. "
            "Send an API key as `Authorization: Bearer KEY`, or log in for a session.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "signalcraft_session"},
            },
        },
        "security": [{"apiKey": []}, {"session": []}],
    }
