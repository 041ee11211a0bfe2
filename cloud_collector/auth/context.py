"""The auth parts of the app: settings, session store and login limiter, opened in ``cleanup_ctx``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import redis.asyncio as aioredis
from aiohttp import web

from cloud_collector.auth.principal import Principal
from cloud_collector.auth.ratelimit import LoginLimiter, LoginLimits, MemoryCounter, RedisCounter
from cloud_collector.auth.sessions import MemorySessions, RedisSessions, SessionStore
from cloud_collector.runtime import SETTINGS


@dataclass(frozen=True, slots=True)
class AuthSettings:
    session_ttl: timedelta = timedelta(hours=12)
    limits: LoginLimits = field(default_factory=LoginLimits)


AUTH_SETTINGS = web.AppKey("auth_settings", AuthSettings)
SESSIONS = web.AppKey("sessions", SessionStore)
LIMITER = web.AppKey("login_limiter", LoginLimiter)
PRINCIPAL = web.RequestKey("principal", Principal)


async def auth_ctx(app: web.Application) -> AsyncIterator[None]:
    api = app[SETTINGS].api
    limits = LoginLimits(per_account=api.login_attempts)
    settings = app.get(AUTH_SETTINGS) or AuthSettings(api.session_ttl, limits)
    app[AUTH_SETTINGS] = settings
    url = app[SETTINGS].redis.url
    client = aioredis.Redis.from_url(url) if url else None
    if client is not None:
        app[SESSIONS] = RedisSessions(client)
        app[LIMITER] = LoginLimiter(RedisCounter(client), settings.limits)
    else:
        app[SESSIONS] = MemorySessions()
        app[LIMITER] = LoginLimiter(MemoryCounter(), settings.limits)
    try:
        yield
    finally:
        if client is not None:
            await client.aclose()
