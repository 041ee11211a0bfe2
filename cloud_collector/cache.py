"""The latest state of every device in Redis, for dashboards that must not query PostgreSQL per refresh.

One hash per device, ``signalcraft:device:<device>``: ``site``, ``last_seen``, ``reading_at``,
``values`` (JSON), and when known ``state``, ``state_at``, ``score``. Written after the batch's commit
(PostgreSQL stays the truth) with one pipelined round trip per batch; a field is only replaced by a newer
one (compared in a small Lua script, because two collectors may write the same device out of order).

Optional: without ``redis.url`` there is no cache and readers fall back to PostgreSQL. A Redis failure
never stops ingest: it is logged, counted (``cache_errors_total``) and the next batch tries again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cloud_collector import store
from common.schema import StateChange, Telemetry

log = logging.getLogger(__name__)

PREFIX = "signalcraft:device:"

# KEYS[1] the hash; ARGV: time field, ISO time, then field/value pairs to set when that time is newer.
_NEWER = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and current > ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], unpack(ARGV, 3))
return 1
"""


def key(device: str) -> str:
    return PREFIX + device


class LatestCache:
    """Writes the newest known values and state of each device; reads them back for the API."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._newer = client.register_script(_NEWER)

    async def update(self, items: list[store.Received]) -> bool:
        """Record a committed batch; False (and logged) when Redis failed."""
        pipe = self._client.pipeline(transaction=False)
        for item in items:
            msg = item.message
            k = key(msg.device)
            seen = _iso(item.received_at)
            await self._newer(keys=[k], args=["last_seen", seen, "site", msg.site], client=pipe)
            if isinstance(msg, Telemetry):
                newest = max(msg.readings, key=lambda r: r.ts)
                await self._newer(keys=[k], args=["reading_at", _iso(newest.ts), "values",
                                            msgspec.json.encode(newest.values)], client=pipe)
            elif isinstance(msg, StateChange):
                await self._newer(keys=[k], args=["state_at", _iso(msg.ts), "state", msg.state.value,
                                            "score", "" if msg.score is None else repr(msg.score)],
                            client=pipe)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("latest-state cache not updated (%s); PostgreSQL has the data", exc)
            return False
        return True

    async def latest(self, device: str) -> dict[str, str] | None:
        """The cached fields of one device, or None when absent or Redis is unavailable."""
        try:
            raw = await self._client.hgetall(key(device))
        except (RedisError, OSError) as exc:
            log.warning("latest-state cache unavailable (%s)", exc)
            return None
        return {k.decode(): v.decode() for k, v in raw.items()} or None


def _iso(ts: datetime) -> str:
    # Fixed-width UTC, so the string comparison in the script orders times correctly.
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
