"""The control socket: where it lives, who may connect, and what it does with bad requests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent import control
from tests.agent_helpers import agent_settings


@pytest.fixture
def server(tmp_path: Path):
    s = control.ControlServer(tmp_path / "run" / "agent.sock", {"status": lambda _r: {"ok": True, "x": 1}})
    s.start()
    yield s
    s.stop()


def raw(path: Path, line: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(line)
        return json.loads(s.makefile("rb").readline())


def test_socket_is_group_only(server: control.ControlServer) -> None:
    mode = stat.S_IMODE(os.stat(server.path).st_mode)
    assert mode == 0o660


def test_bad_requests_are_answered_not_executed(server: control.ControlServer) -> None:
    assert control.request(server.path, "status") == {"ok": True, "x": 1}
    assert "unknown command 'reboot'" in raw(server.path, b'{"cmd": "reboot"}\n')["error"]
    assert "not JSON" in raw(server.path, b"\x80\x04\x95pickle\n")["error"]
    assert "expected" in raw(server.path, b"[1, 2]\n")["error"]
    assert "larger than" in raw(server.path, b'{"cmd": "' + b"x" * 70000 + b'"}\n')["error"]


def test_socket_goes_under_the_runtime_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = agent_settings(tmp_path / "state", "mqtt://127.0.0.1")
    assert settings.socket_path == tmp_path / "state" / "agent.sock"
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    assert settings.socket_path == tmp_path / "run" / "agent.sock"
    explicit = agent_settings(
        tmp_path, "mqtt://127.0.0.1", agent={"control_socket": str(tmp_path / "c.sock")}
    )
    assert explicit.socket_path == tmp_path / "c.sock"
    assert control.candidates(explicit.socket_path, explicit=True) == [tmp_path / "c.sock"]
    assert control.candidates(tmp_path / "a.sock", explicit=False) == [
        tmp_path / "a.sock",
        control.SERVICE_SOCKET,
    ]


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to lose file access"
)
def test_a_user_outside_the_group_is_told_how_to_get_in(
    server: control.ControlServer, tmp_path: Path
) -> None:
    os.chown(server.path, 65534, 65534)  # the agent's user and group, not ours
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nsite = "s"\ndevice = "d"\nstate_dir = "{tmp_path}"\ncontrol_socket = "{server.path}"\n'
        '[mqtt]\nurl = "mqtt://127.0.0.1"\n'
    )
    cli = "from edge_agent.cli import app; app()"
    result = subprocess.run(
        [
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            "--",
            sys.executable,
            "-c",
            cli,
            "status",
            "--config",
            str(config),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    error = json.loads(result.stdout)["error"]
    assert "permission denied" in error and "usermod -aG signalcraft" in error
