"""Browser sessions: an opaque token in an HttpOnly cookie, its record in Redis.

The Redis key is the SHA-256 of the token (a copy of Redis does not hand out live sessions), the record
expires with the session, and every user's sessions are indexed so disabling a user or changing a role
ends them all at once. Without ``redis.url`` a single collector keeps sessions in memory (lost on restart;
several API processes need Redis).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import timedelta
from typing import Protocol

import msgspec
import redis.asyncio as aioredis

_KEY = "signalcraft:session:{}"
_INDEX = "signalcraft:user-sessions:{}"


class Session(msgspec.Struct, frozen=True):
    user_id: int
    email: str
    role: str
    tenant_id: int | None
    created: float


class SessionStore(Protocol):
    async def create(self, session: Session, ttl: timedelta) -> str: ...
    async def get(self, token: str) -> Session | None: ...
    async def delete(self, token: str) -> None: ...
    async def revoke_user(self, user_id: int) -> int: ...


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RedisSessions:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client

    async def create(self, session: Session, ttl: timedelta) -> str:
        token = secrets.token_urlsafe(32)
        key = _KEY.format(_digest(token))
        index = _INDEX.format(session.user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, msgspec.json.encode(session), ex=ttl)
            pipe.sadd(index, key)
            pipe.expire(index, ttl)
            await pipe.execute()
        return token

    async def get(self, token: str) -> Session | None:
        raw = await self._redis.get(_KEY.format(_digest(token)))
        return msgspec.json.decode(raw, type=Session) if raw else None

    async def delete(self, token: str) -> None:
        await self._redis.delete(_KEY.format(_digest(token)))

    async def revoke_user(self, user_id: int) -> int:
        index = _INDEX.format(user_id)
        keys = await self._redis.smembers(index)
        if keys:
            await self._redis.delete(*keys)
        await self._redis.delete(index)
        return len(keys)


class MemorySessions:
    def __init__(self) -> None:
        self._sessions: dict[str, tuple[Session, float]] = {}

    async def create(self, session: Session, ttl: timedelta) -> str:
        token = secrets.token_urlsafe(32)
        self._sessions[_digest(token)] = (session, time.monotonic() + ttl.total_seconds())
        return token

    async def get(self, token: str) -> Session | None:
        found = self._sessions.get(_digest(token))
        if found is None or found[1] < time.monotonic():
            self._sessions.pop(_digest(token), None)
            return None
        return found[0]

    async def delete(self, token: str) -> None:
        self._sessions.pop(_digest(token), None)

    async def revoke_user(self, user_id: int) -> int:
        gone = [k for k, (s, _) in self._sessions.items() if s.user_id == user_id]
        for k in gone:
            del self._sessions[k]
        return len(gone)
