"""Login, logout and "who am I". Passwords and tokens are never logged."""

from __future__ import annotations

import logging
import time

import msgspec
from aiohttp import web

from cloud_collector.api.bodies import LoginRequest
from cloud_collector.api.http import body, conn, json_response, principal
from cloud_collector.api.problems import TooManyRequests, Unauthorized
from cloud_collector.auth import store
from cloud_collector.auth.context import AUTH_SETTINGS, LIMITER, SESSIONS, AuthSettings
from cloud_collector.auth.middleware import COOKIE
from cloud_collector.auth.sessions import Session

log = logging.getLogger(__name__)


class MeView(msgspec.Struct, kw_only=True):
    kind: str
    id: int
    name: str
    role: str
    tenant_id: int | None


async def login(request: web.Request) -> web.Response:
    req = await body(request, LoginRequest)
    email = req.email.strip().lower()
    address = request.remote or "?"
    limiter = request.app[LIMITER]
    wait = await limiter.blocked_for(email, address)
    if wait > 0:
        log.warning("login refused for %s from %s: too many failures", email, address)
        raise TooManyRequests(
            f"too many failed logins; try again in {int(wait) + 1} s", {"Retry-After": str(int(wait) + 1)}
        )
    async with conn(request) as c:
        who = await store.check_password(c, email, req.password)
    if who is None:
        await limiter.failed(email, address)
        log.info("failed login for %s from %s", email, address)
        raise Unauthorized("wrong e-mail or password")
    await limiter.succeeded(email, address)
    settings = request.app.get(AUTH_SETTINGS) or AuthSettings()
    token = await request.app[SESSIONS].create(
        Session(who.id, who.name, who.role.label, who.tenant_id, time.time()), settings.session_ttl
    )
    response = json_response(
        MeView(kind=who.kind, id=who.id, name=who.name, role=who.role.label, tenant_id=who.tenant_id)
    )
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(settings.session_ttl.total_seconds()),
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )
    return response


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(COOKIE)
    if token:
        await request.app[SESSIONS].delete(token)
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    who = principal(request)
    return json_response(
        MeView(kind=who.kind, id=who.id, name=who.name, role=who.role.label, tenant_id=who.tenant_id)
    )
