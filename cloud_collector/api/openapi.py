"""The OpenAPI 3.1 document of the collector's HTTP API.

Paths are written here by hand; the schemas of bodies come from the very msgspec structs the handlers
encode (:mod:`cloud_collector.views`), so they cannot drift. ``tests/test_collector_api.py`` checks
that every route the app serves is documented.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from cloud_collector.api.handlers import AckRequest
from cloud_collector.api.problems import ProblemDoc
from cloud_collector.views import AlertView, DeviceView, ReadingView

_REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_PROBLEM = {"description": "Problem", "content": {"application/problem+json": {"schema": _ref("ProblemDoc")}}}
_OBJECT = {"type": "object"}
_DEVICE_PARAM = {"name": "device", "in": "path", "required": True, "schema": {"type": "string"}}


def _paths() -> dict[str, Any]:
    return {
        "/healthz": {"get": {"summary": "The process is alive", "responses": {"200": _json(_OBJECT)}}},
        "/readyz": {"get": {
            "summary": "Database reachable, schema at head and MQTT subscribed",
            "responses": {"200": _json({"type": "object"}), "503": _json({
                "type": "object",
                "properties": {"status": {"type": "string"}, "reasons": _array({"type": "string"})},
            }, "Not ready, with the reasons")},
        }},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
            "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/api/v1/devices": {"get": {"summary": "The fleet with health, last seen and active alert counts",
                                    "responses": {"200": _json({
                                        "type": "object",
                                        "properties": {"devices": _array(_ref("DeviceView"))},
                                    })}}},
        "/api/v1/devices/{device}": {"get": {
            "summary": "One device", "parameters": [_DEVICE_PARAM],
            "responses": {"200": _json(_ref("DeviceView")), "404": _PROBLEM},
        }},
        "/api/v1/devices/{device}/readings": {"get": {
            "summary": "Readings of one device, newest first (default: the last hour)",
            "parameters": [
                _DEVICE_PARAM,
                {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000,
                                                             "default": 1000}},
            ],
            "responses": {"200": _json({"type": "object", "properties": {
                "device": {"type": "string"},
                "from": {"type": "string", "format": "date-time"},
                "to": {"type": "string", "format": "date-time"},
                "readings": {"type": "array", "items": _ref("ReadingView")},
            }}), "400": _PROBLEM, "404": _PROBLEM},
        }},
        "/api/v1/alerts": {"get": {
            "summary": "Alerts, newest first",
            "parameters": [
                {"name": "status", "in": "query",
                 "schema": {"enum": ["active", "cleared", "all"], "default": "active"}},
                {"name": "device", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 10000}},
            ],
            "responses": {"200": _json({"type": "object", "properties": {
                "alerts": {"type": "array", "items": _ref("AlertView")}}}), "400": _PROBLEM},
        }},
        "/api/v1/alerts/{id}/ack": {"post": {
            "summary": "Acknowledge an alert",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": _ref("AckRequest")}}},
            "responses": {"200": _json(_ref("AlertView")), "400": _PROBLEM, "404": _PROBLEM},
        }},
        "/api/v1/stream": {"get": {
            "summary": "Server-sent events: alert.created, alert.updated, alert.cleared, device.state",
            "description": "Each event has an increasing `id:`; send `Last-Event-ID` to replay what was "
                           "missed. "
                           "A comment line is sent every 15 s.",
            "parameters": [{"name": "Last-Event-ID", "in": "header", "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "An endless event stream",
                                  "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
        }},
        "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json(_OBJECT)}}},
    }


@cache
def document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        [AlertView, DeviceView, ReadingView, AckRequest, ProblemDoc], ref_template=_REF
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": "SignalCraft collector API", "version": "1",
                 "description": "Fleet health, readings and alerts of compressors monitored by SignalCraft."},
        "paths": _paths(),
        "components": {"schemas": components},
    }
