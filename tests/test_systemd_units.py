"""The systemd units: they verify, their sandbox scores below 3.0, and their secrets arrive as credentials."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
from pathlib import Path

import msgspec
import pytest

from common import sdnotify
from common import settings as loader
from edge_agent.config import AgentSettings

UNITS = Path(__file__).parent.parent / "systemd"
analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(analyze is None, reason="needs systemd-analyze (Debian package systemd)")


def directives(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_agent_unit_has_what_the_issue_asks() -> None:
    d = directives("signalcraft-agent.service")
    assert d["Type"] == ["notify"] and d["Restart"] == ["on-failure"]
    assert int(d["WatchdogSec"][0]) > 0
    assert d["User"] == ["signalcraft"] and d["SupplementaryGroups"] == ["dialout"]
    assert d["StateDirectory"] == ["signalcraft"] and d["RuntimeDirectory"] == ["signalcraft"]
    assert d["ProtectSystem"] == ["strict"] and d["NoNewPrivileges"] == ["yes"] and d["PrivateTmp"] == ["yes"]
    assert any(c.startswith("mqtt.url:") for c in d["LoadCredential"])
    assert "Environment" not in d  # no secret, and no socket path: $RUNTIME_DIRECTORY places it


@needs_analyze
@pytest.mark.parametrize("unit", ["signalcraft-agent.service", "signalcraft-collector.service"])
def test_units_verify_clean(unit: str, tmp_path: Path) -> None:
    # verify checks that ExecStart= exists: point it at a binary this machine has.
    text = re.sub(
        r"/opt/signalcraft/venv/bin/\S+", shutil.which("true") or "/bin/true", (UNITS / unit).read_text()
    )
    (tmp_path / unit).write_text(text)
    result = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@needs_analyze
@pytest.mark.parametrize(
    ("unit", "ceiling"), [("signalcraft-agent.service", 3.0), ("signalcraft-collector.service", 3.0)]
)
def test_security_exposure_is_low(unit: str, ceiling: float) -> None:
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(UNITS / unit)],
        capture_output=True,
        text=True,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert m, result.stdout + result.stderr
    assert float(m.group(1)) < ceiling, result.stdout


def test_credential_overrides_the_file_and_env_overrides_the_credential(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nsite = "s"\ndevice = "d"\nstate_dir = "{tmp_path}"\n[mqtt]\nurl = "mqtts://d@broker:8883"\n'
    )
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "mqtt.url").write_text("mqtts://d:s3cret@broker:8883\n")
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    loaded = loader.load_with_sources(AgentSettings, config, env)
    assert loaded.settings.mqtt.url == "mqtts://d:s3cret@broker:8883"
    assert loaded.sources["mqtt.url"] == "credential mqtt.url"
    env["SIGNALCRAFT_MQTT_URL"] = "mqtts://d:other@broker:8883"
    assert loader.load(AgentSettings, config, env).mqtt.url.endswith(":other@broker:8883")
    assert (
        msgspec.structs.asdict(loader.load(AgentSettings, config, {}).mqtt)["url"] == "mqtts://d@broker:8883"
    )


def test_ready_when_tells_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))

    async def go() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(sdnotify.ready_when(ready))
        await asyncio.sleep(0)
        ready.set()
        await task

    asyncio.run(go())
    assert listener.recv(100) == b"READY=1"
    listener.close()


def test_install_script_plan(tmp_path: Path) -> None:
    script = UNITS.parent / "scripts" / "install-pi.sh"
    result = subprocess.run(
        ["bash", str(script), "--dry-run", "--site", "shop", "--device", "freezer-1"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    plan = result.stdout
    for step in (
        "useradd --system",
        "usermod -aG dialout signalcraft",
        "--only-binary=:all:",
        "/etc/signalcraft/agent.toml",
        "credentials/mqtt.url",
        "systemctl enable signalcraft-agent",
    ):
        assert step in plan, plan
