"""Access control through the real app: every role against every route, tenant isolation, logins,
sessions in a real Redis, API keys, and the CLI that bootstraps them."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from typer.testing import CliRunner

from cloud_collector.api import make_app
from cloud_collector.api.app import ROUTES
from cloud_collector.auth.context import AUTH_SETTINGS, AuthSettings
from cloud_collector.auth.policy import POLICY, PUBLIC
from cloud_collector.auth.principal import Role
from cloud_collector.auth.ratelimit import LoginLimits
from cloud_collector.cli import app as cli
from cloud_collector.runtime import CONSUMER
from common.schema import HealthState
from tests.auth_helpers import assign_site, bearer, make_key, make_user
from tests.collector_helpers import Publisher, boot_id, eventually, fetch, settings_for, state_change, unique

PASSWORD = "correct horse battery"


@pytest.fixture
async def app(pg_url, broker, redis_url, aiohttp_client):
    await make_key(pg_url)  # migrates
    application = make_app(settings_for(broker.url, pg_url, redis={"url": redis_url}), migrate=True)
    application[AUTH_SETTINGS] = AuthSettings(limits=LoginLimits(per_account=3, per_address=100))
    client = await aiohttp_client(application)
    await application[CONSUMER].wait_subscribed(10)
    return client


def test_every_route_has_a_policy():
    served = {(m, p) for m, p, _ in ROUTES} | {
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/"),
        ("GET", "/dashboard/{name}"),
    }
    assert served == set(POLICY) | set(PUBLIC)


async def test_rbac_matrix_every_role_against_every_endpoint(app, pg_url):
    """Anonymous: 401. Below the route's role: 403. At or above it: neither (the handler answers)."""
    keys = {role: await make_key(pg_url, role.label) for role in Role}
    keys_tenant_admin = await make_key(pg_url, "admin", tenant=unique("tenant"))
    wrong: list[str] = []
    for (method, path), need in sorted(POLICY.items()):
        url = path.replace("{device}", "nobody").replace("{id}", "987654").replace("{site}", "nowhere")
        cases = [(None, 401)] + [(role, 403 if role < need.role else None) for role in Role]
        if need.platform:
            cases.append(("tenant-admin", 403))
        for who, expected in cases:
            key = keys_tenant_admin if who == "tenant-admin" else keys.get(who)  # type: ignore[arg-type]
            headers = bearer(key) if key else {}
            async with app.request(method, url, headers=headers, json={} if method != "GET" else None) as r:
                status = r.status
            ok = status == expected if expected else status not in (401, 403)
            if not ok:
                wrong.append(f"{who} {method} {url}: {status}, expected {expected or 'not 401/403'}")
    assert wrong == []


async def test_public_routes_need_no_credentials(app):
    for path in ("/healthz", "/metrics", "/api/v1/openapi.json", "/", "/dashboard/app.js"):
        assert (await app.get(path)).status == 200, path
    problem = await app.get("/api/v1/devices")
    assert problem.status == 401 and problem.content_type == "application/problem+json"
    assert problem.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_tenant_sees_only_its_own_sites(app, pg_url, broker):
    a_site, b_site, boot = unique("site-a"), unique("site-b"), boot_id()
    a_dev, b_dev = unique("dev"), unique("dev")
    await assign_site(pg_url, a_site, "acme")
    await assign_site(pg_url, b_site, "globex")
    acme = bearer(await make_key(pg_url, "technician", tenant="acme"))
    platform = bearer(await make_key(pg_url, "viewer"))
    async with app.get("/api/v1/stream", headers=acme) as stream:
        publisher = Publisher(broker.url)
        try:
            publisher.send(state_change(b_site, b_dev, boot, 1, HealthState.ALARM))
            publisher.send(state_change(a_site, a_dev, boot, 2, HealthState.WARNING))
        finally:
            publisher.close()
        seen = await asyncio.wait_for(_stream_until(stream, a_dev), 10)
    assert b_dev not in seen  # the other tenant's events never reach this stream

    everything = await eventually(
        lambda: _get(app, "/api/v1/alerts", platform),
        lambda b: {a["device"] for a in b["alerts"]} >= {a_dev, b_dev},
    )
    b_alert = next(a for a in everything["alerts"] if a["device"] == b_dev)
    mine = await _get(app, "/api/v1/alerts?status=all", acme)
    assert {a["device"] for a in mine["alerts"]} == {a_dev}
    assert {d["device"] for d in (await _get(app, "/api/v1/devices", acme))["devices"]} == {a_dev}
    assert [s["site"] for s in (await _get(app, "/api/v1/sites", acme))["sites"]] == [a_site]
    for method, path in (
        ("GET", f"/api/v1/devices/{b_dev}"),
        ("GET", f"/api/v1/devices/{b_dev}/readings"),
        ("GET", f"/api/v1/alerts/{b_alert['id']}"),
        ("POST", f"/api/v1/alerts/{b_alert['id']}/ack"),
    ):
        async with app.request(method, path, headers=acme, json={}) as r:
            assert r.status == 404, (method, path)  # not 403: no hint that it exists
    rows = await fetch(pg_url, "SELECT acknowledged_by FROM alerts WHERE device = $1", b_dev)
    assert rows[0]["acknowledged_by"] is None


async def test_login_session_logout_and_revocation(app, pg_url, caplog):
    caplog.set_level(logging.DEBUG)
    await make_user(pg_url, "kim@example.com", PASSWORD, "technician")
    r = await app.post("/api/v1/auth/login", json={"email": "Kim@Example.com", "password": PASSWORD})
    assert r.status == 200 and (await r.json())["role"] == "technician"
    cookie = r.cookies["signalcraft_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert (await _get(app, "/api/v1/auth/me", {}))["name"] == "kim@example.com"
    # A cross-site form post carrying the cookie is refused.
    evil = await app.post("/api/v1/auth/logout", headers={"Origin": "https://evil.example"})
    assert evil.status == 403
    assert (await app.post("/api/v1/auth/logout")).status == 204
    assert (await app.get("/api/v1/auth/me")).status == 401

    # Disabling a user ends their sessions at once (they live in Redis, indexed per user).
    await app.post("/api/v1/auth/login", json={"email": "kim@example.com", "password": PASSWORD})
    assert (await app.get("/api/v1/auth/me")).status == 200
    admin = bearer(await make_key(pg_url, "admin"))
    users = (await _get(app, "/api/v1/users", admin))["users"]
    kim = next(u for u in users if u["email"] == "kim@example.com")
    assert (await app.delete(f"/api/v1/users/{kim['id']}", headers=admin)).status == 204
    assert (await app.get("/api/v1/auth/me")).status == 401
    assert PASSWORD not in caplog.text and cookie.value not in caplog.text


async def test_failed_logins_are_rate_limited(app, pg_url):
    lee = f"{unique('lee')}@example.com"  # failures are counted in the shared Redis: a fresh account
    await make_user(pg_url, lee, PASSWORD, "viewer")
    for _ in range(3):
        r = await app.post("/api/v1/auth/login", json={"email": lee, "password": "guess-guess"})
        assert r.status == 401
    r = await app.post("/api/v1/auth/login", json={"email": lee, "password": PASSWORD})
    assert r.status == 429 and int(r.headers["Retry-After"]) > 0
    assert "too many" in (await r.json())["detail"]


async def test_api_keys_are_stored_hashed_shown_once_and_revocable(app, pg_url):
    admin = bearer(await make_key(pg_url, "admin"))
    r = await app.post("/api/v1/apikeys", headers=admin, json={"role": "viewer", "name": "grafana"})
    assert r.status == 201
    made = await r.json()
    key = made["key"]
    assert "key" not in made["apikey"]
    stored = await fetch(pg_url, "SELECT key_hash FROM api_keys WHERE id = $1", made["apikey"]["id"])
    assert key not in stored[0]["key_hash"]
    assert all(
        "key" not in k or k["prefix"] in key for k in (await _get(app, "/api/v1/apikeys", admin))["apikeys"]
    )
    assert (await app.get("/api/v1/devices", headers=bearer(key))).status == 200
    assert (await app.delete(f"/api/v1/apikeys/{made['apikey']['id']}", headers=admin)).status == 204
    assert (await app.get("/api/v1/devices", headers=bearer(key))).status == 401
    assert (await app.get("/api/v1/devices", headers={"Authorization": "Basic abc"})).status == 401


def test_cli_bootstraps_users_and_keys(pg_url, broker):
    asyncio.run(make_key(pg_url))  # migrated
    env = {"SIGNALCRAFT_DATABASE_URL": pg_url, "SIGNALCRAFT_MQTT_URL": broker.url}
    runner = CliRunner()
    added = runner.invoke(
        cli,
        ["users", "add", "ops@example.com", "--role", "admin", "--tenant", "acme", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
    )
    assert added.exit_code == 0, added.output
    assert PASSWORD not in added.output
    again = runner.invoke(
        cli,
        ["users", "add", "ops@example.com", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
    )
    assert again.exit_code == 1 and "already exists" in again.output
    short = runner.invoke(
        cli,
        ["users", "add", "x@example.com", "--role", "viewer", "--password-stdin"],
        input="short\n",
        env=env,
    )
    assert short.exit_code == 1 and "at least" in short.output
    bad_role = runner.invoke(cli, ["apikeys", "create", "--role", "root"], env=env)
    assert bad_role.exit_code == 2
    key = runner.invoke(cli, ["apikeys", "create", "--role", "viewer", "--tenant", "acme"], env=env)
    assert key.exit_code == 0 and key.output.startswith("sc_")
    rows = asyncio.run(
        fetch(pg_url, "SELECT role, tenant_id FROM api_keys WHERE prefix = $1", key.output.split("_")[1])
    )
    assert rows[0]["role"] == "viewer" and rows[0]["tenant_id"] is not None


async def _get(client, path: str, headers: dict[str, str]):
    r = await client.get(path, headers=headers)
    assert r.status == 200, await r.text()
    return await r.json()


async def _stream_until(response: aiohttp.ClientResponse, device: str) -> str:
    text = ""
    async for raw in response.content:
        text += raw.decode()
        if f'"device":"{device}"' in text and "alert.created" in text:
            return text
    return text
