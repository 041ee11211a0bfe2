"""``diag mqtt``: the agent's way to its broker, one step at a time, each failure explained.

Steps: the host name resolves; TCP reaches the port; TLS verifies the broker's certificate against
``mqtt.ca_file`` (and presents ours); the broker accepts our login; and it lets us publish under our
device id (the ACL). The probe connects as ``<client id>-diag`` so a running agent's session is never
taken over, sets no Last Will, and publishes its ACL test as a command answer (``…/cmd/ack``), which
the agent may always send and the collector does not store. MQTT 3.1.1 brokers do not report ACL
denials, so with ``mqtt.protocol = "3.1.1"`` that step can only be a warning.
"""

from __future__ import annotations

import socket
import ssl
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from common import schema
from common.mqtt_url import BrokerAddress
from common.topics import topic
from edge_agent.config import AgentSettings
from edge_agent.diagnose import Check, fail, ok, warn
from edge_agent.diagnose.tls import tls_check
from edge_agent.mqtt_client import new_client

_BAD_CREDENTIALS = {0x86, 0x04}  # v5 "bad user name or password", 3.1.1 return code 4
_NOT_AUTHORIZED = {0x87, 0x05}


@dataclass(frozen=True)
class Target:
    address: BrokerAddress
    site: str
    device: str
    client_id: str
    protocol: str  # "5" or "3.1.1"
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @classmethod
    def from_settings(cls, s: AgentSettings) -> Target:
        m = s.mqtt
        return cls(
            s.broker,
            s.agent.site,
            s.agent.device,
            m.client_id or s.agent.device,
            m.protocol,
            m.ca_file,
            m.cert_file,
            m.key_file,
        )

    @property
    def where(self) -> str:
        return f"{self.address.host}:{self.address.port}"


def probe(t: Target, timeout: float = 5.0) -> list[Check]:
    """Every step up to the first failure (later steps cannot be judged after one fails)."""
    checks = [_resolve(t), _tcp(t, timeout)]
    if t.address.tls and checks[-1].ok and checks[0].ok:
        checks.append(tls_check(t.address.host, t.address.port, t.ca_file, t.cert_file, t.key_file, timeout))
    if all(c.ok for c in checks):
        checks.extend(_session(t, timeout))
    if t.address.username and t.address.username != t.device:
        checks.append(
            warn(
                "identity",
                f"broker user {t.address.username!r} differs from agent.device {t.device!r}",
                "the fleet's ACL (deploy/mosquitto/signalcraft.acl) lets a user publish only under its own "
                "name, so the broker refuses this agent's messages and its Last Will",
                "make the user name in mqtt.url equal to agent.device",
            )
        )
    return checks


def _resolve(t: Target) -> Check:
    try:
        infos = socket.getaddrinfo(t.address.host, t.address.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return fail(
            "resolve",
            f"cannot resolve {t.address.host!r}: {exc.strerror}",
            "the host name is misspelt, or this machine has no DNS (no network yet?)",
            "check the host in mqtt.url and `resolvectl status` / /etc/resolv.conf",
        )
    return ok("resolve", f"{t.address.host} is {infos[0][4][0]}")


def _tcp(t: Target, timeout: float) -> Check:
    try:
        with socket.create_connection((t.address.host, t.address.port), timeout=timeout):
            pass
    except TimeoutError:
        return fail(
            "tcp",
            f"no answer from {t.where} within {timeout:g} s",
            "a firewall drops the traffic, the host is down, or this site has no uplink",
            f"check the site's internet link and that outbound TCP {t.address.port} is allowed",
        )
    except ConnectionRefusedError:
        return fail(
            "tcp",
            f"connection to {t.where} refused",
            "no broker listens on that port (stopped, or a different port)",
            "check the port in mqtt.url (8883 for mqtts://, 1883 for mqtt://) and that the broker runs",
        )
    except OSError as exc:
        return fail(
            "tcp",
            f"cannot reach {t.where}: {exc.strerror or exc}",
            "no route to the host (network down, wrong address)",
            "check this machine's network (`ip route`) and the host in mqtt.url",
        )
    return ok("tcp", f"{t.where} accepts TCP connections")


def _client(t: Target) -> mqtt.Client:
    # A client id of its own, so a running agent's session is never taken over.
    return new_client(
        t.address, f"{t.client_id}-diag"[:128], t.protocol == "5", t.ca_file, t.cert_file, t.key_file
    )


def _session(t: Target, timeout: float) -> list[Check]:
    connected, published = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def on_connect(client, userdata, flags, reason, properties) -> None:
        seen["connect"] = reason
        connected.set()

    def on_publish(client, userdata, mid, reason, properties) -> None:
        seen["publish"] = reason
        published.set()

    client = _client(t)
    client.on_connect, client.on_publish = on_connect, on_publish
    user = t.address.username or "(anonymous)"
    try:
        client.connect(t.address.host, t.address.port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        return [fail("login", f"MQTT connect to {t.where} failed: {exc}", fix="see the tls step above")]
    client.loop_start()
    try:
        if not connected.wait(timeout):
            scheme = "mqtt://" if t.address.tls else "mqtts://"
            return [
                fail(
                    "login",
                    f"{t.where} accepted TCP but sent no CONNACK within {timeout:g} s",
                    "the port speaks TLS and we do not (or the other way round), or it is not MQTT",
                    f"try {scheme} in mqtt.url, or the broker's other port (1883 plain, 8883 TLS)",
                )
            ]
        reason = seen["connect"]
        if reason.is_failure:  # type: ignore[attr-defined]
            return [_refused(reason, user, t)]
        checks = [ok("login", f"logged in to {t.where} as {user} (MQTT {t.protocol})")]
        checks.append(_acl(client, t, published, seen, timeout))
        return checks
    finally:
        client.disconnect()
        client.loop_stop()


def _refused(reason: object, user: str, t: Target) -> Check:
    code = reason.value  # type: ignore[attr-defined]
    detail = f"broker refused the login as {user}: [code:{code:#x}] {reason}"
    if t.address.username and not t.address.password:
        return fail(
            "login",
            detail,
            f"mqtt.url names user {user!r} but no password",
            "the service reads the full URL from /etc/signalcraft/credentials/mqtt.url: run this command "
            "with sudo to use it, or put the password there",
        )
    if code in _BAD_CREDENTIALS or (code in _NOT_AUTHORIZED and t.address.username):
        # mosquitto answers a wrong password with "not authorized" too: it does not say which.
        return fail(
            "login",
            detail,
            f"wrong user name or password for {user!r} (or the user is not in the broker's password file)",
            "check the password in mqtt.url (or the mqtt.url credential) against the broker "
            "(mosquitto_passwd on the broker host)",
        )
    if code in _NOT_AUTHORIZED:
        return fail(
            "login",
            detail,
            "the broker does not accept anonymous clients",
            "put user:password in mqtt.url (mqtts://DEVICE:PASSWORD@host:8883)",
        )
    if code in (0x84, 0x01):
        return fail(
            "login",
            detail,
            "the broker does not speak this MQTT version",
            'set mqtt.protocol = "3.1.1" (or upgrade the broker to MQTT 5)',
        )
    if code in (0x85, 0x02):
        return fail("login", detail, "the broker refuses our client id", "check mqtt.client_id")
    return fail("login", detail, "the broker refused the connection", "read the broker's log")


def _acl(client: mqtt.Client, t: Target, published: threading.Event, seen: dict, timeout: float) -> Check:
    where = topic(t.site, t.device, "cmd/ack")
    ack = schema.CommandAck(
        v=1,
        site=t.site,
        device=t.device,
        boot=uuid.uuid4().hex,
        id=f"diag-{uuid.uuid4().hex[:8]}",
        ts=datetime.now(UTC),
        ok=True,
        result={"diag": "acl publish test"},
    )
    info = client.publish(where, schema.encode(ack), qos=1)
    if info.rc != mqtt.MQTT_ERR_SUCCESS or not published.wait(timeout):
        return fail(
            "acl",
            f"no PUBACK for a test message to {where} within {timeout:g} s",
            "the broker dropped the connection on the publish: its ACL refuses this topic for this user",
            "the ACL must allow `pattern write signalcraft/v1/+/%u/#` and the user must equal agent.device",
        )
    reason = seen["publish"]
    if t.protocol != "5":
        return warn(
            "acl",
            f"published to {where}, but MQTT 3.1.1 brokers do not report ACL denials",
            fix='use mqtt.protocol = "5" to have the ACL checked',
        )
    if reason.is_failure:  # type: ignore[attr-defined]
        user = t.address.username or "(anonymous)"
        return fail(
            "acl",
            f"broker refused a publish to {where}: [code:{reason.value:#x}] {reason}",  # type: ignore[attr-defined]
            f"the broker's ACL does not let {user!r} write under device {t.device!r}",
            "make the user name in mqtt.url equal to agent.device, or add the device to the ACL "
            "(deploy/mosquitto/signalcraft.acl)",
        )
    return ok("acl", f"the broker accepted a publish to {where}")
