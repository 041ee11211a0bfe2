"""Failed-login limiter: per (e-mail, client address) and per client address, in a fixed window.

Only failures count; a success resets the pair. Beyond the limit the API answers 429 with Retry-After
and does not even check the password, so guessing is slow whatever the attacker's bandwidth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import redis.asyncio as aioredis

_KEY = "signalcraft:login-failures:{}"


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_account: int = 5  # failures per e-mail and address within the window
    per_address: int = 50  # failures per address (any e-mail) within the window
    window: timedelta = timedelta(minutes=5)


class Counter(Protocol):
    async def count(self, key: str) -> tuple[int, float]: ...
    async def hit(self, key: str, window: timedelta) -> None: ...
    async def reset(self, key: str) -> None: ...


class RedisCounter:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client

    async def count(self, key: str) -> tuple[int, float]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(_KEY.format(key))
            pipe.pttl(_KEY.format(key))
            value, ttl = await pipe.execute()
        return int(value or 0), max(ttl, 0) / 1000

    async def hit(self, key: str, window: timedelta) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(_KEY.format(key))
            pipe.expire(_KEY.format(key), window, nx=True)
            await pipe.execute()

    async def reset(self, key: str) -> None:
        await self._redis.delete(_KEY.format(key))


class MemoryCounter:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}

    async def count(self, key: str) -> tuple[int, float]:
        n, until = self._counts.get(key, (0, 0.0))
        left = until - time.monotonic()
        return (n, left) if left > 0 else (0, 0.0)

    async def hit(self, key: str, window: timedelta) -> None:
        n, left = await self.count(key)
        until = time.monotonic() + (left if n else window.total_seconds())
        self._counts[key] = (n + 1, until)

    async def reset(self, key: str) -> None:
        self._counts.pop(key, None)


class LoginLimiter:
    def __init__(self, counter: Counter, limits: LoginLimits) -> None:
        self._counter = counter
        self.limits = limits

    async def blocked_for(self, email: str, address: str) -> float:
        """Seconds until another attempt is allowed (0: allowed now)."""
        account, account_left = await self._counter.count(f"{email}|{address}")
        everyone, address_left = await self._counter.count(f"*|{address}")
        waits = [
            account_left if account >= self.limits.per_account else 0.0,
            address_left if everyone >= self.limits.per_address else 0.0,
        ]
        return max(waits)

    async def failed(self, email: str, address: str) -> None:
        await self._counter.hit(f"{email}|{address}", self.limits.window)
        await self._counter.hit(f"*|{address}", self.limits.window)

    async def succeeded(self, email: str, address: str) -> None:
        await self._counter.reset(f"{email}|{address}")
