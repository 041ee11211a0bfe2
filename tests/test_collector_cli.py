"""``signalcraft-collector`` through typer's CliRunner, and one real process stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg
from typer.testing import CliRunner

from cloud_collector.cli import app
from signalcraft.embedded import free_port
from tests.collector_helpers import Publisher, boot_id, telemetry, unique

runner = CliRunner()


def _config(tmp_path: Path, broker_url: str, pg_url: str, extra: str = "", port: int = 0) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(
        f'[mqtt]\nurl = "{broker_url}"\nclient_id = "{unique("cli")}"\nshare_group = "{unique("g")}"\n'
        f'[database]\nurl = "{pg_url}"\n[api]\nport = {port}\n[ingest]\nflush_interval = "50ms"\n{extra}'
    )
    return path


def test_missing_setting_is_named_and_exits_2(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text('[database]\nurl = "postgresql://u@db.example/x"\n')
    result = runner.invoke(app, ["migrate", "--config", str(path)])
    assert result.exit_code == 2
    assert "'mqtt.url'" in result.output and "required" in result.output


def test_bad_value_is_named(tmp_path, broker, pg_url):
    path = _config(tmp_path, broker.url, pg_url, extra='[alerts]\noffline_after = "soon"\n')
    result = runner.invoke(app, ["stats", "--config", str(path)])
    assert result.exit_code == 2
    assert "'alerts.offline_after'" in result.output and "soon" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_env_overrides_the_file(tmp_path, broker, pg_url):
    path = _config(tmp_path, broker.url, pg_url)
    result = runner.invoke(app, ["migrate", "--config", str(path)],
                           env={"SIGNALCRAFT_DATABASE_URL": "mysql://u@db.example/x"})
    assert result.exit_code == 2
    assert "'database.url' (from env SIGNALCRAFT_DATABASE_URL)" in result.output


def test_serve_refuses_an_unmigrated_database(tmp_path, broker, pg_url):
    result = runner.invoke(app, ["serve", "--config", str(_config(tmp_path, broker.url, pg_url))])
    assert result.exit_code == 1
    assert "signalcraft-collector migrate" in result.output


def test_migrate_then_stats(tmp_path, broker, pg_url):
    path = _config(tmp_path, broker.url, pg_url)
    result = runner.invoke(app, ["migrate", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "applied 0001_initial" in result.output
    again = runner.invoke(app, ["migrate", "--config", str(path)])
    assert again.exit_code == 0 and "applied" not in again.output

    asyncio.run(_seed(pg_url))
    result = runner.invoke(app, ["stats", "--json", "--config", str(path)])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["fleet"] | {"first_ts": None, "last_ts": None} == {
        "devices": 1, "readings": 3, "gaps": 2, "duplicates": 4, "dead_letters": 2,
        "first_ts": None, "last_ts": None}
    (dev,) = stats["devices"]
    assert (dev["device"], dev["readings"], dev["gaps"], dev["duplicates"], dev["dead_letters"]) == (
        "d1", 3, 2, 4, 1)
    assert dev["first_ts"].startswith("2025-01-15T12:00:01")

    table = runner.invoke(app, ["stats", "--config", str(path)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "d1" in table.output and "fleet" in table.output


async def _seed(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("""
            INSERT INTO devices (device, site, first_seen, last_seen, duplicates_discarded)
            VALUES ('d1', 's1', now(), now(), 4);
            INSERT INTO readings (device, boot, seq, ts, received_at, "values") VALUES
                ('d1', 'b1', 1, '2025-01-15T12:00:01Z', now(), '{}'),
                ('d1', 'b1', 2, '2025-01-15T12:00:02Z', now(), '{}'),
                ('d1', 'b1', 5, '2025-01-15T12:00:05Z', now(), '{}');
            INSERT INTO dead_letters (received_at, topic, device, reason, payload, payload_size) VALUES
                (now(), 'signalcraft/v1/s1/d1/telemetry', 'd1', 'bad', '\\x00', 1),
                (now(), 'elsewhere', NULL, 'bad topic', '\\x00', 1);
        """)
    finally:
        await conn.close()


def test_serve_stops_gracefully_on_sigterm(tmp_path, broker, pg_url):
    """A real process: --migrate, ready, ingest, then SIGTERM flushes and exits 0."""
    port = free_port()
    path = _config(tmp_path, broker.url, pg_url, port=port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALCRAFT_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cloud_collector.cli import app; app()", "serve", "--migrate",
         "--config", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).parent.parent,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        site, device = unique("site"), unique("dev")
        publisher = Publisher(broker.url)
        try:
            publisher.send(telemetry(site, device, boot_id(), [0, 1, 2]))
        finally:
            publisher.close()
        deadline = time.monotonic() + 10
        while _readings(port, device) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output.decode()
    assert b"collector stopped" in output


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode())
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready within {timeout} s")


def _readings(port: int, device: str) -> int:
    url = f"http://127.0.0.1:{port}/api/v1/devices/{device}/readings?from=2025-01-01T00:00:00Z"
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return len(json.load(response)["readings"])
    except OSError:
        return 0
