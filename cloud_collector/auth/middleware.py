"""Authentication and authorisation of every request, as one aiohttp middleware.

Credentials: ``Authorization: Bearer <API key>`` (machines), or the session cookie set by
``POST /api/v1/auth/login`` (browsers). A cookie-authenticated request that changes something must come
from our own origin (``Origin`` checked when the browser sends it; the cookie is also SameSite=Strict).
Refusals are problems: 401 without valid credentials, 403 when the role is too low; resources of other
tenants are 404 in the handlers (no hint that they exist).
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from aiohttp import web

from cloud_collector.api.problems import Forbidden, Unauthorized
from cloud_collector.auth import store
from cloud_collector.auth.context import PRINCIPAL, SESSIONS
from cloud_collector.auth.policy import POLICY, PUBLIC
from cloud_collector.auth.principal import Principal, Role
from cloud_collector.runtime import POOL

COOKIE = "signalcraft_session"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    info = request.match_info
    route = info.route.resource.canonical if info.route.resource is not None else None
    method = "GET" if request.method == "HEAD" else request.method
    if route is None or (method, route) in PUBLIC or isinstance(info.http_exception, web.HTTPException):
        return await handler(request)  # public, or aiohttp's own 404/405 answers
    need = POLICY.get((method, route))
    principal = await authenticate(request)
    if principal is None:
        raise Unauthorized("log in, or send an API key as 'Authorization: Bearer KEY'")
    if need is None:
        raise Forbidden(f"{method} {route} is not open to anyone")
    if not principal.may(need.role) or (need.platform and not principal.platform):
        who = "a platform " + need.role.label if need.platform else f"the {need.role.label} role"
        raise Forbidden(f"{method} {route} needs {who}; you are {principal.role.label}")
    request[PRINCIPAL] = principal
    return await handler(request)


async def authenticate(request: web.Request) -> Principal | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("expected 'Authorization: Bearer KEY'")
        async with request.app[POOL].acquire() as conn:
            return await store.check_key(conn, key.strip(), datetime.now(UTC))
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    session = await request.app[SESSIONS].get(token)
    if session is None:
        return None
    if request.method not in _SAFE and not _same_origin(request):
        raise Forbidden("cross-site request refused")
    return Principal("user", session.user_id, session.email, Role.parse(session.role), session.tenant_id)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host
