"""``signalcraft-collector doctor`` against real failures: each one named with its cause and its fix."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import asyncpg
import msgspec
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from cloud_collector import migrate
from cloud_collector.cli import app
from signalcraft import embedded
from tests import services

runner = CliRunner()


def doctor(tmp_path: Path, env: dict[str, str], *, file: str = "") -> tuple[int, dict]:
    config = tmp_path / "collector.toml"
    config.write_text(file)
    result = runner.invoke(app, ["doctor", "--json", "--timeout", "1", "--config", str(config)], env=env)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, msgspec.json.decode(result.stdout.strip().splitlines()[-1])


def failed(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"] if not c["ok"]}


def test_all_good_and_every_setting_names_its_source(tmp_path, broker, pg_url, redis_url):
    asyncio.run(migrate.migrate(pg_url))
    code, report = doctor(tmp_path, {"SIGNALCRAFT_DATABASE_URL": pg_url, "SIGNALCRAFT_REDIS_URL": redis_url},
                          file=f'[mqtt]\nurl = "{broker.url}"\n')
    assert code == 0, failed(report)
    assert [c["name"] for c in report["checks"]] == [
        "settings", "database", "database privileges", "migrations", "broker", "redis"]
    assert report["sources"]["database.url"] == "env SIGNALCRAFT_DATABASE_URL"
    assert report["sources"]["mqtt.url"].startswith("file ")
    assert report["sources"]["ingest.batch_size"] == "default"


def test_nothing_listening(tmp_path):
    env = {"SIGNALCRAFT_DATABASE_URL": f"postgresql://c@127.0.0.1:{embedded.free_port()}/db",
           "SIGNALCRAFT_MQTT_URL": f"mqtt://127.0.0.1:{embedded.free_port()}",
           "SIGNALCRAFT_REDIS_URL": f"redis://127.0.0.1:{embedded.free_port()}/0"}
    code, report = doctor(tmp_path, env)
    bad = failed(report)
    assert code == 1 and set(bad) == {"database", "broker", "redis"}
    assert "refused" in bad["database"]["detail"] and "listen_addresses" in bad["database"]["fix"]
    assert "SIGNALCRAFT_DATABASE_URL" in bad["database"]["fix"]
    assert "start the broker" in bad["broker"]["fix"]
    assert "optional" in bad["redis"]["fix"]


def test_connection_timeout_points_at_the_firewall(tmp_path, broker):
    # A socket that accepts connections (the kernel completes the handshake) but never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        env = {"SIGNALCRAFT_DATABASE_URL": f"postgresql://c@127.0.0.1:{port}/db",
               "SIGNALCRAFT_MQTT_URL": broker.url}
        code, report = doctor(tmp_path, env)
    bad = failed(report)
    assert code == 1 and set(bad) == {"database"}
    assert "no answer" in bad["database"]["detail"]
    assert "firewall" in bad["database"]["cause"] and f"TCP {port}" in bad["database"]["fix"]


@pytest.fixture
def password_pg(tmp_path):
    """Our own PostgreSQL that checks passwords (the shared test server trusts everyone)."""
    pg = embedded.start_postgres(tmp_path / "pgdata")
    datadir = tmp_path / "pgdata"

    async def setup() -> None:
        conn = await asyncpg.connect(pg.url)
        try:
            await conn.execute("CREATE ROLE collector LOGIN PASSWORD 'right'")
            (datadir / "pg_hba.conf").write_text(
                "local all postgres trust\nlocal all all scram-sha-256\n"
                "host all all 127.0.0.1/32 scram-sha-256\n")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    asyncio.run(setup())
    yield pg.url
    pg.stop()


@pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR is not set")  # pgserver's import on a bare server
def test_wrong_password_names_the_user_and_where_it_is_set(tmp_path, broker, password_pg):
    socket_dir = password_pg.split("host=", 1)[1]
    url = f"postgresql://collector:wrong@/postgres?host={socket_dir}"
    code, report = doctor(tmp_path, {"SIGNALCRAFT_MQTT_URL": broker.url},
                          file=f'[database]\nurl = "{url}"\n')
    bad = failed(report)["database"]
    assert code == 1
    assert 'password authentication failed for user "collector"' in bad["detail"]
    assert "'collector'" in bad["cause"] and "database.url (file " in bad["fix"]


def test_permission_denied_for_schema_public_points_at_ownership(tmp_path, broker, pg_admin_url, pg_url):
    role = f"sc_nobody_{uuid.uuid4().hex[:6]}"

    async def sql(url: str, *statements: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(sql(pg_admin_url, f"CREATE ROLE {role} LOGIN"))
    try:
        env = {"SIGNALCRAFT_DATABASE_URL": services.with_user(pg_url, role),
               "SIGNALCRAFT_MQTT_URL": broker.url}
        code, report = doctor(tmp_path, env)
    finally:
        asyncio.run(sql(pg_url, f"DROP OWNED BY {role}"))
        asyncio.run(sql(pg_admin_url, f"DROP ROLE {role}"))
    bad = failed(report)
    assert code == 1
    assert bad["database privileges"]["detail"].startswith("permission denied for schema public")
    assert "ALTER SCHEMA public OWNER" in bad["database privileges"]["fix"]
    assert "signalcraft-collector migrate" in bad["migrations"]["fix"]


@pytest.fixture
def secured_broker(tmp_path):
    """mosquitto with passwords and an ACL: "collector" may read the fleet, "intruder" may not; an agent
    has left its retained birth message."""
    if not shutil.which("mosquitto") or not shutil.which("mosquitto_passwd"):
        pytest.skip("mosquitto and mosquitto_passwd are needed")
    passwords, acl = tmp_path / "passwd", tmp_path / "acl"
    passwords.touch()
    for user in ("collector", "intruder", "agent"):
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, "secret"], check=True)
    acl.write_text("user collector\ntopic read signalcraft/v1/#\n\nuser intruder\ntopic read other/#\n\n"
                   "user agent\ntopic write signalcraft/v1/#\n")
    passwords.chmod(0o644)
    acl.chmod(0o644)
    port = embedded.free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n"
                    f"acl_file {acl}\npersistence false\nuser root\n")  # files sit in a 0700 tmp dir
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    embedded.wait_for_port("127.0.0.1", port, proc=proc)
    agent = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="agent")
    agent.username_pw_set("agent", "secret")
    agent.connect("127.0.0.1", port)
    agent.loop_start()
    agent.publish("signalcraft/v1/s1/d1/status", b"{}", qos=1, retain=True).wait_for_publish(5)
    agent.disconnect()
    agent.loop_stop()
    yield port
    embedded.terminate(proc)


def _broker_check(tmp_path, pg_url, port: int, user: str, password: str) -> tuple[int, dict]:
    asyncio.run(migrate.migrate(pg_url))
    env = {"SIGNALCRAFT_DATABASE_URL": pg_url,
           "SIGNALCRAFT_MQTT_URL": f"mqtt://{user}:{password}@127.0.0.1:{port}"}
    code, report = doctor(tmp_path, env)
    return code, next(c for c in report["checks"] if c["name"] == "broker")


def test_broker_login_and_read_access_confirmed(tmp_path, pg_url, secured_broker):
    code, check = _broker_check(tmp_path, pg_url, secured_broker, "collector", "secret")
    assert code == 0 and "read access confirmed" in check["detail"]


def test_broker_wrong_password(tmp_path, pg_url, secured_broker):
    code, check = _broker_check(tmp_path, pg_url, secured_broker, "collector", "wrong")
    # mosquitto answers a wrong password with 0x87 "not authorized" (v5), not 0x86.
    assert code == 1 and "CONNACK [code:0x87]" in check["detail"]
    assert "'collector' connect: wrong user name or password" in check["cause"]
    assert "mqtt.url (env SIGNALCRAFT_MQTT_URL)" in check["fix"]


def test_broker_acl_that_withholds_the_fleet_is_reported(tmp_path, pg_url, secured_broker):
    _, check = _broker_check(tmp_path, pg_url, secured_broker, "intruder", "secret")
    assert "read access NOT confirmed" in check["detail"] and "'intruder'" in check["detail"]
