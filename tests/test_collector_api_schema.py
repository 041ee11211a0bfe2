"""schemathesis against the collector's own OpenAPI document, on a real server with a real database:
no 5xx, every status, content type, header and body as documented."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg

from cloud_collector.service import Collector
from common.schema import HealthState
from tests.auth_helpers import bearer, make_key
from tests.collector_helpers import Publisher, boot_id, eventually, fetch, settings_for, state_change, unique

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


async def test_the_api_matches_its_openapi_document(broker, pg_url, tmp_path: Path):
    await make_key(pg_url)  # migrated
    conn = await asyncpg.connect(pg_url)
    try:
        # Random ids must not hit our own key (DELETE /apikeys/{id} is part of the run).
        await conn.execute("SELECT setval('api_keys_id_seq', 9000000000000)")
    finally:
        await conn.close()
    key = await make_key(pg_url, "admin")
    site, device = unique("site"), unique("dev")
    publisher = Publisher(broker.url)
    try:
        async with Collector(settings_for(broker.url, pg_url), migrate=True) as collector:
            await collector.wait_subscribed()
            publisher.send(state_change(site, device, boot_id(), 1, HealthState.WARNING))
            await eventually(lambda: fetch(pg_url, "SELECT 1 FROM alerts WHERE device = $1", device))
            proc = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{collector.url}/api/v1/openapi.json",
                "--checks",
                CHECKS,
                "-H",
                f"Authorization: {bearer(key)['Authorization']}",
                "--exclude-path",
                "/api/v1/stream",  # endless by design; tested over a socket elsewhere
                "--max-examples",
                "12",
                "--seed",
                "7",
                "--generation-deterministic",
                "--workers",
                "2",
                "--request-timeout",
                "10",
                "--no-color",
                "--report-dir",
                str(tmp_path),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 170)
    finally:
        publisher.close()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    assert " passed" in text or "No issues found" in text, text[-3000:]
