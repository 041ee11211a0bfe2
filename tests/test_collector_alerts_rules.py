"""Alert rules: the state machine, thresholds with hysteresis, for-duration across a restart, rate of
change, per-device overrides, inhibition, silences, and technician feedback with the false-alarm report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from cloud_collector import alerts
from cloud_collector.alerting.machine import Action, Phase, elapse, step
from cloud_collector.service import Collector
from common.schema import HealthState
from tests.auth_helpers import bearer, make_key
from tests.collector_helpers import (
    T0,
    Publisher,
    boot_id,
    eventually,
    fetch,
    settings_for,
    state_change,
    status,
    telemetry,
    unique,
)

S = timedelta(seconds=1)
ALERTS = (
    "SELECT rule, severity, status, occurrences, suppressed, details FROM alerts "
    "WHERE device = $1 ORDER BY id"
)
PHASE = (
    "SELECT s.phase FROM rule_states s JOIN alert_rules r ON r.id = s.rule_id "
    "WHERE s.device = $1 AND r.name = $2"
)


def test_machine_pending_blip_never_fires_and_hysteresis_holds():
    t = T0
    s = step(Phase.NORMAL, t, fires=True, clears=False, hold=10 * S, clear_hold=0 * S, now=t)
    assert (s.phase, s.action) == (Phase.PENDING, Action.NONE)
    s = step(s.phase, s.since, fires=False, clears=False, hold=10 * S, clear_hold=0 * S, now=t + 5 * S)
    assert (s.phase, s.action) == (Phase.NORMAL, Action.NONE)  # a blip shorter than for_s: nobody told
    s = step(Phase.NORMAL, t, fires=True, clears=False, hold=10 * S, clear_hold=0 * S, now=t)
    s = step(s.phase, s.since, fires=True, clears=False, hold=10 * S, clear_hold=0 * S, now=t + 10 * S)
    assert (s.phase, s.action) == (Phase.FIRING, Action.OPEN)
    # Between the clear threshold and the threshold nothing changes.
    s = step(s.phase, s.since, fires=False, clears=False, hold=10 * S, clear_hold=0 * S, now=t + 11 * S)
    assert (s.phase, s.action) == (Phase.FIRING, Action.NONE)
    s = step(s.phase, s.since, fires=False, clears=True, hold=10 * S, clear_hold=5 * S, now=t + 12 * S)
    assert s.phase == Phase.RECOVERING
    back = step(s.phase, s.since, fires=False, clears=False, hold=10 * S, clear_hold=5 * S, now=t + 13 * S)
    assert (back.phase, back.action) == (Phase.FIRING, Action.NONE)  # not cleared long enough
    done = elapse(s.phase, s.since, hold=10 * S, clear_hold=5 * S, now=t + 17 * S)
    assert (done.phase, done.action) == (Phase.NORMAL, Action.CLEAR)


@pytest.fixture
async def env(broker, pg_url):
    key = await make_key(pg_url)
    settings = settings_for(broker.url, pg_url)
    publisher = Publisher(broker.url)
    async with Collector(settings, migrate=True) as c:
        await c.wait_subscribed()
        yield c, publisher, key, settings
    publisher.close()


async def _rule(pg_url: str, **fields) -> int:
    conn = await asyncpg.connect(pg_url)
    try:
        cols = ", ".join(fields)
        args = ", ".join(f"${i}" for i in range(1, len(fields) + 1))
        return await conn.fetchval(
            f"INSERT INTO alert_rules ({cols}) VALUES ({args}) RETURNING id", *fields.values()
        )
    finally:
        await conn.close()


async def _tick(pg_url: str, now: datetime):
    conn = await asyncpg.connect(pg_url)
    try:
        return await alerts.tick(conn, timedelta(hours=1), now)
    finally:
        await conn.close()


async def test_threshold_waits_for_duration_survives_a_restart_and_clears_with_hysteresis(broker, pg_url):
    site, device, boot = unique("site"), unique("dev"), boot_id()
    name = unique("hot")
    await make_key(pg_url)
    await _rule(
        pg_url,
        name=name,
        kind="threshold",
        metric="discharge_temp",
        threshold=80.0,
        clear_threshold=70.0,
        for_s=600.0,
    )
    settings = settings_for(broker.url, pg_url)
    publisher = Publisher(broker.url)
    try:
        async with Collector(settings) as c:
            await c.wait_subscribed()
            publisher.send(telemetry(site, device, boot, [1], values={"discharge_temp": 85.0}))
            await eventually(
                lambda: fetch(pg_url, PHASE, device, name), lambda r: r and r[0]["phase"] == "pending"
            )
        assert await fetch(pg_url, ALERTS, device) == []  # pending: nobody is told yet
        # The collector is gone; its successor's clock reaches for_s: the persisted state fires.
        changes = await _tick(pg_url, datetime.now(UTC) + timedelta(seconds=601))
        assert [(ch.event, ch.alert.device) for ch in changes] == [("alert.created", device)]
        async with Collector(settings) as c:
            await c.wait_subscribed()
            publisher.send(telemetry(site, device, boot, [2], values={"discharge_temp": 75.0}))  # in the band
            await eventually(
                lambda: fetch(pg_url, "SELECT 1 FROM readings WHERE device = $1", device),
                lambda r: len(r) == 2,
            )
            rows = await fetch(pg_url, ALERTS, device)
            assert [(r["rule"], r["status"]) for r in rows] == [(name, "active")]
            publisher.send(telemetry(site, device, boot, [3], values={"discharge_temp": 65.0}))
            rows = await eventually(
                lambda: fetch(pg_url, ALERTS, device), lambda r: r[0]["status"] == "cleared"
            )
    finally:
        publisher.close()
    assert '"discharge_temp 85 > 80"' in rows[0]["details"]


async def test_rate_of_change_and_a_per_device_override(env, pg_url):
    _, publisher, _, _ = env
    site, boot = unique("site"), boot_id()
    fast, calm = unique("dev"), unique("dev")
    name = unique("leak")
    await _rule(pg_url, name=name, kind="rate", metric="suction_p", op="<", threshold=-1.0, window_s=60.0)
    # The built-in health rule for everyone; this one device waits an hour before its health alerts.
    await _rule(pg_url, name="health", kind="health", device=calm, for_s=3600.0)
    publisher.send(telemetry(site, fast, boot, [0], values={"suction_p": 3.0}))
    # The reference is the value the device had when the rule last looked: the next reading is a new look.
    await eventually(lambda: fetch(pg_url, "SELECT 1 FROM rule_states WHERE device = $1", fast))
    publisher.send(telemetry(site, fast, boot, [61], values={"suction_p": 0.5}))  # -2.46 per minute
    rows = await eventually(lambda: fetch(pg_url, ALERTS, fast), lambda r: len(r) == 1)
    assert rows[0]["rule"] == name and '"rate_per_min"' in rows[0]["details"]

    publisher.send(state_change(site, calm, boot, 1, HealthState.WARNING))
    publisher.send(state_change(site, fast, boot, 2, HealthState.WARNING))
    await eventually(lambda: fetch(pg_url, ALERTS, fast), lambda r: len(r) == 2)
    await eventually(lambda: fetch(pg_url, PHASE, calm, "health"), lambda r: r and r[0]["phase"] == "pending")
    assert await fetch(pg_url, ALERTS, calm) == []


async def test_offline_inhibits_and_silences_mute_but_alerts_are_still_recorded(env, pg_url):
    _, publisher, _, _ = env
    site, boot = unique("site"), boot_id()
    dead, quiet = unique("dev"), unique("dev")
    publisher.send(status(site, dead, boot, online=False, reason="lost"))
    await eventually(lambda: fetch(pg_url, ALERTS, dead), lambda r: len(r) == 1)
    conn = await asyncpg.connect(pg_url)
    try:
        # A weekly window that is open right now, for this one device.
        now = datetime.now(UTC)
        await conn.execute(
            "INSERT INTO silences (device, starts_at, ends_at, recur_days, recur_start, recur_duration_s, "
            "author, comment) VALUES ($1, $2, $3, $4, $5, 7200, 'kim', 'compressor swap')",
            quiet,
            now - timedelta(days=1),
            now + timedelta(days=1),
            [now.isoweekday()],
            (now - timedelta(hours=1)).time(),
        )
    finally:
        await conn.close()
    publisher.send(state_change(site, quiet, boot, 1, HealthState.WARNING))
    rows = await eventually(lambda: fetch(pg_url, ALERTS, quiet), lambda r: len(r) == 1)
    assert rows[0]["suppressed"].startswith("silenced by #") and "compressor swap" in rows[0]["suppressed"]
    # The offline device's other alerts are inhibited (its Last Will came first) - until data returns.
    await alerts_for_offline_device(pg_url, site, dead)


async def alerts_for_offline_device(pg_url: str, site: str, device: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO devices (device, site, first_seen, last_seen) VALUES ($1, $2, now(), "
                "now()) ON CONFLICT DO NOTHING",
                device,
                site,
            )
            changes = await alerts.on_state(
                conn, site, state_change(site, device, boot_id(), 9, HealthState.ALARM)
            )
    finally:
        await conn.close()
    assert changes[0].alert.suppressed == "inhibited: the device is offline"


async def test_feedback_becomes_a_false_alarm_rate_per_rule(env, pg_url):
    collector, publisher, key, _ = env
    site, boot = unique("site"), boot_id()
    devices = [unique("dev") for _ in range(4)]
    for i, device in enumerate(devices):
        publisher.send(state_change(site, device, boot, i, HealthState.WARNING))
    for device in devices:
        await eventually(lambda d=device: fetch(pg_url, ALERTS, d), lambda r: len(r) == 1)
    async with aiohttp_client_for(collector, key) as http:
        listed = await (await http.get(f"{collector.url}/api/v1/alerts?site={site}&limit=2")).json()
        assert len(listed["alerts"]) == 2 and listed["next_cursor"]
        rest = await (
            await http.get(
                f"{collector.url}/api/v1/alerts?site={site}&limit=2&cursor={listed['next_cursor']}"
            )
        ).json()
        ids = [a["id"] for a in listed["alerts"] + rest["alerts"]]
        assert len(set(ids)) == 4 and ids == sorted(ids, reverse=True)  # keyset: no gaps, no repeats
        verdicts = ["false_alarm", "false_alarm", "confirmed_fault", "maintenance"]
        for alert_id, verdict in zip(ids, verdicts, strict=True):
            r = await http.post(
                f"{collector.url}/api/v1/alerts/{alert_id}/feedback",
                json={"verdict": verdict, "comment": "checked on site"},
            )
            assert r.status == 200, await r.text()
        r = await http.post(f"{collector.url}/api/v1/alerts/{ids[0]}/comments", json={"body": "door seal"})
        assert r.status == 201
        detail = await (await http.get(f"{collector.url}/api/v1/alerts/{ids[0]}")).json()
        assert detail["feedback"]["verdict"] == "false_alarm" and detail["comments"][0]["body"] == "door seal"
        report = await (
            await http.get(
                f"{collector.url}/api/v1/reports/false-alarms?by=device&since=2000-01-01T00:00:00Z"
            )
        ).json()
    mine = [row for row in report["rows"] if row["device"] in devices]
    assert sorted(row["false_alarm_rate"] for row in mine) == [0.0, 0.0, 1.0, 1.0]


def aiohttp_client_for(collector: Collector, key: str):
    import aiohttp

    return aiohttp.ClientSession(headers=bearer(key))
