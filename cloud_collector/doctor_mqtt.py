"""The broker part of ``doctor``: can we reach it, log in, and subscribe to what the collector needs.

It connects with ``<client_id>-doctor`` and a clean start, so a running collector's session is never
touched, then subscribes (and unsubscribes) the same shared filters ``serve`` uses: a broker ACL that
refuses them is reported as such, with the reason code the broker sent. mosquitto 2 does not refuse at
subscribe time - its ACL silently withholds messages - so read access is also confirmed by receiving a
retained ``status`` message of the fleet (the agents' birth / Last Will); when none arrives, the report
says that read access could not be confirmed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud_collector.config import MqttSettings
from common.mqtt_url import BrokerAddress
from common.topics import fleet_filter

if TYPE_CHECKING:
    from cloud_collector.doctor import Check

_BAD_CREDENTIALS = {0x86, 0x04}  # v5 "bad user name or password", 3.1.1 return code 4
_NOT_AUTHORIZED = {0x87, 0x05}
_KINDS = ("telemetry", "state", "status")


async def check_broker(settings: MqttSettings, source: str, timeout: float) -> Check:
    return await asyncio.to_thread(_check, settings, source, timeout)


def _check(settings: MqttSettings, source: str, timeout: float) -> Check:
    from cloud_collector.doctor import Check

    addr = BrokerAddress.parse(settings.url)
    where = f"{addr.host}:{addr.port}"
    try:
        with socket.create_connection((addr.host, addr.port), timeout=timeout):
            pass
    except TimeoutError:
        return Check(name="broker", ok=False, detail=f"no answer from {where} within {timeout:g} s",
                     cause="a firewall or security-group rule drops the traffic, or the host is down",
                     fix=f"allow TCP {addr.port} from this machine to {addr.host}; check mqtt.url ({source})")
    except ConnectionRefusedError:
        return Check(name="broker", ok=False, detail=f"connection to {where} refused",
                     cause="no broker listens there (stopped, or another port / interface)",
                     fix=f"start the broker or correct the port in mqtt.url ({source})")
    except OSError as exc:
        return Check(name="broker", ok=False, detail=f"cannot reach {where}: {exc}",
                     cause="the host name does not resolve or the network is unreachable",
                     fix=f"check the host in mqtt.url ({source}) and this machine's DNS and routes")
    return _session(settings, addr, where, source, timeout)


def _session(settings: MqttSettings, addr: BrokerAddress, where: str, source: str, timeout: float) -> Check:
    from cloud_collector.doctor import Check

    connected, subscribed, retained = threading.Event(), threading.Event(), threading.Event()
    result: dict[str, object] = {}

    def on_connect(client, userdata, flags, reason, properties) -> None:
        result["connect"] = reason
        connected.set()
        if not reason.is_failure:
            filters = [(fleet_filter(k, settings.share_group), SubscribeOptions(qos=1)) for k in _KINDS]
            client.subscribe(filters)

    def on_subscribe(client, userdata, mid, reason_codes, properties) -> None:
        result.setdefault("subscribe", reason_codes)
        subscribed.set()

    def on_message(client, userdata, msg) -> None:
        if msg.retain:
            retained.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{settings.client_id}-doctor"[:128],
                         protocol=mqtt.MQTTv5)
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    if addr.username:
        client.username_pw_set(addr.username, addr.password)
    if addr.tls:
        client.tls_set_context(ssl.create_default_context())
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    try:
        client.connect(addr.host, addr.port, keepalive=10, clean_start=True, properties=props)
    except (OSError, ssl.SSLError) as exc:
        return Check(name="broker", ok=False, detail=f"MQTT connect to {where} failed: {exc}",
                     cause="TLS or protocol mismatch (mqtts:// to a plain port, or the other way round)",
                     fix=f"check the scheme and port of mqtt.url ({source})")
    client.loop_start()
    try:
        if not connected.wait(timeout):
            return Check(name="broker", ok=False, detail=f"{where} accepted TCP but sent no CONNACK",
                         cause="not an MQTT broker, or one that does not speak MQTT v5 (amqtt)",
                         fix="use mosquitto >= 2 or EMQX; without v5 collectors cannot share the load")
        reason = result["connect"]
        user = addr.username or "(anonymous)"
        if reason.is_failure:  # type: ignore[attr-defined]
            code = reason.value  # type: ignore[attr-defined]
            if code in _BAD_CREDENTIALS:
                cause, fix = (f"wrong user name or password for {user!r}",
                              f"the credentials come from mqtt.url ({source}); check the broker's "
                              "password_file (mosquitto_passwd)")
            elif code in _NOT_AUTHORIZED:
                # mosquitto answers a wrong password with "not authorized" too (it does not say which).
                cause, fix = (f"the broker does not let {user!r} connect: wrong user name or password, "
                              "or anonymous access is off",
                              f"the credentials come from mqtt.url ({source}); check them against the "
                              "broker's password_file (mosquitto_passwd)")
            else:
                cause, fix = "the broker refused the connection", "read the broker log"
            return Check(name="broker", ok=False, detail=f"CONNACK [code:{code:#x}] {reason}", cause=cause,
                         fix=fix)
        if not subscribed.wait(timeout):
            return Check(name="broker", ok=False, detail="no SUBACK", cause="broker overloaded",
                         fix="read the broker log")
        refused = [str(rc) for rc in result["subscribe"] if rc.is_failure]  # type: ignore[attr-defined]
        if refused:
            return Check(name="broker", ok=False,
                         detail=f"subscription to $share/{settings.share_group}/signalcraft/v1/+/+/… "
                                f"refused: {', '.join(refused)}",
                         cause=f"the broker ACL does not let {user!r} read signalcraft/v1/#",
                         fix=f"add `user {user}` + `topic read signalcraft/v1/#` to the acl_file "
                             "(deploy/mosquitto/), or a matching EMQX authorization rule")
        client.unsubscribe([fleet_filter(k, settings.share_group) for k in _KINDS])
        client.subscribe(fleet_filter("status"), options=SubscribeOptions(qos=0))
        confirmed = retained.wait(min(timeout, 2.0))
        read = ("read access confirmed by a retained status message" if confirmed else
                "read access NOT confirmed: no retained status arrived (no agent has connected yet, or an "
                f"ACL silently withholds signalcraft/v1/# from {user!r})")
        return Check(name="broker", ok=True,
                     detail=f"MQTT v5 login as {user} at {where}; shared subscription accepted; {read}")
    finally:
        client.disconnect()
        client.loop_stop()
