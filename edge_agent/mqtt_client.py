"""The one place an agent-side paho client is built: protocol, credentials and TLS as the settings say.

The uplink and ``signalcraft-agent diag mqtt`` both use it, so the diagnosis tests the very connection
the agent will make.
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common.mqtt_url import BrokerAddress


def new_client(
    address: BrokerAddress,
    client_id: str,
    v5: bool,
    ca_file: str = "",
    cert_file: str = "",
    key_file: str = "",
) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        **({} if v5 else {"clean_session": True}),
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(
            ca_certs=ca_file or None,
            certfile=cert_file or None,
            keyfile=key_file or None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    return client
