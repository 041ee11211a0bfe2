"""Real servers for a machine that has none: an MQTT broker and a PostgreSQL, started as child processes.

Used by ``signalcraft demo`` and by the tests. The broker is ``mosquitto`` rendered from
``deploy/mosquitto/`` when the binary is on PATH, else amqtt (a Python MQTT 3.1.1 broker). PostgreSQL
comes from the ``pgserver`` package, which ships the server binaries in its wheel.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
_BUNDLED_DEPLOY = Path(__file__).resolve().parent / "deploy"


def deploy_dir() -> Path:
    """``deploy/`` of the checkout, or the copy packaged with an installed wheel."""
    return DEPLOY if DEPLOY.is_dir() else _BUNDLED_DEPLOY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with code {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Broker:
    """A running MQTT broker child process."""

    url: str
    port: int
    kind: str  # "mosquitto" or "amqtt"
    workdir: Path
    proc: subprocess.Popen = field(repr=False)

    @property
    def supports_v5(self) -> bool:
        return self.kind == "mosquitto"

    def stop(self) -> None:
        terminate(self.proc)

    def pause(self) -> None:
        """Stop the broker process but keep its persistence folder (an outage)."""
        terminate(self.proc)

    def resume(self) -> None:
        """Start it again on the same port after :meth:`pause`."""
        self.proc = _spawn_broker(self.kind, self.port, self.workdir)
        wait_for_port("127.0.0.1", self.port, proc=self.proc)


def start_broker(workdir: Path, port: int | None = None, prefer: str | None = None) -> Broker:
    """Start a broker on 127.0.0.1. ``prefer`` forces "mosquitto" or "amqtt"."""
    workdir.mkdir(parents=True, exist_ok=True)
    kind = prefer or ("mosquitto" if shutil.which("mosquitto") else "amqtt")
    port = port or free_port()
    proc = _spawn_broker(kind, port, workdir)
    wait_for_port("127.0.0.1", port, proc=proc)
    return Broker(f"mqtt://127.0.0.1:{port}", port, kind, workdir, proc)


def _spawn_broker(kind: str, port: int, workdir: Path) -> subprocess.Popen:
    if kind == "mosquitto":
        conf = workdir / "mosquitto.conf"
        template = (deploy_dir() / "mosquitto" / "dev.conf").read_text()
        common = (deploy_dir() / "mosquitto" / "signalcraft.conf").read_text()
        text = template.replace("@PORT@", str(port)).replace("@DIR@", str(workdir)) + "\n" + common
        if os.geteuid() == 0:
            # Started as root, mosquitto drops to the "mosquitto" user and then cannot write its
            # persistence file into our folder; the embedded broker runs as whoever started it.
            text += "\nuser root\n"
        conf.write_text(text)
        cmd = [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)]
    elif kind == "amqtt":
        conf = workdir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: 127.0.0.1:{port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
        )
        cmd = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
    else:
        raise ValueError(f"unknown broker kind {kind!r}")
    with open(workdir / f"{kind}.log", "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)


@dataclass
class Postgres:
    url: str
    stop_fn: object = field(repr=False, default=None)

    def stop(self) -> None:
        if callable(self.stop_fn):
            self.stop_fn()


def start_postgres(datadir: Path) -> Postgres:
    """An embedded PostgreSQL (pgserver) in ``datadir``; stopped by :meth:`Postgres.stop`."""
    import pgserver  # imported here: only the demo and the tests need it

    datadir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (no login session) and falls back to /tmp: fine.
        warnings.simplefilter("ignore")
        server = pgserver.get_server(str(datadir), cleanup_mode="stop")
    url = server.get_uri()
    return Postgres(url, getattr(server, "cleanup", None))


def terminate(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the child's process group, SIGKILL it if it has not gone after ``timeout`` s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
