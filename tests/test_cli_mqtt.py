"""``diag mqtt`` against the production-like broker (TLS, passwords, per-device ACL): each failure is one
line naming the cause and the fix."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_agent.cli import app
from edge_agent.diagnose.tls import tls_check
from signalcraft import embedded
from tests.tls_helpers import SecureBroker, issue, make_ca, start_secure_broker

pytestmark = pytest.mark.skipif(
    not (shutil.which("mosquitto") and shutil.which("mosquitto_passwd")),
    reason="needs the mosquitto broker (Debian package mosquitto) for TLS and the ACL",
)
runner = CliRunner()
USERS = {"freezer-1": "pw-freezer-1", "freezer-2": "pw-freezer-2"}


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    b = start_secure_broker(tmp_path_factory.mktemp("secure"), USERS)
    yield b
    b.stop()


def diag(tmp_path: Path, url: str, device: str = "freezer-1", ca: Path | None = None) -> tuple[int, dict]:
    ca_line = f'ca_file = "{ca}"\n' if ca else ""
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nsite = "shop"\ndevice = "{device}"\nstate_dir = "{tmp_path}"\n'
        f'[mqtt]\nurl = "{url}"\n{ca_line}'
    )
    result = runner.invoke(app, ["diag", "mqtt", "--config", str(config), "--timeout", "3", "--json"])
    return result.exit_code, json.loads(result.output)


def by_name(out: dict) -> dict[str, dict]:
    return {c["name"]: c for c in out["checks"]}


def test_all_steps_pass(secure: SecureBroker, tmp_path: Path) -> None:
    url = f"mqtts://freezer-1:pw-freezer-1@127.0.0.1:{secure.port}"
    code, out = diag(tmp_path, url, ca=secure.certs / "ca.crt")
    assert code == 0, out
    steps = by_name(out)
    assert [c["name"] for c in out["checks"]] == ["resolve", "tcp", "tls", "login", "acl"]
    assert "issued by CN=SignalCraft Test CA" in steps["tls"]["detail"]
    assert steps["tls"]["status"] == "warn" and "expires in" in steps["tls"]["detail"]  # a 2-day test cert
    assert "accepted a publish" in steps["acl"]["detail"]


def test_wrong_password(secure: SecureBroker, tmp_path: Path) -> None:
    url = f"mqtts://freezer-1:nope@127.0.0.1:{secure.port}"
    code, out = diag(tmp_path, url, ca=secure.certs / "ca.crt")
    login = by_name(out)["login"]
    assert code == 1 and login["status"] == "fail"
    assert "wrong user name or password for 'freezer-1'" in login["cause"]
    assert "mosquitto_passwd" in login["fix"]


def test_wrong_ca(secure: SecureBroker, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    make_ca(other, cn="Some Other CA")
    url = f"mqtts://freezer-1:pw-freezer-1@127.0.0.1:{secure.port}"
    code, out = diag(tmp_path, url, ca=other / "ca.crt")
    tls = by_name(out)["tls"]
    assert code == 1 and tls["status"] == "fail"
    assert "issued by CN=SignalCraft Test CA" in tls["detail"]  # the certificate it actually got
    assert f"not signed by a CA in mqtt.ca_file {other / 'ca.crt'}" in tls["cause"]
    assert "login" not in by_name(out)  # later steps cannot be judged


def test_certificate_for_another_host(tmp_path: Path) -> None:
    # A TLS listener whose certificate names another host (no SAN for 127.0.0.1).
    ca = make_ca(tmp_path)
    issue(tmp_path, "server", ca, "elsewhere.example", server=False)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    listener.settimeout(0.1)
    done = threading.Event()

    def serve() -> None:  # the check, then its second look at the certificate
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            with contextlib.suppress(OSError, ssl.SSLError), ctx.wrap_socket(conn, server_side=True):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        check = tls_check("127.0.0.1", port, str(tmp_path / "ca.crt"), "", "", 3.0)
    finally:
        done.set()
        thread.join(5)
        listener.close()
    assert check.status == "fail"
    assert "CN=elsewhere.example" in check.cause and "not '127.0.0.1'" in check.cause


def test_acl_refuses_another_device(secure: SecureBroker, tmp_path: Path) -> None:
    url = f"mqtts://freezer-1:pw-freezer-1@127.0.0.1:{secure.port}"
    code, out = diag(tmp_path, url, device="freezer-2", ca=secure.certs / "ca.crt")
    steps = by_name(out)
    assert code == 1
    assert steps["login"]["status"] == "ok"
    assert steps["acl"]["status"] == "fail"
    assert "signalcraft/v1/shop/freezer-2/cmd/ack" in steps["acl"]["detail"]
    assert "ACL" in steps["acl"]["cause"] or "ACL" in steps["acl"]["fix"]
    assert steps["identity"]["status"] == "warn" and "agent.device" in steps["identity"]["fix"]


def test_unreachable_broker(tmp_path: Path) -> None:
    port = embedded.free_port()
    code, out = diag(tmp_path, f"mqtts://freezer-1:x@127.0.0.1:{port}")
    tcp = by_name(out)["tcp"]
    assert code == 1 and tcp["status"] == "fail" and "refused" in tcp["detail"]
    assert "8883" in tcp["fix"]


def test_unknown_host(tmp_path: Path) -> None:
    code, out = diag(tmp_path, "mqtts://freezer-1:x@broker.invalid:8883")
    assert code == 1 and by_name(out)["resolve"]["status"] == "fail"
    assert "broker.invalid" in by_name(out)["resolve"]["detail"]


def test_tls_to_a_plain_port(broker: embedded.Broker, tmp_path: Path) -> None:
    code, out = diag(tmp_path, f"mqtts://freezer-1:x@127.0.0.1:{broker.port}")
    tls = by_name(out)["tls"]
    assert code == 1 and tls["status"] == "fail" and "plain MQTT" in tls["cause"]


def test_text_output_is_one_line_per_step(secure: SecureBroker, tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nsite = "shop"\ndevice = "freezer-1"\nstate_dir = "{tmp_path}"\n'
        f'[mqtt]\nurl = "mqtts://freezer-1:nope@127.0.0.1:{secure.port}"\n'
        f'ca_file = "{secure.certs / "ca.crt"}"\n'
    )
    result = runner.invoke(app, ["diag", "mqtt", "--config", str(config)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("FAIL login:") and "fix: " in lines[-1]
