"""The HTTP API through aiohttp's test client, and one real server read over a socket for SSE."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp
import pytest

from cloud_collector.api import make_app
from cloud_collector.events import id_key
from cloud_collector.runtime import CONSUMER
from cloud_collector.service import Collector
from common.schema import HealthState
from tests.auth_helpers import bearer, make_key
from tests.collector_helpers import (
    T0,
    Publisher,
    boot_id,
    eventually,
    settings_for,
    state_change,
    telemetry,
    unique,
)


@pytest.fixture
async def client(pg_url, broker, aiohttp_client):
    key = await make_key(pg_url, "admin")
    app = make_app(settings_for(broker.url, pg_url), migrate=True)
    c = await aiohttp_client(app, headers=bearer(key))
    await app[CONSUMER].wait_subscribed(10)
    return c


@pytest.fixture
def publisher(broker):
    p = Publisher(broker.url)
    yield p
    p.close()


async def _json(client, path: str, status: int = 200):
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json()


async def test_probes(client):
    assert await _json(client, "/healthz") == {"status": "ok"}
    assert await _json(client, "/readyz") == {"status": "ready"}


async def test_devices_readings_alerts_and_ack(client, publisher):
    site, device, boot = unique("site"), unique("dev"), boot_id()
    publisher.send(telemetry(site, device, boot, [0, 1, 2], values={"suction_p": 2.5, "current": 4.0}))
    publisher.send(state_change(site, device, boot, 3, HealthState.WARNING, previous=HealthState.HEALTHY))

    fleet = await eventually(lambda: _json(client, "/api/v1/devices"),
                             lambda body: any(d["active_alerts"] == 1 for d in body["devices"]))
    (entry,) = [d for d in fleet["devices"] if d["device"] == device]
    assert entry["health"] == "WARNING" and entry["site"] == site
    assert entry["last_values"] == {"suction_p": 2.5, "current": 4.0}

    one = await _json(client, f"/api/v1/devices/{device}")
    assert one["device"] == device and one["state"] == "WARNING"

    window = {"from": (T0 - timedelta(minutes=1)).isoformat(), "to": (T0 + timedelta(minutes=1)).isoformat()}
    path = f"/api/v1/devices/{device}/readings"
    body = await (await client.get(path, params=window)).json()
    assert [r["seq"] for r in body["readings"]] == [2, 1, 0]
    body = await (await client.get(path, params={**window, "limit": "1"})).json()
    assert [r["seq"] for r in body["readings"]] == [2]
    # Default window: the last hour (these readings are from T0, long ago).
    assert (await _json(client, f"/api/v1/devices/{device}/readings"))["readings"] == []

    alerts = (await _json(client, f"/api/v1/alerts?device={device}"))["alerts"]
    assert [(a["rule"], a["status"]) for a in alerts] == [("health", "active")]
    assert alerts[0]["details"]["contributors"][0]["feature"] == "band_500_2000"

    ack = {"by": "kim", "comment": "on it"}  # an API key may say on whose behalf
    response = await client.post(f"/api/v1/alerts/{alerts[0]['id']}/ack", json=ack)
    assert response.status == 200
    acked = await response.json()
    assert (acked["acknowledged_by"], acked["ack_comment"]) == ("kim", "on it")
    # Filtered by device: retained Last Wills of other tests' agents share this broker.
    assert (await _json(client, f"/api/v1/alerts?status=cleared&device={device}"))["alerts"] == []
    assert len((await _json(client, f"/api/v1/alerts?status=all&device={device}"))["alerts"]) == 1


@pytest.mark.parametrize(("method", "path", "status", "detail"), [
    ("GET", "/api/v1/devices/nobody", 404, "no device 'nobody'"),
    ("GET", "/api/v1/devices/nobody/readings", 404, "no device"),
    ("GET", "/api/v1/alerts?status=maybe", 400, "status must be one of"),
    ("GET", "/api/v1/alerts?limit=zero", 400, "'limit' must be an integer"),
    ("POST", "/api/v1/alerts/999/ack", 400, "expected a JSON AckRequest"),
    ("GET", "/api/v1/nowhere", 404, ""),
    ("DELETE", "/api/v1/devices", 405, ""),
])
async def test_errors_are_problem_documents(client, method, path, status, detail):
    response = await client.request(method, path, data=b"not json" if method == "POST" else None)
    assert response.status == status
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["status"] == status and body["title"]
    assert detail in body.get("detail", "")


async def test_ack_of_unknown_alert_is_404(client):
    response = await client.post("/api/v1/alerts/424242/ack", json={"by": "kim"})
    assert response.status == 404


async def test_bad_time_is_400(client, publisher):
    site, device = unique("site"), unique("dev")
    publisher.send(telemetry(site, device, boot_id(), [0]))
    await eventually(lambda: client.get(f"/api/v1/devices/{device}"), lambda r: r.status == 200)
    response = await client.get(f"/api/v1/devices/{device}/readings?from=yesterday")
    assert response.status == 400 and "ISO 8601" in (await response.json())["detail"]


async def test_openapi_documents_every_route(client):
    doc = await _json(client, "/api/v1/openapi.json")
    assert doc["openapi"].startswith("3.1")
    served = {
        (r.method.lower(), r.resource.canonical)
        for r in client.app.router.routes()
        if r.method != "HEAD" and r.resource.canonical not in ("/", "/dashboard/{name}")
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    for ref in ("AlertView", "DeviceView", "ReadingView", "AckRequest", "ProblemDoc", "Rule",
                "SilenceRequest"):
        assert ref in doc["components"]["schemas"]


async def test_metrics_count_messages(client, publisher):
    site, device, boot = unique("site"), unique("dev"), boot_id()
    publisher.send(telemetry(site, device, boot, [0, 1]))
    publisher.send(telemetry(site, device, boot, [0, 1]))
    publisher.raw(f"signalcraft/v1/{site}/{device}/telemetry", b"{}")

    async def metrics() -> str:
        return await (await client.get("/metrics")).text()

    text = await eventually(metrics, lambda t: "signalcraft_collector_dead_letters_total 1" in t)
    assert 'signalcraft_collector_messages_received_total{kind="telemetry"} 3' in text
    assert "signalcraft_collector_readings_stored_total 2" in text
    assert "signalcraft_collector_duplicates_total 2" in text
    assert "signalcraft_collector_queue_depth 0" in text


async def test_dashboard_is_served_without_external_resources(client):
    html = await (await client.get("/")).text()
    assert "<title>" in html and "http://" not in html and "https://" not in html
    for name in ("app.js", "device.js", "charts.js", "style.css"):
        response = await client.get(f"/dashboard/{name}")
        assert response.status == 200
        text = await response.text()
        assert "https://" not in text and "//cdn" not in text and "import(" not in text


async def test_stream_over_a_real_socket_delivers_alert_created(broker, pg_url, publisher):
    """A real server and a real HTTP client: publish a WARNING, read ``event: alert.created`` from SSE."""
    site, device, boot = unique("site"), unique("dev"), boot_id()
    key = await make_key(pg_url, "viewer")
    async with Collector(settings_for(broker.url, pg_url), migrate=True) as collector, \
            aiohttp.ClientSession(headers=bearer(key)) as http, \
            http.get(f"{collector.url}/api/v1/stream") as response:
        await collector.wait_subscribed()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        publisher.send(state_change(site, device, boot, 1, HealthState.WARNING, previous=HealthState.HEALTHY))
        events = await asyncio.wait_for(_read_events(response, until="alert.created"), 10)
        last_id = events[-1]["id"]
        assert f'"device":"{device}"' in events[-1]["data"]
        assert [e["event"] for e in events] == ["device.state", "alert.created"]
        assert id_key(events[1]["id"]) > id_key(events[0]["id"])

        # A browser reconnecting with Last-Event-ID gets only what came after it.
        async with http.get(f"{collector.url}/api/v1/stream",
                            headers={"Last-Event-ID": events[0]["id"]}) as again:
            replay = await asyncio.wait_for(_read_events(again, until="alert.created"), 10)
            assert [e["id"] for e in replay] == [last_id]


async def _read_events(response: aiohttp.ClientResponse, until: str) -> list[dict[str, str]]:
    events, current = [], {}
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if not line:
            if "event" in current:
                events.append(current)
                if current["event"] == until:
                    return events
            current = {}
        elif not line.startswith(":") and ":" in line:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    return events
