"""REST handlers of administration: tenants, sites (owner, quiet hours), users, API keys, channels.

A tenant's admin manages its own tenant only; tenants and the assignment of sites are the platform's.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

import msgspec
from aiohttp import web

from cloud_collector.alerting import noise
from cloud_collector.alerting.lifecycle import fingerprint
from cloud_collector.api.bodies import (
    ApiKeyRequest,
    ChannelRequest,
    ChannelView,
    SiteRequest,
    TenantRequest,
    UserRequest,
)
from cloud_collector.api.http import body, conn, int_path, json_response, principal, scope
from cloud_collector.api.problems import BadRequest, Conflict, Forbidden, NotFound
from cloud_collector.auth import store
from cloud_collector.auth.context import SESSIONS
from cloud_collector.auth.principal import Role
from cloud_collector.errors import storage_errors


class SiteView(msgspec.Struct, kw_only=True):
    site: str
    tenant_id: int | None
    name: str
    timezone: str
    quiet_start: str | None
    quiet_end: str | None
    quiet_min_severity: str
    devices: int


_SITES = """
SELECT s.site, s.tenant_id, coalesce(x.name, '') AS name, coalesce(x.timezone, 'UTC') AS timezone,
       x.quiet_start, x.quiet_end, coalesce(x.quiet_min_severity, 'critical') AS quiet_min_severity,
       s.devices
FROM (SELECT d.site, max(t.tenant_id) AS tenant_id, count(d.device)::int AS devices
      FROM (SELECT site, device FROM devices UNION ALL SELECT site, NULL FROM sites) d
      LEFT JOIN sites t ON t.site = d.site GROUP BY d.site) s
LEFT JOIN sites x ON x.site = s.site
WHERE $1::bigint IS NULL OR s.tenant_id = $1
ORDER BY s.site
"""


async def list_tenants(request: web.Request) -> web.Response:
    async with conn(request) as c:
        return json_response({"tenants": await store.list_tenants(c, scope(request))})


async def create_tenant(request: web.Request) -> web.Response:
    req = await body(request, TenantRequest)
    async with conn(request) as c:
        with storage_errors("creating a tenant"):
            row = await c.fetchrow(
                "INSERT INTO tenants (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING *",
                req.name.strip(),
            )
    if row is None:
        raise Conflict(f"a tenant {req.name!r} exists")
    return json_response(msgspec.convert(dict(row), store.TenantView), status=201)


async def list_sites(request: web.Request) -> web.Response:
    async with conn(request) as c:
        with storage_errors("listing sites"):
            rows = await c.fetch(_SITES, scope(request))
    return json_response({"sites": [_site(r) for r in rows]})


async def put_site(request: web.Request) -> web.Response:
    """Assign a site to a tenant and set its time zone and quiet hours. Active alerts move with it."""
    site = request.match_info["site"]
    req = await body(request, SiteRequest)
    try:
        noise.zone(req.timezone)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if (req.quiet_start is None) != (req.quiet_end is None):
        raise BadRequest("quiet hours need both 'quiet_start' and 'quiet_end'")
    quiet = [time.fromisoformat(t) if t else None for t in (req.quiet_start, req.quiet_end)]
    async with conn(request) as c, c.transaction():
        try:
            tenant = await store.tenant_id(c, req.tenant)
        except store.AccessError as exc:
            raise BadRequest(str(exc)) from None
        with storage_errors("writing a site"):
            await c.execute(
                "INSERT INTO sites (site, tenant_id, name, timezone, quiet_start, quiet_end, "
                "quiet_min_severity) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (site) DO UPDATE SET tenant_id = $2, "
                "name = $3, "
                "timezone = $4, quiet_start = $5, quiet_end = $6, quiet_min_severity = $7",
                site,
                tenant,
                req.name,
                req.timezone,
                *quiet,
                req.quiet_min_severity,
            )
            # Fingerprints name the tenant: the site's active alerts follow it to the new one.
            for a in await c.fetch(
                "SELECT id, rule, device, labels FROM alerts WHERE site = $1 AND "
                "status = 'active' FOR UPDATE",
                site,
            ):
                labels = msgspec.json.decode(a["labels"]) if isinstance(a["labels"], str) else a["labels"]
                await c.execute(
                    "UPDATE alerts SET tenant_id = $2, fingerprint = $3 WHERE id = $1",
                    a["id"],
                    tenant,
                    fingerprint(tenant, a["rule"], a["device"], labels),
                )
            row = next(r for r in await c.fetch(_SITES, None) if r["site"] == site)
    return json_response(_site(row))


async def list_users(request: web.Request) -> web.Response:
    async with conn(request) as c:
        return json_response({"users": await store.list_users(c, scope(request))})


async def create_user(request: web.Request) -> web.Response:
    req = await body(request, UserRequest)
    async with conn(request) as c:
        tenant = await _tenant_for_new(c, request, req.tenant)
        try:
            made = await store.add_user(c, req.email, req.password, Role.parse(req.role), tenant)
        except store.AccessError as exc:
            raise (Conflict if "exists" in str(exc) else BadRequest)(str(exc)) from None
    return json_response(made, status=201)


async def disable_user(request: web.Request) -> web.Response:
    """Disables the user and ends every session of theirs at once."""
    user_id = int_path(request, "id", "user")
    async with conn(request) as c:
        if not await store.disable_user(c, user_id, scope(request), datetime.now(UTC)):
            raise NotFound(f"no user {user_id}")
    await request.app[SESSIONS].revoke_user(user_id)
    return web.Response(status=204)


async def list_keys(request: web.Request) -> web.Response:
    async with conn(request) as c:
        return json_response({"apikeys": await store.list_keys(c, scope(request))})


async def create_key(request: web.Request) -> web.Response:
    """The key is in this response and nowhere else, ever."""
    req = await body(request, ApiKeyRequest)
    async with conn(request) as c:
        tenant = await _tenant_for_new(c, request, req.tenant)
        key, view = await store.create_key(c, Role.parse(req.role), tenant, req.name, principal(request).name)
    return json_response({"key": key, "apikey": view}, status=201)


async def revoke_key(request: web.Request) -> web.Response:
    key_id = int_path(request, "id", "API key")
    async with conn(request) as c:
        if not await store.revoke_key(c, key_id, scope(request), datetime.now(UTC)):
            raise NotFound(f"no API key {key_id}")
    return web.Response(status=204)


async def list_channels(request: web.Request) -> web.Response:
    async with conn(request) as c:
        with storage_errors("listing channels"):
            rows = await c.fetch(
                "SELECT * FROM notification_channels WHERE $1::bigint IS NULL OR tenant_id = $1 ORDER BY id",
                scope(request),
            )
    return json_response({"channels": [_channel(r) for r in rows]})


async def create_channel(request: web.Request) -> web.Response:
    """The webhook secret is write-only: it is never shown again."""
    req = await body(request, ChannelRequest)
    who = principal(request)
    tenant = req.tenant_id if who.platform else who.tenant_id
    if req.kind == "webhook" and not req.target.startswith(("http://", "https://")):
        raise BadRequest("a webhook target is an http:// or https:// URL")
    if req.kind == "email" and "@" not in req.target:
        raise BadRequest("an e-mail target is an address")
    async with conn(request) as c:
        with storage_errors("creating a channel"):
            if tenant is not None and not await c.fetchval("SELECT 1 FROM tenants WHERE id = $1", tenant):
                raise BadRequest(f"no tenant {tenant}")
            row = await c.fetchrow(
                "INSERT INTO notification_channels (tenant_id, name, kind, target, secret, min_severity, "
                "max_per_hour) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
                tenant,
                req.name,
                req.kind,
                req.target,
                req.secret,
                req.min_severity,
                req.max_per_hour,
            )
    return json_response(_channel(row), status=201)


async def delete_channel(request: web.Request) -> web.Response:
    channel_id = int_path(request, "id", "channel")
    async with conn(request) as c:
        with storage_errors("deleting a channel"):
            done = await c.fetchval(
                "DELETE FROM notification_channels WHERE id = $1 AND "
                "($2::bigint IS NULL OR tenant_id = $2) RETURNING id",
                channel_id,
                scope(request),
            )
    if done is None:
        raise NotFound(f"no channel {channel_id}")
    return web.Response(status=204)


async def _tenant_for_new(c, request: web.Request, name: str | None) -> int | None:
    """A platform admin may name any tenant (or none); a tenant's admin creates within its own."""
    who = principal(request)
    if not who.platform:
        if name is not None:
            raise Forbidden("a tenant's admin creates users and keys of its own tenant only")
        return who.tenant_id
    try:
        return await store.tenant_id(c, name)
    except store.AccessError as exc:
        raise BadRequest(str(exc)) from None


def _site(row) -> SiteView:
    data = dict(row)
    for key in ("quiet_start", "quiet_end"):
        data[key] = row[key].strftime("%H:%M") if row[key] else None
    return msgspec.convert(data, SiteView)


def _channel(row) -> ChannelView:
    return msgspec.convert({k: row[k] for k in ChannelView.__struct_fields__}, ChannelView)
