"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): log in, watch a device go
red as its fault arrives over MQTT, acknowledge its alert with a comment."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from cloud_collector.service import Collector
from common.schema import HealthState
from tests.auth_helpers import make_user
from tests.collector_helpers import (
    Publisher,
    boot_id,
    eventually,
    fetch,
    settings_for,
    state_change,
    telemetry,
    unique,
)

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")

CHROMIUM = (
    os.environ.get("SIGNALCRAFT_TEST_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install -y chromium; scripts/test does it)"
)

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ALARM_RED = "rgb(179, 38, 30)"  # --alarm in style.css


async def test_log_in_see_the_faulted_device_go_red_and_acknowledge(broker, pg_url):
    email, password = f"{unique('tech')}@example.com", "a long enough password"
    await make_user(pg_url, email, password, "technician")
    site, device, boot = unique("site"), unique("dev"), boot_id()
    publisher = Publisher(broker.url)
    try:
        async with (
            Collector(settings_for(broker.url, pg_url), migrate=True) as collector,
            playwright_api.async_playwright() as pw,
        ):
            await collector.wait_subscribed()
            publisher.send(state_change(site, device, boot, 1, HealthState.HEALTHY))
            publisher.send(
                telemetry(
                    site,
                    device,
                    boot,
                    [1, 2, 3],
                    start=datetime.now(UTC) - timedelta(minutes=5),
                    values={"discharge_temp": 71.5},
                )
            )
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await browser.new_page()
                await page.goto(collector.url + "/")
                await page.fill("#login-email", email)
                await page.fill("#login-password", password)
                await page.click("#login-form button[type=submit]")
                row = page.locator(f'tr[data-device="{device}"] .badge')
                await row.wait_for()
                assert await row.text_content() == "HEALTHY"
                await page.locator("#connection.live").wait_for()

                publisher.send(
                    state_change(site, device, boot, 2, HealthState.ALARM, previous=HealthState.HEALTHY)
                )
                red = page.locator(f'tr[data-device="{device}"] .badge.ALARM')
                await red.wait_for()
                colour = await red.evaluate("e => getComputedStyle(e).backgroundColor")
                assert colour == ALARM_RED

                item = page.locator(f'#alerts li[data-device="{device}"]')
                await item.wait_for()
                await item.locator(".ack-comment").fill("on my way")
                await item.get_by_role("button", name=f"Acknowledge health alert of {device}").click()
                await item.locator(".acked").wait_for()
                assert await item.locator(".acked").text_content() == f"Acknowledged by {email}: on my way"

                # The device page: its explanation and a chart of its readings.
                await page.click(f'tr[data-device="{device}"] a')
                await page.locator("#explanation", has_text="went ALARM").wait_for()
                await page.locator("#chart-values polyline").wait_for(state="attached")
                assert "band_500_2000" in await page.locator("#explanation").text_content()
            finally:
                await browser.close()
    finally:
        publisher.close()
    rows = await eventually(
        lambda: fetch(pg_url, "SELECT acknowledged_by, ack_comment FROM alerts WHERE device = $1", device)
    )
    assert (rows[0]["acknowledged_by"], rows[0]["ack_comment"]) == (email, "on my way")
