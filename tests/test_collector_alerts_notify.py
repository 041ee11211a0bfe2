"""Notifications to a real HTTP receiver and a real SMTP server: signed, grouped, once across processes,
retried with backoff, rate-limited, held during quiet hours, and never for a flap."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from cloud_collector import alerts, migrate
from cloud_collector.notify.dispatcher import dispatch_due
from cloud_collector.notify.outbox import NotifySettings
from common.schema import HealthState
from signalcraft import embedded
from tests.collector_helpers import boot_id, state_change, unique

SECRET = "webhook-secret"


class Receiver:
    """A webhook endpoint that records what it gets and answers with ``self.status``."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield rec, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


@pytest.fixture
async def pool(pg_url) -> AsyncIterator[asyncpg.Pool]:
    await migrate.migrate(pg_url)
    p = await asyncpg.create_pool(pg_url, min_size=2, max_size=6)
    yield p
    await p.close()


async def _channel(pool: asyncpg.Pool, kind: str, target: str, **extra) -> int:
    cols = {"name": unique("ch"), "kind": kind, "target": target, "secret": SECRET, **extra}
    names = ", ".join(cols)
    args = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    return await pool.fetchval(
        f"INSERT INTO notification_channels ({names}) VALUES ({args}) RETURNING id", *cols.values()
    )


async def _state(pool: asyncpg.Pool, site: str, device: str, state: HealthState):
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO devices (device, site, first_seen, last_seen) VALUES ($1, $2, now(), "
            "now()) ON CONFLICT DO NOTHING",
            device,
            site,
        )
        return await alerts.on_state(
            conn, site, state_change(site, device, boot_id(), 1, state, at=datetime.now(UTC))
        )


SETTINGS = NotifySettings(group_wait=timedelta(seconds=30), retry_base=timedelta(seconds=10), max_attempts=3)


async def test_webhook_is_signed_grouped_and_sent_once_by_competing_processes(pool, pg_url, receiver):
    rec, url = receiver
    await _channel(pool, "webhook", url)
    site = unique("site")
    for device in (unique("dev"), unique("dev")):
        await _state(pool, site, device, HealthState.ALARM)
    NOW = datetime.now(UTC)
    # Within the group wait nothing leaves.
    async with aiohttp.ClientSession() as http:
        assert await dispatch_due(pool, http, SETTINGS, NOW + timedelta(seconds=5)) == 0
        other = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)  # a second collector process
        try:
            later = NOW + timedelta(seconds=31)
            sent = await asyncio.gather(
                dispatch_due(pool, http, SETTINGS, later), dispatch_due(other, http, SETTINGS, later)
            )
        finally:
            await other.close()
    assert sorted(sent) == [0, 1] and len(rec.requests) == 1
    headers, body = rec.requests[0]
    expected = hmac.new(
        SECRET.encode(), headers["X-SignalCraft-Timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers["X-SignalCraft-Signature"] == f"sha256={expected}"
    assert body.count(b'"event":"severity:critical"') == 2  # two alerts, one message


async def test_failed_delivery_is_retried_with_backoff_then_given_up(pool, receiver):
    rec, url = receiver
    rec.status = 500
    await _channel(pool, "webhook", url)
    await _state(pool, unique("site"), unique("dev"), HealthState.WARNING)
    t = datetime.now(UTC) + timedelta(seconds=31)
    async with aiohttp.ClientSession() as http:
        assert await dispatch_due(pool, http, SETTINGS, t) == 0
        assert await dispatch_due(pool, http, SETTINGS, t + timedelta(seconds=9)) == 0  # backing off
        assert len(rec.requests) == 1
        assert await dispatch_due(pool, http, SETTINGS, t + timedelta(seconds=10)) == 0
        assert len(rec.requests) == 2  # second attempt after retry_base
        rows = await pool.fetch("SELECT status, attempts, next_attempt_at FROM notifications")
        assert rows[0]["attempts"] == 2 and rows[0]["next_attempt_at"] == t + timedelta(
            seconds=30
        )  # 10 s, 20 s
        rec.status = 204
        assert await dispatch_due(pool, http, SETTINGS, t + timedelta(seconds=30)) == 1
        assert rec.requests[1][0]["X-SignalCraft-Delivery"] == rec.requests[2][0]["X-SignalCraft-Delivery"]
    assert await pool.fetchval("SELECT status FROM notifications") == "sent"


async def test_rate_limit_quiet_hours_and_flaps(pool, receiver):
    rec, url = receiver
    await _channel(pool, "webhook", url, max_per_hour=1, min_severity="info")
    night, day = unique("site"), unique("site")
    # Quiet hours around now (they may span midnight) with a critical floor: a warning waits for their end.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    await pool.execute(
        "INSERT INTO sites (site, quiet_start, quiet_end) VALUES ($1, $2, $3)",
        night,
        (now - timedelta(hours=1)).time(),
        (now + timedelta(hours=2)).time(),
    )
    await _state(pool, night, unique("dev"), HealthState.WARNING)
    waiting = await pool.fetchval("SELECT next_attempt_at FROM notifications")
    assert waiting == now + timedelta(hours=2)
    # A flap: opened and cleared before the group wait is over - nobody hears of it.
    flap = unique("dev")
    await _state(pool, day, flap, HealthState.WARNING)
    await _state(pool, day, flap, HealthState.HEALTHY)
    assert await pool.fetchval("SELECT count(*) FROM notifications WHERE status = 'suppressed'") == 1
    a, b = unique("site"), unique("site")
    await _state(pool, a, unique("dev"), HealthState.ALARM)
    await _state(pool, b, unique("dev"), HealthState.ALARM)
    t = datetime.now(UTC) + timedelta(seconds=31)
    async with aiohttp.ClientSession() as http:
        assert await dispatch_due(pool, http, SETTINGS, t) == 1  # two groups due, one message an hour
        postponed = await pool.fetchval(
            "SELECT min(next_attempt_at) FROM notifications WHERE status = 'pending' "
            "AND group_key NOT LIKE $1",
            f"%:{night}",
        )
        assert postponed == t + timedelta(hours=1)
    assert len(rec.requests) == 1


async def test_email_through_a_real_smtp_server(pool, pg_url):
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.content)
            return "250 OK"

    port = embedded.free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        await _channel(pool, "email", "oncall@example.com")
        device = unique("dev")
        await _state(pool, unique("site"), device, HealthState.ALARM)
        settings = NotifySettings(smtp_url=f"smtp://127.0.0.1:{port}", mail_from="alerts@example.com")
        async with aiohttp.ClientSession() as http:
            assert await dispatch_due(pool, http, settings, datetime.now(UTC) + timedelta(seconds=31)) == 1
    finally:
        controller.stop()
    mail = message_from_bytes(received[0])
    assert mail["To"] == "oncall@example.com" and mail["From"] == "alerts@example.com"
    assert f"[CRITICAL] {device}" in mail["Subject"]
